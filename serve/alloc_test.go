package serve

import (
	"bufio"
	"net"
	"testing"
)

// The front's allocations per request, counted in the whole process with
// one client (as BenchmarkFront counts them), so that they cannot grow
// unseen: on a kept connection, and on a new connection per request (net's
// Dial in the client makes 15 of those; the front 8: the connection's
// wrappers, its context and its client's address as text, its head and
// the app's answer's as strings; the request's state is the one an ended
// connection left). The race detector's pools
// drop what they are given at random, so the counts hold without it:
// .ci/run runs this test without -race too.
func TestFrontAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without the race detector (.ci/run runs this test so)")
	}
	addr := benchServer(t, rawApp(t, false))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kept := bufio.NewReader(c)
	fresh := bufio.NewReader(nil)
	for _, m := range []struct {
		name string
		max  float64
		req  func() error
	}{
		{"a request on a kept connection", 2, func() error { return keptRequest(c, kept) }},
		{"a request on a new connection, the client's dial included", 23, func() error { return newConnRequest(addr, fresh) }},
	} {
		var err error
		// The fewest of three counts: a goroutine of an earlier test
		// still ending may allocate during one.
		least := -1.0
		for range 3 {
			n := testing.AllocsPerRun(300, func() {
				if e := m.req(); e != nil {
					err = e
				}
			})
			if least < 0 || n < least {
				least = n
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		t.Logf("%s: %v allocations", m.name, least)
		if least > m.max {
			t.Errorf("%s: %v allocations; want %v at most", m.name, least, m.max)
		}
	}
}
