package h1

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"gsup/internal/corpus"
	"gsup/serve/httpcheck"
)

// frontMode is what stands in front of the test handler.
type frontMode int

const (
	modeNetHTTP frontMode = iota // net/http alone
	modeCheck                    // net/http + httpcheck.Check in the handler
	modeGsup                     // this package's Server (httpcheck's Stream) + httpcheck.Check
)

func (m frontMode) String() string {
	return [...]string{"net/http alone", "net/http + Check", "gsup (h1 + Check)"}[m]
}

// forwardedHeader marks a response from the handler that stands for the
// app: the request was forwarded.
const forwardedHeader = corpus.ForwardedHeader

// front is a real server on a loopback port with the test handler.
type front struct {
	addr string
	done chan struct{}
}

// startFront serves the test handler behind mode with the given limits.
// The handler models gsup's: httpcheck.Check (modes 1 and 2), then the body is read
// whole before anything goes upstream (gsup's buffer_body), and only a
// request whose body read cleanly counts as forwarded.
func startFront(t testing.TB, mode frontMode, lim httpcheck.Limits) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode != modeNetHTTP {
			if status, reason := httpcheck.Check(r, lim); status != 0 {
				w.Header().Set("Connection", "close")
				http.Error(w, reason, status)
				return
			}
			httpcheck.DropUnderscoreFields(r.Header)
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			status := http.StatusBadRequest
			var refused *httpcheck.Error
			if errors.As(err, &refused) {
				status = refused.Status
			}
			w.Header().Set("Connection", "close")
			http.Error(w, "bad request body", status)
			return
		}
		w.Header().Set(forwardedHeader, "1")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	})
	if mode == modeGsup {
		return serveOn(t, ln, func(l net.Listener) (serve, stop func() error) {
			srv := &Server{Handler: h, Limits: lim, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
			return func() error { return srv.Serve(l) }, srv.Close
		})
	}
	var maxHeader int
	if mode != modeNetHTTP {
		maxHeader = httpcheck.MaxHeaderBytes(lim)
	}
	return serveOn(t, ln, func(l net.Listener) (serve, stop func() error) {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       5 * time.Second,
			MaxHeaderBytes:    maxHeader,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
		return func() error { return srv.Serve(l) }, srv.Close
	})
}

// serveOn serves l with the server start makes, until the test ends.
func serveOn(t testing.TB, l net.Listener, start func(net.Listener) (serve, stop func() error)) *front {
	t.Helper()
	f := &front{addr: l.Addr().String(), done: make(chan struct{})}
	serve, stop := start(l)
	go func() {
		defer close(f.done)
		serve()
	}()
	t.Cleanup(func() {
		stop()
		<-f.done
	})
	return f
}

// send sends raw to the front (corpus.Send) and returns what the client
// saw.
func send(t testing.TB, addr string, raw []byte) corpus.Result {
	t.Helper()
	res, err := corpus.Send(addr, raw, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
