package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/contentguard/contentguard/backend/webhook"
)

// HandlerOptions configure NewHandler. Zero values take the defaults in
// brackets.
type HandlerOptions struct {
	MaxBodyBytes int64         // request body limit [8 MiB + 64 KiB]
	RetryAfter   time.Duration // Retry-After sent with 503 [5s]
	// Logger records store failures answered with 500, whose details are
	// not shown to clients [discarded].
	Logger *slog.Logger
}

// submitRequest is the body of POST /api/v1/jobs.
type submitRequest struct {
	Kind          string          `json:"kind"`
	Input         json.RawMessage `json:"input"`
	WebhookURL    string          `json:"webhook_url"`
	WebhookSecret string          `json:"webhook_secret"`
}

// NewHandler serves the jobs API under /api/v1 and at the root:
//
//	POST   /api/v1/jobs       {"kind","input","webhook_url","webhook_secret"} → 202 + Location + job
//	GET    /api/v1/jobs/{id}  → 200 job, 404
//	DELETE /api/v1/jobs/{id}  → 200 cancelled job, 404, 409 if already finished
//
// and, when q sends webhooks, the dead letters of a job's own webhook:
//
//	GET    /api/v1/jobs/{id}/deliveries                          → 200 {"deliveries": [...]}
//	POST   /api/v1/jobs/{id}/deliveries/{delivery}/redeliver     → 202 delivery
func NewHandler(q Queue, resp Responder, opts HandlerOptions) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8<<20 + 64<<10
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{q: q, resp: resp, opts: opts, hooks: webhooksOf(q)}
	mux := http.NewServeMux()
	for _, p := range []string{"", "/api/v1"} {
		mux.HandleFunc("POST "+p+"/jobs", h.submit)
		mux.HandleFunc("GET "+p+"/jobs/{id}", h.get)
		mux.HandleFunc("DELETE "+p+"/jobs/{id}", h.cancel)
		// Method-less patterns lose to the ones above and catch the other
		// methods, so a wrong method gets a problem, not a text/plain 405.
		mux.HandleFunc(p+"/jobs", h.methodNotAllowed("POST"))
		mux.HandleFunc(p+"/jobs/{id}", h.methodNotAllowed("GET, DELETE"))
		if h.hooks != nil {
			mux.HandleFunc("GET "+p+"/jobs/{id}/deliveries", h.deadLetters)
			mux.HandleFunc("POST "+p+"/jobs/{id}/deliveries/{delivery}/redeliver", h.redeliver)
			mux.HandleFunc(p+"/jobs/{id}/deliveries", h.methodNotAllowed("GET"))
			mux.HandleFunc(p+"/jobs/{id}/deliveries/{delivery}/redeliver", h.methodNotAllowed("POST"))
		}
	}
	return mux
}

// Routes lists the method patterns NewHandler(q, ...) serves, for servers
// that mount it route by route.
func Routes(q Queue) []string {
	var out []string
	for _, p := range []string{"", "/api/v1"} {
		out = append(out, "POST "+p+"/jobs", "GET "+p+"/jobs/{id}", "DELETE "+p+"/jobs/{id}")
		if webhooksOf(q) != nil {
			out = append(out, "GET "+p+"/jobs/{id}/deliveries", "POST "+p+"/jobs/{id}/deliveries/{delivery}/redeliver")
		}
	}
	return out
}

// webhooksOf returns the deliverer of q's job events, if any.
func webhooksOf(q Queue) *webhook.Deliverer {
	if w, ok := q.(interface{ Webhooks() *webhook.Deliverer }); ok {
		return w.Webhooks()
	}
	return nil
}

// deadLetters lists the failed deliveries to the job's own webhook URL.
func (h *handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	if id, ok := h.existing(w, r); ok {
		webhook.ServeDeadLetters(w, r, h.hooks, h.resp, id)
	}
}

// redeliver schedules one of them again.
func (h *handler) redeliver(w http.ResponseWriter, r *http.Request) {
	if id, ok := h.existing(w, r); ok {
		webhook.ServeRedeliver(w, r, h.hooks, h.resp, id, r.PathValue("delivery"))
	}
}

// existing answers 404 unless the path's job exists.
func (h *handler) existing(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !validID(id) {
		h.fail(w, r, fmt.Errorf("%w: %q", ErrNotFound, id))
		return "", false
	}
	if _, err := h.q.Get(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return "", false
	}
	return id, true
}

func (h *handler) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		h.resp.Problem(w, r, http.StatusMethodNotAllowed, "Method not allowed", r.Method+" is not allowed here; use "+allow)
	}
}

type handler struct {
	q     Queue
	resp  Responder
	opts  HandlerOptions
	hooks *webhook.Deliverer // nil: the queue sends no webhooks
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.resp.Problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large",
				fmt.Sprintf("the body must be at most %d bytes", h.opts.MaxBodyBytes))
			return
		}
		h.resp.Problem(w, r, http.StatusBadRequest, "Unreadable request body", err.Error())
		return
	}
	var req submitRequest
	if err := json.Unmarshal(body, &req); err != nil {
		h.resp.Problem(w, r, http.StatusBadRequest, "Malformed JSON", err.Error())
		return
	}
	if req.Kind == "" {
		h.resp.Problem(w, r, http.StatusUnprocessableEntity, "Invalid job", `"kind" is required`)
		return
	}
	job, err := h.q.Submit(r.Context(), Spec{
		Kind: req.Kind, Input: req.Input, WebhookURL: req.WebhookURL, WebhookSecret: req.WebhookSecret,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+job.ID)
	h.resp.Data(w, r, http.StatusAccepted, job)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		h.fail(w, r, fmt.Errorf("%w: %q", ErrNotFound, id))
		return
	}
	job, err := h.q.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.resp.Data(w, r, http.StatusOK, job)
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		h.fail(w, r, fmt.Errorf("%w: %q", ErrNotFound, id))
		return
	}
	job, err := h.q.Cancel(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.resp.Data(w, r, http.StatusOK, job)
}

// fail maps a queue error to a problem answer.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		h.resp.Problem(w, r, http.StatusNotFound, "Job not found", err.Error())
	case errors.Is(err, ErrUnknownKind), errors.Is(err, ErrInvalidSpec), errors.Is(err, ErrWebhooksOff):
		h.resp.Problem(w, r, http.StatusUnprocessableEntity, "Invalid job", err.Error())
	case errors.Is(err, ErrFinished):
		h.resp.Problem(w, r, http.StatusConflict, "Job already finished", err.Error())
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrClosed):
		secs := int((h.opts.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.resp.Problem(w, r, http.StatusServiceUnavailable, "Job queue unavailable", err.Error())
	default:
		h.opts.Logger.ErrorContext(r.Context(), "jobs: store failure", "method", r.Method, "path", r.URL.Path, "err", err)
		h.resp.Problem(w, r, http.StatusInternalServerError, "Job store error", "the job store failed; the server log has the details")
	}
}
