package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// usecKey is the key under which commandStats reports the microseconds
// Redis spent running scripts (EVAL, EVALSHA and their read-only forms),
// inner commands included.
const usecKey = "\x00usec"

// cpuKey is the key under which commandStats reports the CPU time of
// redis-server (INFO cpu used_cpu_sys + used_cpu_user), in microseconds:
// on a machine shared with the gateway, CPU that the gateway, the
// upstream and the load generator do not get.
const cpuKey = "\x00cpu"

// commandStats returns the number of calls of every command, from INFO
// commandstats, without INFO itself, and the script time under usecKey.
func commandStats(ctx context.Context, c *redis.Client) (map[string]int64, error) {
	info, err := c.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats cpu: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_sys" || name == "used_cpu_user") {
			if sec, err := strconv.ParseFloat(rest, 64); err == nil {
				out[cpuKey] += int64(sec * 1e6)
			}
			continue
		}
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" {
			continue
		}
		calls, rest, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("INFO commandstats: bad line %q", line)
		}
		out[name] = n
		if strings.HasPrefix(name, "eval") {
			usec, _, _ := strings.Cut(strings.TrimPrefix(rest, "usec="), ",")
			if u, err := strconv.ParseInt(usec, 10, 64); err == nil {
				out[usecKey] += u
			}
		}
	}
	return out, nil
}

// delta returns after - before per command, dropping zeros, and the sum.
func delta(before, after map[string]int64) (map[string]int64, int64) {
	d := map[string]int64{}
	var sum int64
	for k, v := range after {
		if k == usecKey || k == cpuKey {
			continue
		}
		if n := v - before[k]; n > 0 {
			d[k] = n
			sum += n
		}
	}
	return d, sum
}

// monitorSample counts, through MONITOR, the commands clients send
// (top-level: one round trip each) and the commands scripts run inside
// Redis (logged as "[db lua]"), until stop is called. INFO commandstats
// counts both kinds alike; this sample tells them apart.
type monitorSample struct {
	conn net.Conn
	done chan struct{}
	seen map[string]*[2]int64 // command name -> [top-level, inside scripts]
}

func startMonitor(addr string) (*monitorSample, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("MONITOR: %w", err)
	}
	if _, err := io.WriteString(conn, "MONITOR\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("MONITOR: %w", err)
	}
	m := &monitorSample{conn: conn, done: make(chan struct{}), seen: map[string]*[2]int64{}}
	r := bufio.NewReaderSize(conn, 1<<16)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		conn.Close()
		return nil, fmt.Errorf("MONITOR: unexpected answer %q (%v)", line, err)
	}
	go func() {
		defer close(m.done)
		for {
			line, err := r.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				for err == bufio.ErrBufferFull { // an overlong line: skip the rest
					_, err = r.ReadSlice('\n')
				}
				continue
			}
			if err != nil {
				return
			}
			// +1700000000.123456 [0 127.0.0.1:50000] "evalsha" ...
			// +1700000000.123456 [0 lua] "hget" ...
			_, rest, ok := bytes.Cut(line, []byte(" ["))
			if !ok {
				continue
			}
			src, rest, _ := bytes.Cut(rest, []byte("] \""))
			name, _, _ := bytes.Cut(rest, []byte("\""))
			c := m.seen[strings.ToLower(string(name))]
			if c == nil {
				c = new([2]int64)
				m.seen[strings.ToLower(string(name))] = c
			}
			if bytes.HasSuffix(src, []byte(" lua")) {
				c[1]++
			} else {
				c[0]++
			}
		}
	}()
	return m, nil
}

// stop ends the sample and returns, per command name, the share of its
// calls that clients sent (the rest ran inside scripts).
func (m *monitorSample) stop() map[string]float64 {
	m.conn.Close()
	<-m.done
	out := make(map[string]float64, len(m.seen))
	for name, c := range m.seen {
		out[name] = float64(c[0]) / float64(c[0]+c[1])
	}
	return out
}

// roundTrips returns how many of the commands in cmds were sent by
// clients, given the per-command shares of a MONITOR sample; a command
// the sample did not see counts as sent by a client.
func roundTrips(cmds map[string]int64, share map[string]float64) float64 {
	var n float64
	for name, calls := range cmds {
		s, ok := share[name]
		if !ok {
			s = 1
		}
		n += float64(calls) * s
	}
	return n
}
