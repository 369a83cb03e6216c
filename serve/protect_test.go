package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func dialFront(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads c until it ends and fails unless it ends within d.
// It returns what was read.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection was still open after %v; read %q", d, b)
	}
	return string(b)
}

// A request body that stalls before anything went to the app is answered
// 408 within body_timeout, the connection is closed, the app never sees
// the request and the access log has the 408.
func TestStalledBodyGets408(t *testing.T) {
	set := defaults()
	set.BodyTimeout = 300 * time.Millisecond
	var reached atomic.Int32
	addr, logPath := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}), nil)
	c := dialFront(t, addr)
	fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
	start := time.Now()
	got := closedWithin(t, c, 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Fatalf("got %q, want a 408", got)
	}
	if e := time.Since(start); e < 250*time.Millisecond {
		t.Errorf("answered after %v, before body_timeout", e)
	}
	if reached.Load() != 0 {
		t.Error("the app saw the request")
	}
	eventually(t, "a 408 line", func() bool { return strings.Contains(accessLog(t, logPath), `"POST /upload HTTP/1.1" 408 `) })
}

// A streamed body (over buffer_body) that stalls once the request went to
// the app: the client connection is closed and the app's request is cut.
func TestStalledStreamedBodyIsCut(t *testing.T) {
	set := defaults()
	set.BodyTimeout = 300 * time.Millisecond
	set.BufferBody = 1024
	appErr := make(chan error, 1)
	addr, logPath := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		appErr <- err
	}), nil)
	c := dialFront(t, addr)
	fmt.Fprint(c, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 4000))
	if got := closedWithin(t, c, 5*time.Second); got != "" {
		t.Errorf("got %q, want the connection closed", got)
	}
	select {
	case err := <-appErr:
		if err == nil {
			t.Error("the app read a whole body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the app's request was not cut")
	}
	eventually(t, "a 408 line", func() bool { return strings.Contains(accessLog(t, logPath), `"POST /stream HTTP/1.1" 408 `) })
}

// A body gsup does not read (its own answers) cannot hold the connection
// either.
func TestStalledBodyOfAnUnreadRequestIsBounded(t *testing.T) {
	set := defaults()
	set.BodyTimeout = 300 * time.Millisecond
	set.HealthPath = "/healthz"
	addr, _ := front(t, set, http.NotFoundHandler(), nil)
	c := dialFront(t, addr)
	fmt.Fprint(c, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
	if got := closedWithin(t, c, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Errorf("got %q, want a 200", got)
	}
}

// endless is an app that streams until its client goes away.
func endless(w http.ResponseWriter, r *http.Request) {
	chunk := make([]byte, 32<<10)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// A client that stops reading a response is cut after send_timeout.
func TestSlowReaderIsCut(t *testing.T) {
	set := defaults()
	set.SendTimeout = 300 * time.Millisecond
	addr, _ := front(t, set, http.HandlerFunc(endless), nil)
	c := dialFront(t, addr)
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprint(c, "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
	// Not reading: the front's writes stop making progress.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	n, err := io.Copy(io.Discard, br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("still streaming %v later (%d bytes): a client that stopped reading was not cut", time.Since(start), n)
	}
}

// A client that reads slowly but steadily is not cut.
func TestSteadyReaderIsNotCut(t *testing.T) {
	set := defaults()
	set.SendTimeout = 300 * time.Millisecond
	const size = 8 << 20
	addr, _ := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := make([]byte, 64<<10)
		for i := 0; i < size/len(chunk); i++ {
			w.Write(chunk)
		}
	}), nil)
	c := dialFront(t, addr)
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var n int
	start := time.Now()
	for {
		m, err := resp.Body.Read(buf)
		n += m
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // about 25 MB/s at most: more than a second in all
	}
	if n != size {
		t.Fatalf("read %d bytes in %v, want %d", n, time.Since(start), size)
	}
}

// Connections beyond max_connections are answered 503 at once, without a
// request being read, and logged; the front goes on serving the others
// and takes new ones once some have closed.
func TestMaxConnections(t *testing.T) {
	set := defaults()
	set.MaxConnections = 2
	addr, logPath := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}), nil)
	// Sent at once: a TCP bind hands a connection over only once it has
	// sent something (TCP_DEFER_ACCEPT), and both must count.
	send := func(c net.Conn) net.Conn {
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		return c
	}
	c1, c2 := send(dialFront(t, addr)), send(dialFront(t, addr))
	get := func(c net.Conn) int {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if s := get(c1); s != 200 {
		t.Fatalf("first connection: %d", s)
	}
	c3 := dialFront(t, addr)
	fmt.Fprint(c3, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := closedWithin(t, c3, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 503 ") {
		t.Fatalf("third connection got %q, want a 503", got)
	}
	if s := get(c2); s != 200 {
		t.Fatalf("second connection after a refusal: %d", s)
	}
	c1.Close()
	eventually(t, "a new connection served", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == 200
	})
	eventually(t, "a 503 line", func() bool { return strings.Contains(accessLog(t, logPath), `"-" 503 `) })
}

// What the raw-byte layer refuses is in the access log too.
func TestRawRefusalsAreLogged(t *testing.T) {
	addr, logPath := front(t, defaults(), http.NotFoundHandler(), nil)
	for _, raw := range []string{
		"GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 9000) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
	} {
		c := dialFront(t, addr)
		io.WriteString(c, raw)
		closedWithin(t, c, 5*time.Second)
	}
	for _, want := range []string{`"-" 414 `, `"-" 431 `, `"-" 400 `} {
		eventually(t, want, func() bool { return strings.Contains(accessLog(t, logPath), want) })
	}
}

// A connection refused for its PROXY header (malformed, or from a peer
// not in proxy_allow_from) is in the access log too, as its 400.
func TestProxyRefusalsAreLogged(t *testing.T) {
	set := defaults()
	set.ProxyProtocol = "v1"
	addr, logPath := front(t, set, http.NotFoundHandler(), nil)
	c := dialFront(t, addr)
	io.WriteString(c, "PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	closedWithin(t, c, 5*time.Second)
	eventually(t, `a "-" 400 12 line`, func() bool { return strings.Contains(accessLog(t, logPath), `"-" 400 12 `) })
}

// A request head that does not come whole in time is answered 408, the
// connection closed, and the access log has the 408 (nginx's
// client_header_timeout does the same).
func TestStalledHeadGets408InTheAccessLog(t *testing.T) {
	addr, logPath := frontWith(t, defaults(), http.NotFoundHandler(), nil, func(s *Server) { s.headTimeout = 300 * time.Millisecond })
	c := dialFront(t, addr)
	fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\n")
	if got := closedWithin(t, c, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Fatalf("got %q, want a 408", got)
	}
	eventually(t, "a 408 line", func() bool { return strings.Contains(accessLog(t, logPath), `" 408 `) })
}
