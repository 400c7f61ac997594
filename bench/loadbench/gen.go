package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured run against one target.
type result struct {
	requests int64         // completed requests (any status)
	errors   int64         // non-2xx answers and transport errors
	firstErr string        // the first error, when the generator knows it
	elapsed  time.Duration // measured wall time
	p50, p99 time.Duration
}

// rps returns the throughput of r.
func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// generator drives a URL with conns closed-loop connections for d. Error
// answers are counted in the result, not returned: under overload a
// gateway may rightly answer 503 (its store timed out), and the rate of
// that is a result too.
type generator interface {
	name() string
	run(ctx context.Context, url string, conns int, d time.Duration) (result, error)
}

// goGen is the built-in closed-loop load generator: conns goroutines, each
// with its own keep-alive connection, send one request, wait for the
// answer, and send the next; every latency is recorded and the
// percentiles are read from the sorted samples (exact, not bucketed).
type goGen struct {
	tokens []string
}

func (g *goGen) name() string { return "built-in Go generator" }

func (g *goGen) run(ctx context.Context, url string, conns int, d time.Duration) (result, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		samples = make([]time.Duration, 0, 1<<16)
		errs    atomic.Int64
		firstEr atomic.Value
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			tr := &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 1,
				MaxConnsPerHost:     1,
				DisableCompression:  true,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			local := make([]time.Duration, 0, 4096)
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			for i := c * 7919; ctx.Err() == nil; i++ {
				req.Header.Set("Authorization", "Bearer "+g.tokens[i%len(g.tokens)])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ctx.Err() != nil && time.Since(start) >= d {
					break // cut by the deadline: not a sample
				}
				local = append(local, time.Since(t0))
				if err != nil || resp.StatusCode/100 != 2 {
					if errs.Add(1) == 1 {
						if err == nil {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
						firstEr.Store(err)
					}
				}
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	res := summarize(samples, time.Since(start))
	res.errors = errs.Load()
	if e, ok := firstEr.Load().(error); ok && res.errors > 0 {
		res.firstErr = e.Error()
	}
	return res, nil
}

// summarize sorts samples and fills the counts and percentiles.
func summarize(samples []time.Duration, elapsed time.Duration) result {
	slices.Sort(samples)
	return result{
		requests: int64(len(samples)),
		elapsed:  elapsed,
		p50:      percentile(samples, 50),
		p99:      percentile(samples, 99),
	}
}

// percentile returns the p-th percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}
