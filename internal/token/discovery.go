package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxDiscoveryBytes bounds the size of a discovery document.
const maxDiscoveryBytes = 1 << 20

// discoveryDoc holds the OpenID Provider metadata this package reads.
type discoveryDoc struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
}

// discovery fetches an OpenID Provider's metadata on first use and again,
// rate limited, when a token's alg is not among the allowed ones.
type discovery struct {
	url     string // the metadata URL
	client  *http.Client
	limiter *rate.Limiter
	now     func() time.Time
	build   func(d discoveryDoc, prev *keyState) *keyState

	sem chan struct{}
	cur atomic.Pointer[discoveryState]
}

type discoveryState struct {
	st  *keyState // nil until a fetch succeeded
	err error     // the last attempt's error
	gen uint64
}

func newDiscovery(issuer string, client *http.Client, refetch time.Duration, now func() time.Time, build func(discoveryDoc, *keyState) *keyState) *discovery {
	client, limiter := fetchDefaults(client, refetch)
	d := &discovery{
		url:     strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration",
		client:  client,
		limiter: limiter,
		now:     now,
		build:   build,
		sem:     make(chan struct{}, 1),
	}
	d.cur.Store(&discoveryState{})
	return d
}

// resolve returns the key state, fetching the metadata when none was
// fetched yet (rate limited after a failure). While the provider cannot
// be reached the error wraps ErrKeyUnavailable.
func (d *discovery) resolve(ctx context.Context) (*keyState, error) {
	cur := d.cur.Load()
	if cur.st != nil {
		return cur.st, nil
	}
	switch {
	case d.limiter.AllowN(d.now(), 1) || cur.gen == 0:
		cur = d.fetch(ctx, cur.gen)
	case len(d.sem) > 0: // join the fetch in progress, never start another
		select {
		case d.sem <- struct{}{}:
			<-d.sem
		case <-ctx.Done():
		}
		cur = d.cur.Load()
	}
	if cur.st == nil {
		err := cur.err
		if err == nil {
			err = errors.New("discovery document not fetched yet")
		}
		return nil, fmt.Errorf("%w: %w: %w", ErrInvalid, ErrKeyUnavailable, err)
	}
	return cur.st, nil
}

// refetch fetches the metadata again when the rate limit allows, and
// returns the newest key state.
func (d *discovery) refetch(ctx context.Context, st *keyState) (*keyState, error) {
	cur := d.cur.Load()
	if cur.st == st && d.limiter.AllowN(d.now(), 1) {
		cur = d.fetch(ctx, cur.gen)
	}
	if cur.st == nil {
		return st, nil
	}
	return cur.st, nil
}

// fetch fetches the metadata unless another caller finished an attempt
// after gen; a canceled caller records nothing.
func (d *discovery) fetch(ctx context.Context, gen uint64) *discoveryState {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return d.cur.Load()
	}
	defer func() { <-d.sem }()
	old := d.cur.Load()
	if old.gen != gen {
		return old
	}
	doc, err := d.get(ctx)
	if err != nil && ctx.Err() != nil {
		return old
	}
	next := &discoveryState{st: old.st, err: err, gen: old.gen + 1}
	if err == nil {
		next.st = d.build(doc, old.st)
	}
	d.cur.Store(next)
	return next
}

func (d *discovery) get(ctx context.Context) (discoveryDoc, error) {
	var doc discoveryDoc
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return doc, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return doc, fmt.Errorf("fetching discovery document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return doc, fmt.Errorf("fetching discovery document: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBytes)).Decode(&doc); err != nil {
		return doc, fmt.Errorf("decoding discovery document: %w", err)
	}
	if doc.Issuer == "" {
		return doc, errors.New("discovery document has no issuer")
	}
	if err := checkURL("discovered jwks_uri", doc.JWKSURI); err != nil {
		return doc, err
	}
	return doc, nil
}

// intersect returns the discovered algorithms this package supports,
// never none or HS*, kept to the configured ones when there are any; the
// configured HS* algorithms (with their own secret) stay allowed. An
// empty discovered list means RS256, the OpenID Connect default.
func intersect(configured, discovered []string) []string {
	if len(discovered) == 0 {
		discovered = []string{"RS256"}
	}
	var out []string
	for _, name := range configured {
		if algorithms[name].kind == kindHMAC {
			out = append(out, name)
		}
	}
	for _, name := range discovered {
		a, ok := algorithms[name]
		switch {
		case !ok || a.kind == kindHMAC || slices.Contains(out, name):
		case len(configured) == 0 || slices.Contains(configured, name):
			out = append(out, name)
		}
	}
	return out
}
