package xds

import (
	"encoding/json"
	"net/http"
	"time"
)

// AdminHandler serves the control plane's state as JSON:
//
//	GET /admin/xds   the policies in force (file, name, hash, loaded_at),
//	                 the files refused with why (the last good policy of
//	                 each stays), and the connected nodes: flavor, policy,
//	                 version, NACKs and the last NACK's error detail
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/xds", func(w http.ResponseWriter, r *http.Request) {
		type policyJSON struct {
			File     string `json:"file"`
			Name     string `json:"name"`
			Hash     string `json:"hash"`
			LoadedAt string `json:"loaded_at"`
		}
		type refusedJSON struct {
			File  string `json:"file"`
			Error string `json:"error"`
		}
		out := struct {
			Source   string        `json:"source"`
			Policies []policyJSON  `json:"policies"`
			Refused  []refusedJSON `json:"refused"`
			Nodes    []NodeStatus  `json:"nodes"`
		}{Source: s.opts.Source.Path(), Policies: []policyJSON{}, Refused: []refusedJSON{}, Nodes: s.Nodes()}
		for _, e := range s.opts.Source.Entries() {
			out.Policies = append(out.Policies, policyJSON{File: e.File, Name: e.Policy.Metadata.Name, Hash: e.Policy.Hash,
				LoadedAt: e.LoadedAt.UTC().Format(time.RFC3339Nano)})
		}
		errs := s.opts.Source.Errors()
		for _, f := range sortedKeys(errs) {
			out.Refused = append(out.Refused, refusedJSON{File: f, Error: errs[f].Error()})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}
