// Package freeport picks free TCP ports for servers that something else
// binds a moment later (Caddy, redis-server). It picks them below the
// kernel's ephemeral range, so that no outgoing connection on the
// machine (a Redis client, an HTTP request) can be given the port between
// the pick and the bind: with port 0 the kernel hands out ports from the
// very range those connections use.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// The range picked from: below Linux's default ephemeral range
// (32768-60999) and above the ports of common services.
const lo, hi = 20000, 32000

// Pick returns n distinct ports that can be listened on at host. All n
// are held open while they are picked.
func Pick(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, errors.New("freeport: no free port found")
		}
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue // taken
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports, nil
}
