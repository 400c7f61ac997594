package docs_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// command is one logical shell line of an sh block (continuations joined)
// and the comment lines right after it, which show its output.
type command struct {
	where  string
	line   string
	output []string
}

func commands(b block) []command {
	var out []command
	lines := strings.Split(b.text, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		start := i
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(lines[i])
		}
		c := command{where: fmt.Sprintf("%s:%d", b.file, b.line+1+start), line: l}
		for i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "#") {
			i++
			c.output = append(c.output, strings.TrimSpace(lines[i]))
		}
		out = append(out, c)
	}
	return out
}

// words splits a shell line into words: single quotes are literal,
// double quotes and bare words expand $VAR and ${VAR}, an unquoted #
// at the start of a word begins a comment.
func words(line string, vars map[string]string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return vars[k] })
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return out, nil
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unclosed quote in %q", line)
			}
			s := line[i+1 : i+1+end]
			if c == '"' {
				s = expand(s)
			}
			w.WriteString(s)
			inWord = true
			i += end + 1
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t'\"", rune(line[j])) {
				j++
			}
			w.WriteString(expand(line[i:j]))
			inWord = true
			i = j - 1
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out, nil
}

// tokenCmd is the development-token command of the docs; the test mints
// the same token itself.
var tokenCmd = regexp.MustCompile(`\$\(caddy session-guard token ([^)]*)\)`)

func (d *docGateway) mintFromFlags(t *testing.T, flags string) string {
	t.Helper()
	args, err := words(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := devtoken.Claims{Now: d.gw.Clock.Now()}
	for i := 0; i+1 < len(args); i += 2 {
		v := args[i+1]
		switch args[i] {
		case "--sub":
			c.User = v
		case "--acct":
			c.Account = v
		case "--role":
			c.Role = v
		case "--name":
			c.Name = v
		case "--email":
			c.Email = v
		case "--config":
		default:
			t.Fatalf("token flag %q: the docs test does not know it", args[i])
		}
	}
	tok, err := devtoken.Mint([]byte(d.secret), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// docGateway runs the documented example config.
type docGateway struct {
	gw     *gatewaytest.Gateway
	secret string
	vars   map[string]string
}

// curlRequest is what a curl command line asks for.
type curlRequest struct {
	method, url, body string
	headers           []string
}

func parseCurl(args []string) (curlRequest, error) {
	var r curlRequest
	for i := 1; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch a {
		case "-s", "-S", "-sS":
		case "-X":
			r.method, err = next()
		case "-H":
			v, err = next()
			name, val, _ := strings.Cut(v, ":")
			r.headers = append(r.headers, name, strings.TrimSpace(val))
		case "-d":
			r.body, err = next()
		case "-o", "-w":
			_, err = next() // output only
		default:
			if strings.HasPrefix(a, "-") {
				return r, fmt.Errorf("curl flag %q: the docs test does not know it", a)
			}
			if r.url != "" {
				return r, fmt.Errorf("two URLs: %q and %q", r.url, a)
			}
			r.url = a
		}
		if err != nil {
			return r, err
		}
	}
	if r.method == "" {
		r.method = http.MethodGet
		if r.body != "" {
			r.method = http.MethodPost
		}
	}
	return r, nil
}

var (
	statusComment = regexp.MustCompile(`^#\s*(\d{3})\b`)
	varName       = regexp.MustCompile(`^[A-Z_]+$`)
)

// wantStatus is the status the output comment shows: a leading 3-digit
// code, else 200 (the body of a success).
func wantStatus(output []string) int {
	if len(output) > 0 {
		if m := statusComment.FindStringSubmatch(output[0]); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return http.StatusOK
}

// run runs one shell line: variable assignments are recorded, curl is
// sent to the gateway, anything else is skipped.
func (d *docGateway) run(t *testing.T, c command) bool {
	t.Helper()
	line := tokenCmd.ReplaceAllStringFunc(c.line, func(s string) string {
		return d.mintFromFlags(t, tokenCmd.FindStringSubmatch(s)[1])
	})
	if name, val, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && varName.MatchString(name) {
		ws, err := words(val, d.vars)
		if err != nil || len(ws) != 1 {
			t.Fatalf("%s: assignment %q: %v", c.where, line, err)
		}
		d.vars[name] = ws[0]
		return false
	}
	if !strings.HasPrefix(line, "curl ") {
		return false
	}
	args, err := words(line, d.vars)
	if err != nil {
		t.Fatalf("%s: %v", c.where, err)
	}
	req, err := parseCurl(args)
	if err != nil {
		t.Fatalf("%s: %v", c.where, err)
	}
	u := strings.TrimPrefix(req.url, "http://")
	base := d.gw.URL
	switch {
	case strings.HasPrefix(u, "localhost:2019/"):
		base = d.gw.Admin
	case strings.HasPrefix(u, "localhost:8080/"):
	default:
		t.Fatalf("%s: curl to %q: neither the admin endpoint localhost:2019 nor the site localhost:8080", c.where, req.url)
	}
	_, path, _ := strings.Cut(u, "/")
	hr, err := http.NewRequest(req.method, base+"/"+path, strings.NewReader(req.body))
	if err != nil {
		t.Fatalf("%s: %v", c.where, err)
	}
	for i := 0; i+1 < len(req.headers); i += 2 {
		hr.Header.Add(req.headers[i], req.headers[i+1])
	}
	resp, err := d.gw.Client.Do(hr)
	if err != nil {
		t.Fatalf("%s: %v", c.where, err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := wantStatus(c.output); resp.StatusCode != want {
		t.Errorf("%s: %s\ngot %d %s, the docs say %d", c.where, c.line, resp.StatusCode, got, want)
	}
	return true
}

// startDocGateway runs the Caddyfile that docs/admin-api.md says its
// examples ran against (its first caddyfile block), with the admin
// endpoint and the site on free ports.
func startDocGateway(t *testing.T, b block) *docGateway {
	t.Helper()
	global, site, ok := strings.Cut(b.text, "\n}\n")
	if !ok || !strings.HasPrefix(global, "{\n") {
		t.Fatalf("%s: the example Caddyfile does not start with a global options block", b)
	}
	var globals []string
	for _, l := range strings.Split(strings.TrimPrefix(global, "{\n"), "\n") {
		switch strings.Fields(l + " x")[0] {
		case "admin", "http_port", "auto_https": // set by the harness
		default:
			globals = append(globals, l)
		}
	}
	site = strings.Replace(site, ":8080 {", "{SITE} {", 1)
	if !strings.Contains(site, "{SITE}") {
		t.Fatalf("%s: the example Caddyfile has no :8080 site", b)
	}
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &docGateway{gw: gatewaytest.Start(t, strings.Join(globals, "\n"), site, start), vars: map[string]string{}}
}

// TestAdminAPICurlExamples runs every curl example of docs/admin-api.md
// (then those of the README) against a gateway with the documented config and checks the status
// each example shows (a leading status code in the output comment, else
// 200). Sessions of alice (an owner) and bob ("bob-phone") exist first.
func TestAdminAPICurlExamples(t *testing.T) {
	const file = "admin-api.md"
	blocks := fencedBlocks(t, file)
	var cfg *block
	for i := range blocks {
		if blocks[i].lang == "caddyfile" {
			cfg = &blocks[i]
			break
		}
	}
	if cfg == nil {
		t.Fatal("admin-api.md has no example Caddyfile")
	}
	var cmds []command
	// the README's short tour of the admin API runs after the reference
	for _, b := range append(blocks, fencedBlocks(t, "../README.md")...) {
		if b.lang == "sh" {
			cmds = append(cmds, commands(b)...)
		}
	}
	// the secret the docs export, before the gateway reads it
	const export = "export SESSION_JWT_SECRET="
	var secret string
	for _, c := range cmds {
		if v, ok := strings.CutPrefix(c.line, export); ok {
			secret = v
		}
	}
	if secret == "" {
		t.Fatalf("admin-api.md does not export SESSION_JWT_SECRET")
	}
	t.Setenv("SESSION_JWT_SECRET", secret)
	d := startDocGateway(t, *cfg)
	d.secret = secret
	for _, sess := range []devtoken.Claims{
		{User: "alice", Account: "acme", Role: "owner", Name: "Alice Doe", Email: "alice@example.com"},
		{User: "bob", Account: "acme", Session: "bob-phone"},
	} {
		sess.Now = d.gw.Clock.Now()
		tok, err := devtoken.Mint([]byte(secret), sess)
		if err != nil {
			t.Fatal(err)
		}
		if r := d.gw.Do(t, http.MethodGet, "/", tok, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("seeding session of %s: %d %s", sess.User, r.StatusCode, r.Body)
		}
	}
	ran := 0
	for _, c := range cmds {
		if d.run(t, c) {
			ran++
		}
	}
	if ran < 25 {
		t.Fatalf("ran only %d curl examples", ran)
	}
	t.Logf("ran %d curl examples", ran)
}
