package caddymodule

import (
	"time"

	dto "github.com/prometheus/client_model/go"
)

// SetLiveSweepInterval makes configs started from now on sweep their
// live-session tracker every d, and returns a function that restores the
// default.
func SetLiveSweepInterval(d time.Duration) (restore func()) {
	old := liveSweepEvery.Swap(int64(d))
	return func() { liveSweepEvery.Store(old) }
}

// DecisionCount is the decisions counter of endpoint and outcome (0
// before the metrics are registered).
func DecisionCount(endpoint, outcome string) float64 {
	if metrics.decisions == nil {
		return 0
	}
	var m dto.Metric
	if err := metrics.decisions.WithLabelValues(endpoint, outcome).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
