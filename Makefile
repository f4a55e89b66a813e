# contentguard — build, test, fuzz, benchmark.
GO       ?= go
PKGS     ?= ./...
FUZZTIME ?= 20s

.PHONY: all build test vet fmt-check race traefik vendor deploy-check fuzz bench tidy azure-functions build-Backend build-Authorizer

all: vendor build

build:
	$(GO) build -o bin/contentguard ./cmd/contentguard

## test: everything CI runs — formatting, vet, and the race-enabled test suite
## (unit, conformance, Yaegi, real Redis / NGINX / Python / Chromium where named),
## the Traefik plugin's module (see traefik), then the checks of deploy/
## (their own module: kustomize, k8s.io/api, Prometheus's parser stay out of
## the product's go.mod).
test: fmt-check vet race traefik deploy-check

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

## deploy-check: the image, compose stack, Kubernetes overlays, Prometheus rules,
## dashboards and serverless templates, run and checked against the binary.
deploy-check:
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

## build-Backend, build-Authorizer: what `sam build -t deploy/aws/template.yaml`
## runs (BuildMethod makefile): the binary as a custom runtime's bootstrap.
LAMBDA_BUILD = GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags=-s
build-Backend:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/contentguard
build-Authorizer:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/contentguard
	cp deploy/aws/policy.yaml $(ARTIFACTS_DIR)/policy.yaml

## azure-functions: the custom handler beside host.json, ready for
## `func azure functionapp publish APP` in deploy/azure-functions.
azure-functions:
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o deploy/azure-functions/contentguard ./cmd/contentguard

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
