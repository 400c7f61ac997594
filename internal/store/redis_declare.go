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

// with returns keys and args followed by d's keys and names. It
// appends in place: a caller that leaves room saves the copies, and
// each call overwrites the last one's tail.
func (d declared) with(k redisKeys, keys []string, args []any) ([]string, []any) {
	args = append(args, len(d.members), len(d.users))
	for _, m := range d.members {
		keys = append(keys, k.sessionOf(m))
		args = append(args, m)
	}
	for _, u := range d.users {
		keys = append(keys, k.userIndex(u))
		args = append(args, u)
	}
	return keys, args
}

// needRounds bounds the runs of one script call: each run is given all
// that the runs before asked for, so only members added meanwhile (the
// user's concurrent logins) ask again.
const needRounds = 32

var errKeysChanging = errors.New("the keys a script needs kept changing")

// runDeclared runs s with d's keys after keys and args, again with the
// keys it asks for, and returns its reply.
func runDeclared(ctx context.Context, sc redis.Scripter, s *redis.Script, k redisKeys, keys []string, args []any, d declared) (any, error) {
	return runDeclaredBy(func(keys []string, args []any) (any, error) {
		return s.Run(ctx, sc, keys, args...).Result()
	}, nil, k, keys, args, d)
}

// runDeclaredBy is runDeclared through run; early, when not nil, gets
// what a run that asked for keys wrote before it asked (the fourth
// value of its reply, when there is one).
func runDeclaredBy(run func(keys []string, args []any) (any, error), early func(any), k redisKeys, keys []string, args []any, d declared) (any, error) {
	for range needRounds {
		kk, aa := d.with(k, keys, args)
		v, err := run(kk, aa)
		if err != nil {
			return nil, err
		}
		members, users, ok := needReply(v)
		if !ok {
			return v, nil
		}
		if a := v.([]any); early != nil && len(a) > 3 {
			early(a[3])
		}
		d.add(members, users)
	}
	return nil, errKeysChanging
}

// needReply decodes a script's request for keys: {-1, members, users}
// and, from a script that wrote before it asked, what it wrote.
func needReply(v any) (members, users []string, ok bool) {
	a, _ := v.([]any)
	if len(a) < 3 || len(a) > 4 {
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

// usersOf reads the users of members' records in one round trip, so
// that a script that needs their indexes is given them at once.
func usersOf(ctx context.Context, c redis.Cmdable, k redisKeys, members []string) ([]string, error) {
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			p.HGet(ctx, k.sessionOf(m), "u")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var users []string
	for _, c := range cmds {
		if u, err := c.(*redis.StringCmd).Result(); err == nil {
			users = appendNew(users, []string{u})
		}
	}
	return users, nil
}
