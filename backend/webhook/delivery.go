package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors of the delivery queue.
var (
	// ErrQueueFull: the store holds QueueSize pending deliveries; new ones
	// are refused, logged and counted as dropped.
	ErrQueueFull = errors.New("webhook: delivery queue full")
	// ErrClosed: the deliverer was closed.
	ErrClosed = errors.New("webhook: deliverer closed")
	// ErrDeliveryNotFound: no dead letter with that id for that owner.
	ErrDeliveryNotFound = errors.New("webhook: delivery not found")
	// ErrLeaseLost: a claimed delivery was claimed again by another
	// process after its lease ran out; the late outcome is not recorded.
	ErrLeaseLost = errors.New("webhook: delivery lease lost")
)

// DeliveryStatus is where a delivery stands. Delivered ones are removed.
type DeliveryStatus string

const (
	// StatusPending: waiting for its next attempt, or being attempted.
	StatusPending DeliveryStatus = "pending"
	// StatusFailed: failed for good, a dead letter until redelivered or
	// expired.
	StatusFailed DeliveryStatus = "failed"
)

// Drop reasons, the label of the dropped counter.
const (
	DropQueueFull       = "queue_full"       // the store held QueueSize pending deliveries
	DropEndpointDeleted = "endpoint_deleted" // its endpoint was deleted before it was sent
	DropShutdown        = "shutdown"         // pending in a MemoryStore when its process stopped
)

// Delivery is one event on its way to one target: a record in the Store
// with its attempts and the time of the next one. Its ID is derived from
// the event's ID and the target, so it is the same on every retry, after a
// redelivery, and if the event is ever recorded twice; receivers
// deduplicate on it (X-Webhook-Id).
type Delivery struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	Event   string `json:"event"`
	// EndpointID is the registered endpoint this goes to; its URL and
	// secret are read when the delivery is claimed, so a deleted endpoint
	// gets nothing more. Empty for a job's own webhook URL.
	EndpointID string `json:"endpoint_id,omitempty"`
	// JobID is set for a job's own webhook URL: its dead letters are
	// listed under the job.
	JobID string `json:"job_id,omitempty"`
	URL   string `json:"url"`
	// Secret signs the delivery (for an endpoint, filled in by Claim).
	Secret string `json:"-"`
	// Body is the exact JSON sent on every attempt.
	Body          json.RawMessage `json:"payload"`
	Status        DeliveryStatus  `json:"status"`
	Attempts      int             `json:"attempts"`
	CreatedAt     time.Time       `json:"created_at"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	LastAttemptAt *time.Time      `json:"last_attempt_at"`
	LastStatus    int             `json:"last_status"` // HTTP status of the last attempt; 0 if none or no answer
	// LastError says why the last attempt failed, without addresses.
	LastError string `json:"last_error,omitempty"`

	// Lease identifies the claim that holds the delivery: Settle applies
	// only while it still does. Stores set it; callers pass it back.
	Lease string `json:"-"`
}

// Owner is the key dead letters are listed under: the endpoint ID, else
// the job ID, else "".
func (d Delivery) Owner() string {
	if d.EndpointID != "" {
		return d.EndpointID
	}
	return d.JobID
}

// Outcome is the result of one attempt, recorded by Store.Settle.
type Outcome struct {
	At        time.Time
	Status    int    // HTTP status, 0 if no answer
	Error     string // why it failed, without addresses; "" on success
	Delivered bool
	// RetryAt schedules the next attempt of an undelivered delivery; zero
	// makes it a dead letter.
	RetryAt time.Time
}

// EnqueueResult counts what Enqueue did with each delivery.
type EnqueueResult struct {
	Added    int // recorded, pending
	Existing int // a delivery with the same ID is already recorded
	Dropped  int // refused: the queue was full
}

// QueueStats describe the store's delivery queue.
type QueueStats struct {
	Pending     int // deliveries waiting or in flight
	DeadLetters int // deliveries failed for good and kept
	// OldestDue is the next-attempt time of the most overdue pending
	// delivery; zero when none is pending.
	OldestDue time.Time
}

// EndpointRecord is a registered endpoint with its secret, as stored.
type EndpointRecord struct {
	Endpoint
	Secret string
}

// Store keeps webhook endpoints, their delivery statistics and the
// delivery queue. MemoryStore keeps them in the process; the redisstore
// package keeps them in Redis, shared by every replica and worker and
// surviving restarts. Times are passed in, never read from a clock, so a
// test can drive scheduling with a fake one. Implementations are safe for
// concurrent use.
type Store interface {
	// AddEndpoint records e unless max endpoints exist (ErrRegistryFull).
	AddEndpoint(ctx context.Context, e EndpointRecord, max int) error
	// Endpoints lists the endpoints, oldest first.
	Endpoints(ctx context.Context) ([]EndpointRecord, error)
	// DeleteEndpoint removes an endpoint, its statistics and its dead
	// letters (ErrNotFound if unknown). Its pending deliveries are dropped
	// when claimed.
	DeleteEndpoint(ctx context.Context, id string) error

	// Enqueue records deliveries as pending, due at their NextAttemptAt,
	// unless limit are pending already (those are dropped and counted).
	// A delivery whose ID is recorded already is left alone. An endpoint's
	// delivery is stored without a secret: Claim reads the endpoint's.
	Enqueue(ctx context.Context, ds []Delivery, limit int) (EnqueueResult, error)
	// Claim takes up to max deliveries due at now, most overdue first,
	// counts an attempt for each and hides them from other claims until
	// now+lease (when a claimer that died has let them go). Deliveries of
	// deleted endpoints are dropped instead (counted, and returned in
	// dropped for the caller to report).
	Claim(ctx context.Context, now time.Time, max int, lease time.Duration) (claimed []Delivery, dropped int, err error)
	// Settle records the outcome of a claimed delivery's attempt and the
	// statistics of its endpoint: delivered ones are removed, others are
	// rescheduled or become dead letters. ErrLeaseLost if d's claim no
	// longer holds it.
	Settle(ctx context.Context, d Delivery, o Outcome) error
	// DeadLetters lists owner's dead letters, newest first, at most limit.
	DeadLetters(ctx context.Context, owner string, limit int) ([]Delivery, error)
	// Redeliver makes owner's dead letter id pending again, due at now,
	// with its attempts reset (ErrDeliveryNotFound, ErrQueueFull).
	Redeliver(ctx context.Context, owner, id string, now time.Time, limit int) (Delivery, error)
	// QueueStats reports the queue's size.
	QueueStats(ctx context.Context) (QueueStats, error)
	// Stats returns the delivery statistics, per endpoint and in total,
	// over every process sharing the store.
	Stats(ctx context.Context) (Stats, error)
}

// Event is one occurrence to announce. Its ID makes the deliveries' IDs:
// announcing the same event twice records each delivery once.
type Event struct {
	ID   string
	Name string
	At   time.Time
	Data any
}

// NewEventID returns a fresh random event ID, for events that have no
// natural identity (a synchronous analysis).
func NewEventID() string { return "evt_" + randomHex(12) }

// deliveryID derives a delivery's ID from its event and target.
func deliveryID(eventID string, t Target) string {
	key := "url\x00" + t.URL
	if t.EndpointID != "" {
		key = "endpoint\x00" + t.EndpointID
	}
	sum := sha256.Sum256([]byte(eventID + "\x00" + key))
	return "dlv_" + hex.EncodeToString(sum[:12])
}

// envelope is the JSON body of a delivery.
type envelope struct {
	ID        string          `json:"id"`
	Event     string          `json:"event"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// newDeliveries builds one pending delivery of ev per target, due at ev.At.
// The body {"id","event","created_at","data"} carries the delivery's own
// ID and is fixed here: every attempt sends (and signs) the same bytes.
func newDeliveries(ev Event, targets []Target) ([]Delivery, error) {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return nil, fmt.Errorf("webhook: encoding %s event: %w", ev.Name, err)
	}
	at := ev.At.UTC()
	out := make([]Delivery, 0, len(targets))
	for _, t := range targets {
		if _, err := parseWebhookURL(t.URL); err != nil {
			return nil, err
		}
		id := deliveryID(ev.ID, t)
		body, err := json.Marshal(envelope{ID: id, Event: ev.Name, CreatedAt: at, Data: data})
		if err != nil {
			return nil, fmt.Errorf("webhook: encoding %s event: %w", ev.Name, err)
		}
		next := at
		d := Delivery{
			ID: id, EventID: ev.ID, Event: ev.Name, EndpointID: t.EndpointID, JobID: t.JobID,
			URL: t.URL, Body: body, Status: StatusPending, CreatedAt: at, NextAttemptAt: &next,
		}
		if t.EndpointID == "" {
			d.Secret = t.Secret
		}
		out = append(out, d)
	}
	return out, nil
}
