package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/store"
)

// kindStats sums the keys of one kind (the part of the name after the
// hash tag: "s:", "ord", "us:", ...).
type kindStats struct {
	kind      string
	keys      int
	bytes     int64 // MEMORY USAGE ... SAMPLES 0: exact
	nameBytes int64
	withTTL   int
	enc       map[string]int
}

// keyKind classifies a key by what follows its hash tag.
func keyKind(key string) string {
	i := strings.Index(key, "}:")
	if i < 0 {
		if j := strings.Index(key, "{"); j >= 0 {
			return key[j:]
		}
		return "other"
	}
	rest := key[i+2:]
	if j := strings.IndexByte(rest, ':'); j >= 0 {
		return rest[:j+1]
	}
	return rest
}

// breakdown creates n sessions over accounts accounts and users users
// per account (0: one user per session) on a flushed Redis, then prints
// where the used_memory delta goes, key kind by key kind.
func breakdown(ctx context.Context, w io.Writer, client *redis.Client, pol *policy.Config, n, accounts int) error {
	if err := client.FlushAll(ctx).Err(); err != nil {
		return err
	}
	rst := store.NewRedis(client, store.RedisOptions{Timeout: time.Minute})
	if eventsMax > 0 {
		rst.EnableEvents(eventsMax, nil)
	}
	before, err := memoryInfo(ctx, client)
	if err != nil {
		return err
	}
	if err := create(ctx, rst, pol, n, accounts, time.Now()); err != nil {
		return err
	}
	after, err := memoryInfo(ctx, client)
	if err != nil {
		return err
	}
	kinds, err := scanKinds(ctx, client)
	if err != nil {
		return err
	}
	expires, buckets, err := tableOverhead(ctx, client)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d sessions in %d accounts, %s\n", n, accounts, usersLabel())
	d := func(f string) int64 { return after[f] - before[f] }
	printBreakdown(w, kinds, n, d("used_memory"), []overhead{
		{"expires dict (MEMORY STATS)", expires},
		{"main dict buckets (MEMORY STATS)", buckets},
		{"client buffers (mem_clients_normal)", d("mem_clients_normal")},
		{"script cache (used_memory_scripts)", d("used_memory_scripts")},
	})
	return whatIf(ctx, w, client, kinds, n, accounts)
}

// scanKinds reads every key's MEMORY USAGE (exact), encoding and TTL.
func scanKinds(ctx context.Context, c *redis.Client) (map[string]*kindStats, error) {
	kinds := map[string]*kindStats{}
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		if err := statKeys(ctx, c, keys, kinds); err != nil {
			return nil, err
		}
		if cursor = next; cursor == 0 {
			return kinds, nil
		}
	}
}

func statKeys(ctx context.Context, c *redis.Client, keys []string, kinds map[string]*kindStats) error {
	pipe := c.Pipeline()
	usage := make([]*redis.IntCmd, len(keys))
	enc := make([]*redis.StringCmd, len(keys))
	ttl := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		usage[i] = pipe.MemoryUsage(ctx, k, 0)
		enc[i] = pipe.ObjectEncoding(ctx, k)
		ttl[i] = pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, k := range keys {
		ks := kinds[keyKind(k)]
		if ks == nil {
			ks = &kindStats{kind: keyKind(k), enc: map[string]int{}}
			kinds[ks.kind] = ks
		}
		ks.keys++
		ks.bytes += usage[i].Val()
		ks.nameBytes += int64(len(k))
		ks.enc[enc[i].Val()]++
		if ttl[i].Val() > 0 {
			ks.withTTL++
		}
	}
	return nil
}

// tableOverhead returns, from MEMORY STATS, the expires dict (entries
// and buckets) and the main dict's bucket array, which MEMORY USAGE
// leaves out.
func tableOverhead(ctx context.Context, c *redis.Client) (expires, buckets int64, err error) {
	v, err := c.Do(ctx, "MEMORY", "STATS").Result()
	if err != nil {
		return 0, 0, err
	}
	db := asMap(asMap(v)["db.0"])
	main, _ := db["overhead.hashtable.main"].(int64)
	expires, _ = db["overhead.hashtable.expires"].(int64)
	keys, _ := asMap(v)["keys.count"].(int64)
	// main = keys * (dictEntry 24 + robj 16) + buckets * 8 (object.c)
	return expires, main - keys*(24+16), nil
}

// memoryInfo returns the integer fields of INFO memory.
func memoryInfo(ctx context.Context, c *redis.Client) (map[string]int64, error) {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// asMap reads a RESP2 flat list or a RESP3 map as a map.
func asMap(v interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	switch m := v.(type) {
	case map[interface{}]interface{}:
		for k, x := range m {
			out[fmt.Sprint(k)] = x
		}
	case []interface{}:
		for i := 0; i+1 < len(m); i += 2 {
			out[fmt.Sprint(m[i])] = m[i+1]
		}
	}
	return out
}

// overhead is a used_memory share outside the keys' MEMORY USAGE.
type overhead struct {
	what  string
	bytes int64
}

func printBreakdown(w io.Writer, kinds map[string]*kindStats, n int, delta int64, over []overhead) {
	list := make([]*kindStats, 0, len(kinds))
	var sum int64
	for _, k := range kinds {
		list = append(list, k)
		sum += k.bytes
	}
	sort.Slice(list, func(i, j int) bool { return list[i].bytes > list[j].bytes })
	per := func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/float64(n)) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "key kind\tkeys\tencoding\tkey name bytes\twith TTL\tbytes/key\tbytes/session\t")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%d\t%.0f\t%s\t\n", k.kind, k.keys, encodings(k.enc),
			float64(k.nameBytes)/float64(k.keys), k.withTTL, float64(k.bytes)/float64(k.keys), per(k.bytes))
	}
	fmt.Fprintf(tw, "sum of MEMORY USAGE\t\t\t\t\t\t%s\t\n", per(sum))
	rest := delta - sum
	for _, o := range over {
		fmt.Fprintf(tw, "%s\t\t\t\t\t\t%s\t\n", o.what, per(o.bytes))
		rest -= o.bytes
	}
	fmt.Fprintf(tw, "rest\t\t\t\t\t\t%s\t\n", per(rest))
	fmt.Fprintf(tw, "used_memory delta\t\t\t\t\t\t%s\t\n", per(delta))
	tw.Flush()
}

// usersLabel says how the run spreads sessions over users.
func usersLabel() string {
	if users > 0 {
		return fmt.Sprintf("%d users per account", users)
	}
	return "one user per session"
}

func encodings(m map[string]int) string {
	var parts []string
	for e, c := range m {
		parts = append(parts, fmt.Sprintf("%s %d", e, c))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
