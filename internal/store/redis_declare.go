package store

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Declared keys. Redis runs a script correctly only on the keys it is
// given in KEYS (in Cluster, and as its documentation requires
// everywhere), so no script builds a key name: the session keys of index
// members and the per-user indexes of users it may touch come in KEYS,
// after its fixed ones, and their names in ARGV, after its fixed
// arguments (declare in redis_scripts.go). A script that meets one it
// was not given, such as a member it read from an index, answers
// {-1, {members}, {users}} before it writes anything, and runs again
// with them.

// declared are the members and users whose keys a script is given.
type declared struct{ members, users []string }

// add adds members and users not declared yet.
func (d *declared) add(members, users []string) {
	d.members = appendNew(d.members, members)
	d.users = appendNew(d.users, users)
}

func appendNew(to, more []string) []string {
	for _, s := range more {
		found := false
		for _, t := range to {
			found = found || t == s
		}
		if !found {
			to = append(to, s)
		}
	}
	return to
}

// with returns keys and args followed by d's keys and names.
func (d declared) with(k redisKeys, keys []string, args []any) ([]string, []any) {
	kk := make([]string, len(keys), len(keys)+len(d.members)+len(d.users))
	copy(kk, keys)
	aa := make([]any, len(args), len(args)+2+len(d.members)+len(d.users))
	copy(aa, args)
	aa = append(aa, len(d.members), len(d.users))
	for _, m := range d.members {
		kk = append(kk, k.sessionPrefix()+m)
		aa = append(aa, m)
	}
	for _, u := range d.users {
		kk = append(kk, k.userIndex(u))
		aa = append(aa, u)
	}
	return kk, aa
}

// needRounds bounds the runs of one script call: each run is given all
// that the runs before asked for, so only concurrent writes ask again.
const needRounds = 4

var errKeysChanging = errors.New("the keys a script needs kept changing")

// runDeclared runs s with d's keys after keys and args, again with the
// keys it asks for, and returns its reply.
func runDeclared(ctx context.Context, sc redis.Scripter, s *redis.Script, k redisKeys, keys []string, args []any, d declared) (any, error) {
	run := func(kk []string, aa []any) *redis.Cmd { return s.Run(ctx, sc, kk, aa...) }
	return runDeclaredWith(run, k, keys, args, d)
}

// runDeclaredWith is runDeclared with each run made by run (the batcher's,
// for instance).
func runDeclaredWith(run func(keys []string, args []any) *redis.Cmd, k redisKeys, keys []string, args []any, d declared) (any, error) {
	for range needRounds {
		kk, aa := d.with(k, keys, args)
		v, err := run(kk, aa).Result()
		if err != nil {
			return nil, err
		}
		members, users, ok := needReply(v)
		if !ok {
			return v, nil
		}
		d.add(members, users)
	}
	return nil, errKeysChanging
}

// needReply decodes a script's request for keys: {-1, members, users}.
func needReply(v any) (members, users []string, ok bool) {
	a, _ := v.([]any)
	if len(a) != 3 {
		return nil, nil, false
	}
	if n, isInt := a[0].(int64); !isInt || n != -1 {
		return nil, nil, false
	}
	ms, _ := a[1].([]any)
	us, _ := a[2].([]any)
	for _, m := range ms {
		members = append(members, asString(m))
	}
	for _, u := range us {
		users = append(users, asString(u))
	}
	return members, users, true
}
