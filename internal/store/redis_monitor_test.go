package store_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// scriptRun is one script execution seen through MONITOR: the script's
// SHA1, its KEYS and the commands it ran.
type scriptRun struct {
	sha  string
	keys []string
	cmds [][]string
}

// watchScripts records, through MONITOR on addr, the script executions
// until the returned stop is called.
func watchScripts(t *testing.T, addr string) (stop func() []scriptRun) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := bufio.NewReaderSize(conn, 1<<20)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("MONITOR: %q %v", line, err)
	}
	const marker = "end-of-watch"
	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	return func() []scriptRun {
		t.Helper()
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		if err := c.Echo(context.Background(), marker).Err(); err != nil {
			t.Fatal(err)
		}
		var runs []scriptRun
		for line := range lines {
			src, args := monitorLine(t, line)
			switch {
			case len(args) == 2 && strings.EqualFold(args[0], "echo") && args[1] == marker:
				return runs
			case src == "lua" && len(runs) > 0:
				runs[len(runs)-1].cmds = append(runs[len(runs)-1].cmds, args)
			case len(args) >= 3 && (strings.EqualFold(args[0], "evalsha") || strings.EqualFold(args[0], "eval")):
				sha := args[1]
				if strings.EqualFold(args[0], "eval") {
					sum := sha1.Sum([]byte(args[1]))
					sha = hex.EncodeToString(sum[:])
				}
				n, _ := strconv.Atoi(args[2])
				runs = append(runs, scriptRun{sha: sha, keys: args[3 : 3+n]})
			}
		}
		t.Fatal("MONITOR ended before the end of the watch")
		return nil
	}
}

// monitorLine parses `+<time> [<db> <source>] "arg" "arg" ...`.
func monitorLine(t *testing.T, line string) (src string, args []string) {
	_, rest, ok := strings.Cut(line, " [")
	if !ok {
		return "", nil
	}
	who, rest, _ := strings.Cut(rest, "] ")
	_, src, _ = strings.Cut(who, " ")
	rest = strings.TrimRight(rest, "\r\n")
	for rest != "" {
		if rest[0] == ' ' {
			rest = rest[1:]
			continue
		}
		q := strings.Index(rest[1:], "\"")
		for q >= 0 && escaped(rest[1:], q) {
			q += 1 + strings.Index(rest[q+2:], "\"")
		}
		s, err := strconv.Unquote(rest[:q+2])
		if err != nil {
			t.Fatalf("MONITOR argument %q: %v", rest[:q+2], err)
		}
		args = append(args, s)
		rest = rest[q+2:]
	}
	return src, args
}

// escaped reports whether the quote at s[i] follows an odd number of
// backslashes.
func escaped(s string, i int) bool {
	n := 0
	for i > 0 && s[i-1] == '\\' {
		n++
		i--
	}
	return n%2 == 1
}

// undeclared returns the keys the commands of the runs of scripts shas
// touched that were not in their KEYS, as "command key".
func undeclared(t *testing.T, c *redis.Client, runs []scriptRun, shas []string) []string {
	t.Helper()
	var out []string
	for _, run := range runs {
		if !slices.Contains(shas, run.sha) {
			continue
		}
		for _, cmd := range run.cmds {
			a := make([]any, len(cmd))
			for i, s := range cmd {
				a[i] = s
			}
			keys, err := c.CommandGetKeys(context.Background(), a...).Result()
			if err != nil && !strings.Contains(err.Error(), "no key arguments") {
				t.Fatalf("COMMAND GETKEYS %q: %v", cmd, err)
			}
			for _, k := range keys {
				if !slices.Contains(run.keys, k) {
					out = append(out, cmd[0]+" "+k)
				}
			}
		}
	}
	return out
}
