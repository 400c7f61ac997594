package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// wrkScript loads the tokens, prebuilds one request per token in each
// thread (so the Lua cost per request is a table lookup), starts each
// thread at a different token, and prints an exact summary line.
const wrkScript = `
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("GET", wrk.path, {["Authorization"] = "Bearer " .. line})
  end
  i = (id * 7919) % #reqs
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SGBENCH %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
`

// wrkGen drives the targets with wrk (https://github.com/wg/wrk).
type wrkGen struct {
	bin, script, tokens string
	threads             int
}

func newWrkGen(bin, dir string, tokens []string) (*wrkGen, error) {
	g := &wrkGen{
		bin:     bin,
		script:  filepath.Join(dir, "tokens.lua"),
		tokens:  filepath.Join(dir, "tokens.txt"),
		threads: max(1, runtime.NumCPU()),
	}
	if err := os.WriteFile(g.script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.tokens, []byte(strings.Join(tokens, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *wrkGen) name() string { return fmt.Sprintf("wrk (%d threads)", g.threads) }

func (g *wrkGen) run(ctx context.Context, url string, conns int, d time.Duration) (result, error) {
	secs := max(1, int((d+time.Second-1)/time.Second))
	if d < time.Second {
		// wrk counts whole seconds; a sub-second -quick run asks for 1s.
		secs = 1
	}
	args := []string{
		"-t", strconv.Itoa(min(g.threads, conns)), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s",
		"-s", g.script, url, "--", g.tokens,
	}
	out, err := exec.CommandContext(ctx, g.bin, args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 7 || f[0] != "SGBENCH" {
			continue
		}
		var n [6]int64
		for i := range n {
			if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				return result{}, fmt.Errorf("wrk: parsing %q: %w", sc.Text(), err)
			}
		}
		res := result{
			requests: n[0],
			elapsed:  time.Duration(n[1]) * time.Microsecond,
			errors:   n[2] + n[3],
			p50:      time.Duration(n[4]) * time.Microsecond,
			p99:      time.Duration(n[5]) * time.Microsecond,
		}
		return res, nil
	}
	return result{}, fmt.Errorf("wrk: no summary line in its output:\n%s", out)
}
