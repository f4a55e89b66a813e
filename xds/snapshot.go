package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// snapshot is the resources of one node, by type URL, each type with a
// version of its own: the hash of its resources, so that a policy change
// bumps only the types it changes (State of the World resends only those;
// Delta sends only the resources whose own hash changed).
//
// It implements go-control-plane's cache.ResourceSnapshot for any type URL,
// which its Snapshot does not: contentguard's policy resource has a type of
// its own. A snapshot is immutable once built and may be shared by nodes.
type snapshot struct {
	types map[string]*typeResources
}

type typeResources struct {
	version  string
	items    map[string]types.ResourceWithTTL
	versions map[string]string // resource name -> hash of its bytes (Delta)
}

var _ cache.ResourceSnapshot = (*snapshot)(nil)

// named is a resource with the name it is served under.
type named struct {
	name string
	msg  proto.Message
}

// newSnapshot builds a snapshot of resources by type URL. Names must be
// unique within a type.
func newSnapshot(byType map[string][]named) (*snapshot, error) {
	s := &snapshot{types: make(map[string]*typeResources, len(byType))}
	for typeURL, list := range byType {
		tr := &typeResources{
			items:    make(map[string]types.ResourceWithTTL, len(list)),
			versions: make(map[string]string, len(list)),
		}
		sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
		h := sha256.New()
		for _, r := range list {
			if _, dup := tr.items[r.name]; dup {
				return nil, fmt.Errorf("xds: two %s resources named %q", typeURL, r.name)
			}
			b, err := cache.MarshalResource(r.msg)
			if err != nil {
				return nil, fmt.Errorf("xds: marshal %s %q: %w", typeURL, r.name, err)
			}
			tr.items[r.name] = types.ResourceWithTTL{Resource: r.msg}
			tr.versions[r.name] = cache.HashResource(b)
			h.Write([]byte(r.name))
			h.Write([]byte{0})
			h.Write([]byte(tr.versions[r.name]))
		}
		tr.version = hex.EncodeToString(h.Sum(nil))[:16]
		s.types[typeURL] = tr
	}
	return s, nil
}

// Version is one string for the whole snapshot: its types' versions.
func (s *snapshot) Version() string {
	keys := sortedKeys(s.types)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte(s.types[k].version))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// GetVersion implements cache.ResourceSnapshot.
func (s *snapshot) GetVersion(typeURL string) string {
	if tr := s.types[typeURL]; tr != nil {
		return tr.version
	}
	return ""
}

// GetResourcesAndTTL implements cache.ResourceSnapshot.
func (s *snapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if tr := s.types[typeURL]; tr != nil {
		return tr.items
	}
	return nil
}

// GetResources implements cache.ResourceSnapshot.
func (s *snapshot) GetResources(typeURL string) map[string]types.Resource {
	tr := s.types[typeURL]
	if tr == nil {
		return nil
	}
	out := make(map[string]types.Resource, len(tr.items))
	for k, v := range tr.items {
		out[k] = v.Resource
	}
	return out
}

// ConstructVersionMap implements cache.ResourceSnapshot: the map is built
// with the snapshot.
func (s *snapshot) ConstructVersionMap() error { return nil }

// GetVersionMap implements cache.ResourceSnapshot.
func (s *snapshot) GetVersionMap(typeURL string) map[string]string {
	if tr := s.types[typeURL]; tr != nil {
		return tr.versions
	}
	return nil
}
