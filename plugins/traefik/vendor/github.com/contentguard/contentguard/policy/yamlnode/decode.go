package yamlnode

import "github.com/contentguard/contentguard/policy"

// Decode reads a policy document and decodes it with policy.Decode; name
// is used in error messages. A document that cannot be read fails like one
// that does not validate: with a policy.Errors at file:line:col.
//
// It is policyfile.Parse for code that runs interpreted as well: the
// Traefik plugin cannot import policyfile, which embeds the default policy
// (Yaegi has no embed package).
func Decode(name string, data []byte) (*policy.Policy, error) {
	p, _, err := DecodeTree(name, data)
	return p, err
}

// DecodeTree is Decode that also returns the document's node tree (nil
// when the document cannot be read), for callers that look at the policy
// as written (policy validate's lint).
func DecodeTree(name string, data []byte) (*policy.Policy, *policy.Node, error) {
	root, err := Parse(data)
	if err != nil {
		if e, ok := err.(*Error); ok {
			return nil, nil, policy.Errors{{File: name, Line: e.Line, Column: e.Column, Message: e.Message}}
		}
		return nil, nil, policy.Errors{{File: name, Message: err.Error()}}
	}
	p, err := policy.Decode(root, name, data)
	return p, root, err
}
