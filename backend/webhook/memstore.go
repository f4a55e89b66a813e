package webhook

import (
	"container/heap"
	"container/list"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryStoreOptions configure NewMemoryStore. Zero values take the
// defaults in brackets.
type MemoryStoreOptions struct {
	// MaxDeadLetters bounds the dead letters kept per owner; the oldest
	// go first [1000].
	MaxDeadLetters int
	// MaxDeadLettersTotal bounds the dead letters kept over all owners
	// (every job with a webhook is an owner); the oldest go first
	// [100000].
	MaxDeadLettersTotal int
}

// MemoryStore is the Store of a single process: endpoints, statistics and
// deliveries live in its memory and die with it. Pending deliveries are
// ordered by due time in a heap.
type MemoryStore struct {
	opts MemoryStoreOptions

	mu        sync.Mutex
	endpoints map[string]*memEndpoint
	totals    Totals
	records   map[string]*memDelivery // pending and dead, by delivery ID
	due       dueHeap                 // pending records by due time; stale entries skipped
	pending   int
	dead      map[string][]string // owner → dead letter IDs, oldest first
	deadOrder *list.List          // every dead letter ID, oldest first
	leaseSeq  uint64
}

type memEndpoint struct {
	rec   EndpointRecord
	stats EndpointStats
}

type memDelivery struct {
	d    Delivery
	due  time.Time     // when pending: its place in the heap
	seq  uint64        // the heap entry that is current
	dead *list.Element // when a dead letter: its place in deadOrder
}

// NewMemoryStore returns an empty store.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	if opts.MaxDeadLetters <= 0 {
		opts.MaxDeadLetters = 1000
	}
	if opts.MaxDeadLettersTotal <= 0 {
		opts.MaxDeadLettersTotal = 100000
	}
	return &MemoryStore{
		opts:      opts,
		endpoints: map[string]*memEndpoint{},
		records:   map[string]*memDelivery{},
		dead:      map[string][]string{},
		deadOrder: list.New(),
	}
}

var _ Store = (*MemoryStore)(nil)

// AddEndpoint implements Store.
func (s *MemoryStore) AddEndpoint(_ context.Context, e EndpointRecord, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.endpoints) >= max {
		return fmt.Errorf("%w: %d endpoints", ErrRegistryFull, max)
	}
	e.Events = append([]string(nil), e.Events...)
	s.endpoints[e.ID] = &memEndpoint{rec: e, stats: EndpointStats{ID: e.ID, URL: e.URL}}
	return nil
}

// Endpoints implements Store.
func (s *MemoryStore) Endpoints(context.Context) ([]EndpointRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EndpointRecord, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		r := e.rec
		r.Events = append([]string(nil), r.Events...)
		out = append(out, r)
	}
	sortEndpoints(out)
	return out, nil
}

// sortEndpoints orders by creation, then ID.
func sortEndpoints(es []EndpointRecord) {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].CreatedAt.Equal(es[j].CreatedAt) {
			return es[i].CreatedAt.Before(es[j].CreatedAt)
		}
		return es[i].ID < es[j].ID
	})
}

// DeleteEndpoint implements Store.
func (s *MemoryStore) DeleteEndpoint(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.endpoints[id]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	delete(s.endpoints, id)
	for _, did := range s.dead[id] {
		s.forgetDead(did)
	}
	delete(s.dead, id)
	return nil
}

// Enqueue implements Store.
func (s *MemoryStore) Enqueue(_ context.Context, ds []Delivery, limit int) (EnqueueResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res EnqueueResult
	for _, d := range ds {
		if _, ok := s.records[d.ID]; ok {
			res.Existing++
			continue
		}
		if s.pending >= limit {
			res.Dropped++
			s.totals.Dropped++
			continue
		}
		d.Status, d.Lease = StatusPending, ""
		if d.EndpointID != "" {
			d.Secret = "" // read from the endpoint when claimed
		}
		r := &memDelivery{d: cloneDelivery(d)}
		s.records[d.ID] = r
		s.pending++
		s.schedule(r, *d.NextAttemptAt)
		res.Added++
	}
	return res, nil
}

// schedule (re)places r in the heap at due.
func (s *MemoryStore) schedule(r *memDelivery, due time.Time) {
	s.leaseSeq++
	r.due, r.seq = due, s.leaseSeq
	heap.Push(&s.due, dueEntry{at: due, id: r.d.ID, seq: r.seq})
}

// Claim implements Store.
func (s *MemoryStore) Claim(_ context.Context, now time.Time, max int, lease time.Duration) ([]Delivery, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Delivery
	dropped := 0
	for len(out) < max && s.due.Len() > 0 {
		top := s.due[0]
		r, ok := s.records[top.id]
		if !ok || r.seq != top.seq || r.d.Status != StatusPending {
			heap.Pop(&s.due) // stale
			continue
		}
		if top.at.After(now) {
			break
		}
		heap.Pop(&s.due)
		var ep *memEndpoint
		if r.d.EndpointID != "" {
			if ep, ok = s.endpoints[r.d.EndpointID]; !ok {
				delete(s.records, r.d.ID)
				s.pending--
				s.totals.Dropped++
				dropped++
				continue
			}
		}
		r.d.Attempts++
		s.schedule(r, now.Add(lease))
		r.d.Lease = fmt.Sprint(r.seq)
		c := cloneDelivery(r.d)
		if ep != nil { // the endpoint's current address and secret
			c.URL, c.Secret = ep.rec.URL, ep.rec.Secret
		}
		out = append(out, c)
	}
	return out, dropped, nil
}

// Settle implements Store.
func (s *MemoryStore) Settle(_ context.Context, d Delivery, o Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[d.ID]
	if !ok || r.d.Status != StatusPending || r.d.Lease == "" || r.d.Lease != d.Lease {
		return ErrLeaseLost
	}
	s.count(r.d.EndpointID, o)
	switch {
	case o.Delivered:
		delete(s.records, d.ID)
		s.pending--
	case !o.RetryAt.IsZero():
		r.d.Lease = ""
		r.d.LastStatus, r.d.LastError, r.d.LastAttemptAt = o.Status, o.Error, timePtr(o.At)
		r.d.NextAttemptAt = timePtr(o.RetryAt)
		s.schedule(r, o.RetryAt)
	default:
		r.d.Lease, r.d.Status, r.d.NextAttemptAt = "", StatusFailed, nil
		r.d.LastStatus, r.d.LastError, r.d.LastAttemptAt = o.Status, o.Error, timePtr(o.At)
		r.seq = 0
		s.pending--
		s.bury(r)
	}
	return nil
}

// bury adds a dead letter under its owner, forgetting the owner's oldest
// beyond MaxDeadLetters and the oldest of all beyond MaxDeadLettersTotal.
func (s *MemoryStore) bury(r *memDelivery) {
	owner := r.d.Owner()
	own := append(s.dead[owner], r.d.ID)
	for len(own) > s.opts.MaxDeadLetters {
		s.forgetDead(own[0])
		own = own[1:]
	}
	s.dead[owner] = own
	r.dead = s.deadOrder.PushBack(r.d.ID)
	for s.deadOrder.Len() > s.opts.MaxDeadLettersTotal {
		oldest := s.deadOrder.Front().Value.(string)
		o := s.records[oldest].d.Owner()
		s.dead[o] = slices.DeleteFunc(s.dead[o], func(id string) bool { return id == oldest })
		if len(s.dead[o]) == 0 {
			delete(s.dead, o)
		}
		s.forgetDead(oldest)
	}
}

// forgetDead deletes a dead letter's record and its place in deadOrder
// (not its owner's list: the caller edits that).
func (s *MemoryStore) forgetDead(id string) {
	if r, ok := s.records[id]; ok && r.dead != nil {
		s.deadOrder.Remove(r.dead)
	}
	delete(s.records, id)
}

// count updates the statistics for one attempt's outcome.
func (s *MemoryStore) count(endpointID string, o Outcome) {
	s.totals.Attempts++
	final := o.Delivered || o.RetryAt.IsZero()
	if o.Delivered {
		s.totals.Succeeded++
	} else if final {
		s.totals.Failed++
	}
	e, ok := s.endpoints[endpointID]
	if !ok {
		return
	}
	st := &e.stats
	st.Attempts++
	st.LastStatus, st.LastError, st.LastAttemptAt = o.Status, o.Error, timePtr(o.At)
	if o.Delivered {
		st.Succeeded++
	} else if final {
		st.Failed++
	}
}

// DeadLetters implements Store.
func (s *MemoryStore) DeadLetters(_ context.Context, owner string, limit int) ([]Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	own := s.dead[owner]
	out := make([]Delivery, 0, min(limit, len(own)))
	for i := len(own) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, cloneDelivery(s.records[own[i]].d))
	}
	return out, nil
}

// Redeliver implements Store.
func (s *MemoryStore) Redeliver(_ context.Context, owner, id string, now time.Time, limit int) (Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok || r.d.Status != StatusFailed || r.d.Owner() != owner {
		return Delivery{}, fmt.Errorf("%w: %q", ErrDeliveryNotFound, id)
	}
	if s.pending >= limit {
		return Delivery{}, fmt.Errorf("%w: %d pending", ErrQueueFull, s.pending)
	}
	s.dead[owner] = slices.DeleteFunc(s.dead[owner], func(did string) bool { return did == id })
	s.deadOrder.Remove(r.dead)
	r.dead = nil
	r.d.Status, r.d.Attempts, r.d.NextAttemptAt = StatusPending, 0, timePtr(now)
	s.pending++
	s.schedule(r, now)
	return cloneDelivery(r.d), nil
}

// QueueStats implements Store.
func (s *MemoryStore) QueueStats(context.Context) (QueueStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := QueueStats{Pending: s.pending, DeadLetters: s.deadOrder.Len()}
	for s.due.Len() > 0 {
		top := s.due[0]
		if r, ok := s.records[top.id]; ok && r.seq == top.seq && r.d.Status == StatusPending {
			st.OldestDue = top.at
			break
		}
		heap.Pop(&s.due)
	}
	return st, nil
}

// Stats implements Store.
func (s *MemoryStore) Stats(context.Context) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]EndpointRecord, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		recs = append(recs, e.rec)
	}
	sortEndpoints(recs)
	st := Stats{Endpoints: make([]EndpointStats, 0, len(recs)), Totals: s.totals}
	for _, r := range recs {
		es := s.endpoints[r.ID].stats
		if es.LastAttemptAt != nil {
			es.LastAttemptAt = timePtr(*es.LastAttemptAt)
		}
		st.Endpoints = append(st.Endpoints, es)
	}
	return st, nil
}

func cloneDelivery(d Delivery) Delivery {
	d.Body = append([]byte(nil), d.Body...)
	if d.NextAttemptAt != nil {
		d.NextAttemptAt = timePtr(*d.NextAttemptAt)
	}
	if d.LastAttemptAt != nil {
		d.LastAttemptAt = timePtr(*d.LastAttemptAt)
	}
	return d
}

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// dueHeap orders pending deliveries by due time (then ID, for a stable
// order among equals).
type dueHeap []dueEntry

type dueEntry struct {
	at  time.Time
	id  string
	seq uint64
}

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].id < h[j].id
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
