package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/session"
)

// revokeBench measures how long a revocation takes to return when three
// gateways hold the session in their caches: each revocation goes
// through one gateway's admin API after a request on every gateway, and
// the next request on each must be refused. Then one gateway is stopped
// (SIGSTOP), which bounds revocations by its lease.
type revokeBench struct {
	gws    []*revokeGateway
	client *http.Client
}

type revokeGateway struct {
	url, admin string
	proc       *process
}

// startRevokeBench starts three gateways with the session cache on,
// admin API on, their own key prefix.
func startRevokeBench(dir, caddyBin, upstream, redisAddr string) (*revokeBench, []*process, error) {
	free, err := freePorts(6)
	if err != nil {
		return nil, nil, err
	}
	rb := &revokeBench{client: &http.Client{Timeout: 10 * time.Second}}
	var procs []*process
	for i := range 3 {
		port, admin := free[2*i], free[2*i+1]
		cf := fmt.Sprintf("{\n\tadmin %s\n\tauto_https off\n\tpersist_config off\n\thttp_port %d\n\tlog {\n\t\tlevel ERROR\n\t}\n"+
			"\tsession_guard {\n\t\tstore redis {\n\t\t\taddress %s\n\t\t\tkey_prefix sgrevoke\n\t\t}\n\t}\n}\n\nhttp://127.0.0.1:%d {\n%s\treverse_proxy %s\n}\n",
			hostPort(admin), port, redisAddr, port, sgHandler, upstream)
		path := filepath.Join(dir, fmt.Sprintf("revoke%d.Caddyfile", i))
		if err := os.WriteFile(path, []byte(cf), 0o644); err != nil {
			return nil, procs, err
		}
		url := "http://" + hostPort(port) + "/"
		p, err := start(dir, fmt.Sprintf("caddy-revoke%d", i), url, caddyBin, "run", "--config", path, "--adapter", "caddyfile")
		if err != nil {
			return nil, procs, err
		}
		procs = append(procs, p)
		rb.gws = append(rb.gws, &revokeGateway{url: url, admin: "http://" + hostPort(admin), proc: p})
	}
	return rb, procs, nil
}

// get returns the status of a request with tok.
func (rb *revokeBench) get(g *revokeGateway, tok string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, g.url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := rb.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// revoke ends session sid through g's admin API and returns how long
// it took.
func (rb *revokeBench) revoke(g *revokeGateway, sid string) (time.Duration, error) {
	body := fmt.Sprintf(`{"scope":"session","session":%q}`, session.HashID(sid))
	req, _ := http.NewRequest(http.MethodPost, g.admin+"/session_guard/accounts/acct-revoke/revoke", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := rb.client.Do(req)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("revoke answered %d", resp.StatusCode)
	}
	return d, nil
}

// round revokes n sessions named prefix-i, each first requested on the
// gateways in hold, through the gateways in turn; every gateway in
// check must refuse it next. It returns the latencies sorted and the
// number of requests answered otherwise.
func (rb *revokeBench) round(ctx context.Context, prefix string, n int, hold, via, check []*revokeGateway) ([]time.Duration, int, error) {
	var lat []time.Duration
	wrong := 0
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sid := fmt.Sprintf("%s-%d", prefix, i)
		tok, err := devtoken.Mint([]byte(secret), devtoken.Claims{Session: sid, User: "u", Account: "acct-revoke", Role: "member",
			Now: time.Now().Add(-time.Second), TTL: time.Hour})
		if err != nil {
			return nil, 0, err
		}
		for _, g := range hold {
			for range 2 { // the second answer comes from the cache
				if st, err := rb.get(g, tok); err != nil || st != http.StatusOK {
					return nil, 0, fmt.Errorf("holding %s: %d %v", sid, st, err)
				}
			}
		}
		d, err := rb.revoke(via[i%len(via)], sid)
		if err != nil {
			return nil, 0, err
		}
		lat = append(lat, d)
		for _, g := range check {
			if st, err := rb.get(g, tok); err != nil || st != http.StatusUnauthorized {
				wrong++
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, wrong, nil
}

// run prints revocation latency with all three gateways holding the
// session, then with the third stopped.
func (rb *revokeBench) run(ctx context.Context, w io.Writer, n int) error {
	all := rb.gws
	lat, wrong, err := rb.round(ctx, "all", n, all, all, all)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nrevocation, 3 gateways holding the session in cache (%d revocations): p50 %s p99 %s max %s; later requests not refused: %d\n",
		len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]), wrong)
	stopped := all[2]
	if err := stopped.proc.pause(true); err != nil {
		return err
	}
	defer func() { _ = stopped.proc.pause(false) }()
	// its lease is still live in Redis: the first revocations wait it out
	lat, wrong, err = rb.round(ctx, "stopped", max(n/10, 5), all[:2], all[:2], all[:2])
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "revocation, one of the 3 gateways stopped (SIGSTOP): p50 %s p99 %s max %s (bounded by its 2s lease, then it has none); later requests not refused: %d\n",
		ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]), wrong)
	return nil
}
