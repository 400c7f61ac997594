package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// The what-if figures rebuild parts of acct-0's real data in another
// shape under scratch keys, measure them with MEMORY USAGE and delete
// them: what a layout change would save, measured rather than guessed.

const scratch = "scratch:whatif"

// take returns the exact MEMORY USAGE and the encoding of key, and
// deletes it.
func take(ctx context.Context, c *redis.Client, key string) (int64, string, error) {
	u, err := c.MemoryUsage(ctx, key, 0).Result()
	if err != nil {
		return 0, "", err
	}
	enc, err := c.ObjectEncoding(ctx, key).Result()
	if err != nil {
		return 0, "", err
	}
	return u, enc, c.Del(ctx, key).Err()
}

// whatIf prints the measured alternatives.
func whatIf(ctx context.Context, w io.Writer, c *redis.Client, kinds map[string]*kindStats, n, accounts int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	fmt.Fprintln(tw, "what if (acct-0's data rebuilt)\tnow bytes\tthen bytes\tsaved bytes/session\t")
	for _, name := range []string{"ord", "dl"} {
		if err := zsetAsHash(ctx, tw, c, name, accounts); err != nil {
			return err
		}
	}
	if err := sessionVariants(ctx, tw, c); err != nil {
		return err
	}
	if err := indexVariants(ctx, tw, c, kinds, accounts); err != nil {
		return err
	}
	if users > 0 {
		return userListpack(ctx, tw, c)
	}
	return nil
}

// zsetAsHash copies acct-0's zset name into a hash (member -> score)
// and compares the two, per session of the account.
func zsetAsHash(ctx context.Context, tw io.Writer, c *redis.Client, name string, accounts int) error {
	key := "sg:{acct-0}:" + name
	zs, err := c.MemoryUsage(ctx, key, 0).Result()
	if err == redis.Nil {
		return nil // dl exists only with events on
	}
	if err != nil {
		return err
	}
	m := int64(0)
	iter := c.ZScan(ctx, key, 0, "", 1000).Iterator()
	var batch []interface{}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 2000 {
			m += int64(len(batch) / 2)
			if err := c.HSet(ctx, scratch, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		m += int64(len(batch) / 2)
		if err := c.HSet(ctx, scratch, batch...).Err(); err != nil {
			return err
		}
	}
	hs, enc, err := take(ctx, c, scratch)
	if err != nil {
		return err
	}
	fmt.Fprintf(tw, "%s as a hash (%s, %d members)\t%d\t%d\t%.1f\t\n", name, enc, m, zs, hs, float64(zs-hs)/float64(m))
	return nil
}

// sessionVariants compares up to 1,000 session hashes with the same
// record in smaller shapes.
func sessionVariants(ctx context.Context, tw io.Writer, c *redis.Client) error {
	var keys []string
	iter := c.Scan(ctx, 0, "sg:{acct-0}:s:*", 5000).Iterator()
	for len(keys) < 1000 && iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("no session keys in acct-0")
	}
	var now, slim, packed, packedSlim int64
	var recs []map[string]string
	for _, k := range keys {
		f, err := c.HGetAll(ctx, k).Result()
		if err != nil {
			return err
		}
		u, err := c.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			return err
		}
		f["_m"] = k[strings.LastIndex(k, ":")+1:]
		recs = append(recs, f)
		now += u
		name := strings.Replace(k, "sg:", "sh:", 1) // as long as the real key
		sz, err := variantSizes(ctx, c, name, f)
		if err != nil {
			return err
		}
		slim, packed, packedSlim = slim+sz[0], packed+sz[1], packedSlim+sz[2]
	}
	k := int64(len(keys))
	row := func(what string, then int64) {
		fmt.Fprintf(tw, "%s (%d sampled)\t%d\t%d\t%.1f\t\n", what, k, now/k, then/k, float64(now-then)/float64(k))
	}
	row("session hash without n, e, ua", slim)
	row("session as one string value, same key", packed)
	row("session as one string without n, e", packedSlim)
	return bucketed(ctx, tw, c, recs, now/k)
}

// sessionFields is the order of a packed record's values.
var sessionFields = []string{"u", "r", "n", "e", "ip", "ua", "c", "l", "pi", "pa", "ci", "ca", "x", "rt"}

// pack joins a record's values, leaving out the fields in drop.
func pack(f map[string]string, drop string) string {
	var vals []string
	for _, fl := range sessionFields {
		if !strings.Contains(drop, ","+fl+",") {
			vals = append(vals, f[fl])
		}
	}
	return strings.Join(vals, "\x1f")
}

// variantSizes measures f under key name as a hash without n, e, ua,
// as one string value, and as one string without n, e.
func variantSizes(ctx context.Context, c *redis.Client, name string, f map[string]string) ([3]int64, error) {
	var out [3]int64
	var args []interface{}
	for _, fl := range sessionFields {
		if fl != "n" && fl != "e" && fl != "ua" {
			args = append(args, fl, f[fl])
		}
	}
	steps := []func() error{
		func() error { return c.HSet(ctx, name, args...).Err() },
		func() error { return c.Set(ctx, name, pack(f, ""), 0).Err() },
		func() error { return c.Set(ctx, name, pack(f, ",n,e,"), 0).Err() },
	}
	for i, write := range steps {
		if err := write(); err != nil {
			return out, err
		}
		u, _, err := take(ctx, c, name)
		if err != nil {
			return out, err
		}
		out[i] = u
	}
	return out, nil
}

// bucketed measures the sampled records as fields of hashes of 128
// (hash-max-listpack-entries), one key per 128 sessions instead of one per session; a record is over
// the default hash-max-listpack-value (64), so that is raised for them.
func bucketed(ctx context.Context, tw io.Writer, c *redis.Client, recs []map[string]string, now int64) error {
	old, err := c.ConfigGet(ctx, "hash-max-listpack-value").Result()
	if err != nil {
		return err
	}
	if err := c.ConfigSet(ctx, "hash-max-listpack-value", "256").Err(); err != nil {
		return err
	}
	defer c.ConfigSet(ctx, "hash-max-listpack-value", old["hash-max-listpack-value"])
	for _, v := range []struct{ what, drop string }{{"", ""}, {" without n, e", ",n,e,"}} {
		var total int64
		var enc string
		for i := 0; i < len(recs); i += 128 {
			var args []interface{}
			for _, f := range recs[i:min(i+128, len(recs))] {
				args = append(args, member22(f), pack(f, v.drop))
			}
			if err := c.HSet(ctx, scratch, args...).Err(); err != nil {
				return err
			}
			u, e, err := take(ctx, c, scratch)
			if err != nil {
				return err
			}
			total, enc = total+u, e
		}
		k := int64(len(recs))
		fmt.Fprintf(tw, "sessions as fields of %s hashes of 128%s\t%d\t%d\t%.1f\t\n", enc, v.what, now, total/k, float64(now*k-total)/float64(k))
	}
	return nil
}

// member22 is a sampled session's index member.
func member22(f map[string]string) string { return f["_m"] }

// indexVariants measures acct-0's first 1,000 ord entries as zsets of
// 100 (listpack), and the per-user indexes as one account-wide zset of
// "<user>:<login ms>:<member>" (ZRANGEBYLEX per user).
func indexVariants(ctx context.Context, tw io.Writer, c *redis.Client, kinds map[string]*kindStats, accounts int) error {
	key := "sg:{acct-0}:ord"
	all, err := c.ZCard(ctx, key).Result()
	if err != nil {
		return err
	}
	whole, err := c.MemoryUsage(ctx, key, 0).Result()
	if err != nil {
		return err
	}
	zs, err := c.ZRangeWithScores(ctx, key, 0, 999).Result()
	if err != nil {
		return err
	}
	var total int64
	for i := 0; i < len(zs); i += 100 {
		if err := c.ZAdd(ctx, scratch, zs[i:min(i+100, len(zs))]...).Err(); err != nil {
			return err
		}
		u, _, err := take(ctx, c, scratch)
		if err != nil {
			return err
		}
		total += u
	}
	k := int64(len(zs))
	fmt.Fprintf(tw, "ord entries in zsets of 100 (%d sampled)\t%d\t%d\t%.1f\t\n", k, whole/all, total/k, float64(whole/all*k-total)/float64(k))
	if accounts > 1 {
		return nil // kinds sums us: over all the accounts
	}
	return userLex(ctx, tw, c, kinds, all)
}

// userLex builds the account-wide per-user zset from ord and the
// records' users, and compares it with the us: keys.
func userLex(ctx context.Context, tw io.Writer, c *redis.Client, kinds map[string]*kindStats, all int64) error {
	for start := int64(0); start < all; start += 1000 {
		zs, err := c.ZRangeWithScores(ctx, "sg:{acct-0}:ord", start, start+999).Result()
		if err != nil {
			return err
		}
		pipe := c.Pipeline()
		us := make([]*redis.StringCmd, len(zs))
		for i, z := range zs {
			us[i] = pipe.HGet(ctx, "sg:{acct-0}:s:"+z.Member.(string), "u")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		lex := make([]redis.Z, len(zs))
		for i, z := range zs {
			lex[i] = redis.Z{Member: fmt.Sprintf("%s:%d:%s", us[i].Val(), int64(z.Score), z.Member)}
		}
		if err := c.ZAdd(ctx, scratch, lex...).Err(); err != nil {
			return err
		}
	}
	u, _, err := take(ctx, c, scratch)
	if err != nil {
		return err
	}
	var now int64
	if ks := kinds["us:"]; ks != nil && ks.keys > 0 {
		now += ks.bytes // in acct-0 only when there is one account
	}
	fmt.Fprintf(tw, "us: as one account zset (lex, %d members)\t%d\t%d\t%.1f\t\n", all, now, u, float64(now-u)/float64(all))
	return nil
}

// userListpack copies one user's us: zset with the listpack limit
// raised above its size, and compares.
func userListpack(ctx context.Context, tw io.Writer, c *redis.Client) error {
	old, err := c.ConfigGet(ctx, "zset-max-listpack-entries").Result()
	if err != nil {
		return err
	}
	if err := c.ConfigSet(ctx, "zset-max-listpack-entries", "100000").Err(); err != nil {
		return err
	}
	defer c.ConfigSet(ctx, "zset-max-listpack-entries", old["zset-max-listpack-entries"])
	for _, kind := range []string{"us:"} {
		key := "sg:{acct-0}:" + kind + "user-0"
		m, err := c.ZCard(ctx, key).Result()
		if err != nil {
			return err
		}
		was, err := c.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			return err
		}
		if err := c.ZUnionStore(ctx, scratch, &redis.ZStore{Keys: []string{key}}).Err(); err != nil {
			return err
		}
		lp, enc, err := take(ctx, c, scratch)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%suser-0 as %s (%d members)\t%d\t%d\t%.1f\t\n", kind, enc, m, was, lp, float64(was-lp)/float64(m))
	}
	return nil
}
