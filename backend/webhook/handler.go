package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
//	GET    /webhooks/{id}/deliveries → the endpoint's dead letters, newest first
//	POST   /webhooks/{id}/deliveries/{delivery}/redeliver → 202, scheduled again
//
// The two deliveries routes need d; with a nil d they are not served.
func NewHandler(reg *Registry, d *Deliverer, resp Responder) http.Handler {
	h := &handler{reg: reg, d: d, resp: resp}
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
		if d != nil {
			mux.HandleFunc("GET "+p+"/webhooks/{id}/deliveries", h.deadLetters)
			mux.HandleFunc("POST "+p+"/webhooks/{id}/deliveries/{delivery}/redeliver", h.redeliver)
			h.notAllowed(mux, p+"/webhooks/{id}/deliveries", "GET")
			h.notAllowed(mux, p+"/webhooks/{id}/deliveries/{delivery}/redeliver", "POST")
		}
	}
	return mux
}

// Routes lists the patterns NewHandler serves with d, for servers that
// mount the handler route by route.
func Routes(withDeliverer bool) []string {
	var out []string
	for _, p := range []string{"", "/api/v1"} {
		out = append(out, "POST "+p+"/webhooks/register", "GET "+p+"/webhooks", "GET "+p+"/webhooks/stats", "DELETE "+p+"/webhooks/{id}")
		if withDeliverer {
			out = append(out, "GET "+p+"/webhooks/{id}/deliveries", "POST "+p+"/webhooks/{id}/deliveries/{delivery}/redeliver")
		}
	}
	return out
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
	d    *Deliverer
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
		h.storeFailed(w, r, err)
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
	eps, err := h.reg.List(r.Context())
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	h.resp.Data(w, r, http.StatusOK, map[string]any{"webhooks": eps})
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	st, err := h.reg.Stats(r.Context())
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	h.resp.Data(w, r, http.StatusOK, st)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.reg.Delete(r.Context(), id); err != nil {
		h.notFoundOr(w, r, err)
		return
	}
	h.resp.Data(w, r, http.StatusOK, map[string]any{"id": id, "deleted": true})
}

// Dead-letter listing bounds.
const (
	defaultDeadLetterPage = 100
	maxDeadLetterPage     = 1000
)

func (h *handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.reg.Get(r.Context(), id); err != nil {
		h.notFoundOr(w, r, err)
		return
	}
	ServeDeadLetters(w, r, h.d, h.resp, id)
}

func (h *handler) redeliver(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.reg.Get(r.Context(), id); err != nil {
		h.notFoundOr(w, r, err)
		return
	}
	ServeRedeliver(w, r, h.d, h.resp, id, r.PathValue("delivery"))
}

// ServeDeadLetters answers with owner's dead letters, newest first:
// {"deliveries": [...]}, at most the "limit" query parameter (1..1000,
// default 100). The caller has checked that owner (an endpoint or a job)
// exists and may be shown.
func ServeDeadLetters(w http.ResponseWriter, r *http.Request, d *Deliverer, resp Responder, owner string) {
	limit := defaultDeadLetterPage
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLetterPage {
			resp.Problem(w, r, http.StatusBadRequest, "Invalid limit", fmt.Sprintf("limit must be an integer in 1..%d", maxDeadLetterPage))
			return
		}
		limit = n
	}
	ds, err := d.DeadLetters(r.Context(), owner, limit)
	if err != nil {
		storeFailed(w, r, d, resp, err)
		return
	}
	resp.Data(w, r, http.StatusOK, map[string]any{"deliveries": ds})
}

// ServeRedeliver schedules owner's dead letter id again and answers 202
// with it; 404 if owner has no such dead letter, 503 if the queue is full.
func ServeRedeliver(w http.ResponseWriter, r *http.Request, d *Deliverer, resp Responder, owner, id string) {
	del, err := d.Redeliver(r.Context(), owner, id)
	switch {
	case err == nil:
		resp.Data(w, r, http.StatusAccepted, del)
	case errors.Is(err, ErrDeliveryNotFound):
		resp.Problem(w, r, http.StatusNotFound, "Delivery not found", fmt.Sprintf("no failed delivery %q for %q", id, owner))
	case errors.Is(err, ErrQueueFull):
		w.Header().Set("Retry-After", "5")
		resp.Problem(w, r, http.StatusServiceUnavailable, "Delivery queue full", "the delivery queue is full; retry later")
	default:
		storeFailed(w, r, d, resp, err)
	}
}

// notFoundOr answers 404 for ErrNotFound, else a store failure.
func (h *handler) notFoundOr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		h.resp.Problem(w, r, http.StatusNotFound, "Webhook not found", fmt.Sprintf("no webhook %q", r.PathValue("id")))
		return
	}
	h.storeFailed(w, r, err)
}

// storeFailed answers 500 without the store's error, which can name
// internal addresses.
func (h *handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	storeFailed(w, r, h.d, h.resp, err)
}

func storeFailed(w http.ResponseWriter, r *http.Request, d *Deliverer, resp Responder, err error) {
	if d != nil {
		d.opts.Logger.ErrorContext(r.Context(), "webhook store failure", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	resp.Problem(w, r, http.StatusInternalServerError, "Webhook store error", "the webhook store failed; the server log has the details")
}
