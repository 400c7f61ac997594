package gatewaytest

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// listening counts the TCP sockets (IPv4 and IPv6: the site binds all
// interfaces) listening on each of ports, from /proc/net; ok is false
// where that cannot be read (not Linux), and then nothing is counted.
func listening(ports ...int) (n map[int]int, ok bool) {
	n = make(map[int]int, len(ports))
	for _, p := range ports {
		n[p] = 0
	}
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if !count(name, n) {
			return nil, false
		}
	}
	return n, true
}

// count adds the listening sockets of the ports in n found in the
// /proc/net table name.
func count(name string, n map[int]int) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st ...; address is HEXIP:HEXPORT,
		// state 0A is LISTEN
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		_, hexPort, found := strings.Cut(fields[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if !found || err != nil {
			continue
		}
		if _, want := n[int(port)]; want {
			n[int(port)]++
		}
	}
	return sc.Err() == nil
}
