package listen

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/testprog"
	"gsup/procfile"
	"gsup/serve/forward"
)

// seen is what the test server reports about a request.
type seen struct {
	Addr    string `json:"addr"` // ClientInfo.Addr, "" when zero
	Peer    string `json:"peer"`
	Unix    bool   `json:"unix"`
	HTTPS   bool   `json:"https"`
	Proxied bool   `json:"proxied"`
	Remote  string `json:"remote"` // http.Request.RemoteAddr
	Direct  bool   `json:"direct"` // Info(conn) agreed with FromContext
	Text    string `json:"text"`   // the connection's RemoteAddrText
}

func apString(ap interface {
	IsValid() bool
	String() string
}) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

// infoHandler answers every request with what the connection says.
func infoHandler(w http.ResponseWriter, r *http.Request) {
	ci, ok := FromContext(r.Context())
	if !ok {
		http.Error(w, "no connection in context", http.StatusInternalServerError)
		return
	}
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	s := seen{
		Addr: apString(ci.Addr), Peer: apString(ci.Peer), Unix: ci.Unix, HTTPS: ci.HTTPS, Proxied: ci.Proxied,
		Remote: r.RemoteAddr, Direct: Info(c) == ci,
	}
	if lc, ok := c.(*conn); ok {
		s.Text = lc.RemoteAddrText()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

// serveHTTP serves infoHandler on l until the test ends.
func serveHTTP(t testing.TB, l net.Listener) {
	t.Helper()
	srv := &http.Server{
		Handler:           http.HandlerFunc(infoHandler),
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 2 * time.Second,
		IdleTimeout:       5 * time.Second,
		ErrorLog:          nil,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
}

// logBuffer collects a logger's output; safe for concurrent use.
type logBuffer struct{ testprog.Buffer }

// lines returns the non-empty lines logged so far.
func (b *logBuffer) lines() []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// waitLines polls until at least n lines are logged, or a second passes.
func (b *logBuffer) waitLines(n int) []string {
	testprog.Poll(time.Second, func() (bool, string) { return len(b.lines()) >= n, "" })
	return b.lines()
}

func testLogger() (*logrus.Logger, *logBuffer) {
	b := &logBuffer{}
	l := logrus.New()
	l.SetOutput(b)
	l.SetLevel(logrus.InfoLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	return l, b
}

// openOne opens a single bind and closes it when the test ends.
func openOne(t testing.TB, bind procfile.Bind, o Options) *Listener {
	t.Helper()
	ls, err := Open([]procfile.Bind{bind}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ls[0].Close() })
	return ls[0]
}

func mustAllow(t testing.TB, entries ...string) *forward.AllowList {
	t.Helper()
	a, err := forward.ParseAllowList(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func dial(t testing.TB, l net.Listener) net.Conn {
	t.Helper()
	return dialAddr(t, l.Addr().Network(), l.Addr().String())
}

func dialAddr(t testing.TB, network, address string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, address, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// get sends prefix, then n keep-alive GET requests on one connection, and
// returns what the server saw for each.
func get(t testing.TB, l net.Listener, prefix []byte, n int) (net.Conn, []seen) {
	t.Helper()
	return getConn(t, dial(t, l), prefix, n)
}

func getConn(t testing.TB, c net.Conn, prefix []byte, n int) (net.Conn, []seen) {
	t.Helper()
	if len(prefix) > 0 {
		if _, err := c.Write(prefix); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(c)
	var out []seen
	for i := 0; i < n; i++ {
		if _, err := io.WriteString(c, "GET /info HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s %q", i+1, resp.Status, body)
		}
		var s seen
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("request %d: %v in %q", i+1, err, body)
		}
		if !s.Direct {
			t.Errorf("request %d: Info(conn) differs from FromContext", i+1)
		}
		// RemoteAddrText is RemoteAddr's text, where it gives one (not
		// on a UNIX socket without a PROXY client).
		if s.Text != s.Remote && (s.Text != "" || !s.Unix) {
			t.Errorf("request %d: RemoteAddrText %q, RemoteAddr %q", i+1, s.Text, s.Remote)
		}
		out = append(out, s)
	}
	return c, out
}

// exchange sends data (then shuts the writing side when closeWrite is set)
// and returns everything the server sends until it closes, failing the test
// if that takes longer than bound.
func exchange(t testing.TB, l net.Listener, data []byte, closeWrite bool, bound time.Duration) string {
	t.Helper()
	return exchangeOn(t, dial(t, l), data, closeWrite, bound)
}

func exchangeOn(t testing.TB, c net.Conn, data []byte, closeWrite bool, bound time.Duration) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(bound))
	if len(data) > 0 {
		if _, err := c.Write(data); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if closeWrite {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close within %s (read %q)", bound, got)
	}
	return string(got)
}

// withUmask runs f with the process umask set to mask.
func withUmask(mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

// testListen listens on network and address; the listener closes when
// the test ends.
func testListen(t *testing.T, network, address string) net.Listener {
	t.Helper()
	l, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// tcpPair listens on a loopback port and dials it: the listener and the
// client's end, both closed when the test ends.
func tcpPair(t *testing.T) (net.Listener, net.Conn) {
	t.Helper()
	l := testListen(t, "tcp4", "127.0.0.1:0")
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c
}
