package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/serve/forward"
)

// testTimeout bounds every wait in these tests, so that a bug fails a test
// instead of hanging it.
const testTimeout = 10 * time.Second

// startBackend serves h on 127.0.0.1:0 and returns its address.
func startBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	return startBackendState(t, h, nil)
}

// startBackendClosed is startBackend with a channel that receives a value
// each time the backend closes a connection (up to 10 unread).
func startBackendClosed(t testing.TB, h http.Handler) (addr string, closed <-chan struct{}) {
	t.Helper()
	c := make(chan struct{}, 10)
	addr = startBackendState(t, h, func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			c <- struct{}{}
		}
	})
	return addr, c
}

// startBackendState is startBackend with the server's ConnState hook.
func startBackendState(t testing.TB, h http.Handler, connState func(net.Conn, http.ConnState)) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = connState
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// startUnixBackend serves h on a UNIX socket and returns "unix:PATH".
func startUnixBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "up") // t.TempDir can exceed the 108-byte socket path limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return "unix:" + path
}

// rawBackend accepts connections and hands each to serve on its own
// goroutine; it returns the address.
func rawBackend(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			select {
			case <-done:
				mu.Unlock()
				c.Close()
				return
			default:
			}
			conns[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		close(done)
		ln.Close()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readRequestHead reads one request from br (head and body) and reports
// whether it got one.
func readRequest(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	io.Copy(io.Discard, req.Body)
	return req, true
}

// logSink collects log entries.
type logSink struct {
	mu      sync.Mutex
	entries []*logrus.Entry
}

func (s *logSink) Levels() []logrus.Level { return logrus.AllLevels }
func (s *logSink) Fire(e *logrus.Entry) error {
	s.mu.Lock()
	s.entries = append(s.entries, e)
	s.mu.Unlock()
	return nil
}

func (s *logSink) count(level logrus.Level) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		if e.Level == level {
			n++
		}
	}
	return n
}

func (s *logSink) messages() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, e := range s.entries {
		b.WriteString(e.Level.String() + ": " + e.Message + "\n")
	}
	return b.String()
}

func newLogger() (*logrus.Logger, *logSink) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	s := &logSink{}
	l.AddHook(s)
	return l, s
}

// front is a net/http server with a proxy handler; every request's Record
// is sent on records once the handler has returned.
type front struct {
	URL     string
	Addr    string
	records chan Record
	panics  *bytes.Buffer
	mu      *sync.Mutex
	// panicked: a handler panicked (even with http.ErrAbortHandler,
	// which net/http does not log).
	panicked *atomic.Bool
}

func startFront(t testing.TB, serve func(http.ResponseWriter, *http.Request, *Record)) *front {
	t.Helper()
	f := &front{records: make(chan Record, 1000), panics: &bytes.Buffer{}, mu: &sync.Mutex{}, panicked: &atomic.Bool{}}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec Record
		defer func() {
			if v := recover(); v != nil {
				f.panicked.Store(true)
				defer panic(v)
			}
			select {
			case f.records <- rec:
			default:
			}
		}()
		serve(w, r, &rec)
	}))
	s.Config.ErrorLog = log.New(lockedWriter{f.mu, f.panics}, "", 0)
	s.Start()
	t.Cleanup(func() {
		s.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if strings.Contains(f.panics.String(), "panic") {
			t.Errorf("front server logged a panic:\n%s", f.panics)
		}
	})
	f.URL, f.Addr = s.URL, s.Listener.Addr().String()
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// record waits for the Record of the next finished request.
func (f *front) record(t testing.TB) Record {
	t.Helper()
	select {
	case r := <-f.records:
		return r
	case <-time.After(testTimeout):
		t.Fatal("no request finished")
		return Record{}
	}
}

// gsupFront starts a front with a Proxy over addrs (ids 1, 2, ...).
func gsupFront(t testing.TB, o Options, addrs ...string) (*front, *Balancer) {
	t.Helper()
	b := NewBalancer()
	for i, a := range addrs {
		b.Add(uint64(i+1), a)
	}
	if o.Forward == nil {
		o.Forward = stripForwarded
	}
	return startFront(t, NewProxy(b, o).Serve), b
}

// stripForwarded does what ReverseProxy does before its Rewrite hook, so
// the two can be compared.
func stripForwarded(p *forward.Plan, _ forward.Source, _ *http.Request) {
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		p.Remove(k)
	}
}

// refFront starts a front with httputil.ReverseProxy to addr, the
// reference behaviour.
func refFront(t testing.TB, addr string) *front {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: addr}
	tr := &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 256,
		ForceAttemptHTTP2:   false,
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		target.Host = "localhost"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	return startFront(t, func(w http.ResponseWriter, r *http.Request, _ *Record) { rp.ServeHTTP(w, r) })
}

// client returns an HTTP client for the tests: no compression, no HTTP/2,
// bounded.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       testTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// waitFor receives from ch or fails the test.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
