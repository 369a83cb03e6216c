package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/testprog"
	"gsup/procfile"
)

func defaults() procfile.Serve {
	return procfile.Serve{
		Enabled:               true,
		Upstream:              "web",
		ForwardedAllowIPs:     []string{"127.0.0.1", "::1"},
		ProxyProtocol:         "off",
		ProxyAllowFrom:        []string{"127.0.0.1", "::1"},
		Timeout:               5 * time.Second,
		GracefulTimeout:       5 * time.Second,
		TrustUnixPeers:        true,
		UnixMode:              0o660,
		BufferBody:            procfile.DefaultBuffer,
		BufferResponse:        procfile.DefaultBuffer,
		LimitRequestLine:      4094,
		LimitRequestFields:    100,
		LimitRequestFieldSize: 8190,
	}
}

// front starts a Server on a free port in front of backend; it returns
// the front's address and the access log's path.
func front(t *testing.T, set procfile.Serve, backend http.Handler, onLimit func(uint64)) (string, string) {
	t.Helper()
	return frontWith(t, set, backend, onLimit, nil)
}

// frontWith is front with prep called on the Server before it serves.
func frontWith(t *testing.T, set procfile.Serve, backend http.Handler, onLimit func(uint64), prep func(*Server)) (string, string) {
	t.Helper()
	app := httptest.NewServer(backend)
	t.Cleanup(app.Close)
	logPath := filepath.Join(t.TempDir(), "access.log")
	set.AccessLogfile = logPath
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := startServerWith(t, Config{Settings: set, Log: log, Stdout: io.Discard, OnLimit: onLimit}, []procfile.Bind{{Address: "127.0.0.1:0"}}, app.URL, prep)
	return s.lns[0].Addr().String(), logPath
}

// startServer serves binds with cfg in front of the app at appURL, until
// the test ends.
func startServer(t *testing.T, cfg Config, binds []procfile.Bind, appURL string) *Server {
	t.Helper()
	return startServerWith(t, cfg, binds, appURL, nil)
}

// startServerWith is startServer with prep called on the Server before
// it serves.
func startServerWith(t *testing.T, cfg Config, binds []procfile.Bind, appURL string, prep func(*Server)) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(s)
	}
	if _, err := s.Listen(binds, nil, ""); err != nil {
		t.Fatal(err)
	}
	s.Serve()
	s.Add(1, strings.TrimPrefix(appURL, "http://"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func accessLog(t *testing.T, path string) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	return string(b)
}

// heldEvents is an app that sends one Server-Sent Event, flushes it, and
// sends the last once release is closed (or the request is gone).
func heldEvents(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "data: last\n\n")
	}
}

// Server-Sent Events pass through unbuffered: the first event reaches
// the client while the app still holds the response open.
func TestServerSentEventsAreNotBuffered(t *testing.T) {
	release := make(chan struct{})
	addr, _ := front(t, defaults(), heldEvents(release), nil)
	defer close(release)
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
}

// A WebSocket-style upgrade is passed through both ways.
func TestUpgradePassesThrough(t *testing.T) {
	addr, _ := front(t, defaults(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo: "+line)
		brw.Flush()
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(c, "hello\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("after upgrade got %q, %v", line, err)
	}
}

// A client that goes away cancels the app's request and is logged as
// 499, also with the edge (compression, static files) around the proxy.
func TestClientAbortIsLogged499(t *testing.T) {
	edge := defaults()
	edge.Compress = []string{"gzip"}
	edge.Root = t.TempDir()
	for name, set := range map[string]procfile.Serve{"plain": defaults(), "edge": edge} {
		t.Run(name, func(t *testing.T) {
			canceled := make(chan struct{})
			started := make(chan struct{})
			addr, logPath := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				<-r.Context().Done()
				close(canceled)
			}), nil)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
			<-started
			c.Close()
			select {
			case <-canceled:
			case <-time.After(5 * time.Second):
				t.Fatal("the app's request was not canceled after the client left")
			}
			testprog.Eventually(t, "a 499 line", 5*time.Second, func() (bool, string) {
				return strings.Contains(accessLog(t, logPath), `"GET /slow HTTP/1.1" 499 `), ""
			})
		})
	}
}

// Over the limits: 414, 431, 413 — and the server goes on.
func TestLimits(t *testing.T) {
	set := defaults()
	set.MaxBody = 1000
	addr, _ := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}), nil)
	status := func(raw string) int {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, raw)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		return resp.StatusCode
	}
	if got := status("GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: x\r\n\r\n"); got != 414 {
		t.Errorf("long request line: %d, want 414", got)
	}
	var many strings.Builder
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	if got := status("GET / HTTP/1.1\r\nHost: x\r\n" + many.String() + "\r\n"); got != 431 {
		t.Errorf("too many fields: %d, want 431", got)
	}
	if got := status("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 9000) + "\r\n\r\n"); got != 431 {
		t.Errorf("large field: %d, want 431", got)
	}
	if got := status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("c", 2000)); got != 413 {
		t.Errorf("large body: %d, want 413", got)
	}
	if got := status("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); got != 200 {
		t.Errorf("after the refusals: %d, want 200", got)
	}
}

// max_requests: the instance is handed to OnLimit after that many.
func TestMaxRequests(t *testing.T) {
	set := defaults()
	set.MaxRequests = 5
	var limited atomic.Int32
	var at atomic.Int32
	var served atomic.Int32
	addr, _ := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, "ok")
	}), func(id uint64) {
		at.Store(served.Load())
		limited.Add(1)
	})
	for i := 0; i < 8; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	testprog.Eventually(t, "OnLimit", 5*time.Second, func() (bool, string) { return limited.Load() == 1, "" })
	if at.Load() < 5 {
		t.Errorf("OnLimit after %d requests, want 5", at.Load())
	}
}

// A client that half-closes after sending its request never gets an
// answer the app did not give: either the app's response, or the
// connection closed (a client going away is an abort, as with nginx).
func TestHalfCloseNeverGetsAFakeAnswer(t *testing.T) {
	addr, _ := front(t, defaults(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprint(w, "from app")
	}), nil)
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if len(b) > 0 && !strings.Contains(string(b), "from app") {
			t.Fatalf("got an answer the app did not give:\n%s", b)
		}
	}
}

// eventually polls cond for 5 s (testprog.Eventually with a yes/no
// condition).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testprog.Eventually(t, what, 5*time.Second, func() (bool, string) { return cond(), "" })
}

// Each answer on a kept client connection carries the app's fields for
// that answer alone, whatever the answers before it had: the values of
// one answer's fields are kept in storage the next answer reuses.
func TestEachAnswerCarriesOnlyItsOwnFields(t *testing.T) {
	addr, _ := front(t, defaults(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/many":
			for i := range 12 {
				h.Set(fmt.Sprintf("X-Field-%d", i), fmt.Sprintf("v%d", i))
			}
			h.Add("X-Repeated", "one")
			h.Add("X-Repeated", "two")
		case "/few":
			h.Set("X-Few", "only")
		}
		io.WriteString(w, r.URL.Path)
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, path := range []string{"/many", "/few", "/many", "/none", "/few"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != path {
			t.Fatalf("%s: body %q", path, body)
		}
		var own []string
		for k, vv := range resp.Header {
			if strings.HasPrefix(k, "X-") {
				own = append(own, k+"="+strings.Join(vv, ","))
			}
		}
		want := 0
		switch path {
		case "/many":
			want = 13
			for i := range 12 {
				if got := resp.Header.Get(fmt.Sprintf("X-Field-%d", i)); got != fmt.Sprintf("v%d", i) {
					t.Errorf("%s: X-Field-%d is %q", path, i, got)
				}
			}
			if got := resp.Header.Values("X-Repeated"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
				t.Errorf("%s: X-Repeated is %q, want one, two", path, got)
			}
		case "/few":
			want = 1
			if got := resp.Header.Get("X-Few"); got != "only" {
				t.Errorf("%s: X-Few is %q", path, got)
			}
		}
		if len(own) != want {
			t.Errorf("%s: the app's fields are %q, want %d of them", path, own, want)
		}
	}
}

// The access log's response-header atoms print the app's fields, which
// go to the client as a list when nothing between the proxy and the
// connection reads the header map: the log reads them afterwards.
func TestAccessLogPrintsTheAppsFields(t *testing.T) {
	set := defaults()
	set.AccessLogformat = `%(s)s %({x-app}o)s %({content-type}o)s %({x-none}o)s %({connection}o)s`
	addr, logPath := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", r.URL.Query().Get("v"))
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	}), nil)
	for _, v := range []string{"one", "two"} {
		resp, err := http.Get("http://" + addr + "/?v=" + v)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-App"); got != v {
			t.Errorf("the client got X-App %q; want %q", got, v)
		}
	}
	want := "200 one text/plain - -\n200 two text/plain - -\n"
	eventually(t, "two lines", func() bool { return strings.Count(accessLog(t, logPath), "\n") >= 2 })
	if got := accessLog(t, logPath); got != want {
		t.Errorf("access log\n%s\nwant\n%s", got, want)
	}
}

// An app's trailers reach the client through the front, declared or not.
func TestAppTrailersReachTheClient(t *testing.T) {
	addr, _ := front(t, defaults(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body with trailers\n")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "late")
	}), nil)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body with trailers\n" {
		t.Fatalf("body %q, %v", body, err)
	}
	if got := resp.Trailer; got.Get("X-Checksum") != "abc123" || got.Get("X-Undeclared") != "late" {
		t.Errorf("trailer %v; want X-Checksum abc123 and X-Undeclared late", got)
	}
}
