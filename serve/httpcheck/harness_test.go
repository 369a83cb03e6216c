package httpcheck

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
const forwardedHeader = "X-Test-Forwarded"

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
		l = WrapListener(ln, lim, nil)
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

// result is what a client saw on one connection.
type result struct {
	statuses  []int // every response status, in order
	forwarded int   // responses from the handler
	err       error // how reading ended, if not with a clean EOF
}

// refused: the front answered 4xx/5xx itself, or closed the connection
// without forwarding anything.
func (r result) refused() bool {
	for _, s := range r.statuses {
		if s >= 400 {
			return true
		}
	}
	return r.forwarded == 0 && len(r.statuses) == 0
}

// passed: at least one request reached the handler and nothing was
// refused.
func (r result) passed() bool { return r.forwarded > 0 && !r.refused() }

func (r result) String() string {
	if len(r.statuses) == 0 {
		return "closed"
	}
	s := make([]string, len(r.statuses))
	for i, st := range r.statuses {
		s[i] = strconv.Itoa(st)
	}
	return strings.Join(s, ",")
}

// send writes raw to the front in one go, half-closes, and reads every
// response until the front closes.
func send(t testing.TB, addr string, raw []byte) result {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Write and read at once, so a front that answers before reading it
	// all cannot deadlock the test.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
	}()
	var res result
	br := bufio.NewReader(c)
	for {
		if _, err := br.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) {
				res.err = err
			}
			break
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			res.err = err
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.statuses = append(res.statuses, resp.StatusCode)
		if resp.Header.Get(forwardedHeader) != "" {
			res.forwarded++
		}
	}
	wg.Wait()
	return res
}

// quietLog discards net/http's own error log lines.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// decodeCorpus turns a corpus file into bytes: real newlines are ignored;
// \r, \n, \t, \0 and \xHH are escapes (the corpus README).
func decodeCorpus(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\n"), nil)
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		switch b[i+1] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case 'x':
			if i+3 < len(b) {
				out = append(out, byte(hexVal(b[i+2])<<4|hexVal(b[i+3])))
				i += 2
			}
		default:
			out = append(out, c, b[i+1])
		}
		i++
	}
	return out
}
