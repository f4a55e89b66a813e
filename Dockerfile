# syntax=docker/dockerfile:1
# The contentguard image: one static binary for every role, on distroless
# (no shell, no package manager), as a non-root user. Build from the
# repository root:
#
#   docker build -t contentguard .
#
# The role is the command (the image's default runs the backend on :8081):
#
#   docker run contentguard backend
#   docker run contentguard backend --worker            (REDIS_URL needed)
#   docker run -v ./policy.yaml:/etc/contentguard/policy.yaml:ro contentguard \
#       sidecar --policy /etc/contentguard/policy.yaml --listen :8080 --admin :9901
#
# docs/deploy.md has compose, Kubernetes and the serverless targets.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo), no debug paths; -buildvcs records the version that
# `contentguard --version` prints.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags=-s -o /out/contentguard ./cmd/contentguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/contentguard /usr/local/bin/contentguard
# nonroot is uid 65532 in distroless; numeric so Kubernetes can verify
# runAsNonRoot without a passwd lookup.
USER 65532:65532
# The backend listens on :$PORT in a container (Cloud Run and Knative set
# their own PORT); 8080 is the sidecar, 9901 its admin API (/healthz,
# /readyz, /metrics), 9091 a worker's /metrics, 18000 the xDS control
# plane's ADS (its admin API is on loopback unless --admin says otherwise).
ENV PORT=8081
EXPOSE 8081 8080 9901 9091 18000
# No shell or curl in the image: the binary asks itself. Without a URL it
# asks the backend's /health at $PORT; other roles set their own check
# (compose healthcheck, Kubernetes probes): see docs/deploy.md.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/contentguard", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/contentguard"]
CMD ["backend"]
