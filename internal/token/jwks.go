package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

const (
	// maxJWKSBytes bounds the size of a JWKS response body.
	maxJWKSBytes = 1 << 20

	// DefaultJWKSRefetch is the minimum interval between two refetches
	// caused by an unknown kid or a failed fetch.
	DefaultJWKSRefetch = time.Second

	// minMaxAge and maxMaxAge bound a JWKS response's Cache-Control
	// max-age when it sets the routine refresh interval.
	minMaxAge = time.Minute
	maxMaxAge = 24 * time.Hour

	// failedRefreshRetry is how soon a failed routine refresh is retried.
	failedRefreshRetry = 10 * time.Second
)

// jwksSource serves the keys of one JWKS URL. Fetching, parsing and key
// lookup are keyfunc/jwkset's; this type adds what they lack: the first
// fetch happens on first use (never at construction), the routine refresh
// follows Cache-Control max-age, an unknown kid refetches at once (rate
// limited, without queueing requests), and an outage is told apart from a
// bad token.
type jwksSource struct {
	url     string
	client  *http.Client
	fixed   time.Duration // routine refresh interval; 0 follows max-age
	limiter *rate.Limiter // refetches on unknown kid or after a failure
	now     func() time.Time
	ctx     context.Context // ends the routine refresh

	sem     chan struct{} // serializes fetches; waiting honors the caller's ctx
	cur     atomic.Pointer[jwksState]
	started sync.Once
}

// jwksState is the outcome of the last fetch attempt.
type jwksState struct {
	kf     keyfunc.Keyfunc // nil until a fetch succeeded
	maxAge time.Duration   // the last good response's max-age, 0 if none
	err    error           // the last attempt's error; nil after a success
	gen    uint64          // counts attempts, so waiters see a new one
}

func newJWKSSource(ctx context.Context, url string, client *http.Client, fixed, refetch time.Duration, now func() time.Time) *jwksSource {
	client, limiter := fetchDefaults(client, refetch)
	s := &jwksSource{
		url:     url,
		client:  client,
		fixed:   fixed,
		limiter: limiter,
		now:     now,
		ctx:     ctx,
		sem:     make(chan struct{}, 1),
	}
	s.cur.Store(&jwksState{})
	return s
}

// fetchDefaults returns the HTTP client (default: 5s timeout) and the
// refetch rate limiter (default: one a second) of a fetcher.
func fetchDefaults(client *http.Client, refetch time.Duration) (*http.Client, *rate.Limiter) {
	if client == nil {
		client = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if refetch <= 0 {
		refetch = DefaultJWKSRefetch
	}
	return client, rate.NewLimiter(rate.Every(refetch), 1)
}

// keys returns the keys that may verify a token with the given alg and
// kid: the key under kid, or every key when kid is empty. An unknown kid
// triggers a refetch when the rate limit allows. The error wraps
// ErrKeyUnavailable when the set could not be fetched.
func (s *jwksSource) keys(ctx context.Context, alg, kid string) ([]crypto.PublicKey, error) {
	st := s.cur.Load()
	if st.kf == nil || (kid != "" && !st.has(ctx, kid)) {
		// The first fetch, and one in progress, are joined; any other
		// waits for the rate limit.
		switch {
		case s.limiter.AllowN(s.now(), 1) || st.gen == 0:
			st = s.fetch(ctx, st.gen)
		case len(s.sem) > 0:
			st = s.wait(ctx)
		}
	}
	if st.kf == nil {
		return nil, s.unavailable(st.err)
	}
	out, err := st.lookup(ctx, alg, kid)
	if len(out) == 0 && err == nil && st.err != nil {
		return nil, s.unavailable(st.err) // the refetch that could have found it failed
	}
	return out, err
}

func (s *jwksSource) unavailable(err error) error {
	if err == nil {
		err = errors.New("jwks not fetched yet")
	}
	return fmt.Errorf("%w: %w: %w", ErrInvalid, ErrKeyUnavailable, err)
}

// has reports whether the set holds a key under kid.
func (st *jwksState) has(ctx context.Context, kid string) bool {
	_, err := st.kf.Storage().KeyRead(ctx, kid)
	return err == nil
}

// lookup asks keyfunc for the key (it checks the JWK's alg parameter
// against the token's) and keeps only keys whose type fits alg.
func (st *jwksState) lookup(ctx context.Context, alg, kid string) ([]crypto.PublicKey, error) {
	a := algorithms[alg]
	var cands []any
	if kid != "" {
		tok := &jwt.Token{Header: map[string]any{"alg": alg, "kid": kid}}
		k, err := st.kf.KeyfuncCtx(ctx)(tok)
		switch {
		case errors.Is(err, jwkset.ErrKeyNotFound):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("%w: key %q is not for algorithm %s", ErrInvalid, kid, alg)
		}
		cands = []any{k}
	} else {
		set, err := st.kf.VerificationKeySet(ctx)
		if err != nil {
			return nil, nil
		}
		for _, k := range set.Keys {
			cands = append(cands, k)
		}
	}
	var out []crypto.PublicKey
	for _, c := range cands {
		if k, err := checkPublicKey(c); err == nil && a.accepts(k) {
			out = append(out, k)
		}
	}
	if kid != "" && len(out) == 0 {
		return nil, fmt.Errorf("%w: key %q is not for algorithm %s", ErrInvalid, kid, alg)
	}
	return out, nil
}

// wait waits for the fetch in progress and returns the newest state. A
// joining caller must not fetch itself: the state it saw may already be
// that fetch's result.
func (s *jwksSource) wait(ctx context.Context) *jwksState {
	select {
	case s.sem <- struct{}{}:
		<-s.sem
	case <-ctx.Done():
	}
	return s.cur.Load()
}

// fetch fetches the set unless another caller finished an attempt after
// the one seen as gen, and returns the newest state. A canceled caller
// gets the current state and records nothing.
func (s *jwksSource) fetch(ctx context.Context, gen uint64) *jwksState {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return s.cur.Load()
	}
	defer func() { <-s.sem }()
	if st := s.cur.Load(); st.gen != gen {
		return st
	}
	kf, maxAge, err := s.load(ctx)
	if err != nil && ctx.Err() != nil {
		return s.cur.Load()
	}
	old := s.cur.Load()
	st := &jwksState{kf: kf, maxAge: maxAge, gen: old.gen + 1}
	if err != nil {
		st.kf, st.maxAge, st.err = old.kf, old.maxAge, err // keep the old keys
	}
	s.cur.Store(st)
	if kf != nil {
		s.started.Do(func() { go s.refreshLoop() })
	}
	return st
}

// load fetches and parses the set with jwkset, then drops keys that are not
// for signatures.
func (s *jwksSource) load(ctx context.Context) (keyfunc.Keyfunc, time.Duration, error) {
	rec := &responseRecorder{base: s.client.Transport}
	client := *s.client
	client.Transport = rec
	timeout := s.client.Timeout
	if timeout <= 0 {
		timeout = DefaultJWKSTimeout
	}
	store, err := jwkset.NewStorageFromHTTP(s.url, jwkset.HTTPClientStorageOptions{
		Client:      &client,
		Ctx:         ctx,
		HTTPTimeout: timeout,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("fetching jwks: %w", err)
	}
	all, err := store.KeyReadAll(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("reading jwks: %w", err)
	}
	n := 0
	for _, k := range all {
		if !forSignatures(k.Marshal()) {
			store.KeyDelete(ctx, k.Marshal().KID)
			continue
		}
		n++
	}
	if n == 0 {
		return nil, 0, errors.New("jwks has no usable signing keys")
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: s.ctx, Storage: store})
	if err != nil {
		return nil, 0, err
	}
	return kf, rec.maxAge, nil
}

func forSignatures(m jwkset.JWKMarshal) bool {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return false
	}
	if len(m.KEYOPS) == 0 {
		return true
	}
	for _, op := range m.KEYOPS {
		if op == jwkset.KeyOpsVerify {
			return true
		}
	}
	return false
}

// refreshLoop refreshes the set until the source's context ends, every
// jwks_refresh, else every max-age within [1m, 24h], else every
// DefaultJWKSRefresh; sooner after a failure. It uses real timers: it only
// decides when to fetch, never whether a token is valid.
func (s *jwksSource) refreshLoop() {
	for {
		t := time.NewTimer(s.interval())
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.fetch(s.ctx, s.cur.Load().gen)
	}
}

func (s *jwksSource) interval() time.Duration {
	st := s.cur.Load()
	switch {
	case st.err != nil:
		return min(failedRefreshRetry, s.routine(st))
	default:
		return s.routine(st)
	}
}

func (s *jwksSource) routine(st *jwksState) time.Duration {
	switch {
	case s.fixed > 0:
		return s.fixed
	case st.maxAge > 0:
		return min(max(st.maxAge, minMaxAge), maxMaxAge)
	}
	return DefaultJWKSRefresh
}

// responseRecorder bounds the response body and notes Cache-Control
// max-age of a JWKS response.
type responseRecorder struct {
	base   http.RoundTripper
	maxAge time.Duration
}

func (r *responseRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := r.base
	if base == nil {
		base = http.DefaultTransport
	}
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.maxAge = maxAge(resp.Header.Get("Cache-Control"))
	resp.Body = limitedBody{io.LimitReader(resp.Body, maxJWKSBytes), resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// maxAge returns the max-age directive of a Cache-Control value, or 0.
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(val, `"`))
		if err != nil || n < 0 {
			return 0
		}
		return time.Duration(min(n, int(maxMaxAge.Seconds()))) * time.Second
	}
	return 0
}

// kids lists the key ids of the current set, for a debug log.
func (s *jwksSource) kids() string {
	st := s.cur.Load()
	if st.kf == nil {
		return ""
	}
	all, err := st.kf.Storage().KeyReadAll(context.Background())
	if err != nil {
		return ""
	}
	ids := make([]string, 0, len(all))
	for _, k := range all {
		ids = append(ids, k.Marshal().KID)
	}
	return strings.Join(ids, " ")
}
