package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxRegisterBody bounds a registration request body.
const maxRegisterBody = 64 << 10

// registerRequest is the body of POST webhooks/register.
type registerRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// registered is the answer to a registration: the endpoint, plus the secret
// when the server generated it (shown this once, never again).
type registered struct {
	Endpoint
	Secret string `json:"secret,omitempty"`
}

// NewHandler serves the webhook API at the root and under /api/v1:
//
//	POST   /webhooks/register  {"url","events":[...],"secret"} → 201 endpoint
//	GET    /webhooks           → list of endpoints (no secrets)
//	DELETE /webhooks/{id}      → 200 {"id","deleted":true}, 404 if unknown
//	GET    /webhooks/stats     → delivery statistics
//
// d may be nil; it is reserved for operations that need the deliverer.
func NewHandler(reg *Registry, d *Deliverer, resp Responder) http.Handler {
	h := &handler{reg: reg, resp: resp}
	mux := http.NewServeMux()
	for _, p := range []string{"", "/api/v1"} {
		mux.HandleFunc("POST "+p+"/webhooks/register", h.register)
		mux.HandleFunc("GET "+p+"/webhooks", h.list)
		mux.HandleFunc("GET "+p+"/webhooks/stats", h.stats)
		mux.HandleFunc("DELETE "+p+"/webhooks/{id}", h.delete)
		// The other methods get a problem, not ServeMux's text/plain 405.
		// (Method-less patterns would conflict with DELETE /webhooks/{id}.)
		h.notAllowed(mux, p+"/webhooks/register", "POST")
		h.notAllowed(mux, p+"/webhooks", "GET")
		h.notAllowed(mux, p+"/webhooks/stats", "GET")
		h.notAllowed(mux, p+"/webhooks/{id}", "DELETE")
	}
	return mux
}

// notAllowed answers 405 for the usual methods other than allow on path.
func (h *handler) notAllowed(mux *http.ServeMux, path, allow string) {
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		if m == allow {
			continue
		}
		mux.HandleFunc(m+" "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			h.resp.Problem(w, r, http.StatusMethodNotAllowed, "Method not allowed", r.Method+" is not allowed here; use "+allow)
		})
	}
}

type handler struct {
	reg  *Registry
	resp Responder
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegisterBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.resp.Problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large",
				fmt.Sprintf("the body must be at most %d bytes", maxRegisterBody))
			return
		}
		h.resp.Problem(w, r, http.StatusBadRequest, "Unreadable request body", err.Error())
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.resp.Problem(w, r, http.StatusBadRequest, "Malformed JSON", err.Error())
		return
	}
	ep, secret, err := h.reg.Register(r.Context(), req.URL, req.Events, req.Secret)
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalidURL), errors.Is(err, ErrInvalidEvent), errors.Is(err, ErrInvalidSecret):
		h.resp.Problem(w, r, http.StatusUnprocessableEntity, "Invalid webhook registration", err.Error())
		return
	case errors.Is(err, ErrForbiddenAddress):
		h.resp.Problem(w, r, http.StatusUnprocessableEntity, "Webhook URL not allowed", err.Error())
		return
	case errors.Is(err, ErrRegistryFull):
		h.resp.Problem(w, r, http.StatusConflict, "Too many webhooks", err.Error())
		return
	default:
		h.resp.Problem(w, r, http.StatusInternalServerError, "Registration failed", Describe(err))
		return
	}
	out := registered{Endpoint: ep}
	if req.Secret == "" {
		out.Secret = secret
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/register")+"/"+ep.ID)
	h.resp.Data(w, r, http.StatusCreated, out)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	h.resp.Data(w, r, http.StatusOK, map[string]any{"webhooks": h.reg.List()})
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	h.resp.Data(w, r, http.StatusOK, h.reg.Stats())
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.reg.Delete(id); err != nil {
		h.resp.Problem(w, r, http.StatusNotFound, "Webhook not found", err.Error())
		return
	}
	h.resp.Data(w, r, http.StatusOK, map[string]any{"id": id, "deleted": true})
}
