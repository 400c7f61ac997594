package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

const secret = "0123456789abcdef0123456789abcdef"

// t0 is the injected clock's start for in-process gateways.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const site = `{SITE} {
	session_guard {
		jwt {
			alg HS256
			secret ` + secret + `
			issuer https://idp.example
			audience app
		}
	}
	reverse_proxy {UPSTREAM}
}`

// redisGlobals renders the session_guard global options for a Redis
// store on addrs, with extra lines inside the store block.
func redisGlobals(addrs []string, extra ...string) string {
	var b strings.Builder
	b.WriteString("session_guard {\n\t\tstore redis {\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "\t\t\taddress %s\n", a)
	}
	for _, e := range extra {
		fmt.Fprintf(&b, "\t\t\t%s\n", e)
	}
	b.WriteString("\t\t}\n\t}")
	return b.String()
}

// mint returns a token of session sid in account acct, issued at now.
func mint(t testing.TB, now time.Time, sid, acct string, extra map[string]any) string {
	t.Helper()
	c := devtoken.Claims{Session: sid, User: "alice", Account: acct, Role: "member", Now: now, TTL: 48 * time.Hour,
		Extra: map[string]any{"iss": "https://idp.example", "aud": "app"}}
	for k, v := range extra {
		c.Extra[k] = v
	}
	tok, err := devtoken.Mint([]byte(secret), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantCode(t testing.TB, r *gatewaytest.Response, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("status %d, want %d; headers %v; body %s", r.StatusCode, code, r.Header, r.Body)
	}
}

func wantError(t testing.TB, r *gatewaytest.Response, code int, errCode string) {
	t.Helper()
	wantCode(t, r, code)
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil || body["error"] != errCode {
		t.Fatalf("body %s, want error %q", r.Body, errCode)
	}
}

// tally counts the outcomes of requests sent under load.
type tally struct {
	mu       sync.Mutex
	byStatus map[int]int
	// bad503 counts 503s without Retry-After; transport counts transport
	// errors (connection reset, timeout).
	bad503, transport int
	errs              []string
	total             atomic.Int64
}

func newTally() *tally { return &tally{byStatus: map[int]int{}} }

func (ta *tally) add(resp *http.Response, err error) {
	ta.total.Add(1)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if err != nil {
		ta.transport++
		if len(ta.errs) < 5 {
			ta.errs = append(ta.errs, err.Error())
		}
		return
	}
	ta.byStatus[resp.StatusCode]++
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		ta.bad503++
	}
}

func (ta *tally) count(status int) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.byStatus[status]
}

func (ta *tally) String() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return fmt.Sprintf("total %d, by status %v, 503 without Retry-After %d, transport errors %d %q",
		ta.total.Load(), ta.byStatus, ta.bad503, ta.transport, ta.errs)
}

// load sends GET url with each token in turn from workers goroutines
// until stop is closed, recording every outcome in ta. It returns once
// every worker has finished.
func load(ctx context.Context, client *http.Client, url string, tokens []string, workers int, ta *tally) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					if err == nil {
						resp.Body.Close()
					}
					return
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				ta.add(resp, err)
				time.Sleep(2 * time.Millisecond)
			}
		}(w)
	}
	return func() { cancel(); wg.Wait() }
}

// waitUntil polls cond every 20ms until it holds, failing after timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
