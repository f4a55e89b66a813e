package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/problem"
	"github.com/contentguard/contentguard/telemetry"
)

// envelope is the original service's success shape, kept byte-compatible:
// {"success": true, "data": {...}, "error": null, "timestamp": <unix s>}.
type envelope struct {
	Success   bool    `json:"success"`
	Data      any     `json:"data"`
	Error     *string `json:"error"`
	Timestamp float64 `json:"timestamp"`
}

// Problem is an RFC 9457 problem detail, extended with request_id and the
// envelope members success=false and error=<detail> so that clients written
// for the original envelope still see a failure and its message.
type Problem struct {
	Type      string  `json:"type"`
	Title     string  `json:"title"`
	Status    int     `json:"status"`
	Detail    string  `json:"detail"`
	Instance  string  `json:"instance,omitempty"`
	RequestID string  `json:"request_id,omitempty"`
	Field     string  `json:"field,omitempty"`
	Offset    *int64  `json:"offset,omitempty"`
	Line      int     `json:"line,omitempty"`
	Column    int     `json:"column,omitempty"`
	Success   bool    `json:"success"`
	Error     string  `json:"error"`
	Timestamp float64 `json:"timestamp,omitempty"`
}

// problemSlugs names the problem type of each status the backend answers
// with. The URIs are problem.TypeURI's, the one scheme of the edge, the
// backend and the token endpoint (docs/problems.md lists them all).
var problemSlugs = map[int]string{
	http.StatusBadRequest:            "malformed-request",
	http.StatusNotFound:              "not-found",
	http.StatusMethodNotAllowed:      "method-not-allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "body-too-large",
	http.StatusUnsupportedMediaType:  "unsupported-media-type",
	http.StatusUnprocessableEntity:   "validation",
	http.StatusTooManyRequests:       "rate-limited",
	http.StatusInternalServerError:   "internal",
	http.StatusServiceUnavailable:    "unavailable",
}

// ProblemType is the problem type URI of a backend answer with status:
// problem.TypeURI of its slug, or about:blank for a status without one.
func ProblemType(status int) string { return problem.TypeURI(problemSlugs[status]) }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// responder writes envelopes and problems; it implements the Responder
// interface the jobs and webhook handlers take.
type responder struct {
	log *slog.Logger
	now func() time.Time
}

// Data writes a success envelope around data.
func (rs responder) Data(w http.ResponseWriter, r *http.Request, status int, data any) {
	rs.writeJSON(w, r, status, "application/json", envelope{Success: true, Data: data, Timestamp: unixSeconds(rs.now())})
}

// Problem writes an application/problem+json answer.
func (rs responder) Problem(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	rs.writeProblem(w, r, &Problem{Status: status, Title: title, Detail: detail})
}

func (rs responder) writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Type == "" {
		p.Type = ProblemType(p.Status)
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = r.URL.Path
	p.RequestID = telemetry.RequestIDFromContext(r.Context())
	p.Success = false
	p.Error = p.Detail
	p.Timestamp = unixSeconds(rs.now())
	if p.Status >= 500 {
		rs.log.ErrorContext(r.Context(), "request failed", "status", p.Status, "detail", p.Detail)
	}
	rs.writeJSON(w, r, p.Status, "application/problem+json", p)
}

func (rs responder) writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a bug (a NaN score, an unencodable type) gets here.
		rs.log.ErrorContext(r.Context(), "encode response", "err", err)
		status, contentType = http.StatusInternalServerError, "application/problem+json"
		body, _ = json.Marshal(&Problem{Type: ProblemType(500), Title: "Internal Server Error", Status: 500,
			Detail: "the response could not be encoded", Error: "the response could not be encoded",
			Instance: r.URL.Path, RequestID: telemetry.RequestIDFromContext(r.Context()), Timestamp: unixSeconds(rs.now())})
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}

// allowHeader renders the methods of a 405's Allow header.
func allowHeader(methods []string) string { return strings.Join(methods, ", ") }
