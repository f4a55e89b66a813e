// Package policypb is the contentguard policy as an xDS resource type
// (Policy, TypeURL): the control plane (package xds) serves it, the
// sidecar's xDS client (sidecar/xdsclient) subscribes to it.
//
// policy.pb.go is generated from policy.proto:
//
//	protoc --go_out=. --go_opt=paths=source_relative policy.proto
//
// with protoc-gen-go v1.36.12.
package policypb

// TypeURL is the type URL of a Policy resource.
const TypeURL = "type.googleapis.com/contentguard.xds.v1.Policy"
