// Package testhook lets sessionguard's own tests steer the running
// gateway's clock. It is internal: nothing outside this module can set it,
// and in production it stays nil.
package testhook

import (
	"sync/atomic"
	"time"
)

var now atomic.Pointer[func() time.Time]

// SetNow makes gateways provisioned from now on take time from fn; nil
// restores the real clock.
func SetNow(fn func() time.Time) {
	if fn == nil {
		now.Store(nil)
		return
	}
	now.Store(&fn)
}

// Now returns the injected clock, or nil when none is set.
func Now() func() time.Time {
	if p := now.Load(); p != nil {
		return *p
	}
	return nil
}

// Clock is a settable clock for tests, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock {
	c := new(Clock)
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
