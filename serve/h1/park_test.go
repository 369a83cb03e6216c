package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"gsup/internal/testprog"
)

// waitParked waits until n connections of s are parked.
func waitParked(t *testing.T, s *Server, n int) {
	t.Helper()
	testprog.Eventually(t, fmt.Sprintf("%d connections parked", n), 10*time.Second, func() (bool, string) {
		got := s.park.parked()
		return got == n, fmt.Sprint(got, " parked")
	})
}

// waitCrowdParked waits until all but parkCrowd of n idle connections
// of s are parked (after crowdWait).
func waitCrowdParked(t *testing.T, s *Server, n int) {
	t.Helper()
	testprog.Eventually(t, "the crowd parked", 10*time.Second, func() (bool, string) {
		got := s.park.parked()
		return got >= n-parkCrowd, fmt.Sprint(got, " parked")
	})
}

// parkedTwice serves s and returns a connection that was parked after
// its first request, taken up for its second, and parked again.
func parkedTwice(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := dial(t, serveRaw(t, s))
	for _, path := range []string{"/1", "/2"} {
		get(t, c, br, path)
		waitParked(t, s, 1)
	}
	return c, br
}

// get sends a request on c and checks its answer.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	if _, got := readResponse(t, br, "GET"); got != "GET "+path+` HTTP/1.1 host=x body="" trailer=""` {
		t.Fatalf("answer to %s: %q", path, got)
	}
}

// Idle keep-alive connections cost the server no goroutine and no
// buffer: with many, all parked, each holds less than 4 KB (heap and
// stacks after a collection; a waiting goroutine's stack alone is 4 KB).
func TestIdleConnectionsHoldLittleMemory(t *testing.T) {
	const conns, bound = 2000, 4096
	s := &Server{Handler: http.HandlerFunc(echo), IdleTimeout: 75 * time.Second}
	addr := serveRaw(t, s)
	before, _ := inUse()
	for range conns {
		c, br := dial(t, addr)
		get(t, c, br, "/")
	}
	waitParked(t, s, conns)
	after, _ := inUse()
	per := (after - before) / conns
	t.Logf("%d B per idle connection", per)
	if per > bound {
		t.Errorf("%d B per idle connection, want at most %d", per, bound)
	}
}

// A connection idle for parkAfter is parked; its next requests are
// answered as before, whether they come whole, in pieces or pipelined.
func TestParkedConnectionAnswersItsNextRequests(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), parkAfter: 20 * time.Millisecond}
	c, br := parkedTwice(t, s)

	io.WriteString(c, "GET /3 HTTP/1.1\r\n")
	waitParked(t, s, 0)
	io.WriteString(c, "Host: x\r\n")
	io.WriteString(c, "\r\n")
	if _, got := readResponse(t, br, "GET"); got != `GET /3 HTTP/1.1 host=x body="" trailer=""` {
		t.Fatalf("answer to a request in pieces: %q", got)
	}
	waitParked(t, s, 1)

	io.WriteString(c, "POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /5 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{`POST /4 HTTP/1.1 host=x body="hi" trailer=""`, `GET /5 HTTP/1.1 host=x body="" trailer=""`} {
		if _, got := readResponse(t, br, "GET"); got != want {
			t.Fatalf("pipelined answer %q, want %q", got, want)
		}
	}
	waitParked(t, s, 1)
}

// The shorter wait before parking does not bound a request body: on a
// kept connection the body has IdleTimeout from the answer, as without
// parking.
func TestBodyAfterTheHeadIsNotCutAtParkAfter(t *testing.T) {
	const park = 50 * time.Millisecond
	s := &Server{Handler: http.HandlerFunc(echo), parkAfter: park}
	addr := serveRaw(t, s)
	c, br := dial(t, addr)
	get(t, c, br, "/")
	io.WriteString(c, "PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
	time.Sleep(3 * park) // the client is slow: not a synchronisation
	io.WriteString(c, "body")
	if _, got := readResponse(t, br, "PUT"); got != `PUT /slow HTTP/1.1 host=x body="body" trailer=""` {
		t.Fatalf("answer to a body sent %v after its head: %q", 3*park, got)
	}
}

// A connection whose next request comes quickly is not parked: the busy
// path pays no epoll_ctl nor hand-off.
func TestBusyConnectionIsNotParked(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo)}
	addr := serveRaw(t, s)
	c, br := dial(t, addr)
	for i := range 200 {
		get(t, c, br, fmt.Sprint("/", i))
	}
	s.park.mu.Lock()
	defer s.park.mu.Unlock()
	if s.park.started {
		t.Errorf("a busy connection was parked")
	}
}

// IdleTimeout closes a parked connection at its time, counted from the
// answer, not from the parking.
func TestParkedConnectionIdleTimeoutCountsFromTheAnswer(t *testing.T) {
	const idle, park = time.Second, 700 * time.Millisecond
	s := &Server{Handler: http.HandlerFunc(echo), IdleTimeout: idle, parkAfter: park}
	addr := serveRaw(t, s)
	c, br := dial(t, addr)
	get(t, c, br, "/")
	answered := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle parked connection: %v, want it closed", err)
	}
	// Counted from the parking, it would close after idle+park.
	if e := time.Since(answered); e < idle-200*time.Millisecond || e >= idle+park-100*time.Millisecond {
		t.Errorf("closed %v after the answer, want about %v", e, idle)
	}
	s.park.mu.Lock()
	defer s.park.mu.Unlock()
	if parks := s.park.lastID; parks != 1 {
		t.Errorf("the connection was parked %d times, want once", parks)
	}
}

// A client that closes a parked connection frees its descriptor at once,
// and the connection is seen closed.
func TestParkedConnectionClosedByTheClient(t *testing.T) {
	var mu sync.Mutex
	var closed int
	s := &Server{Handler: http.HandlerFunc(echo), parkAfter: time.Millisecond, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			mu.Lock()
			closed++
			mu.Unlock()
		}
	}}
	addr := serveRaw(t, s)
	first, fbr := dial(t, addr) // parked first: the epoll instance is made
	get(t, first, fbr, "/")
	waitParked(t, s, 1)
	baseline := testprog.OpenFDs(t)
	c, br := dial(t, addr)
	get(t, c, br, "/")
	waitParked(t, s, 2)
	c.Close()
	testprog.Eventually(t, "the descriptors back to their count", 10*time.Second, func() (bool, string) {
		n := testprog.OpenFDs(t)
		mu.Lock()
		defer mu.Unlock()
		return n == baseline && closed == 1, fmt.Sprintf("%d open (baseline %d), %d closed", n, baseline, closed)
	})
	waitParked(t, s, 1)
	get(t, first, fbr, "/again")
}

// A parked connection is idle to ConnState, and active again with its
// next request; Close ends it.
func TestParkedConnStates(t *testing.T) {
	var mu sync.Mutex
	var states []http.ConnState
	s := &Server{Handler: http.HandlerFunc(echo), parkAfter: time.Millisecond, ConnState: func(_ net.Conn, st http.ConnState) {
		mu.Lock()
		states = append(states, st)
		mu.Unlock()
	}}
	_, br := parkedTwice(t, s)
	s.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("parked connection after Close: %v, want it closed", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[new active idle active idle closed]"; fmt.Sprint(states) != want {
		t.Errorf("states %v, want %s", states, want)
	}
}

// Shutdown closes the parked connections at once and returns.
func TestShutdownClosesParkedConnections(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), parkAfter: time.Millisecond}
	addr := serveRaw(t, s)
	var brs []*bufio.Reader
	for range 3 {
		c, br := dial(t, addr)
		get(t, c, br, "/")
		brs = append(brs, br)
	}
	waitParked(t, s, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(start))
	}
	for i, br := range brs {
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("parked connection %d after Shutdown: %v, want it closed", i, err)
		}
	}
}

// With parkCrowd connections waiting, the next ones park after
// crowdWait; all of them are taken up again, several times, when their
// clients send at the same time.
func TestCrowdedConnectionsParkAndResume(t *testing.T) {
	const n = parkCrowd + 150
	s := &Server{Handler: http.HandlerFunc(echo)}
	addr := serveRaw(t, s)
	cs := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	for i := range n {
		cs[i], brs[i] = dial(t, addr)
		get(t, cs[i], brs[i], "/")
	}
	waitCrowdParked(t, s, n)
	for round := range 3 {
		for i, c := range cs {
			fmt.Fprintf(c, "GET /%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", round, i)
		}
		for i, br := range brs {
			want := fmt.Sprintf(`GET /%d/%d HTTP/1.1 host=x body="" trailer=""`, round, i)
			if _, got := readResponse(t, br, "GET"); got != want {
				t.Fatalf("round %d: %q, want %q", round, got, want)
			}
		}
	}
}
