package testprog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// holdconns opens many connections and holds them open.
func holdconns(p *prog) int {
	n := p.Int("n", 100, "connections to open")
	send := p.String("send", "", "send `TEXT` (with Go string escapes) on each connection")
	closed := p.Bool("closed", false, "wait for the server to close every connection")
	until := p.String("until", "", "close them once `FILE` exists")
	dur := p.Duration("for", 30*time.Second, "close them after this long at the latest")
	ready := p.String("ready", "", "write `FILE` once they are open")
	pos, ok := p.parse(1, 1)
	if !ok {
		return 2
	}
	if *n < 1 {
		return p.usage()
	}
	text, err := strconv.Unquote(`"` + strings.ReplaceAll(*send, `"`, `\"`) + `"`)
	if err != nil {
		return p.usagef("-send: %v", err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for len(conns) < *n {
		c, err := net.DialTimeout("tcp", pos[0], 5*time.Second)
		if err != nil {
			fmt.Fprintf(p.stderr, "holdconns: connection %d: %v\n", len(conns)+1, err)
			break
		}
		conns = append(conns, c)
		if text != "" {
			io.WriteString(c, text)
		}
	}
	fmt.Fprintf(p.stdout, "opened=%d\n", len(conns))
	if *ready != "" {
		if err := os.WriteFile(*ready, fmt.Appendf(nil, "%d\n", len(conns)), 0o644); err != nil {
			fmt.Fprintf(p.stderr, "holdconns: %v\n", err)
			return 1
		}
	}
	deadline := time.Now().Add(*dur)
	if *closed {
		return waitClosed(conns, *n, deadline, p.stdout)
	}
	for time.Now().Before(deadline) {
		if *until != "" {
			if _, err := os.Stat(*until); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(conns) < *n {
		return 1
	}
	return 0
}

// waitClosed reads every connection until the server closes it, or
// deadline; it prints how many were closed and the first line the first
// connection got.
func waitClosed(conns []net.Conn, want int, deadline time.Time, stdout io.Writer) int {
	done := make(chan bool, len(conns))
	var first string
	for i, c := range conns {
		c.SetReadDeadline(deadline)
		go func() {
			b, err := io.ReadAll(c)
			if i == 0 {
				first, _, _ = strings.Cut(string(b), "\r\n")
			}
			done <- !errors.Is(err, os.ErrDeadlineExceeded)
		}()
	}
	n := 0
	for range conns {
		if <-done {
			n++
		}
	}
	fmt.Fprintf(stdout, "closed=%d\nfirst: %s\n", n, first)
	if n < want {
		return 1
	}
	return 0
}
