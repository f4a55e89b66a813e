// Package check holds the tests of deploy/: the container image, the
// compose file, the Kubernetes manifests, the Prometheus configuration and
// rules, the Grafana dashboards and the serverless templates, each checked
// against what the contentguard binary really reads, serves and exports.
// It is a module of its own so that kustomize, k8s.io/api, compose-go,
// goformation and Prometheus's PromQL parser stay out of the product's
// go.mod.
package check
