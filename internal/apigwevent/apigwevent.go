// Package apigwevent reads the request parts that AWS API Gateway events
// spread over several fields, the same way for the backend's proxy
// integration (backend/lambda) and the edge's authorizer
// (plugins/apigateway): both must see the request API Gateway saw.
package apigwevent

import (
	"net/http"
	"net/url"
	"strings"
)

// Header merges the header maps of a payload 1.0 event: every value of
// multi, then the fields of single that multi lacks.
func Header(multi map[string][]string, single map[string]string) http.Header {
	h := make(http.Header, len(multi)+len(single))
	for k, vs := range multi {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range single {
		if len(h.Values(k)) == 0 {
			h.Set(k, v)
		}
	}
	return h
}

// Query is the encoded query of a payload 1.0 event's parameter maps,
// merged the way Header merges headers.
func Query(multi map[string][]string, single map[string]string) string {
	q := url.Values{}
	for k, vs := range multi {
		q[k] = append(q[k], vs...)
	}
	for k, v := range single {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// StagePath is a payload 2.0 rawPath without its stage: a named stage is
// the path's first segment ("/prod/analyze"), $default adds none.
func StagePath(rawPath, stage string) string {
	if stage != "" && stage != "$default" && strings.HasPrefix(rawPath, "/"+stage+"/") {
		return rawPath[len(stage)+1:]
	}
	return rawPath
}
