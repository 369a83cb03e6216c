package httpcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/testprog"
)

// gsupFront starts a WrapListener front with the corpus test's handler.
func gsupFront(t *testing.T, lim Limits) string {
	t.Helper()
	return startFront(t, modeGsup, lim).addr
}

// dial opens a client connection with a deadline.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip writes raw and reads one response, body included.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing: %v", err)
	}
	return readResponse(t, br)
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(body)
}

// expectClosed checks that the front closed the connection.
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		t.Errorf("connection still open: read %q", b)
	}
}

func TestConnRefusals(t *testing.T) {
	lim := Limits{RequestLine: 100, Fields: 5, FieldSize: 100, Body: 10}
	addr := gsupFront(t, lim)
	tests := []struct {
		name   string
		raw    string
		status int
		reason string
	}{
		{"request line too long", "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, "request line too long"},
		{"request line too long, never ended", "GET /" + strings.Repeat("a", 200), 414, "request line too long"},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431, "too many header fields"},
		{"field too long", "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("b", 200) + "\r\n\r\n", 431, "header field too long"},
		{"Content-Length over max_body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world", 413, "request body too large"},
		// Body refusals reach the handler as an *Error; its answer says
		// "bad request body" with the *Error's status.
		{"chunked body over max_body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 413, "bad request body"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400, "obsolete line folding"},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF"},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, "control byte"},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version"},
		{"smuggling CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400, "both Transfer-Encoding and Content-Length"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400, "bad request body"},
		{"forbidden trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: evil\r\n\r\n", 400, "bad request body"},
		{"parsed check: lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, addr)
			resp, body := roundTrip(t, c, br, tt.raw)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.reason) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, body, tt.status, tt.reason)
			}
			if !resp.Close {
				t.Errorf("refusal without Connection: close")
			}
			expectClosed(t, br)
			// The front goes on serving the next connection.
			c2, br2 := dial(t, addr)
			if resp, _ := roundTrip(t, c2, br2, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 {
				t.Errorf("next connection: %d", resp.StatusCode)
			}
		})
	}
}

func TestConnKeepAlive(t *testing.T) {
	addr := gsupFront(t, DefaultLimits)
	c, br := dial(t, addr)
	// Bodies that look like bad requests are skipped by their framing.
	bad := "GET\x00 / HTTP/1.1\r\n x\r\nY : z\n\r\n"
	requests := []string{
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
		fmt.Sprintf("POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(bad), bad),
		fmt.Sprintf("POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-Sum: 1\r\n\r\n", len(bad), bad),
		"GET /4 HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	for i, raw := range requests {
		if resp, body := roundTrip(t, c, br, raw); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
		}
	}
	// A bad request later on the connection is refused too.
	resp, body := roundTrip(t, c, br, "GET /5 HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n")
	if resp.StatusCode != 400 || !strings.Contains(body, "white space before colon") {
		t.Errorf("fifth request: %d %q", resp.StatusCode, body)
	}
	expectClosed(t, br)
}

func TestConnPipelined(t *testing.T) {
	addr := gsupFront(t, DefaultLimits)
	c, br := dial(t, addr)
	raw := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nHost: a\r\n\r\n"
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 200, 400} {
		resp, body := readResponse(t, br)
		if resp.StatusCode != want {
			t.Errorf("response %d: %d %q, want %d", i+1, resp.StatusCode, body, want)
		}
	}
	expectClosed(t, br)
}

// upgradeHandler switches to an echo protocol on "Upgrade: echo" (101) and
// on CONNECT (200), and answers 200 otherwise.
func upgradeHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" && r.Method != http.MethodConnect {
			w.Header().Set(forwardedHeader, "1")
			io.WriteString(w, "no switch")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		if r.Method == http.MethodConnect {
			io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		} else {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
		}
		io.Copy(c, brw.Reader)
	})
}

func TestConnUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name, req, status string
		early             bool
	}{
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", "101", false},
		{"upgrade, data before the answer", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", "101", true},
		{"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "200", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f := serveOn(t, WrapListener(ln, DefaultLimits, nil, nil), upgradeHandler(t), MaxHeaderBytes(DefaultLimits))
			c, br := dial(t, f.addr)
			// Not HTTP at all: it must pass untouched once switched.
			payload := "\x00\x01GET\x00 / HTTP/9.9\r\n \r\n\n\x7f"
			req := tt.req
			if tt.early {
				req += payload
			}
			io.WriteString(c, req)
			var head []byte
			for !bytes.Contains(head, []byte("\r\n\r\n")) || (tt.status == "101" && !bytes.Contains(head, []byte(" 101 "))) {
				b, err := br.ReadByte()
				if err != nil {
					t.Fatalf("reading the answer: %v (%q)", err, head)
				}
				head = append(head, b)
				if tt.status == "101" && bytes.HasSuffix(head, []byte("\r\n\r\n")) && !bytes.Contains(head, []byte(" 101 ")) {
					head = head[:0] // the interim 100
				}
			}
			if !bytes.Contains(head, []byte(" "+tt.status+" ")) {
				t.Fatalf("answer %q, want %s", head, tt.status)
			}
			if !tt.early {
				io.WriteString(c, payload)
			}
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != payload {
				t.Errorf("echo: %q, %v; want %q", got, err, payload)
			}
		})
	}
}

func TestConnUpgradeDeclined(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := serveOn(t, WrapListener(ln, DefaultLimits, nil, nil), upgradeHandler(t), MaxHeaderBytes(DefaultLimits))
	c, br := dial(t, f.addr)
	// The app does not switch: the next requests are checked as usual.
	if resp, body := roundTrip(t, c, br, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("upgrade declined: %d %q", resp.StatusCode, body)
	}
	if resp, body := roundTrip(t, c, br, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
	if resp, body := roundTrip(t, c, br, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("second upgrade declined: %d %q", resp.StatusCode, body)
	}
	resp, body := roundTrip(t, c, br, "GET /bad HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n")
	if resp.StatusCode != 400 || !strings.Contains(body, "folding") {
		t.Errorf("bad request after a declined upgrade: %d %q", resp.StatusCode, body)
	}
	// Smuggling a request behind a declined upgrade, in the same packet.
	c2, br2 := dial(t, f.addr)
	io.WriteString(c2, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nY : z\r\n\r\n")
	if resp, _ := readResponse(t, br2); resp.StatusCode != 200 {
		t.Fatalf("declined upgrade: %d", resp.StatusCode)
	}
	if resp, body := readResponse(t, br2); resp.StatusCode != 400 {
		t.Errorf("request smuggled behind the upgrade: %d %q, want 400", resp.StatusCode, body)
	}
	// Two declined upgrades and a bad request, in one packet.
	c3, br3 := dial(t, f.addr)
	up := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	io.WriteString(c3, up+up+"GET /x HTTP/1.1\r\nHost: a\r\nY: \x7f\r\n\r\n")
	for i, want := range []int{200, 200, 400} {
		if resp, body := readResponse(t, br3); resp.StatusCode != want {
			t.Errorf("pipelined response %d: %d %q, want %d", i+1, resp.StatusCode, body, want)
		}
	}
}

func TestConnLogsRefusal(t *testing.T) {
	var buf testprog.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := serveOn(t, WrapListener(ln, DefaultLimits, log, nil), http.NotFoundHandler(), 0)
	c, br := dial(t, f.addr)
	if resp, _ := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"); resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	expectClosed(t, br)
	testprog.Eventually(t, "the warning", 5*time.Second, func() (bool, string) {
		return strings.Contains(buf.String(), "refused a request: control byte in a header value"), strconv.Quote(buf.String())
	})
	if !strings.Contains(buf.String(), "level=warning") || !strings.Contains(buf.String(), "status=400") {
		t.Errorf("log line: %q", buf.String())
	}
}

// TestConnRefusalBeforeBody checks the answer reaches a client that is
// still sending a body when its head is refused.
func TestConnRefusalBeforeBody(t *testing.T) {
	addr := gsupFront(t, Limits{RequestLine: 4094, Fields: 100, FieldSize: 8190, Body: 1000})
	c, br := dial(t, addr)
	body := bytes.Repeat([]byte("x"), 200<<10)
	go func() {
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body)
	}()
	resp, _ := readResponse(t, br)
	if resp.StatusCode != 413 {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

// TestConnBodyError checks what the handler sees for a bad chunked body.
func TestConnBodyError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
		w.WriteHeader(400)
	})
	f := serveOn(t, WrapListener(ln, DefaultLimits, nil, nil), h, 0)
	c, br := dial(t, f.addr)
	roundTrip(t, c, br, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5 \r\nworld\r\n0\r\n\r\n")
	var refused *Error
	if err := <-got; !errors.As(err, &refused) || refused.Status != 400 || !strings.Contains(refused.Reason, "chunk") {
		t.Errorf("handler's body error: %v, want an *Error 400 about the chunk", err)
	}
}

// TestConnConcurrent runs many keep-alive clients at once under -race.
func TestConnConcurrent(t *testing.T) {
	addr := gsupFront(t, DefaultLimits)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for i := 0; i < 50; i++ {
				fmt.Fprintf(c, "POST /%d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", i)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// benchKeepAlive sends b.N GET requests over one keep-alive connection.
func benchKeepAlive(b *testing.B, wrap bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var l net.Listener = ln
	if wrap {
		l = WrapListener(ln, DefaultLimits, nil, nil)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wrap {
			if status, reason := Check(r, DefaultLimits); status != 0 {
				http.Error(w, reason, status)
				return
			}
		}
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	f := serveOn(b, l, h, 0)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Connection: keep-alive\r\nCookie: session=0123456789abcdef0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkKeepAliveNetHTTP(b *testing.B) { benchKeepAlive(b, false) }
func BenchmarkKeepAliveWrapped(b *testing.B) { benchKeepAlive(b, true) }

// BenchmarkConnRead measures the wrapper alone: what a Read costs over a
// connection that delivers one request head per read.
func BenchmarkConnRead(b *testing.B) {
	head := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Connection: keep-alive\r\nCookie: session=0123456789abcdef0123456789abcdef\r\n\r\n")
	src := &repeatConn{data: head}
	c := &conn{Conn: src, sc: newScanner(DefaultLimits.normalize())}
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatConn is a net.Conn whose every Read returns data.
type repeatConn struct {
	net.Conn
	data []byte
}

func (r *repeatConn) Read(p []byte) (int, error) { return copy(p, r.data), nil }

func TestWrapListenerConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := WrapListener(ln, DefaultLimits, nil, nil)
	defer wl.Close()
	if wl.Addr().String() != ln.Addr().String() {
		t.Errorf("Addr %v, want %v", wl.Addr(), ln.Addr())
	}
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			c.Close()
		}
	}()
	c, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inner, ok := c.(interface{ NetConn() net.Conn })
	if !ok {
		t.Fatal("accepted connection has no NetConn method")
	}
	if _, ok := inner.NetConn().(*net.TCPConn); !ok {
		t.Errorf("NetConn is %T, want *net.TCPConn", inner.NetConn())
	}
	if _, ok := c.(interface{ CloseWrite() error }); !ok {
		t.Errorf("accepted connection cannot CloseWrite")
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
		t.Errorf("read %q, %v", got, err)
	}
}

// TestConnNoSwitchWithoutHijack: a 101 written through the ResponseWriter
// (or a body that looks like one) does not switch the connection: only a
// handler that hijacks it can, so the next request is still checked.
func TestConnNoSwitchWithoutHijack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "fake" {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		w.Header().Set(forwardedHeader, "1")
		io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
	})
	f := serveOn(t, WrapListener(ln, DefaultLimits, nil, nil), h, 0)
	for _, up := range []string{"fake", "websocket"} {
		c, br := dial(t, f.addr)
		resp, _ := roundTrip(t, c, br, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: "+up+"\r\n\r\n")
		if resp.Close {
			t.Fatalf("Upgrade: %s: %d with Connection: close; the test needs the connection open", up, resp.StatusCode)
		}
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\nY : z\r\n\r\n")
		resp2, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("Upgrade: %s: reading the next answer: %v", up, err)
		}
		body, _ := io.ReadAll(resp2.Body)
		if resp2.StatusCode != 400 || !strings.Contains(string(body), "colon") {
			t.Errorf("Upgrade: %s: next request got %d %q, want the raw checks' 400", up, resp2.StatusCode, body)
		}
	}
}
