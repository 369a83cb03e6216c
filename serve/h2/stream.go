package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gsup/serve/httpcheck"
)

// stream is one request and its answer.
type stream struct {
	sc     *conn
	id     uint32
	ctx    context.Context
	cancel context.CancelCauseFunc
	req    *http.Request
	body   *pipe // nil: the request has no body
	rw     responseWriter

	// Under sc.mu:
	sendWindow  int64
	recvWindow  int64 // what the client may still send on it
	unacked     int64 // bytes read by the handler not yet given back
	declared    int64 // the request's Content-Length, -1 if none
	got         int64
	remoteDone  bool // the client ended its side (END_STREAM)
	handlerDone bool
	resetHere   bool // this side reset it
}

// headers takes a HEADERS frame (with its CONTINUATIONs): a new stream,
// or the trailers of an open one.
func (sc *conn) headers(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	sc.mu.Lock()
	if st := sc.streams[id]; st != nil {
		err := sc.trailersLocked(st, f)
		sc.mu.Unlock()
		return err
	}
	if id <= sc.maxID {
		ended, resetHere := sc.endedLately(id), sc.resetHere(id)
		sc.mu.Unlock()
		if resetHere {
			return nil // sent before the client saw this side's RST_STREAM
		}
		if ended {
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		}
		return http2.ConnectionError(http2.ErrCodeProtocol) // streams open in order
	}
	// The stream counts as opened (maxID) only once it is registered, in
	// the same hold of mu (below): a GOAWAY sent meanwhile names the
	// streams before it, which are answered. A stream error opens it too
	// (serve, opened).
	switch {
	case sc.goingAway:
		sc.maxID = id
		sc.mu.Unlock()
		return nil // after the last stream GOAWAY named: not served
	case f.HasPriority() && f.Priority.StreamDep == id:
		sc.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	case len(sc.streams) >= maxStreams:
		sc.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	case sc.handlers >= maxHandlers:
		sc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm) // resetting streams faster than their handlers end
	}
	sc.mu.Unlock()

	st := &stream{sc: sc, id: id, declared: -1, recvWindow: streamWindow}
	st.ctx, st.cancel = context.WithCancelCause(sc.ctx)
	handler := sc.s.Handler
	if f.Truncated || listSize(f.Fields) > sc.s.maxHeaderBytes() {
		handler = http.HandlerFunc(sc.tooLarge)
		st.req = &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Proto: "HTTP/2.0", ProtoMajor: 2, Header: http.Header{},
			RemoteAddr: sc.remote, TLS: sc.tls, Body: http.NoBody}
		st.req = st.req.WithContext(st.ctx)
		if !f.StreamEnded() {
			st.body = newPipe(st) // taken and dropped
		}
	} else if err := sc.newRequest(st, f); err != nil {
		st.cancel(err)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: err}
	}
	st.rw = responseWriter{st: st, hdr: make(http.Header, 4)}

	sc.mu.Lock()
	sc.maxID = id
	switch {
	case sc.closed:
		sc.mu.Unlock()
		st.cancel(errConnClosed)
		return errConnClosed
	case sc.goingAway:
		sc.mu.Unlock()
		st.cancel(errConnClosed)
		return nil // GOAWAY went out meanwhile, naming the streams before this one
	}
	st.sendWindow = sc.initWindow
	st.remoteDone = f.StreamEnded()
	sc.streams[id] = st
	sc.handlers++
	if sc.idleSet {
		sc.idleSet = false
		sc.nc.SetReadDeadline(time.Time{})
	}
	sc.mu.Unlock()
	go sc.run(st, handler)
	return nil
}

// listSize is the size of fields as SETTINGS_MAX_HEADER_LIST_SIZE counts
// it.
func listSize(fields []hpack.HeaderField) uint32 {
	var n uint32
	for _, f := range fields {
		n += f.Size()
	}
	return n
}

// trailersLocked takes the trailers of st (under mu).
func (sc *conn) trailersLocked(st *stream, f *http2.MetaHeadersFrame) error {
	switch {
	case st.remoteDone:
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeStreamClosed}
	case !f.StreamEnded() || len(f.PseudoFields()) > 0 || f.Truncated:
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	case st.declared >= 0 && st.got != st.declared:
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}

	st.remoteDone = true
	if st.handlerDone {
		sc.endLocked(st)
	}
	if st.body != nil {
		st.body.end(st.req.Trailer, f.RegularFields())
	}
	return nil
}

// tooLarge answers a request whose fields were over MaxHeaderBytes.
func (sc *conn) tooLarge(w http.ResponseWriter, r *http.Request) {
	const body = "request header fields too large\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	io.WriteString(w, body)
	if sc.s.Refused != nil {
		sc.s.Refused(sc.nc, http.StatusRequestHeaderFieldsTooLarge, len(body))
	}
}

// newRequest makes st's request from f (RFC 9113, 8.3.1); an error
// makes the request malformed (a stream error).
func (sc *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) error {
	var method, scheme, path, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":path":
			path = hf.Value
		case ":authority":
			authority = hf.Value
		default: // :protocol: extended CONNECT is not offered
			return fmt.Errorf("pseudo-header %s", hf.Name)
		}
	}
	connect := method == "CONNECT"
	switch {
	case connect && (scheme != "" || path != "" || authority == ""):
		return errors.New("CONNECT with :scheme or :path, or without :authority")
	case !connect && (method == "" || scheme == "" || path == ""):
		return errors.New("missing :method, :scheme or :path")
	}
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	var cookies []string
	for _, hf := range regular {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return fmt.Errorf("connection-specific field %s", hf.Name)
		case "te":
			if hf.Value != "trailers" {
				return errors.New("TE other than trailers")
			}
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		}
		k := canonical(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	if len(cookies) > 0 { // RFC 9113, 8.2.3: one field again
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if vv := h["Content-Length"]; len(vv) > 0 {
		for _, v := range vv[1:] {
			if v != vv[0] {
				return errors.New("differing Content-Length values")
			}
		}
		n, err := strconv.ParseUint(vv[0], 10, 63)
		if err != nil {
			return errors.New("bad Content-Length")
		}
		st.declared = int64(n)
	}
	if authority == "" {
		authority = h.Get("Host")
	}
	delete(h, "Host")
	var u *url.URL
	requestURI := path
	if connect {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return errors.New("bad :path")
		}
	}
	var trailer http.Header
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				if trailer == nil {
					trailer = http.Header{}
				}
				trailer[k] = nil
			}
		}
	}
	delete(h, "Trailer")
	r := http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       authority,
		RemoteAddr: sc.remote,
		RequestURI: requestURI,
		TLS:        sc.tls,
		Trailer:    trailer,
	}
	switch {
	case f.StreamEnded():
		if st.declared > 0 {
			return errors.New("Content-Length without a body")
		}
		r.Body = http.NoBody
	default:
		r.ContentLength = st.declared
		st.body = newPipe(st)
		if strings.EqualFold(h.Get("Expect"), "100-continue") {
			st.body.cont = true
		}
		r.Body = st.body
	}
	st.req = r.WithContext(st.ctx)
	return nil
}

// run runs st's handler, then ends st's side: its answer, and a reset
// if the client still sends a body nobody will read.
func (sc *conn) run(st *stream, h http.Handler) {
	defer func() {
		if e := recover(); e != nil {
			if e != http.ErrAbortHandler && sc.s.Log != nil {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				sc.s.Log.Errorf("h2: panic serving %s: %v\n%s", sc.remote, e, buf)
			}
			sc.resetStream(st.id, http2.ErrCodeInternal)
		}
		sc.mu.Lock()
		st.handlerDone = true
		sc.handlers--
		open := sc.streams[st.id] == st
		reset := open && !st.remoteDone
		if open && st.remoteDone {
			sc.endLocked(st)
		}
		sc.mu.Unlock()
		if reset { // the answer is complete; the rest of the body is not wanted
			sc.resetStream(st.id, http2.ErrCodeNo)
		}
		st.cancel(context.Canceled)
		st.drop(errHandlerDone)
	}()
	h.ServeHTTP(&st.rw, st.req)
	st.rw.finish()
}

var errHandlerDone = errors.New("h2: the handler returned")

// abort ends st for its handler: its context is cancelled with err, its
// body fails with it.
func (st *stream) abort(err error) {
	st.cancel(err)
	st.drop(err)
}

// drop makes st's body fail with err, and gives the connection's window
// back for what was left unread.
func (st *stream) drop(err error) {
	if st.body == nil {
		return
	}
	st.sc.giveBack(st.body.fail(err))
}

// giveBack returns n bytes taken from the connection's receive window
// and never read by a handler (WINDOW_UPDATE once enough are owed).
func (sc *conn) giveBack(n int) {
	if n <= 0 {
		return
	}
	sc.mu.Lock()
	sc.unacked += int64(n)
	credit := sc.creditLocked()
	sc.mu.Unlock()
	sc.sendCredit(0, credit)
}

// consumed gives the windows back for n bytes the handler read.
func (st *stream) consumed(n int) {
	sc := st.sc
	sc.mu.Lock()
	sc.unacked += int64(n)
	connCredit := sc.creditLocked()
	var credit uint32
	if sc.streams[st.id] == st && !st.remoteDone {
		st.unacked += int64(n)
		if st.unacked >= streamWindow/2 {
			credit = uint32(st.unacked)
			st.recvWindow += st.unacked
			st.unacked = 0
		}
	}
	sc.mu.Unlock()
	if connCredit > 0 || credit > 0 {
		sc.write(func() error {
			if connCredit > 0 {
				if err := sc.fr.WriteWindowUpdate(0, connCredit); err != nil {
					return err
				}
			}
			if credit > 0 {
				return sc.fr.WriteWindowUpdate(st.id, credit)
			}
			return nil
		})
	}
}

// pipe is a request body: the reading goroutine writes DATA into it, the
// handler reads.
type pipe struct {
	st       *stream
	mu       sync.Mutex
	buf      []byte
	off      int
	err      error // io.EOF once the client ended the stream, or why the body ended
	wake     chan struct{}
	deadline time.Time
	cont     bool // send 100 Continue on the first read
	trailer  http.Header
	trailers [][2]string // for trailer, once the handler reads to the end
}

func newPipe(st *stream) *pipe { return &pipe{st: st, wake: make(chan struct{}, 1)} }

func (p *pipe) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// write adds data, and ends the body if end; bytes for a body that ended
// are dropped, and given back to the connection's window.
func (p *pipe) write(data []byte, end bool) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		p.st.sc.giveBack(len(data))
		return
	}
	p.buf = append(p.buf, data...)
	if end {
		p.err = io.EOF
	}
	p.mu.Unlock()
	p.notify()
}

// end ends the body with trailers: they are put into trailer (the
// request's, where they were announced) when the handler reads to the
// end, as net/http does.
func (p *pipe) end(trailer http.Header, fields []hpack.HeaderField) {
	p.mu.Lock()
	if p.err == nil {
		for _, hf := range fields {
			if !trailerAllowed(hf.Name) {
				continue // never handed over, whether announced or not
			}
			if k := canonical(hf.Name); trailer != nil {
				if _, ok := trailer[k]; ok {
					p.trailers = append(p.trailers, [2]string{k, hf.Value})
				}
			}
		}
		p.trailer = trailer
		p.err = io.EOF
	}
	p.mu.Unlock()
	p.notify()
}

// trailerAllowed reports whether a trailer field named name (lower case)
// may reach the handler: not one that frames, routes, authenticates or
// describes the request (RFC 9110, 6.5.1; httpcheck's list, which
// HTTP/1.1's layer refuses with 400, and net/http's), nor a forwarding
// field gsup vouches for.
func trailerAllowed(name string) bool {
	return !httpcheck.ForbiddenTrailer(name) && httpguts.ValidTrailerHeader(canonical(name))
}

// fail ends the body with err (if not ended yet) and drops what is
// unread, returning how many bytes that was.
func (p *pipe) fail(err error) int {
	p.mu.Lock()
	n := len(p.buf) - p.off
	p.buf, p.off = nil, 0
	if p.err == nil || p.err == io.EOF && n > 0 {
		p.err = err
	}
	p.mu.Unlock()
	p.notify()
	return n
}

func (p *pipe) Read(b []byte) (int, error) {
	if p.cont {
		p.cont = false
		p.st.rw.continue100()
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.off < len(p.buf) {
			n := copy(b, p.buf[p.off:])
			p.off += n
			if p.off == len(p.buf) {
				p.buf, p.off = p.buf[:0], 0
			}
			p.mu.Unlock()
			p.st.consumed(n)
			return n, nil
		}
		if p.err != nil {
			err := p.err
			for _, kv := range p.trailers { // the end, read by the handler
				p.trailer[kv[0]] = append(p.trailer[kv[0]], kv[1])
			}
			p.trailers = nil
			p.mu.Unlock()
			return 0, err
		}
		dl := p.deadline
		p.mu.Unlock()
		if dl.IsZero() {
			<-p.wake
			continue
		}
		wait := time.Until(dl)
		if wait <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// Close: the handler wants no more of the body.
func (p *pipe) Close() error {
	p.st.drop(errBodyClosed)
	return nil
}

var errBodyClosed = errors.New("h2: read on a closed body")

func (p *pipe) setDeadline(t time.Time) {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	p.notify() // a read waiting sees the new deadline
}

// canonical returns the canonical form of a lower-case field name.
func canonical(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}

// commonLower returns the lower-case form of a canonical field name.
func commonLower(name string) string {
	if k, ok := commonLowerOf[name]; ok {
		return k
	}
	return strings.ToLower(name)
}

var commonCanonical, commonLowerOf = func() (map[string]string, map[string]string) {
	names := []string{"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
		"access-control-allow-origin", "age", "authorization", "cache-control", "content-disposition",
		"content-encoding", "content-language", "content-length", "content-location", "content-range",
		"content-type", "cookie", "date", "dnt", "etag", "expect", "expires", "forwarded", "from", "host",
		"if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
		"link", "location", "origin", "pragma", "priority", "range", "referer", "refresh", "retry-after",
		"sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "sec-fetch-dest", "sec-fetch-mode",
		"sec-fetch-site", "sec-fetch-user", "server", "set-cookie", "strict-transport-security", "te",
		"trailer", "upgrade-insecure-requests", "user-agent", "vary", "via", "www-authenticate",
		"x-content-type-options", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
		"x-frame-options", "x-real-ip", "x-request-id", "x-accel-redirect", "x-accel-buffering"}
	c, l := make(map[string]string, len(names)), make(map[string]string, len(names))
	for _, n := range names {
		k := http.CanonicalHeaderKey(n)
		c[n], l[k] = k, n
	}
	return c, l
}()
