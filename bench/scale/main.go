// Command scale measures how sessionguard's stores grow with the number
// of live sessions: Redis memory per session (INFO memory used_memory
// delta), memory-store heap per session (runtime.MemStats), and the time
// to list and to revoke one account's sessions, at 1k, 10k and 100k
// sessions, and the slowest single Redis call of each (SLOWLOG: Redis
// is single-threaded, so that call is how long every other client
// waited). It starts its own redis-server
// on a free loopback port.
//
//	go run ./bench/scale                 # 1k, 10k, 100k
//	go run ./bench/scale -sizes 1000     # a quick run
//	go run ./bench/scale -breakdown -sizes 100000 -accounts 1 [-users 100]
//	                                     # where the Redis bytes go
//	go run ./bench/scale -isolate -v -sizes 1000,100000
//	                                     # SLOWLOG as on a dedicated host
//
// With -isolate (Linux, as root) redis-server runs on CPU 1 at
// real-time priority (taskset; chrt -f 50, its background threads 49)
// and the bench on CPU 0, so that SLOWLOG does not count the time Redis
// waited for a core shared with the bench, its GC or other processes;
// it fails if it cannot.
//
// See PERFORMANCE.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

func main() {
	sizes := flag.String("sizes", "1000,10000,100000", "comma-separated session counts")
	accounts := flag.Int("accounts", 100, "accounts the sessions are spread over for the memory figures")
	flag.StringVar(&userAgent, "ua", userAgent, "User-Agent recorded with every session")
	flag.IntVar(&listpackValue, "hash-max-listpack-value", 0, "when set, passed to redis-server (its default is 64)")
	verbose = flag.Bool("v", false, "print the slowest call's command")
	flag.IntVar(&users, "users", 0, "users per account the sessions are spread over (0: one user per session)")
	flag.IntVar(&eventsMax, "events", 0, "with -breakdown: enable lifecycle events, keeping this many per account (0: off)")
	mem := flag.Bool("breakdown", false, "print only where Redis memory goes, key kind by key kind")
	flag.BoolVar(&isolated, "isolate", false, "redis-server on CPU "+redisCPU+" at real-time priority, the bench on CPU "+benchCPU+" (Linux, root: taskset, chrt)")
	flag.Parse()
	run := run
	if *mem {
		run = runBreakdown
	}
	if err := run(*sizes, *accounts); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// userAgent is recorded with every session: a real browser's by default.
var (
	userAgent     = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	listpackValue int
	verbose       *bool
	users         int
	eventsMax     int
	isolated      bool
)

// parseSizes reads the -sizes list.
func parseSizes(sizeList string) ([]int, error) {
	var sizes []int
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// setup reads the sizes and starts the bench's redis-server and a
// client of it; stop ends both.
func setup(sizeList string) (sizes []int, client *redis.Client, stop func(), err error) {
	if sizes, err = parseSizes(sizeList); err != nil {
		return nil, nil, nil, err
	}
	if client, stop, err = startRedis(); err != nil || !isolated {
		return sizes, client, stop, err
	}
	if err = isolate(context.Background(), client); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return sizes, client, stop, nil
}

// benchPolicy is the policy every session is created under.
func benchPolicy() policy.Config {
	pol := policy.NewConfig()
	pol.Default = "standard"
	return pol
}

// startRedis starts the bench's redis-server and a client of it.
func startRedis() (*redis.Client, func(), error) {
	// a script of the old, unbounded listing may run for seconds on a
	// busy machine: let it finish instead of answering BUSY to the bench
	args := []string{"--lua-time-limit", "120000"}
	if listpackValue > 0 {
		args = append(args, "--hash-max-listpack-value", strconv.Itoa(listpackValue))
	}
	rs, stop, err := testredis.StartMain(args...)
	if err != nil {
		return nil, nil, err
	}
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), PoolSize: 32, ReadTimeout: time.Minute})
	return client, func() { client.Close(); stop() }, nil
}

// runBreakdown prints, for each size, where Redis memory goes.
func runBreakdown(sizeList string, accounts int) error {
	sizes, client, stop, err := setup(sizeList)
	if err != nil {
		return err
	}
	defer stop()
	pol := benchPolicy()
	for _, n := range sizes {
		if err := breakdown(context.Background(), os.Stdout, client, &pol, n, accounts); err != nil {
			return err
		}
		fmt.Println()
	}
	return nil
}

func run(sizeList string, accounts int) error {
	sizes, client, stop, err := setup(sizeList)
	if err != nil {
		return err
	}
	defer stop()
	ctx := context.Background()
	pol := benchPolicy()

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sessions\tredis bytes/session\tmemory store bytes/session\tredis create 1 account: slowest call / script p99 / p50 (n)\tredis list 1 account\tslowest call / script p99 / p50 (n)\tredis revoke 1 account\tslowest call / script p99 / p50 (n)\tredis record revoked (background)\tslowest call / script p99 / p50 (n)\tmemory list 1 account\tmemory revoke 1 account\t")
	for _, n := range sizes {
		// Redis: n sessions over `accounts` accounts.
		if err := client.FlushAll(ctx).Err(); err != nil {
			return err
		}
		rst := store.NewRedis(client, store.RedisOptions{Timeout: time.Minute})
		before, err := usedMemory(ctx, client)
		if err != nil {
			return err
		}
		now := time.Now()
		if err := create(ctx, rst, &pol, n, accounts, now); err != nil {
			return err
		}
		after, err := usedMemory(ctx, client)
		if err != nil {
			return err
		}
		redisPer := float64(after-before) / float64(n)

		// Memory store: the same sessions, heap delta.
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		mem := store.NewMemory(nil)
		if err := create(ctx, mem, &pol, n, accounts, now); err != nil {
			return err
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		memPer := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n)

		// One account holding all n sessions: list, then revoke all.
		if err := client.FlushAll(ctx).Err(); err != nil {
			return err
		}
		// the creation's calls are logged too (slowest starts the log)
		var slow [4]string
		if _, err := slowest(ctx, client); err != nil {
			return err
		}
		if err := create(ctx, rst, &pol, n, 1, now); err != nil {
			return err
		}
		rList, rRevoke, err := listRevoke(ctx, rst, &pol, n, func(i int) error {
			d, err := slowest(ctx, client)
			if i >= 0 {
				slow[i] = d
			} else {
				slow[3] = d
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		rRecord, err := record(ctx, rst, &pol, n, func() error {
			d, err := slowest(ctx, client)
			slow[2] = d
			if err == nil {
				// Redis's default again, so that the log does not add to the
				// next size's memory figure
				err = client.ConfigSet(ctx, "slowlog-log-slower-than", "10000").Err()
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		mem1 := store.NewMemory(nil)
		if err := create(ctx, mem1, &pol, n, 1, now); err != nil {
			return err
		}
		mList, mRevoke, err := listRevoke(ctx, mem1, &pol, n, func(int) error { return nil })
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		runtime.KeepAlive(mem)
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", n, redisPer, memPer, slow[3],
			rList.Round(time.Microsecond*100), slow[0], rRevoke.Round(time.Microsecond*100), slow[1],
			rRecord.Round(time.Microsecond*100), slow[2],
			mList.Round(time.Microsecond*100), mRevoke.Round(time.Microsecond*100))
	}
	return tw.Flush()
}

// create makes n live sessions over accounts accounts, 16 at a time.
func create(ctx context.Context, st store.Store, pol *policy.Config, n, accounts int, now time.Time) error {
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res, err := st.Touch(ctx, &store.TouchRequest{
					Account:     fmt.Sprintf("acct-%d", i%accounts),
					SessionHash: session.HashID(fmt.Sprintf("session-%d", i)),
					User:        userOf(i, accounts),
					Role:        "member",
					Name:        "Some User",
					Email:       userOf(i, accounts) + "@example.com",
					IP:          "203.0.113.7",
					UserAgent:   session.CompactUserAgent(userAgent), // as the gateway records it
					LoginAt:     now,
					NotAfter:    now.Add(time.Hour),
					Policy:      pol,
				})
				if err == nil && res.Status != session.Active {
					err = fmt.Errorf("session %d: status %v", i, res.Status)
				}
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// userOf is session i's user: its own, or with -users one of that many
// in its account, round robin.
func userOf(i, accounts int) string {
	if users > 0 {
		return fmt.Sprintf("user-%d", i/accounts%users)
	}
	return fmt.Sprintf("user-%d", i)
}

// listRevoke times listing, then revoking, the n sessions of acct-0;
// it calls done(0) after the listing and done(1) after the revocation.
func listRevoke(ctx context.Context, st store.Store, pol *policy.Config, n int, done func(int) error) (list, revoke time.Duration, err error) {
	if err := done(-1); err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	got, err := store.ListAll(ctx, st, "acct-0", pol)
	list = time.Since(t0)
	if err == nil {
		err = done(0)
	}
	if err != nil {
		return 0, 0, err
	}
	if len(got) != n {
		return 0, 0, fmt.Errorf("listed %d sessions, want %d", len(got), n)
	}
	t0 = time.Now()
	k, err := st.Revoke(ctx, store.RevokeRequest{Account: "acct-0", Scope: store.ScopeAll, Policy: pol})
	revoke = time.Since(t0)
	if err == nil {
		err = done(1)
	}
	if err != nil {
		return 0, 0, err
	}
	if k != n {
		return 0, 0, fmt.Errorf("revoked %d sessions, want %d", k, n)
	}
	return list, revoke, nil
}

// record times the background recording of the n sessions a revocation
// of the whole account ended (what every gateway does every second),
// and calls done after it.
func record(ctx context.Context, st *store.Redis, pol *policy.Config, n int, done func() error) (time.Duration, error) {
	t0 := time.Now()
	total := 0
	for {
		k, err := st.CleanRevoked(ctx, pol, 1000)
		if err != nil {
			return 0, err
		}
		total += k
		if k < 1000 {
			break
		}
	}
	took := time.Since(t0)
	if total != n {
		return 0, fmt.Errorf("recorded %d revoked sessions, want %d", total, n)
	}
	return took, done()
}

// slowest returns the longest call in the SLOWLOG (as "max / p99 /
// p50 (count) of the scripts logged") and resets it; the first call (i < 0 in
// listRevoke) starts logging. Calls of 100µs or more are logged: Redis
// 7 logs the commands inside scripts too, and logging every one of them
// would both slow the scripts and overflow the log.
func slowest(ctx context.Context, c *redis.Client) (string, error) {
	if err := c.ConfigSet(ctx, "slowlog-log-slower-than", "100").Err(); err != nil {
		return "", err
	}
	if err := c.ConfigSet(ctx, "slowlog-max-len", "100000").Err(); err != nil {
		return "", err
	}
	logs, err := c.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return "", err
	}
	var top time.Duration
	var what []string
	var scripts []time.Duration
	for _, l := range logs {
		if len(l.Args) == 0 || isOwnCommand(l.Args[0]) {
			continue
		}
		if l.Duration > top {
			top, what = l.Duration, l.Args
		}
		if cmd := strings.ToLower(l.Args[0]); cmd == "evalsha" || cmd == "eval" {
			scripts = append(scripts, l.Duration)
		}
	}
	if *verbose && len(what) > 0 {
		fmt.Fprintf(os.Stderr, "slowest: %s %q\n", top, what[:min(len(what), 4)])
		printKinds(logs)
	}
	var p50, p99 time.Duration
	if len(scripts) > 0 {
		sort.Slice(scripts, func(i, j int) bool { return scripts[i] < scripts[j] })
		p50, p99 = scripts[len(scripts)/2], scripts[len(scripts)*99/100]
	}
	return fmt.Sprintf("%s / %s / %s (%d)", top, p99, p50, len(scripts)), c.Do(ctx, "SLOWLOG", "RESET").Err()
}

// printKinds prints, with -v, the logged calls by command and first
// key's kind (a script's keys tell which one it is): count, p50, p99,
// max and how many took over 2 ms.
func printKinds(logs []redis.SlowLog) {
	kinds := map[string][]time.Duration{}
	for _, l := range logs {
		if len(l.Args) == 0 || isOwnCommand(l.Args[0]) {
			continue
		}
		kind := strings.ToLower(l.Args[0])
		if (kind == "evalsha" || kind == "eval") && len(l.Args) > 3 {
			kind += " " + keyKind(l.Args[3])
		}
		kinds[kind] = append(kinds[kind], l.Duration)
	}
	for kind, ds := range kinds {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		over := len(ds) - sort.Search(len(ds), func(i int) bool { return ds[i] > 2*time.Millisecond })
		fmt.Fprintf(os.Stderr, "  %s: %d, p50 %s p99 %s max %s, over 2ms %d\n",
			kind, len(ds), ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1], over)
	}
}

// isOwnCommand reports the bench's own bookkeeping commands.
func isOwnCommand(name string) bool {
	switch strings.ToLower(name) {
	case "config", "slowlog", "info", "flushall":
		return true
	}
	return false
}

// usedMemory returns INFO memory used_memory.
func usedMemory(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}
