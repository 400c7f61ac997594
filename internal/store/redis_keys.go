package store

import "strings"

// Key layout of the Redis store. Every key of one account carries the
// same hash tag, {<esc(account)>}, so that all of them live in one Redis
// Cluster slot. That is what lets each operation be a single Lua script.
// Every script is given each key it touches in KEYS, as Redis requires:
// the keys of sessions found in an index and the indexes of their users
// too (redis_declare.go); no script builds a key name.
//
//	<prefix>:{<acct>}:s:<hash>  hash   one session (fields: see redis_scripts.go)
//	<prefix>:{<acct>}:ord       zset   esc(session hash) -> login time, ms (redis_page.go)
//	<prefix>:{<acct>}:us:<user> zset   esc(session hash) -> live until, ms (redis_page.go, redis_limit.go)
//	<prefix>:{<acct>}:pol       hash   override: idle_ms, abs_ms (absent = inherit)
//	<prefix>:{<acct>}:cut       string account revocation cutoff, ms
//	<prefix>:{<acct>}:uc:<user> string user revocation cutoff, ms
//	<prefix>:{<acct>}:audit     stream audit events (t, type, actor, data)
//	<prefix>:{~<hash>}:o        hash   opaque cookie session -> account, user (redis_opaque.go)
//	<prefix>:{~secret}:<name>   string gateway secret (redis_opaque.go)
//	<prefix>:{<acct>}:ev        stream lifecycle events (redis_events.go)
//	<prefix>:{~ev}:accts        zset   accounts with events to deliver (redis_outbox.go)
//	<prefix>:{<acct>}:dl        zset   live session -> next deadline, ms (redis_sweep.go)
//	<prefix>:{~due}             zset   account -> its earliest deadline, lower bound (redis_sweep.go)
//	<prefix>:{<acct>}:rv        hash   revocation generation: n, g, t, by (redis_revoke.go)
//	<prefix>:{<acct>}:rq:<id>   zset   sessions a revocation ended, to record (redis_revoke.go)
//	<prefix>:{<acct>}:rqs       zset   queue id -> when made, ms: the queues left (redis_revoke.go)
//	<prefix>:{~rq}              zset   account -> when last queued, ms: accounts with queues (redis_revoke.go)
//
// <acct>, <user> and <hash> are esc()aped, so no user-controlled text can
// close the hash tag, add a separator or form a glob pattern.

// keyEscape returns s with every byte outside [A-Za-z0-9._-] written as
// %XX (upper-case hex), '%' included, which makes it injective. The
// result never contains '{', '}', ':', glob characters, whitespace or
// control bytes. The empty string becomes a lone "%", which no non-empty
// input produces; it keeps the hash tag of an empty account non-empty
// (Redis Cluster hashes the whole key name when the tag is "{}").
func keyEscape(s string) string {
	if s == "" {
		return "%"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !keySafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keySafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// keyUnescape inverts keyEscape; ok is false for text keyEscape cannot
// have produced.
func keyUnescape(s string) (string, bool) {
	if s == "%" {
		return "", true
	}
	if !strings.Contains(s, "%") {
		for i := 0; i < len(s); i++ {
			if !keySafe(s[i]) {
				return "", false
			}
		}
		return s, s != ""
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		case keySafe(c):
			b = append(b, c)
		default:
			return "", false
		}
	}
	return string(b), true
}

func keySafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// cleanPrefix makes a configured key prefix safe to put in front of a hash
// tag: braces would make Redis Cluster pick the wrong tag, so they are
// percent-encoded; everything else (e.g. "app:sg") is kept. An empty
// prefix becomes "sg".
func cleanPrefix(p string) string {
	if p == "" {
		return "sg"
	}
	p = strings.ReplaceAll(p, "%", "%25")
	p = strings.ReplaceAll(p, "{", "%7B")
	return strings.ReplaceAll(p, "}", "%7D")
}

// redisKeys names the keys of one account.
type redisKeys struct {
	base string // "<prefix>:{<esc(account)>}:"
}

func accountKeys(prefix, account string) redisKeys { return escapedKeys(prefix, keyEscape(account)) }

// escapedKeys names the keys of an account given keyEscape()d, as the
// event and sweep sets hold it.
func escapedKeys(prefix, esc string) redisKeys { return redisKeys{base: prefix + ":{" + esc + "}:"} }

// sessionOf is the key of the session of an index member.
func (k redisKeys) sessionOf(m string) string { return k.base + "s:" + m }

// member is the index member of a session hash.
func member(hash string) string { return keyEscape(hash) }

func (k redisKeys) session(hash string) string { return k.base + "s:" + member(hash) }
func (k redisKeys) override() string           { return k.base + "pol" }
func (k redisKeys) cutoff() string             { return k.base + "cut" }
func (k redisKeys) userCutoff(user string) string {
	return k.base + "uc:" + keyEscape(user)
}
func (k redisKeys) audit() string { return k.base + "audit" }
func (k redisKeys) order() string { return k.base + "ord" }

// events is the account's lifecycle event stream (redis_events.go).
func (k redisKeys) events() string { return k.base + "ev" }

// deadlines is the account's deadline index: esc(session hash) -> next
// deadline, ms, of live sessions (redis_sweep.go).
func (k redisKeys) deadlines() string { return k.base + "dl" }

// revocation is the account's revocation generation (redis_revoke.go).
func (k redisKeys) revocation() string { return k.base + "rv" }

// revokedQueue holds the sessions a revocation of the account ended,
// until they are recorded (redis_revoke.go); id names the revocation.
func (k redisKeys) revokedQueue(id string) string { return k.base + "rq:" + id }

// revokedQueues lists the account's revocation queues left to record:
// id -> when made, ms.
func (k redisKeys) revokedQueues() string { return k.base + "rqs" }

// revokedQueues is the zset of accounts with revocation queues left to
// record: esc(account) -> when last queued, ms.
func revokedQueues(prefix string) string { return prefix + ":{~rq}" }

// dueAccounts is the zset of accounts -> a lower bound of their earliest
// session deadline, ms (redis_sweep.go).
func dueAccounts(prefix string) string { return prefix + ":{~due}" }

// eventAccounts is the zset of accounts whose event streams may hold
// undelivered events: esc(account) -> when an event was last written, ms
// (redis_outbox.go).
func eventAccounts(prefix string) string { return prefix + ":{~ev}:accts" }
