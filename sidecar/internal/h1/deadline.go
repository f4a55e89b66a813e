package h1

import "time"

// Deadline is one direction of a connection's deadline, re-armed only when
// it would move by more than 1/64 of its timeout. Setting a deadline updates
// a runtime timer; a keep-alive connection carrying thousands of requests a
// second would otherwise pay for that several times a request. So a timeout
// may fire up to 1/64 early (under 2 s of a 2-minute idle timeout), never
// late.
type Deadline struct {
	at time.Time
	// Set sets the connection's deadline (net.Conn.SetReadDeadline or
	// SetWriteDeadline).
	Set func(time.Time) error
}

// Arm makes the deadline from + timeout (no deadline for timeout <= 0).
func (d *Deadline) Arm(from time.Time, timeout time.Duration) {
	if timeout <= 0 {
		d.Clear()
		return
	}
	want := from.Add(timeout)
	if !d.at.IsZero() && !d.at.After(want) && want.Sub(d.at) <= timeout>>6 {
		return
	}
	d.at = want
	_ = d.Set(want)
}

// Clear removes the deadline.
func (d *Deadline) Clear() {
	if !d.at.IsZero() {
		d.at = time.Time{}
		_ = d.Set(time.Time{})
	}
}

// Restore sets the connection's deadline again to the one armed last, after
// something set it directly (a read that must return at once).
func (d *Deadline) Restore() { _ = d.Set(d.at) }
