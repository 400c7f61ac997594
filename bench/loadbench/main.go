// Command loadbench is sessionguard's load benchmark. In one run it starts,
// on free loopback ports, a redis-server, a minimal upstream app, and seven
// Caddy processes built from ./cmd/caddy in front of it:
//
//   - plain: reverse_proxy only (the baseline);
//   - plain_headers: plain Caddy adding the same response and upstream
//     headers as session_guard, statically (header, header_up): the
//     practical limit for any gateway that must send them;
//   - memory: session_guard on the memory store, then reverse_proxy;
//   - redis: session_guard on the Redis store with its session cache
//     (the default), then reverse_proxy;
//   - redis_nocache: the same with cache off (every request asks Redis);
//   - redis_every: the same with touch_interval off (every request
//     writes), to show what touch coalescing saves;
//   - forward_auth: Caddy's forward_auth to bench/authsvc (one HS256
//     verification and one Redis EVALSHA per request), then reverse_proxy.
//
// It drives each target with the same closed-loop load (wrk when it is on
// PATH, else a built-in Go generator) using valid HS256 tokens of many
// sessions, for several rounds, and prints the median req/s, p50, p99,
// the ratio to plain Caddy, the p99 added to plain Caddy's, and the Redis
// commands per request (from INFO commandstats).
//
//	go run ./bench/loadbench            # 10s per target, 3 rounds
//	go run ./bench/loadbench -quick     # ~1s per target, 1 round (CI)
//
// Everything listens on 127.0.0.1 only and every process it starts is
// killed when it exits. See PERFORMANCE.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// secret is the HS256 key shared by the gateways, the auth service and
// the token minter.
const secret = "loadbench-secret-0123456789abcdef0123456789"

// options are the command-line settings.
type options struct {
	duration, warmup time.Duration
	rounds, conns    int
	sessions         int
	accounts         int
	revokes          int
	gen              string
	quick            bool
	cpuprofile       string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration per target and round")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up per target and round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; the table shows medians over rounds")
	flag.IntVar(&o.conns, "conns", 64, "concurrent connections")
	flag.IntVar(&o.sessions, "sessions", 10000, "distinct sessions (one token each)")
	flag.IntVar(&o.accounts, "accounts", 100, "accounts the sessions are spread over")
	flag.IntVar(&o.revokes, "revokes", 200, "revocations timed with 3 caching gateways holding the session (0: none)")
	flag.StringVar(&o.gen, "gen", "auto", "load generator: auto (wrk if on PATH), wrk or go")
	flag.BoolVar(&o.quick, "quick", false, "CI smoke run: 1s per target, 300ms warm-up, 1 round, 1000 sessions")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the memory-store gateway, taken during its last measured round, to this file")
	flag.Parse()
	if o.quick {
		o.duration, o.warmup, o.rounds, o.sessions, o.revokes = time.Second, 300*time.Millisecond, 1, 1000, 20
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rows, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
	_ = rows
}

// target is one server under load.
type target struct {
	name    string
	url     string
	checkSG bool // a valid answer must carry session_guard's headers
}

// row is the outcome of one target over all rounds.
type row struct {
	name      string
	results   []result
	ratios    []float64
	addedP99  []time.Duration
	redisCmds []float64          // Redis commands per request, per round
	cmds      []map[string]int64 // INFO commandstats delta, per round
	share     map[string]float64 // per command, share sent by clients (MONITOR sample)
	scriptUs  []float64          // Redis script execution µs per request, per round
	redisCPU  []float64          // redis-server CPU µs per request, per round
	breakdown map[string]int64
}

// run starts everything, measures, prints the table to w and returns the
// rows.
func run(ctx context.Context, o options, w io.Writer) ([]*row, error) {
	if o.rounds < 1 || o.conns < 1 || o.sessions < 1 || o.accounts < 1 || o.duration <= 0 {
		return nil, fmt.Errorf("rounds, conns, sessions, accounts and duration must be positive")
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(w, "loadbench: building ./cmd/caddy, ./bench/authsvc and ./bench/upstream into %s\n", dir)
	bins, err := build(root, dir, "./cmd/caddy", "./bench/authsvc", "./bench/upstream")
	if err != nil {
		return nil, err
	}
	caddyBin, authBin, upBin := bins[0], bins[1], bins[2]

	rs, stopRedis, err := testredis.StartMain()
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	defer stopRedis()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()

	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	names := []string{"plain", "plain_headers", "memory", "redis", "redis_nocache", "redis_every", "forward_auth"}
	free, err := freePorts(3 + len(names))
	if err != nil {
		return nil, err
	}
	upPort, authPort, profilePort := free[0], free[1], free[2+len(names)]
	ports := map[string]int{}
	for i, n := range names {
		ports[n] = free[2+i]
	}
	up, err := start(dir, "upstream", "http://"+hostPort(upPort)+"/", upBin, "-listen", hostPort(upPort))
	if err != nil {
		return nil, err
	}
	procs = append(procs, up)
	auth, err := start(dir, "authsvc", "http://"+hostPort(authPort)+"/", authBin,
		"-listen", hostPort(authPort), "-redis", rs.Addr(), "-secret", secret)
	if err != nil {
		return nil, err
	}
	procs = append(procs, auth)

	var targets []target
	for _, name := range names {
		admin := "off"
		if name == "memory" && o.cpuprofile != "" {
			admin = hostPort(profilePort)
		}
		cf := caddyfile(name, ports[name], admin, hostPort(upPort), hostPort(authPort), rs.Addr())
		path := filepath.Join(dir, name+".Caddyfile")
		if err := os.WriteFile(path, []byte(cf), 0o644); err != nil {
			return nil, err
		}
		url := "http://" + hostPort(ports[name]) + "/"
		p, err := start(dir, "caddy-"+name, url, caddyBin, "run", "--config", path, "--adapter", "caddyfile")
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		targets = append(targets, target{name: name, url: url, checkSG: name != "plain" && name != "forward_auth"})
	}

	tokens, err := mintTokens(o.sessions, o.accounts)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if err := check(t, tokens[0]); err != nil {
			return nil, err
		}
	}
	gen, err := pickGenerator(o.gen, dir, tokens)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(w, "loadbench: %s, %d connections, %s warm-up + %s measured per target, %d round(s), %d sessions over %d accounts\n",
		gen.name(), o.conns, o.warmup, o.duration, o.rounds, o.sessions, o.accounts)
	rows := make([]*row, len(targets))
	for i, t := range targets {
		rows[i] = &row{name: t.name, breakdown: map[string]int64{}}
	}
	for round := 1; round <= o.rounds; round++ {
		var plain result
		for i, t := range targets {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if o.warmup > 0 {
				// In the last round, the warm-up also samples MONITOR to
				// tell round trips from commands run inside scripts.
				var mon *monitorSample
				if round == o.rounds {
					if mon, err = startMonitor(rs.Addr()); err != nil {
						return nil, err
					}
				}
				_, err := gen.run(ctx, t.url, o.conns, o.warmup)
				if mon != nil {
					rows[i].share = mon.stop()
				}
				if err != nil {
					return nil, fmt.Errorf("%s warm-up: %w", t.name, err)
				}
			}
			before, err := commandStats(ctx, rdb)
			if err != nil {
				return nil, err
			}
			var prof <-chan error
			if t.name == "memory" && o.cpuprofile != "" && round == o.rounds {
				prof = profile("http://"+hostPort(profilePort), o.duration, o.cpuprofile)
			}
			res, err := gen.run(ctx, t.url, o.conns, o.duration)
			if prof != nil {
				if perr := <-prof; perr != nil {
					return nil, fmt.Errorf("cpu profile: %w", perr)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", t.name, round, err)
			}
			after, err := commandStats(ctx, rdb)
			if err != nil {
				return nil, err
			}
			cmds, sum := delta(before, after)
			r := rows[i]
			r.results = append(r.results, res)
			r.cmds = append(r.cmds, cmds)
			r.scriptUs = append(r.scriptUs, float64(after[usecKey]-before[usecKey])/float64(max(res.requests, 1)))
			r.redisCPU = append(r.redisCPU, float64(after[cpuKey]-before[cpuKey])/float64(max(res.requests, 1)))
			if res.requests > 0 {
				r.redisCmds = append(r.redisCmds, float64(sum)/float64(res.requests))
			}
			for k, v := range cmds {
				r.breakdown[k] += v
			}
			if t.name == "plain" {
				plain = res
			}
			r.ratios = append(r.ratios, res.rps()/plain.rps())
			r.addedP99 = append(r.addedP99, res.p99-plain.p99)
			fmt.Fprintf(w, "  round %d %-13s %9.0f req/s  p50 %-9s p99 %-9s redis cmds/req %.2f  errors %d %s\n",
				round, t.name, res.rps(), ms(res.p50), ms(res.p99), float64(sum)/float64(max(res.requests, 1)), res.errors, res.firstErr)
		}
	}
	printTable(w, rows)
	if o.revokes > 0 {
		rb, rprocs, err := startRevokeBench(dir, caddyBin, hostPort(upPort), rs.Addr())
		procs = append(procs, rprocs...)
		if err != nil {
			return nil, err
		}
		if err := rb.run(ctx, w, o.revokes); err != nil {
			return nil, fmt.Errorf("revocation latency: %w", err)
		}
	}
	return rows, nil
}

// caddyfile returns the Caddyfile of one target.
func caddyfile(name string, port int, admin, upstream, authsvc, redisAddr string) string {
	global := ""
	handler := ""
	switch name {
	case "memory":
		handler = sgHandler
	case "plain_headers":
		handler = staticHeaders
		upstream += staticUpstreamHeaders
	case "redis":
		global = fmt.Sprintf("\tsession_guard {\n\t\tstore redis {\n\t\t\taddress %s\n\t\t}\n\t}\n", redisAddr)
		handler = sgHandler
	case "redis_nocache":
		// its own key prefix: it creates its own sessions in its warm-up
		global = fmt.Sprintf("\tsession_guard {\n\t\tstore redis {\n\t\t\taddress %s\n\t\t\tkey_prefix sgnocache\n\t\t\tcache off\n\t\t}\n\t}\n", redisAddr)
		handler = sgHandler
	case "redis_every":
		// the Redis store writing every request: touch coalescing off,
		// to measure what coalescing saves in the same run
		global = fmt.Sprintf("\tsession_guard {\n\t\tstore redis {\n\t\t\taddress %s\n\t\t\tkey_prefix sgevery\n\t\t}\n\t\ttouch_interval off\n\t}\n", redisAddr)
		handler = sgHandler
	case "forward_auth":
		handler = fmt.Sprintf("\tforward_auth %s {\n\t\turi /verify\n\t\tcopy_headers Session-User Session-Account\n\t}\n", authsvc)
	}
	return fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	http_port %d
	log {
		level ERROR
	}
%s}

http://127.0.0.1:%d {
%s	reverse_proxy %s
}
`, admin, port, global, port, handler, upstream)
}

// staticHeaders and staticUpstreamHeaders are what session_guard adds to
// a valid request, as constants: five response headers and four
// identity headers to the upstream.
const (
	staticHeaders = "\theader {\n\t\tSession-Expires-In 900\n\t\tSession-Idle-Expires-In 900\n\t\tSession-Absolute-Expires-In 43200\n" +
		"\t\tSession-Expiry-Warning none\n\t\tSession-Expiry-Reason idle\n\t}\n"
	staticUpstreamHeaders = " {\n\t\theader_up Session-Id-Hash 0123456789abcdefghijkl\n\t\theader_up Session-User user-1\n" +
		"\t\theader_up Session-Account acct-1\n\t\theader_up Session-Role member\n\t}"
)

const sgHandler = "\tsession_guard {\n\t\tjwt {\n\t\t\talg HS256\n\t\t\tsecret " + secret + "\n\t\t}\n\t}\n"

// mintTokens returns one valid HS256 token per session, spread over
// accounts, valid for 2 hours.
func mintTokens(sessions, accounts int) ([]string, error) {
	out := make([]string, sessions)
	for i := range out {
		tok, err := devtoken.Mint([]byte(secret), devtoken.Claims{
			User:    fmt.Sprintf("user-%d", i),
			Account: fmt.Sprintf("acct-%d", i%accounts),
			Role:    "member",
			TTL:     2 * time.Hour,
		})
		if err != nil {
			return nil, err
		}
		out[i] = tok
	}
	return out, nil
}

// check sends one request with a valid token and makes sure the target
// answers 200 (with session_guard's headers where expected), so that the
// benchmark never measures error answers.
func check(t target, tok string) error {
	req, _ := http.NewRequest(http.MethodGet, t.url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d to a valid token: %s", t.name, resp.StatusCode, body)
	}
	if t.checkSG && resp.Header.Get("Session-Expires-In") == "" {
		return fmt.Errorf("%s: no Session-Expires-In header: session_guard did not run", t.name)
	}
	return nil
}

// pickGenerator returns wrk or the built-in generator.
func pickGenerator(which, dir string, tokens []string) (generator, error) {
	switch which {
	case "go":
		return &goGen{tokens: tokens}, nil
	case "wrk", "auto":
		bin, err := exec.LookPath("wrk")
		if err != nil {
			if which == "wrk" {
				return nil, fmt.Errorf("wrk not on PATH: %w", err)
			}
			return &goGen{tokens: tokens}, nil
		}
		return newWrkGen(bin, dir, tokens)
	}
	return nil, fmt.Errorf("unknown generator %q (auto, wrk or go)", which)
}

// printTable prints the medians over rounds.
func printTable(w io.Writer, rows []*row) {
	fmt.Fprintf(w, "\nmedians over rounds (%s, GOMAXPROCS %d, %s):\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\tratio\tadded p99\terrors\tredis round trips/req\tredis cmds/req\tredis script µs/req\tredis CPU µs/req\tcache hits\tcommands (incl. inside scripts)\t")
	for _, r := range rows {
		var (
			rps    []float64
			errors int64
			total  int64
		)
		var p50, p99 []time.Duration
		for _, res := range r.results {
			rps = append(rps, res.rps())
			errors += res.errors
			total += res.requests
			p50 = append(p50, res.p50)
			p99 = append(p99, res.p99)
		}
		var perReq []float64
		for i, res := range r.results {
			if res.requests > 0 {
				perReq = append(perReq, roundTrips(r.cmds[i], r.share)/float64(res.requests))
			}
		}
		trips := fmt.Sprintf("%.2f", median(perReq))
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.2fx\t%s\t%s\t%s\t%.2f\t%.1f\t%.1f\t%s\t%s\t\n", r.name, median(rps), ms(medianDur(p50)), ms(medianDur(p99)),
			median(r.ratios), ms(medianDur(r.addedP99)), errRate(errors, total), trips, median(r.redisCmds), median(r.scriptUs), median(r.redisCPU),
			cacheHits(r.name, r.breakdown["evalsha"], total), breakdown(r.breakdown))
	}
	tw.Flush()
}

// cacheHits is the share of requests a Redis target answered without
// running the touch script (from its session cache): every other
// request ran one EVALSHA (the lease renewals add a few a second).
func cacheHits(name string, evalsha, requests int64) string {
	if !strings.HasPrefix(name, "redis") || requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*max(0, 1-float64(evalsha)/float64(requests)))
}

func breakdown(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	var total int64
	for _, v := range m {
		total += v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var parts []string
	for _, k := range keys {
		if float64(m[k])/float64(total) < 0.001 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(m[k])/float64(total)))
	}
	return strings.Join(parts, ", ")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// errRate formats errors out of total requests.
func errRate(errors, total int64) string {
	if errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.3f%%)", errors, 100*float64(errors)/float64(max(total, 1)))
}
