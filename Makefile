# contentguard — build, test, fuzz, benchmark.
GO       ?= go
PKGS     ?= ./...
FUZZTIME ?= 20s

.PHONY: all build test vet fmt-check race traefik vendor fuzz bench tidy

all: vendor build

build:
	$(GO) build -o bin/contentguard ./cmd/contentguard

## test: everything CI runs — formatting, vet, and the race-enabled test suite
## (unit, conformance, Yaegi, real Redis / NGINX / Python / Chromium where named),
## and the Traefik plugin's module (see traefik).
test: fmt-check vet race traefik

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/internal/traefikload$$')

## traefik: the Traefik plugin (plugins/traefik, a module of its own):
## compiled and under `yaegi test`, and through Traefik's loader
## (internal/traefikload), printing the conformance case count.
traefik:
	GO=$(GO) scripts/test-traefik.sh

## vendor: refresh plugins/traefik/vendor from this module (Traefik's plugin
## loader reads vendor/, not modules); TestVendorInSync fails when it drifts.
vendor:
	cd plugins/traefik && $(GO) mod vendor

## fuzz: run every fuzz target for FUZZTIME each (seeds live in */testdata/fuzz).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

tidy:
	$(GO) mod tidy
