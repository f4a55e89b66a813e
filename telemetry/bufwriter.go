package telemetry

import (
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log lines into few write system calls, made off the
// callers' path: Write only appends to a buffer under a mutex; a flusher
// goroutine swaps in an empty buffer and writes the full one out when it
// passes size, and at least every interval. A proxy logging one line per
// request would otherwise spend a syscall per line — and with a plain
// buffered writer, every request that finds the buffer full waits for the
// write behind the lock, and every other request behind it.
//
// Memory is bounded: when the writer falls behind (a stalled stderr pipe)
// and 4×size bytes are waiting besides the batch being written, Write
// blocks until the flusher catches up — log lines are delayed, never
// dropped. Close flushes what is left. Safe
// for concurrent use.
type BufferedWriter struct {
	w        io.Writer
	size     int
	interval time.Duration

	mu      sync.Mutex
	room    sync.Cond // signalled when a flush empties the buffer
	cur     []byte    // lines waiting, appended under mu
	spare   []byte    // the buffer being written, or an empty one
	closed  bool
	writeMu sync.Mutex // one flush at a time, so lines keep their order

	wake chan struct{} // cur passed size
	stop chan struct{}
	done chan struct{}
}

// NewBufferedWriter buffers up to size bytes for w and flushes every
// interval (lines are at most that late).
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{
		w: w, size: size, interval: interval,
		cur: make([]byte, 0, size), spare: make([]byte, 0, size),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	b.room.L = &b.mu
	go b.flushEvery(interval)
	return b
}

// Write buffers p (one log record). It does not wait for the write to w,
// unless 4×size bytes are already waiting for it.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.cur) >= 4*b.size && !b.closed {
		b.room.Wait()
	}
	b.cur = append(b.cur, p...)
	full, closed := len(b.cur) >= b.size, b.closed
	b.mu.Unlock()
	switch {
	case closed && full:
		// No flusher any more: write through.
		return len(p), b.Flush()
	case full:
		select {
		case b.wake <- struct{}{}:
		default: // a flush is already due
		}
	}
	return len(p), nil
}

// Flush writes out what is buffered, on the caller's goroutine.
func (b *BufferedWriter) Flush() error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.mu.Lock()
	out := b.cur
	b.cur = b.spare[:0]
	b.room.Broadcast()
	b.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = b.w.Write(out)
	}
	b.mu.Lock()
	if cap(out) <= 4*b.size { // a buffer grown by a huge line is not kept
		b.spare = out[:0]
	} else {
		b.spare = make([]byte, 0, b.size)
	}
	b.mu.Unlock()
	return err
}

// Close stops the flusher and flushes; further writes are written through
// when they fill the buffer, so call it last.
func (b *BufferedWriter) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
		<-b.done
		b.mu.Lock()
		b.closed = true
		b.room.Broadcast()
		b.mu.Unlock()
	}
	return b.Flush()
}

func (b *BufferedWriter) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.wake:
		}
		_ = b.Flush()
	}
}
