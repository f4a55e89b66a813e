// Package xds is contentguard's xDS control plane: it serves a policy to
// Envoy sidecars (as Envoy resources: a listener that asks the engine about
// every request through ext_authz, and native filters only where they are
// exact), to proxyless gRPC clients (an API listener, routes, clusters and
// endpoints) and to contentguard's own sidecars (the policy itself, as a
// resource of type policypb.TypeURL), over ADS, State of the World and
// Delta, with go-control-plane.
//
// A policy file or a directory of them is the source (see Source); every
// change makes a new snapshot for the nodes it applies to, a bad file keeps
// the last good one and says why. A NACK is logged, counted and parked
// until the next version, never answered with the version it rejected.
package xds
