package caddymodule

import "time"

// SetLiveSweepInterval makes configs started from now on sweep their
// live-session tracker every d, and returns a function that restores the
// default.
func SetLiveSweepInterval(d time.Duration) (restore func()) {
	old := liveSweepEvery.Swap(int64(d))
	return func() { liveSweepEvery.Store(old) }
}
