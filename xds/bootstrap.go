package xds

import (
	"bytes"
	"encoding/json"
	"fmt"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/contentguard/contentguard/policy"
)

// Static is an Envoy bootstrap that enforces p without a control plane: the
// resources of Envoy, with the route configuration inside the connection
// manager and the endpoints inside their clusters. `contentguard policy
// envoy` prints it.
func Static(p *policy.Policy, opts Options) (*bootstrap.Bootstrap, error) {
	r, err := Envoy(p, opts)
	if err != nil {
		return nil, err
	}
	pk := &packer{}
	byCluster := map[string]*endpoint.ClusterLoadAssignment{}
	for _, e := range r.Endpoints {
		byCluster[e.GetClusterName()] = e
	}
	var clusters []*cluster.Cluster
	for _, c := range r.Clusters {
		c = proto.Clone(c).(*cluster.Cluster)
		if c.GetType() == cluster.Cluster_EDS {
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
			c.EdsClusterConfig = nil
			c.LoadAssignment = byCluster[c.GetName()]
		}
		clusters = append(clusters, c)
	}
	var listeners []*listener.Listener
	for _, l := range r.Listeners {
		l = proto.Clone(l).(*listener.Listener)
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hc := &hcm.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(hc); err != nil {
					return nil, fmt.Errorf("xds: static bootstrap: %w", err)
				}
				hc.RouteSpecifier = &hcm.HttpConnectionManager_RouteConfig{RouteConfig: r.Routes[0]}
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: pk.any(hc)}
			}
		}
		listeners = append(listeners, l)
	}
	b := &bootstrap.Bootstrap{
		Node: &core.Node{Id: "contentguard-static", Cluster: p.Metadata.Name},
		StaticResources: &bootstrap.Bootstrap_StaticResources{
			Listeners: listeners,
			Clusters:  clusters,
		},
	}
	if pk.err != nil {
		return nil, pk.err
	}
	if err := validate(b); err != nil {
		return nil, err
	}
	return b, nil
}

// YAML renders a message as YAML, field names as Envoy's documentation
// writes them.
func YAML(m proto.Message) ([]byte, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	// JSON is YAML: parse it into a node tree (keeping the order of the
	// fields) and write it back in block style.
	var n yaml.Node
	if err := yaml.Unmarshal(js, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	if n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle {
		n.Style = 0 // the encoder quotes what needs quoting
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// DecodeYAML reads an Envoy message written in YAML (a bootstrap, a
// resource) with the Envoy protos, strictly: an unknown field is an error.
func DecodeYAML(data []byte, m proto.Message) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	js, err := json.Marshal(jsonable(v))
	if err != nil {
		return err
	}
	return protojson.Unmarshal(js, m)
}

// jsonable turns YAML's map[string]any trees into ones encoding/json takes.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = jsonable(x)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = jsonable(x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = jsonable(x)
		}
		return t
	}
	return v
}

// Validate runs ValidateAll on m and on every message packed in an Any
// inside it, which ValidateAll alone does not look into.
func Validate(m proto.Message) error {
	if err := validate(m); err != nil {
		return err
	}
	var walkErr error
	walkAny(m.ProtoReflect(), func(inner proto.Message) {
		if walkErr == nil {
			walkErr = Validate(inner)
		}
	})
	return walkErr
}
