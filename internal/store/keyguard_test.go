package store_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/testredis"
)

// The key guard checks that the store's Lua scripts touch only the keys
// they declare in KEYS: Redis documents any other access as unsupported
// (and Redis Cluster only tolerates it within the declared keys' slot).
// Installed as a go-redis hook, it turns every EVALSHA and EVAL of a
// known script into an EVAL of guardPrelude + the script. The prelude
// shadows `redis` so that each call first checks its key arguments;
// an undeclared key (or a command it cannot classify) is published on
// guardChannel and the call then runs as it would have, so that one run
// of a suite lists every violation, not just the first.

// guardChannel is where guarded scripts report their violations.
const guardChannel = "sg-keyguard"

// guardKeyArgs says where each command the scripts call has its keys,
// as positions in redis.call's arguments (1 is the command): from, to;
// to 0 means to the last argument; from 0 means no key.
var guardKeyArgs = map[string][2]int{
	"TIME": {}, "PUBLISH": {}, "WAIT": {}, "PING": {},
	"DEL": {2, 0}, "UNLINK": {2, 0}, "EXISTS": {2, 0}, "TOUCH": {2, 0},
	"RENAME": {2, 3}, "RENAMENX": {2, 3},
	"XINFO": {3, 3}, "XGROUP": {3, 3},
	"GET": {2, 2}, "SET": {2, 2}, "INCR": {2, 2}, "INCRBY": {2, 2}, "TYPE": {2, 2},
	"PEXPIRE": {2, 2}, "EXPIRE": {2, 2}, "PEXPIREAT": {2, 2}, "PERSIST": {2, 2}, "PTTL": {2, 2}, "TTL": {2, 2},
	"HGET": {2, 2}, "HMGET": {2, 2}, "HSET": {2, 2}, "HDEL": {2, 2}, "HINCRBY": {2, 2}, "HEXISTS": {2, 2}, "HGETALL": {2, 2},
	"ZADD": {2, 2}, "ZREM": {2, 2}, "ZRANGE": {2, 2}, "ZRANGEBYSCORE": {2, 2}, "ZREVRANGE": {2, 2},
	"ZREVRANGEBYSCORE": {2, 2}, "ZREMRANGEBYSCORE": {2, 2}, "ZREMRANGEBYRANK": {2, 2}, "ZSCORE": {2, 2},
	"ZRANK": {2, 2}, "ZCOUNT": {2, 2}, "ZCARD": {2, 2}, "ZSCAN": {2, 2}, "ZPOPMIN": {2, 2}, "ZINCRBY": {2, 2},
	"XADD": {2, 2}, "XLEN": {2, 2}, "XTRIM": {2, 2}, "XACK": {2, 2}, "XDEL": {2, 2}, "XRANGE": {2, 2}, "XREVRANGE": {2, 2},
	"LPUSH": {2, 2}, "RPUSH": {2, 2}, "LRANGE": {2, 2}, "LREM": {2, 2}, "LTRIM": {2, 2},
	"SADD": {2, 2}, "SREM": {2, 2}, "SMEMBERS": {2, 2}, "SISMEMBER": {2, 2},
}

// guardPreludeFmt is the prelude, %s the key table, the script's name
// and the channel. It is joined into one line, so that the script's
// line numbers stay those of its source.
const guardPreludeFmt = `
local redis = (function(real, K, script, chan)
  local declared = {}
  for _, k in ipairs(KEYS) do declared[k] = true end
  local function report(cmd, what) real.call('PUBLISH', chan, script .. '\t' .. cmd .. '\t' .. what) end
  local function check(...)
    local a = {...}
    local cmd = string.upper(tostring(a[1]))
    local p = K[cmd]
    if p == nil then report(cmd, '?unknown command') return end
    if p[1] == 0 then return end
    local last = p[2]
    if last == 0 then last = #a end
    for i = p[1], last do
      if a[i] ~= nil and not declared[tostring(a[i])] then report(cmd, tostring(a[i])) end
    end
  end
  local g = setmetatable({}, {__index = real})
  g.call = function(...) check(...) return real.call(...) end
  g.pcall = function(...) check(...) return real.pcall(...) end
  return g
end)(redis, {%s}, '%s', '%s');`

// guardPrelude returns the one-line prelude for the script named name.
func guardPrelude(name string) string {
	cmds := make([]string, 0, len(guardKeyArgs))
	for c, p := range guardKeyArgs {
		cmds = append(cmds, fmt.Sprintf("%s={%d,%d}", c, p[0], p[1]))
	}
	sort.Strings(cmds)
	src := fmt.Sprintf(guardPreludeFmt, strings.Join(cmds, ","), name, guardChannel)
	return strings.Join(strings.Fields(src), " ") + " "
}

// keyGuard rewrites the scripts it knows, by SHA1, and gathers what the
// guarded runs report.
type keyGuard struct {
	scripts map[string]string // sha1 hex -> name
	guarded map[string]string // sha1 hex -> prelude + source
	// isGuarded holds the SHA1s of the guarded sources: an EVAL of one
	// passes as it is.
	isGuarded map[string]bool

	mu         sync.Mutex
	ran        map[string]bool            // names of the scripts that ran guarded
	violations map[string]map[string]bool // "script\tCMD\tkey kind" -> labels of the servers
	unknown    map[string]bool            // scripts run that the guard does not know
	marks      map[string]chan struct{}
}

// newKeyGuard knows every script of the package's sources.
func newKeyGuard(t *testing.T) *keyGuard {
	t.Helper()
	g := &keyGuard{scripts: map[string]string{}, guarded: map[string]string{}, isGuarded: map[string]bool{}, ran: map[string]bool{},
		violations: map[string]map[string]bool{}, unknown: map[string]bool{}, marks: map[string]chan struct{}{}}
	srcs, err := packageScripts(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Fatal("no redis.NewScript found in the package sources")
	}
	for name, src := range srcs {
		g.add(name, src)
	}
	return g
}

func (g *keyGuard) add(name, src string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sum := sha1.Sum([]byte(src))
	h := hex.EncodeToString(sum[:])
	g.scripts[h] = name
	g.guarded[h] = guardPrelude(name) + src
	sum = sha1.Sum([]byte(g.guarded[h]))
	g.isGuarded[hex.EncodeToString(sum[:])] = true
}

// notRun lists the scripts the guard knows that never ran guarded.
func (g *keyGuard) notRun() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var l []string
	for _, n := range g.scripts {
		if !g.ran[n] {
			l = append(l, n)
		}
	}
	sort.Strings(l)
	return l
}

// install hooks the guard into client, a new one, and subscribes to
// what guarded scripts on its server report; label names the server in
// the report.
func (g *keyGuard) install(t *testing.T, client redis.UniversalClient, label string) {
	t.Helper()
	if cc, ok := client.(*redis.ClusterClient); ok {
		// A revocation runs on a connection of the master's own client
		// (redis_wait.go), which the cluster client's hooks do not see.
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(g) })
	}
	sub := client.Subscribe(context.Background(), guardChannel)
	if _, err := sub.Receive(context.Background()); err != nil { // the subscription is in place
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.Channel(redis.WithChannelSize(1000)) {
			g.received(label, m.Payload)
		}
	}()
	t.Cleanup(func() {
		_ = sub.Close()
		<-done
	})
	client.AddHook(g)
}

// received records one report of a guarded script, or a mark of sync.
func (g *keyGuard) received(label, p string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch, ok := g.marks[p]; ok {
		close(ch)
		delete(g.marks, p)
		return
	}
	f := strings.SplitN(p, "\t", 3)
	if len(f) != 3 {
		f = []string{"?", "?", "?unparsed report " + strconv.Quote(p)}
	}
	if !strings.HasPrefix(f[2], "?") {
		f[2] = keyKind(f[2])
	}
	v := strings.Join(f, "\t")
	if g.violations[v] == nil {
		g.violations[v] = map[string]bool{}
	}
	g.violations[v][label] = true
}

// sync waits until every report published on client's server before it
// has been received: a mark published after them arrives after them.
func (g *keyGuard) sync(t *testing.T, client redis.UniversalClient) {
	t.Helper()
	mark := fmt.Sprintf("mark %p %d", g, time.Now().UnixNano())
	ch := make(chan struct{})
	g.mu.Lock()
	g.marks[mark] = ch
	g.mu.Unlock()
	if err := client.Publish(context.Background(), guardChannel, mark).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the guard's subscription never received its mark")
	}
}

// evalshaCalls is how many EVALSHA the server of client has run: none
// when every script went through the guard, which sends EVAL.
func evalshaCalls(t *testing.T, client redis.UniversalClient) int {
	t.Helper()
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_evalsha:calls=")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	if err != nil {
		t.Fatalf("commandstats: %v", err)
	}
	return n
}

// rewrite turns an EVALSHA or EVAL of a known script into an EVAL of its
// guarded source, in place (Args is the command's own slice).
func (g *keyGuard) rewrite(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 {
		return
	}
	name, _ := args[0].(string)
	body, _ := args[1].(string)
	h, what := strings.ToLower(body), "sha1 "+body
	switch strings.ToLower(name) {
	case "evalsha", "evalsha_ro":
	case "eval", "eval_ro":
		sum := sha1.Sum([]byte(body))
		h, what = hex.EncodeToString(sum[:]), firstLine(body)
	default:
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	src, ok := g.guarded[h]
	if !ok {
		if !g.isGuarded[h] {
			g.unknown[what] = true
		}
		return
	}
	g.ran[g.scripts[h]] = true
	args[0] = "eval"
	if strings.HasSuffix(strings.ToLower(name), "_ro") {
		args[0] = "eval_ro"
	}
	args[1] = src
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func (g *keyGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *keyGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		g.rewrite(cmd)
		return next(ctx, cmd)
	}
}

func (g *keyGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			g.rewrite(c)
		}
		return next(ctx, cmds)
	}
}

// keyKind names the kind of a key of the layout in redis_keys.go, its
// prefix dropped and its variable parts named: "{<acct>}:s:<hash>".
func keyKind(key string) string {
	i := strings.IndexByte(key, '{')
	j := strings.IndexByte(key, '}')
	if i < 0 || j < i {
		return "unparsed key " + strconv.Quote(key)
	}
	tag, rest := key[i+1:j], key[j+1:]
	switch f := strings.Split(tag, "~"); {
	case !strings.HasPrefix(tag, "~"):
		tag = "<acct>"
	case len(f) == 3:
		tag = "~" + f[1] + "~<id>"
	case tag == "~rq" || tag == "~due" || tag == "~ev" || tag == "~secret":
	default:
		tag = "~<hash>"
	}
	for _, v := range []struct{ p, name string }{{":s:", "<hash>"}, {":us:", "<user>"}, {":uc:", "<user>"}, {":rq:", "<id>"}, {":ack:", "<nonce>"}} {
		if strings.HasPrefix(rest, v.p) {
			rest = v.p + v.name
		}
	}
	if tag == "~secret" {
		rest = ":<name>"
	}
	return "{" + tag + "}" + rest
}

// report fails t with every distinct violation and unknown script seen.
func (g *keyGuard) report(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range sortedKeys(g.unknown) {
		t.Errorf("a script the guard does not know ran unguarded: %s", l)
	}
	v := g.violationList()
	if len(v) == 0 {
		return
	}
	t.Errorf("%d distinct accesses to keys not in KEYS (script, command, key):\n\t%s",
		len(v), strings.Join(v, "\n\t"))
}

// violationList lists the distinct violations, each with the servers
// it was seen on; g.mu is held.
func (g *keyGuard) violationList() []string {
	l := make([]string, 0, len(g.violations))
	for v, labels := range g.violations {
		l = append(l, v+"\t("+strings.Join(sortedKeys(labels), ", ")+")")
	}
	sort.Strings(l)
	return l
}

func sortedKeys(m map[string]bool) []string {
	l := make([]string, 0, len(m))
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

// packageScripts returns the source of every redis.NewScript of the
// non-test Go files in dir, by the name of the variable it is assigned
// to. The sources are constant expressions: string literals, constants
// and their concatenations.
func packageScripts(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	consts := map[string]ast.Expr{}
	scripts := map[string]ast.Expr{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		collectSpecs(af, consts, scripts)
	}
	out := map[string]string{}
	for name, e := range scripts {
		src, err := constString(e, consts, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = src
	}
	return out, nil
}

// collectSpecs files the package-level value specs of af: constants by
// name, and the arguments of redis.NewScript by the variable's name.
func collectSpecs(af *ast.File, consts, scripts map[string]ast.Expr) {
	for _, d := range af.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range gd.Specs {
			vs, ok := s.(*ast.ValueSpec)
			if !ok || len(vs.Names) != len(vs.Values) {
				continue
			}
			for i, n := range vs.Names {
				if gd.Tok == token.CONST {
					consts[n.Name] = vs.Values[i]
				}
				if call, ok := vs.Values[i].(*ast.CallExpr); ok && isNewScript(call) && len(call.Args) == 1 {
					scripts[n.Name] = call.Args[0]
				}
			}
		}
	}
}

func isNewScript(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "NewScript" {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "redis"
}

// constString evaluates a string constant expression.
func constString(e ast.Expr, consts map[string]ast.Expr, depth int) (string, error) {
	if depth > 50 {
		return "", fmt.Errorf("constants nest too deep")
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", fmt.Errorf("not a string: %s", e.Value)
		}
		return strconv.Unquote(e.Value)
	case *ast.ParenExpr:
		return constString(e.X, consts, depth+1)
	case *ast.Ident:
		c, ok := consts[e.Name]
		if !ok {
			return "", fmt.Errorf("no package constant %s", e.Name)
		}
		return constString(c, consts, depth+1)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", fmt.Errorf("operator %s", e.Op)
		}
		a, err := constString(e.X, consts, depth+1)
		if err != nil {
			return "", err
		}
		b, err := constString(e.Y, consts, depth+1)
		return a + b, err
	}
	return "", fmt.Errorf("not a constant string expression: %T", e)
}

// TestKeyGuard: the guard reports each access of a script to a key it
// did not declare, and a command it cannot classify, whether the script
// runs by EVALSHA, EVAL or in a pipeline; it lets declared accesses
// pass, changes no result, keeps line numbers, and reports a script it
// does not know, which alone reaches the server as EVALSHA.
func TestKeyGuard(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	g := newKeyGuard(t)
	g.install(t, client, "single")
	ctx := context.Background()
	declared := `redis.call('SET', KEYS[1], ARGV[1]) return redis.status_reply(redis.call('GET', KEYS[1]))`
	undeclared := `redis.call('SET', 'p:{a}:s:x', ARGV[1])
return redis.call('DEL', KEYS[1], 'p:{a}:us:bob')`
	pipelined := `return redis.pcall('HGET', ARGV[1], 'f')`
	unclassified := `return redis.call('OBJECT', 'ENCODING', KEYS[1])`
	failing := "local n = #KEYS\nerror('no ' .. KEYS[1] .. ' ' .. n)"
	for name, src := range map[string]string{"declared": declared, "undeclared": undeclared,
		"pipelined": pipelined, "unclassified": unclassified, "failing": failing} {
		g.add(name, src)
	}
	if v, err := redis.NewScript(declared).Run(ctx, client, []string{"p:{a}:cut"}, "7").Text(); err != nil || v != "7" {
		t.Fatalf("declared: %q, %v", v, err)
	}
	if n, err := redis.NewScript(undeclared).Run(ctx, client, []string{"p:{a}:cut"}, "8").Int(); err != nil || n != 1 {
		t.Fatalf("undeclared: %d, %v", n, err)
	}
	if v, err := client.Get(ctx, "p:{a}:s:x").Result(); err != nil || v != "8" {
		t.Fatalf("the undeclared write: %q, %v; the guard must not stop it", v, err)
	}
	pipe := client.Pipeline()
	cmd := redis.NewScript(pipelined).EvalSha(ctx, pipe, nil, "p:{a}:pol")
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		t.Fatalf("pipeline: %v", err)
	}
	if err := cmd.Err(); err != redis.Nil {
		t.Fatalf("pipelined: %v", err)
	}
	if v, err := redis.NewScript(unclassified).Eval(ctx, client, []string{"p:{a}:s:x"}).Text(); err != nil || v == "" {
		t.Fatalf("unclassified: %q, %v", v, err)
	}
	err := redis.NewScript(failing).Run(ctx, client, []string{"p:{a}:cut"}).Err()
	if err == nil || !strings.Contains(err.Error(), "user_script:2: no p:{a}:cut 1") {
		t.Fatalf("failing: %v", err)
	}
	if n := evalshaCalls(t, client); n != 0 {
		t.Fatalf("%d EVALSHA reached the server", n)
	}
	_ = redis.NewScript("return 1").Run(ctx, client, nil).Err()
	if n := evalshaCalls(t, client); n != 1 {
		t.Fatalf("%d EVALSHA reached the server; want the unknown script's", n)
	}
	g.sync(t, client)
	want := []string{
		"pipelined\tHGET\t{<acct>}:pol\t(single)",
		"unclassified\tOBJECT\t?unknown command\t(single)",
		"undeclared\tDEL\t{<acct>}:us:<user>\t(single)",
		"undeclared\tSET\t{<acct>}:s:<hash>\t(single)",
	}
	got := g.violationList()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Script.Run tries EVALSHA, then EVAL: both are reported.
	if u := sortedKeys(g.unknown); len(u) != 2 || u[0] != "return 1" || u[1] != "sha1 e0e1f9fabfc9d4800c877a703b823ac0578ff8db" {
		t.Fatalf("unknown scripts: %q", u)
	}
}
