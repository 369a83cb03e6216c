package h1

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
)

// A kept connection's next request reuses the state of the one before
// (Request, context, URL): it carries nothing of it, whatever the
// handler before did with its Request (a form parsed, a chunked body with
// a trailer, a query, a context asked for its error).
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
	}
	got := make(chan seen, 1)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			r.ParseForm()
			io.Copy(io.Discard, r.Body)
		}
		got <- seen{r: r, form: r.Form != nil || r.PostForm != nil, query: r.URL.RawQuery, trailer: r.Trailer,
			te: r.TransferEncoding, length: r.ContentLength, noBody: r.Body == http.NoBody,
			err: r.Context().Err(), path: r.URL.Path, host: r.Host}
		io.WriteString(w, "ok")
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "POST /first?x=1 HTTP/1.1\r\nHost: one\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\n\r\n3\r\ny=2\r\n0\r\nX-T: 1\r\n\r\n")
	readResponse(t, br, "POST")
	first := <-got
	if !first.form || first.query != "x=1" || first.te == nil || first.trailer.Get("X-T") != "1" {
		t.Fatalf("first request: %+v", first)
	}
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: two\r\n\r\n")
	readResponse(t, br, "GET")
	second := <-got
	if second.r != first.r {
		t.Fatal("the second request did not reuse the first's state: this test checks nothing")
	}
	if second.form || second.query != "" || second.trailer != nil || second.te != nil || second.length != 0 ||
		!second.noBody || second.err != nil || second.path != "/second" || second.host != "two" {
		t.Errorf("second request: form %v, query %q, trailer %v, transfer encoding %v, length %d, NoBody %v, context error %v, path %q, host %q;"+
			" want nothing of the first's", second.form, second.query, second.trailer, second.te, second.length, second.noBody, second.err, second.path, second.host)
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
