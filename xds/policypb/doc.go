// Package policypb is the contentguard policy as an xDS resource type
// (Policy, TypeURL): the control plane (package xds) serves it, the
// sidecar's xDS client (sidecar/xdsclient) subscribes to it. It also names
// what the Envoy resources of package xds and the ext_authz server
// (sidecar/extauthz) agree on across the wire.
//
// policy.pb.go is generated from policy.proto:
//
//	protoc --go_out=. --go_opt=paths=source_relative policy.proto
//
// with protoc-gen-go v1.36.12.
package policypb

// TypeURL is the type URL of a Policy resource.
const TypeURL = "type.googleapis.com/contentguard.xds.v1.Policy"

// What Envoy's configuration (package xds) and the ext_authz server agree
// on.
const (
	// AccessLogName is the log_name of the access-log streams that report
	// outcomes to the ext_authz server.
	AccessLogName = "contentguard"
	// ContextPolicyKey is the ext_authz context extension carrying the hash
	// of the policy Envoy's resources were made from.
	ContextPolicyKey = "contentguard.policy"
	// MetadataNamespace is where Envoy keeps the ext_authz filter's
	// dynamic metadata (and writes it in access logs).
	MetadataNamespace = "envoy.filters.http.ext_authz"
	// MetadataTicket is the ext_authz dynamic metadata key of an allowed
	// request's breaker ticket.
	MetadataTicket = "contentguard_ticket"
	// MetadataDecided is the ext_authz dynamic metadata key set on every
	// answer the engine made itself (refusals, preflights): Envoy's local
	// reply mappers leave those answers alone.
	MetadataDecided = "contentguard_decided"
)
