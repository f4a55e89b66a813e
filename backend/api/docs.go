package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// openAPIDocument is the hand-written OpenAPI 3 description of every route;
// TestOpenAPIMatchesMux keeps it and the mux in step.
//
//go:embed openapi.json
var openAPIDocument []byte

// docsAssets is Swagger UI (swagger-ui-dist 5.35.0, Apache-2.0, see
// docs/LICENSE.swagger-ui), vendored so /docs works without a network.
//
//go:embed docs
var docsAssets embed.FS

var docsContentTypes = map[string]string{
	"swagger-ui-bundle.js":             "text/javascript; charset=utf-8",
	"swagger-ui.css":                   "text/css; charset=utf-8",
	"LICENSE.swagger-ui":               "text/plain; charset=utf-8",
	"NOTICE.swagger-ui":                "text/plain; charset=utf-8",
	"swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
}

// docsHTML loads Swagger UI from the embedded assets with relative URLs, so
// the page also works behind a path prefix.
const docsHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>contentguard backend API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, docExpansion: "list"});
</script>
</body>
</html>
`

// openAPIFor returns the document with info.version set to this build's
// version, computed once.
type openAPICache struct {
	once sync.Once
	body []byte
	etag string
}

func (s *Server) openAPIBody() ([]byte, string) {
	s.openapi.once.Do(func() {
		var doc map[string]any
		body := openAPIDocument
		if err := json.Unmarshal(openAPIDocument, &doc); err == nil {
			if info, ok := doc["info"].(map[string]any); ok {
				info["version"] = s.cfg.Version
			}
			if b, err := json.Marshal(doc); err == nil {
				body = b
			}
		}
		sum := sha256.Sum256(body)
		s.openapi.body, s.openapi.etag = body, `"`+hex.EncodeToString(sum[:8])+`"`
	})
	return s.openapi.body, s.openapi.etag
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	body, etag := s.openAPIBody()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func (s *Server) docsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write([]byte(docsHTML))
}

func (s *Server) docsAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("asset")
	ctype, ok := docsContentTypes[name]
	if !ok {
		s.resp.writeProblem(w, r, &Problem{Status: http.StatusNotFound, Detail: "no such docs asset: " + name})
		return
	}
	body, err := docsAssets.ReadFile("docs/" + name)
	if err != nil {
		s.resp.writeProblem(w, r, &Problem{Status: http.StatusNotFound, Detail: "no such docs asset: " + name})
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}
