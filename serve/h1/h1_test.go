package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/rawsock"
	"gsup/internal/testprog"
	"gsup/serve/httpcheck"
)

// countingListener counts the writes made on the connections it accepts.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// serveTest serves h on a loopback port until the test ends, on
// connections that count their writes (and hide their descriptors).
func serveTest(t *testing.T, s *Server) (addr string, l *countingListener) {
	t.Helper()
	l = &countingListener{Listener: listenTest(t)}
	serveListener(t, s, l)
	return l.Addr().String(), l
}

// serveRaw serves h on a loopback port until the test ends, on plain
// sockets, read by their descriptors.
func serveRaw(t *testing.T, s *Server) (addr string) {
	t.Helper()
	l := listenTest(t)
	serveListener(t, s, l)
	return l.Addr().String()
}

func listenTest(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveListener serves l with s until the test ends, with timeouts of
// 10 s where s has none.
func serveListener(t *testing.T, s *Server, l net.Listener) {
	t.Helper()
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = 10 * time.Second
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 10 * time.Second
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(b)
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %s host=%s body=%q trailer=%q", r.Method, r.RequestURI, r.Proto, r.Host, b, r.Trailer.Get("X-Sum"))
}

func TestPipelinedRequestsAreAnsweredInOrderOneWriteEach(t *testing.T) {
	addr, l := serveTest(t, &Server{Handler: http.HandlerFunc(echo)})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n")
	want := []string{
		`GET /a HTTP/1.1 host=x body="" trailer=""`,
		`POST /b HTTP/1.1 host=x body="hello" trailer=""`,
		`POST /c HTTP/1.1 host=x body="abcde" trailer="5"`,
	}
	for i, w := range want {
		resp, got := readResponse(t, br, "GET")
		if got != w || resp.ContentLength != int64(len(w)) {
			t.Errorf("response %d: %q (Content-Length %d), want %q with its length", i, got, resp.ContentLength, w)
		}
		if resp.Header.Get("Date") == "" {
			t.Errorf("response %d has no Date", i)
		}
	}
	if n := l.writes.Load(); n != 3 {
		t.Errorf("%d writes for 3 small responses, want one each", n)
	}
}

func TestRefusedHeadIsAnsweredLoggedAndClosed(t *testing.T) {
	var refused []int
	var mu sync.Mutex
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), Limits: httpcheck.DefaultLimits,
		Refused: func(_ net.Conn, e httpcheck.Error) { mu.Lock(); refused = append(refused, e.Status); mu.Unlock() }})
	for _, tc := range []struct {
		raw    string
		status int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 400},                                             // no Host
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},                       // two
		{"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417},                 // unknown expectation
		{"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},       // unsupported coding
		{"GET / HTTP/1.1\r\nHost: x\r\nX: a\nY: b\r\n\r\n", 400},                    // bare LF (the stream)
		{"GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414}, // request line
	} {
		c, br := dial(t, addr)
		io.WriteString(c, tc.raw)
		resp, _ := readResponse(t, br, "GET")
		if resp.StatusCode != tc.status || !resp.Close {
			t.Errorf("%q: %d (close %v), want %d and close", tc.raw[:min(len(tc.raw), 40)], resp.StatusCode, resp.Close, tc.status)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%q: connection not closed after the refusal: %v", tc.raw[:min(len(tc.raw), 40)], err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[400 400 417 501 400 414]"; fmt.Sprint(refused) != want {
		t.Errorf("Refused told of %v, want %s", refused, want)
	}
}

func TestHeadNotWholeInTimeIsAnswered408(t *testing.T) {
	got := make(chan int, 1)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 200 * time.Millisecond,
		Refused: func(_ net.Conn, e httpcheck.Error) { got <- e.Status }})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	resp, _ := readResponse(t, br, "GET")
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if st := <-got; st != http.StatusRequestTimeout {
		t.Errorf("Refused told of %d, want 408", st)
	}
}

// On a kept connection, a head begun but not whole within
// ReadHeaderTimeout of its first byte is answered 408, however long the
// connection may stay idle between requests.
func TestKeptConnectionHeadNotWholeInTime(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 200 * time.Millisecond,
		IdleTimeout: time.Minute})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: status %d", resp.StatusCode)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) // well before IdleTimeout
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a second head not whole: status %d, want 408", resp.StatusCode)
	}
}

func TestIdleConnectionClosedQuietly(t *testing.T) {
	var refused atomic.Int32
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), IdleTimeout: 100 * time.Millisecond,
		Refused: func(net.Conn, httpcheck.Error) { refused.Add(1) }})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br, "GET")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want it closed", err)
	}
	if n := refused.Load(); n != 0 {
		t.Errorf("an idle connection's close was reported as %d refusals", n)
	}
}

func TestExpectContinue(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo)})
	c, br := dial(t, addr)
	io.WriteString(c, "PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "abc")
	if _, got := readResponse(t, br, "PUT"); !strings.Contains(got, `body="abc"`) {
		t.Errorf("got %q", got)
	}
}

func TestUnreadBodyLeavesConnectionUsable(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ignored the body")
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
	io.WriteString(c, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 2 {
		if resp, got := readResponse(t, br, "GET"); resp.Close || got != "ignored the body" {
			t.Errorf("response %d: %q, close %v", i, got, resp.Close)
		}
	}
	// A body too large to read on is not waited for: the answer closes.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nx")
	if resp, _ := readResponse(t, br, "GET"); !resp.Close {
		t.Errorf("a large unread body left the connection open")
	}
}

func TestStreamedResponseIsChunkedAndFlushed(t *testing.T) {
	next := make(chan struct{})
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		<-next
		io.WriteString(w, "second\n")
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("Transfer-Encoding %v, want chunked", resp.TransferEncoding)
	}
	rb := bufio.NewReader(resp.Body)
	if line, err := rb.ReadString('\n'); line != "first\n" {
		t.Fatalf("flushed part: %q, %v", line, err)
	}
	close(next)
	if rest, err := io.ReadAll(rb); string(rest) != "second\n" || err != nil {
		t.Fatalf("rest: %q, %v", rest, err)
	}
	// HTTP/1.0 has no chunks: the body runs to the close.
	c, br = dial(t, addr)
	next = make(chan struct{})
	close(next)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	resp, got := readResponse(t, br, "GET")
	if got != "first\nsecond\n" || !resp.Close {
		t.Errorf("HTTP/1.0: %q, close %v", got, resp.Close)
	}
}

func TestClientGoneCancelsRequest(t *testing.T) {
	cancelled := make(chan error, 1)
	started := make(chan struct{})
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("not cancelled in 10s")
		}
	})})
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("handler: %v, want its context cancelled", err)
	}
}

// OnClientGone's function runs when the client goes away, as the
// request's context is cancelled, and only then: stop then reports that
// it ran; on a request that ends first, stop reports that it did not.
func TestOnClientGone(t *testing.T) {
	type notifier interface {
		OnClientGone(func()) (stop interface{ Stop() bool })
	}
	ran := make(chan bool, 2)
	stopped := make(chan bool, 2)
	registered := make(chan struct{})
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gone := make(chan struct{})
		stop := w.(notifier).OnClientGone(func() { close(gone) })
		if r.URL.Path == "/quick" {
			stopped <- stop.Stop()
			io.WriteString(w, "ok")
			return
		}
		close(registered)
		select {
		case <-gone:
			ran <- true
		case <-time.After(10 * time.Second):
			ran <- false
		}
		stopped <- stop.Stop()
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("quick request: %v, %v", resp, err)
	}
	if !<-stopped {
		t.Error("stop on a request whose client stayed: false, want true (not run)")
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-registered
	c.Close()
	if !<-ran {
		t.Fatal("the function did not run in 10 s after the client closed")
	}
	if <-stopped {
		t.Error("stop after the function ran: true, want false")
	}
}

func TestHijackGetsUnreadBytes(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nsent early\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v, %v", resp, err)
	}
	if line, _ := br.ReadString('\n'); line != "echo: sent early\n" {
		t.Errorf("after the upgrade: %q", line)
	}
}

func TestRefusedUpgradeChecksNextRequest(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), Limits: httpcheck.DefaultLimits})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
	if _, got := readResponse(t, br, "GET"); !strings.HasPrefix(got, "GET / ") {
		t.Errorf("first: %q", got)
	}
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 400 {
		t.Errorf("the request after a refused upgrade: %d, want 400", resp.StatusCode)
	}
}

func TestPanickingHandlerClosesOnlyItsConnection(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after a panic: %v, want the connection closed", err)
	}
	c, br = dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, got := readResponse(t, br, "GET"); got != "ok" {
		t.Errorf("next connection: %q", got)
	}
}

func TestShutdownFinishesBusyClosesIdle(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})}
	addr, _ := serveTest(t, s)
	idle, ibr := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, ibr, "GET")
	busy, bbr := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Errorf("idle connection at shutdown: %v, want closed", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while a request ran: %v", err)
	default:
	}
	close(release)
	resp, got := readResponse(t, bbr, "GET")
	if got != "done" || !resp.Close {
		t.Errorf("busy request: %q, close %v; want its answer with Connection: close", got, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

func TestConnStates(t *testing.T) {
	var mu sync.Mutex
	var states []http.ConnState
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), ConnState: func(_ net.Conn, st http.ConnState) {
		mu.Lock()
		states = append(states, st)
		mu.Unlock()
	}})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br, "GET")
	c.Close()
	testprog.Eventually(t, "the connection closed", 5*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1] == http.StateClosed, fmt.Sprint(states)
	})
	mu.Lock()
	defer mu.Unlock()
	if want := "[new active idle closed]"; fmt.Sprint(states) != want {
		t.Errorf("states %v, want %s", states, want)
	}
}

// A chunked body whose framing the stream refuses reaches the handler as
// an *httpcheck.Error with the status to answer; the connection closes
// after that answer.
func TestRefusedBodyIsTheHandlersError(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		var refused *httpcheck.Error
		if !errors.As(err, &refused) {
			t.Errorf("reading the body: %v, want an *httpcheck.Error", err)
			return
		}
		http.Error(w, refused.Reason, refused.Status)
	}), Limits: httpcheck.DefaultLimits})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
	resp, _ := readResponse(t, br, "POST")
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Errorf("status %d, close %v; want 400 and close", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed: %v", err)
	}
}

// A refused head is logged as a warning naming the client and the status.
func TestRefusalIsLogged(t *testing.T) {
	logs := &testprog.Buffer{}
	lg := logrus.New()
	lg.SetOutput(logs)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(echo), Limits: httpcheck.DefaultLimits, Log: lg})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n")
	readResponse(t, br, "GET")
	testprog.Eventually(t, "the warning", 5*time.Second, func() (bool, string) {
		s := logs.String()
		return strings.Contains(s, "level=warning") && strings.Contains(s, "refused a request") &&
			strings.Contains(s, "status=400") && strings.Contains(s, `client="127.0.0.1:`), s
	})
}

// A file larger than what goes with the head is sent by the connection's
// ReadFrom (sendfile): whole, and the connection serves the next request.
func TestFileBodyBySendfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.bin")
	data := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16+3)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // not counted: the TCP connection's own ReadFrom
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, path)
	})}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	c, br := dial(t, ln.Addr().String())
	for i := range 2 {
		io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, got := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || resp.Close || got != string(data) {
			t.Fatalf("request %d: %d, close %v, %d bytes (want %d)", i, resp.StatusCode, resp.Close, len(got), len(data))
		}
	}
}

// A request pipelined while the one before it runs, when the client
// watch reads its first byte, is answered after it, whole.
func TestPipelinedDuringALongRequest(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	addr, _ := serveTest(t, &Server{watchAfter: time.Nanosecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	close(release)
	for _, want := range []string{"/slow", "/next"} {
		if resp, got := readResponse(t, br, "GET"); got != want || resp.Close {
			t.Errorf("got %q (close %v), want %q", got, resp.Close, want)
		}
	}
}

// The header map and values are the connection's, reused from request to
// request: each request must see its own fields only, and each answer
// only the fields its handler set, whether the requests come pipelined,
// one after the other, or after the connection was parked.
func TestEachRequestSeesOnlyItsOwnFields(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var fields []string
		for k, vv := range r.Header {
			fields = append(fields, k+"="+strings.Join(vv, ","))
		}
		slices.Sort(fields)
		if v := r.Header.Get("X-Answer"); v != "" {
			w.Header().Set("X-Answered", v)
		}
		io.WriteString(w, strings.Join(fields, " "))
	})
	srv := &Server{Handler: h, parkAfter: 20 * time.Millisecond}
	addr := serveRaw(t, srv) // a listener whose connections can be parked
	c, br := dial(t, addr)

	many := ""
	for i := range 12 { // more fields than the map and values start with room for
		many += fmt.Sprintf("X-F%02d: %d\r\n", i, i)
	}
	reqs := []struct{ fields, want, answered string }{
		{"X-A: 1\r\nX-Answer: yes\r\n", "X-A=1 X-Answer=yes", "yes"},
		{"X-B: 2\r\nX-B: 3\r\n", "X-B=2,3", ""},
		{many, "X-F00=0 X-F01=1 X-F02=2 X-F03=3 X-F04=4 X-F05=5 X-F06=6 X-F07=7 X-F08=8 X-F09=9 X-F10=10 X-F11=11", ""},
		{"", "", ""},
		{"x-a: 4\r\n", "X-A=4", ""},
	}
	check := func(round string) {
		t.Helper()
		for i, rq := range reqs {
			resp, got := readResponse(t, br, "GET")
			if got != rq.want {
				t.Errorf("%s, request %d saw %q, want %q", round, i, got, rq.want)
			}
			if a := resp.Header.Get("X-Answered"); a != rq.answered {
				t.Errorf("%s, answer %d has X-Answered %q, want %q", round, i, a, rq.answered)
			}
		}
	}
	head := func(rq string) string { return "GET / HTTP/1.1\r\nHost: x\r\n" + rq + "\r\n" }

	var all string
	for _, rq := range reqs {
		all += head(rq.fields)
	}
	io.WriteString(c, all)
	check("pipelined")

	for i, rq := range reqs {
		io.WriteString(c, head(rq.fields))
		resp, got := readResponse(t, br, "GET")
		if want := rq.want; got != want || resp.Header.Get("X-Answered") != rq.answered {
			t.Errorf("one at a time, request %d saw %q with X-Answered %q, want %q and %q",
				i, got, resp.Header.Get("X-Answered"), want, rq.answered)
		}
	}

	// Parked: the connection waits past parkAfter between requests.
	for i, rq := range reqs {
		waitParked(t, srv, 1)
		io.WriteString(c, head(rq.fields))
		resp, got := readResponse(t, br, "GET")
		if got != rq.want || resp.Header.Get("X-Answered") != rq.answered {
			t.Errorf("after parking, request %d saw %q with X-Answered %q, want %q and %q",
				i, got, resp.Header.Get("X-Answered"), rq.want, rq.answered)
		}
	}
}

// A header value the handler sets with CR or LF in it goes out as one
// field, with spaces in their place (as net/http's server writes it): it
// cannot add a field, or end the head early.
func TestHandlerValueWithNewlinesStaysOneField(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Evil"] = []string{"a\r\nInjected: 1", "b\nInjected: 2"}
		io.WriteString(w, "body")
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if got, want := resp.Header.Values("X-Evil"), []string{"a  Injected: 1", "b Injected: 2"}; !slices.Equal(got, want) || resp.Header["Injected"] != nil || body != "body" {
		t.Errorf("X-Evil %q, Injected %q, body %q; want X-Evil %q, no Injected, body \"body\"", got, resp.Header["Injected"], body, want)
	}
}

// A request's context behaves as context.WithCancel's of the
// connection's: it carries the connection's values, is live while the
// handler runs, and ends when the handler returns, ending what was
// derived from it or hung on it (context.AfterFunc) and closing Done
// for a waiter that asked for it before or after.
func TestRequestContextEndsWithTheRequest(t *testing.T) {
	type seen struct {
		ctx, child   context.Context
		errDuring    error
		local        any
		stillRunning bool
		ran          chan struct{}
	}
	got := make(chan seen, 2)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		s := seen{ctx: ctx, errDuring: ctx.Err(), local: ctx.Value(http.LocalAddrContextKey), ran: make(chan struct{})}
		if r.URL.Path == "/derive" {
			var stop context.CancelFunc
			s.child, stop = context.WithCancel(ctx)
			t.Cleanup(stop) // after the check that the request's end cancelled it
			context.AfterFunc(ctx, func() { close(s.ran) })
			select {
			case <-ctx.Done():
			default:
				s.stillRunning = true
			}
		}
		got <- s
		io.WriteString(w, "ok")
	})})
	c, br := dial(t, addr)
	for _, path := range []string{"/derive", "/plain"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "ok" {
			t.Fatalf("%s: body %q", path, body)
		}
		s := <-got
		if s.errDuring != nil {
			t.Errorf("%s: Err while the handler ran: %v", path, s.errDuring)
		}
		if s.local == nil {
			t.Errorf("%s: no http.LocalAddrContextKey value", path)
		}
		waitDone(t, path+": Done", s.ctx.Done())
		if err := s.ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Err after the request: %v, want context.Canceled", path, err)
		}
		if err := context.Cause(s.ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Cause after the request: %v", path, err)
		}
		if path == "/derive" {
			if !s.stillRunning {
				t.Errorf("%s: Done was closed while the handler ran", path)
			}
			waitDone(t, path+": derived context", s.child.Done())
			waitDone(t, path+": AfterFunc", s.ran)
		}
	}
}

func waitDone(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Errorf("%s: not done 10 s after the request ended", what)
	}
}

// serveRawsock serves s on a loopback port until the test ends, on
// rawsock's sockets (the front's on one processor), whose read events
// the client watch follows.
func serveRawsock(t *testing.T, s *Server) (addr string) {
	t.Helper()
	ln := listenTest(t)
	l, err := rawsock.NewListener(ln)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // l has its own descriptor
	serveListener(t, s, l)
	return l.Addr().String()
}

// On rawsock's sockets, a client that goes away cancels its request:
// one that leaves while the handler runs, and one whose end of file came
// before its request began (it sent a second request and closed while
// the first ran: no event comes for that end again, so the watch looks
// at the socket when it begins).
func TestClientGoneOnSocketEvents(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("gone before the request %v", early), func(t *testing.T) {
			started := make(chan string, 2)
			hold := make(chan struct{})
			result := make(chan error, 1)
			addr := serveRawsock(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- r.URL.Path
				if r.URL.Path == "/first" {
					<-hold
					io.WriteString(w, "first")
					return
				}
				select {
				case <-r.Context().Done():
					result <- r.Context().Err()
				case <-time.After(10 * time.Second):
					result <- errors.New("not cancelled in 10 s")
				}
			})})
			c, _ := dial(t, addr)
			if early {
				io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
				<-started
				io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
				c.Close()
				close(hold)
			} else {
				close(hold)
				io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
			}
			if p := <-started; p != "/second" {
				t.Fatalf("handler ran for %s, want /second", p)
			}
			if !early {
				c.Close()
			}
			if err := <-result; !errors.Is(err, context.Canceled) {
				t.Errorf("handler: %v, want its context cancelled", err)
			}
		})
	}
}

// The next request's bytes, sent while a request runs, are not the
// client going away: the first request goes on to its end, and the
// second is answered after it on the same connection.
func TestPipelinedRequestIsNotClientGone(t *testing.T) {
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	addr := serveRawsock(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		if r.URL.Path == "/first" {
			select {
			case <-r.Context().Done():
				http.Error(w, "cancelled", http.StatusServiceUnavailable)
				return
			case <-release:
			}
		}
		io.WriteString(w, r.URL.Path)
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	// Nothing can be polled for "the front saw the bytes and did not take
	// them for an end": give it a while to do the wrong thing.
	select {
	case <-started:
		t.Fatal("the second request ran before the first ended")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for _, want := range []string{"/first", "/second"} {
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != want {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
}

// addrString writes a request's RemoteAddr as net's Addr.String does.
func TestAddrStringIsNets(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54321},
		&net.TCPAddr{IP: net.IP{10, 1, 2, 3}, Port: 80},
		&net.TCPAddr{IP: net.IPv4(192, 168, 0, 1), Port: 0},
		&net.TCPAddr{IP: net.IPv6loopback, Port: 443},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 8080, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("::ffff:1.2.3.4"), Port: 65535},
		&net.TCPAddr{Port: 9},
		&net.UnixAddr{Name: "/run/gsup.sock", Net: "unix"},
		&net.UnixAddr{Name: "@", Net: "unix"},
	} {
		if got, want := addrString(a), a.String(); got != want {
			t.Errorf("addrString(%#v) = %q, want %q", a, got, want)
		}
	}
	a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54321}
	if n := testing.AllocsPerRun(100, func() { addrString(a) }); n > 1 {
		t.Errorf("addrString of an IPv4 address: %v allocations, want 1", n)
	}
}

// A connection's header maps pass to the next connections when it ends
// or parks, and carry nothing over: a request sees only its own fields,
// and an answer has only the fields its handler set. A connection whose
// handler panicked passes nothing on.
func TestHeadersPassedOnCarryNothing(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			w.Header().Set("X-From-Panic", "1")
			panic(http.ErrAbortHandler)
		}
		var names []string
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		if v := r.Header.Get("X-Set"); v != "" {
			w.Header().Set(v, "1")
		}
		fmt.Fprint(w, strings.Join(names, ","))
	}), parkAfter: 50 * time.Millisecond, IdleTimeout: time.Minute}
	addr := serveRaw(t, s)
	ask := func(c net.Conn, br *bufio.Reader, path, fields string) (*http.Response, string) {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, fields)
		return readResponse(t, br, "GET")
	}
	for round := range 20 {
		// A connection whose handler panics after setting a field.
		c, br := dial(t, addr)
		fmt.Fprintf(c, "GET /panic HTTP/1.1\r\nHost: x\r\nX-Other: b\r\n\r\n")
		io.Copy(io.Discard, br)
		c.Close()
		// One connection with many fields, which sets an answer's field
		// of its own; the server closes it after the answer, with the
		// maps as the request left them.
		c, br = dial(t, addr)
		if _, got := ask(c, br, "/", "X-Secret: a\r\nX-Set: X-Answer-A\r\nCookie: k=v\r\nConnection: close\r\n"); got != "Connection,Cookie,X-Secret,X-Set" {
			t.Fatalf("round %d: the first connection's fields: %q", round, got)
		}
		io.Copy(io.Discard, br) // until the server has closed it
		c.Close()
		// A new connection, and one that parks between its requests.
		for _, park := range []bool{false, true} {
			c, br = dial(t, addr)
			if park {
				ask(c, br, "/", "")
				waitParked(t, s, 1)
			}
			resp, got := ask(c, br, "/", "X-Mine: c\r\n")
			if got != "X-Mine" {
				t.Errorf("round %d (parked %v): the request's fields %q, want only its own", round, park, got)
			}
			for k := range resp.Header {
				switch k {
				case "Date", "Content-Length", "Content-Type":
				default:
					t.Errorf("round %d (parked %v): the answer has %s, which its handler did not set", round, park, k)
				}
			}
			c.Close()
		}
	}
}

// Many connections at once, ending and starting while others run, each
// see only their own fields: a map passed on is never one another
// connection still uses (the race detector watches the maps).
func TestHeadersPassedOnUnderConcurrency(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-Id"))
		fmt.Fprintf(w, "%d %s", len(r.Header), r.Header.Get("X-Id"))
	})}
	addr := serveRaw(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("%d-%d", g, i)
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				br := bufio.NewReader(c)
				closing := ""
				if i%2 == 0 {
					closing = "Connection: close\r\n"
				}
				for range 2 {
					fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Id: %s\r\n%s\r\n", id, closing)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						errs <- fmt.Errorf("connection %s: %v", id, err)
						c.Close()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					want := "1 " + id
					if closing != "" {
						want = "2 " + id
					}
					if string(b) != want || resp.Header.Get("X-Echo") != id {
						errs <- fmt.Errorf("connection %s: answer %q with X-Echo %q, want %q with %s", id, b, resp.Header.Get("X-Echo"), want, id)
						c.Close()
						return
					}
					if closing != "" {
						break
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestParseLength checks the Content-Length a handler set against
// strconv.ParseInt's reading of it (base 10, not negative).
func TestParseLength(t *testing.T) {
	for _, v := range []string{"", "0", "6", "007", "123456789012345678", "1234567890123456789",
		"9223372036854775807", "9223372036854775808", "+5", "-1", "-0", " 5", "5 ", "5a", "0x10", "1_000", "１"} {
		n, err := strconv.ParseInt(v, 10, 64)
		want := err == nil && n >= 0
		got, ok := parseLength(v)
		if ok != want || ok && got != n {
			t.Errorf("parseLength(%q) = %d, %v; ParseInt gives %d, %v", v, got, ok, n, err)
		}
	}
}

// headEnd finds what bytes.Index of CRLFCRLF finds in the bytes the stream
// lets through, in every prefix of a stream of heads and bodies, from
// every place the search may begin again.
func TestHeadEnd(t *testing.T) {
	crlfcrlf := []byte("\r\n\r\n")
	stream := "GET / HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\na\n\r\nb\r\n" +
		"GET /q HTTP/1.0\r\n\r\n"
	first := strings.Index(stream, "POST")
	for _, start := range []int{0, first, strings.Index(stream, "GET /q")} {
		for n := start; n <= len(stream); n++ {
			b := []byte(stream[start:n])
			want := bytes.Index(b, crlfcrlf)
			if want >= 0 {
				want += 4
			}
			for from := 0; from <= max(0, len(b)-3); from++ {
				if from > 0 && bytes.Contains(b[:from+3], crlfcrlf) {
					break // the caller searched there and stopped
				}
				if got := headEnd(b, from); got != want {
					t.Fatalf("headEnd(%q, %d) = %d, want %d", b, from, got, want)
				}
			}
		}
	}
}

// The goroutines that served connections and wait for the next one end
// when the server is closed, and while it serves, a new connection is
// handed to one of them.
func TestIdleWorkersEndAtClose(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}
	l := listenTest(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	for i := range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.Close()
		testprog.Eventually(t, "the worker to wait for the next connection", 5*time.Second, func() (bool, string) {
			return s.idleWorkers.Load() >= 1, ""
		})
	}
	if n := s.idleWorkers.Load(); n > 2 {
		t.Errorf("%d workers wait after five connections one after another; want the same one or two", n)
	}
	s.Close()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	testprog.Eventually(t, "the waiting workers to end", 5*time.Second, func() (bool, string) {
		buf := make([]byte, 1<<20)
		n := strings.Count(string(buf[:runtime.Stack(buf, true)]), "h1.(*Server).work(")
		return n == 0, fmt.Sprintf("%d workers left", n)
	})
}

// The server's list of connections: one taken out from the head, the
// middle or the tail leaves the others in it, and one taken out twice,
// or never added, changes nothing.
func TestConnListRemovesEachOnce(t *testing.T) {
	var l connList
	cs := make([]*conn, 5)
	for i := range cs {
		cs[i] = &conn{}
		l.add(cs[i])
	}
	for _, i := range []int{4, 2, 0, 2} { // the head (added last), a middle one, the tail, the middle again
		l.remove(cs[i])
	}
	l.remove(&conn{})
	var left []*conn
	for c := l.head; c != nil; c = c.next {
		left = append(left, c)
	}
	if l.n != 2 || len(left) != 2 || left[0] != cs[3] || left[1] != cs[1] || cs[3].prev != nil || cs[1].prev != cs[3] {
		t.Fatalf("after removing 3 of 5: n %d, %d linked; want n 2, the 4th then the 2nd", l.n, len(left))
	}
	l.remove(cs[3])
	l.remove(cs[1])
	if l.n != 0 || l.head != nil {
		t.Fatalf("after removing all: n %d, head %p", l.n, l.head)
	}
}
