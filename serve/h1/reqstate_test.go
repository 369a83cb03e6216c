package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

// A kept connection's next request reuses the state of the one before
// (Request, context, URL), and a new connection's first request may reuse
// the state an ended connection left: it carries nothing of it, whatever
// the handler before did with its Request (a form parsed, a chunked body
// with a trailer, a query, a context asked for its error).
func TestReusedRequestCarriesNothing(t *testing.T) {
	type seen struct {
		r       *http.Request
		form    bool
		query   string
		trailer http.Header
		te      []string
		length  int64
		noBody  bool
		err     error
		path    string
		host    string
		remote  string
	}
	first := func(t *testing.T, got <-chan seen, c net.Conn, br *bufio.Reader, closing string) seen {
		t.Helper()
		io.WriteString(c, "POST /first?x=1 HTTP/1.1\r\nHost: one\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n"+closing+
			"Content-Type: application/x-www-form-urlencoded\r\n\r\n3\r\ny=2\r\n0\r\nX-T: 1\r\n\r\n")
		readResponse(t, br, "POST")
		s := <-got
		if !s.form || s.query != "x=1" || s.te == nil || s.trailer.Get("X-T") != "1" {
			t.Fatalf("first request: %+v", s)
		}
		return s
	}
	second := func(t *testing.T, got <-chan seen, c net.Conn, br *bufio.Reader, closing string) seen {
		t.Helper()
		io.WriteString(c, "GET /second HTTP/1.1\r\nHost: two\r\n"+closing+"\r\n")
		readResponse(t, br, "GET")
		return <-got
	}
	check := func(t *testing.T, s seen, c net.Conn) {
		t.Helper()
		if s.form || s.query != "" || s.trailer != nil || s.te != nil || s.length != 0 ||
			!s.noBody || s.err != nil || s.path != "/second" || s.host != "two" || s.remote != c.LocalAddr().String() {
			t.Errorf("second request: form %v, query %q, trailer %v, transfer encoding %v, length %d, NoBody %v, context error %v, path %q, host %q, remote %s;"+
				" want nothing of the first's", s.form, s.query, s.trailer, s.te, s.length, s.noBody, s.err, s.path, s.host, s.remote)
		}
	}
	serve := func(t *testing.T) (string, <-chan seen) {
		got := make(chan seen, 1)
		addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/first" {
				r.ParseForm()
				io.Copy(io.Discard, r.Body)
			}
			got <- seen{r: r, form: r.Form != nil || r.PostForm != nil, query: r.URL.RawQuery, trailer: r.Trailer,
				te: r.TransferEncoding, length: r.ContentLength, noBody: r.Body == http.NoBody,
				err: r.Context().Err(), path: r.URL.Path, host: r.Host, remote: r.RemoteAddr}
			io.WriteString(w, "ok")
		})})
		return addr, got
	}

	t.Run("kept", func(t *testing.T) {
		addr, got := serve(t)
		c, br := dial(t, addr)
		f := first(t, got, c, br, "")
		s := second(t, got, c, br, "")
		if s.r != f.r {
			t.Fatal("the second request did not reuse the first's state: this test checks nothing")
		}
		check(t, s, c)
	})
	// The state goes through a sync.Pool, whose Get finds what another
	// processor Put only some of the time: pairs of connections until one
	// reuses a first request's state. A kept connection's last state goes
	// when it ends (the client closes it after the first request), and so
	// does the state of a request that closes its connection
	// (Connection: close).
	for _, closing := range []string{"", "Connection: close\r\n"} {
		name := "new connection after the client closed"
		if closing != "" {
			name = "new connection after Connection: close"
		}
		t.Run(name, func(t *testing.T) {
			addr, got := serve(t)
			firsts := map[*http.Request]bool{}
			for range 200 {
				c, br := dial(t, addr)
				firsts[first(t, got, c, br, closing).r] = true
				c.Close()
				c, br = dial(t, addr)
				if s := second(t, got, c, br, "Connection: close\r\n"); firsts[s.r] {
					check(t, s, c)
					return
				}
			}
			if raceEnabled {
				t.Skip("no state was reused (the race detector's pools drop at random): nothing to check")
			}
			t.Fatal("no new connection reused an ended one's request state: this test checks nothing")
		})
	}
}

// A request's context that something waits on (Done, a context derived
// from it, context.AfterFunc, each asked before the handler returned) may
// still be used after its request: it is not reused for the next
// request, and stays ended while that one runs.
func TestWaitedContextIsNotReused(t *testing.T) {
	for _, how := range []string{"done", "derived", "afterfunc"} {
		t.Run(how, func(t *testing.T) {
			var kept context.Context
			var keptReq *http.Request
			check := make(chan error, 1)
			addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				if r.URL.Path == "/wait" {
					switch how {
					case "done":
						done := ctx.Done() // asked before the handler returns, as Server.Handler's contract says
						go func() { <-done }()
					case "derived":
						_, stop := context.WithCancel(ctx)
						t.Cleanup(stop)
					case "afterfunc":
						context.AfterFunc(ctx, func() {})
					}
					kept, keptReq = ctx, r
					io.WriteString(w, "ok")
					return
				}
				switch {
				case r == keptReq || ctx == kept:
					check <- errors.New("the next request reused the waited-on request's state")
				case !errors.Is(kept.Err(), context.Canceled):
					check <- errors.New("the waited-on context's Err is not context.Canceled while the next request runs")
				case ctx.Err() != nil:
					check <- ctx.Err()
				default:
					check <- nil
				}
				io.WriteString(w, "ok")
			})})
			c, br := dial(t, addr)
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
			readResponse(t, br, "GET")
			io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			readResponse(t, br, "GET")
			if err := <-check; err != nil {
				t.Error(err)
			}
		})
	}
}
