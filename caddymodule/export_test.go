package caddymodule

import (
	dto "github.com/prometheus/client_model/go"
)

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
