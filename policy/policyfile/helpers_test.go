package policyfile

import (
	"encoding/json"
	"fmt"

	"github.com/contentguard/contentguard/policy"
)

func policyDecodeJSON(b []byte) (*policy.Policy, error) { return policy.DecodeJSON(b, "d.json") }

func describePolicy(p *policy.Policy) string {
	for i := range p.Spec.Routes {
		p.Spec.Routes[i].Line = 0 // positions differ between the two texts
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprint(err)
	}
	return string(b)
}
