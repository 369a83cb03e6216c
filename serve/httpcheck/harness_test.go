package httpcheck

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"gsup/internal/corpus"
)

// frontMode is what stands in front of the test handler.
type frontMode int

const (
	modeNetHTTP frontMode = iota // net/http alone
	modeCheck                    // net/http + Check in the handler
	modeGsup                     // WrapListener + net/http + Check
)

func (m frontMode) String() string {
	return [...]string{"net/http alone", "net/http + Check", "gsup (WrapListener + Check)"}[m]
}

// forwardedHeader marks a response from the handler that stands for the
// app: the request was forwarded.
const forwardedHeader = corpus.ForwardedHeader

// front is a real http.Server on a loopback port with the test handler.
type front struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

// startFront serves the test handler behind mode with the given limits.
// The handler models gsup's: Check (modes 1 and 2), then the body is read
// whole before anything goes upstream (gsup's buffer_body), and only a
// request whose body read cleanly counts as forwarded.
func startFront(t testing.TB, mode frontMode, lim Limits) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if mode == modeGsup {
		l = WrapListener(ln, lim, nil, nil)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode != modeNetHTTP {
			if status, reason := Check(r, lim); status != 0 {
				w.Header().Set("Connection", "close")
				http.Error(w, reason, status)
				return
			}
			DropUnderscoreFields(r.Header)
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			status := http.StatusBadRequest
			var refused *Error
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
	var maxHeader int
	if mode != modeNetHTTP {
		maxHeader = MaxHeaderBytes(lim)
	}
	return serveOn(t, l, h, maxHeader)
}

// serveOn serves h on l until the test ends.
func serveOn(t testing.TB, l net.Listener, h http.Handler, maxHeaderBytes int) *front {
	t.Helper()
	f := &front{addr: l.Addr().String(), done: make(chan struct{})}
	f.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          quietLog(),
	}
	go func() {
		defer close(f.done)
		f.srv.Serve(l)
	}()
	t.Cleanup(func() {
		f.srv.Close()
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

// quietLog discards net/http's own error log lines.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
