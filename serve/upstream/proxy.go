package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/rawsock"
	"gsup/serve/forward"
	"gsup/serve/head"
)

const (
	defaultTimeout = 30 * time.Second
	// defaultBodyTimeout is Options.BodyTimeout's default.
	defaultBodyTimeout = 60 * time.Second
	defaultBuffer      = 1 << 20
	// expectTimeout is how long a streamed body with Expect: 100-continue
	// waits for the app's answer before it is sent anyway (as net/http's
	// DefaultTransport does).
	expectTimeout = time.Second
	// max1xx bounds the informational responses forwarded per request.
	max1xx = 10
	// oneWrite is the largest request (head and buffered body) copied into
	// one buffer for a single write; larger ones go out with writev.
	oneWrite = 16 << 10
	// bigWrite is the request size from which the write gets the exchange
	// deadline too: smaller ones fit in the socket buffer.
	bigWrite = 64 << 10
	// maxAttempts bounds the connections one request tries.
	maxAttempts = 32
	// lingerTime bounds the time a client's unread request body is
	// read and dropped after an answer that left it unread (nginx's
	// lingering_time is 30s, for slower clients than a proxy's).
	lingerTime = 2 * time.Second
)

// aLongTimeAgo is a deadline in the past, to unblock a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// Options configure a Proxy. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for the app's response head, from the moment
	// the request is sent (default 30s). A response with a small enough
	// Content-Length must also arrive whole within Timeout after its head;
	// a stream may run for any time after its head. Expiry gives 504.
	Timeout time.Duration
	// BufferBody: request bodies up to this size are read from the client
	// before an instance is picked, and sent on with a Content-Length
	// (default 1 MiB; negative: never). Larger bodies, and bodies sent
	// with Expect: 100-continue that are not known to be small, stream to
	// the app while its response may already be coming (full duplex).
	BufferBody int64
	// BufferResponse: responses with a Content-Length up to this size are
	// read from the app whole before the client is written to, so a slow
	// client never holds an instance (default 1 MiB; negative: never).
	// Responses without a Content-Length, larger ones and
	// text/event-stream are streamed, flushed as they arrive.
	BufferResponse int64
	// MaxBody: larger request bodies get 413 (0: unlimited).
	MaxBody int64
	// HoldTimeout: while no instance is in rotation but one is expected
	// (Balancer.SetExpected), a request waits up to this long for one,
	// then gets 503 (0: no wait). An idempotent request whose body is
	// buffered (or that has none) and whose instance died before sending
	// a byte of its response is sent again to another instance, or waits
	// the same way for the next one.
	HoldTimeout time.Duration

	// BodyTimeout bounds the wait for each read of a request body from the
	// client (default 60s, nginx's client_body_timeout). Expiry before any
	// of the request went to the app gives 408; after, the client's
	// connection is closed and the app's request cut. The read deadline it
	// sets is the client connection's: net/http resets it for the next
	// request.
	BodyTimeout time.Duration
	// IgnoreClientAbort: a client that goes away does not cancel the
	// upstream exchange (the app finishes its work; the response is
	// dropped). A streamed response then ends only when the app ends it
	// or a write to the client fails.
	IgnoreClientAbort bool
	// Forward, if set, decides the forwarding fields of each request
	// going to an app: it fills p, zero when it is called, from in (the
	// request's fields once the hop-by-hop ones are gone) and r. The
	// request's own fields that p keeps go through, then the ones it adds
	// (their values with CR and LF made spaces). Host and the request
	// target are not p's: they go through unchanged. p.Scheme goes to the
	// Record.
	Forward func(p *forward.Plan, in forward.Source, r *http.Request)
	// Log gets upstream failures at error level and client aborts at
	// debug level (default: nothing is logged).
	Log *logrus.Logger
	// ErrorPage, if set, may answer with a page of its own for a status
	// the proxy produces itself (502, 503, 504, 408, 413, 400): it returns
	// the body bytes written, and false when it wrote nothing.
	ErrorPage func(w http.ResponseWriter, r *http.Request, code int) (int64, bool)
}

// Proxy is an http.Handler that passes requests to the instances of a
// Balancer. See the package documentation for its behaviour.
type Proxy struct {
	b           *Balancer
	timeout     time.Duration
	hold        time.Duration
	bufBody     int64
	bufResp     int64
	maxBody     int64
	bodyTimeout time.Duration
	ignoreAbort bool
	forward     func(*forward.Plan, forward.Source, *http.Request)
	errorPage   func(http.ResponseWriter, *http.Request, int) (int64, bool)
	log         *logrus.Logger
	pool        sync.Pool // *exchange
}

// NewProxy returns a Proxy in front of the instances of b.
func NewProxy(b *Balancer, o Options) *Proxy {
	p := &Proxy{
		b:           b,
		timeout:     o.Timeout,
		hold:        o.HoldTimeout,
		bufBody:     sizeOption(o.BufferBody),
		bufResp:     sizeOption(o.BufferResponse),
		maxBody:     max(o.MaxBody, 0),
		bodyTimeout: o.BodyTimeout,
		ignoreAbort: o.IgnoreClientAbort,
		forward:     o.Forward,
		errorPage:   o.ErrorPage,
		log:         o.Log,
	}
	if p.timeout <= 0 {
		p.timeout = defaultTimeout
	}
	if p.bodyTimeout <= 0 {
		p.bodyTimeout = defaultBodyTimeout
	}
	if p.log == nil {
		p.log = logrus.New()
		p.log.SetOutput(io.Discard)
		p.log.SetLevel(logrus.PanicLevel)
	}
	return p
}

func sizeOption(v int64) int64 {
	switch {
	case v == 0:
		return defaultBuffer
	case v < 0:
		return 0
	}
	return v
}

// Record is what the Proxy did with one request, for the access log.
type Record struct {
	Status      int    // status sent to the client; 499 when it went away before the response was complete
	BytesSent   int64  // response body bytes written to the client
	Upstream    string // address of the instance that answered, if any
	ClientAbort bool   // the client went away before the response was complete
	Scheme      string // the scheme the app was told (X-Forwarded-Proto), once the request was forwarded
}

// exchange is the state of one request. It is pooled; nothing in it may end
// up in the ResponseWriter's header map.
type exchange struct {
	p   *Proxy
	w   http.ResponseWriter
	r   *http.Request
	rec *Record
	own Record // used when Serve is given no Record

	fwd        forward.Plan // the forwarding fields (Options.Forward)
	names      *head.Names  // the request head's names filter, if its connection layer made one
	conn       []string     // the request's Connection values (endToEnd)
	uri        string
	upType     string
	replayable bool

	body      []byte    // buffered request body
	bodyBuf   *[]byte   // its pooled storage
	prefix    []byte    // part of a streamed body already read
	stream    io.Reader // streamed request body, or nil
	streamLen int64     // its length, -1 for chunked

	expect        bool // Expect: 100-continue goes to the app
	expectPending bool // waiting for the app's 100 before sending the body
	skipBody      bool // the app answered without asking for the body
	sent          bool // some of the request went out
	answered      bool // a final response head went to the client
	writeErr      error
	lastErr       error
	deadline      time.Time
	hang          time.Duration // the hang timeout set deadline

	// The goroutine that sends a streamed body.
	bodyDone      chan struct{}
	bodyReadErr   error // from the client
	bodyWriteErr  error // towards the app
	bodyComplete  bool
	cutting       atomic.Bool
	readingClient atomic.Bool

	h  respHead
	fw head.FieldWriter // w, when nothing between it and the connection reads the header map
	fs []field          // the answer's fields for fw
	cr chunkedReader
	lr lengthReader

	// Client-abort cancellation.
	cur     atomic.Pointer[pconn]
	aborted atomic.Bool
	stop    interface{ Stop() bool }
	abortFn func()
	noReuse bool
}

func (p *Proxy) getExchange() *exchange {
	if v := p.pool.Get(); v != nil {
		return v.(*exchange)
	}
	x := &exchange{p: p}
	x.abortFn = x.abort
	return x
}

func (p *Proxy) putExchange(x *exchange) {
	if x.noReuse {
		return
	}
	putBuf(x.bodyBuf)
	h, cr, fs := x.h, x.cr, x.fs
	*x = exchange{p: p, abortFn: x.abortFn, fs: clearFields(fs)}
	// Keep the scratch buffers, drop what they point to.
	x.h = respHead{raw: h.raw[:0], offs: h.offs[:0], fields: clearFields(h.fields)}
	x.cr.trailer = respHead{raw: cr.trailer.raw[:0], offs: cr.trailer.offs[:0], fields: clearFields(cr.trailer.fields)}
	p.pool.Put(x)
}

func clearFields(f []field) []field {
	clear(f[:cap(f)])
	return f[:0]
}

// abort runs (through context.AfterFunc) when the client goes away.
// upLog is the proxy's log with the upstream an exchange went to.
func (x *exchange) upLog(addr string) *logrus.Entry {
	return x.p.log.WithField("upstream", addr)
}

func (x *exchange) abort() {
	x.aborted.Store(true)
	if pc := x.cur.Load(); pc != nil {
		pc.c.Close()
	}
}

// clientGoneNotifier is a ResponseWriter (gsup's HTTP/1.1 layer's) that
// calls a function when the client goes away, as context.AfterFunc on the
// request's context would, for less.
type clientGoneNotifier interface {
	OnClientGone(f func()) (stop interface{ Stop() bool })
}

// stopFunc is context.AfterFunc's stop as clientGoneNotifier's.
type stopFunc func() bool

func (f stopFunc) Stop() bool { return f() }

// headerValueStore is a ResponseWriter (gsup's HTTP/1.1 layer's) that
// lends the backing array of its header's values for one response, where
// a new one would be made for each.
type headerValueStore interface {
	HeaderValues(n int) []string
}

// writerAs returns w as a T, or the first writer under it that is one
// (through Unwrap, http.ResponseController's convention); ok is false
// if there is none.
func writerAs[T any](w http.ResponseWriter) (t T, ok bool) {
	for {
		if t, ok = w.(T); ok {
			return t, true
		}
		u, isWrapper := w.(interface{ Unwrap() http.ResponseWriter })
		if !isWrapper {
			return t, false
		}
		w = u.Unwrap()
	}
}

// stopAbort detaches the abort hook and reports whether it never ran.
func (x *exchange) stopAbort() bool {
	if x.stop == nil {
		return !x.aborted.Load()
	}
	ok := x.stop.Stop()
	x.stop = nil
	if !ok {
		x.noReuse = true // abort may still be running and looking at x
	}
	return ok
}

// ServeHTTP passes r to an app instance and its response back to w.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.Serve(w, r, nil) }

// Serve is ServeHTTP filling rec (when not nil) for the access log. The
// exchange fills its own Record, copied to rec when it ends (also when
// the handler is aborted with a panic): rec is not kept, so the caller's
// may live on its stack.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, rec *Record) {
	x := p.getExchange()
	x.w, x.r, x.rec = w, r, &x.own
	x.fw, _ = w.(head.FieldWriter)
	defer func() {
		if rec != nil {
			*rec = x.own
		}
	}()
	x.serve()
	if rec != nil {
		*rec = x.own
		rec = nil
	}
	p.putExchange(x)
}

func (x *exchange) serve() {
	p, r := x.p, x.r
	if r.Method == http.MethodConnect {
		x.reply(http.StatusMethodNotAllowed)
		return
	}
	x.names = head.NamesOf(r)
	x.conn = x.names.Lookup(r.Header, head.Asked.Connection)
	upType := upgradeOf(r.Header, x.conn, x.names)
	if !isPrint(upType) {
		x.reply(http.StatusBadRequest)
		return
	}
	if p.maxBody > 0 && r.ContentLength > p.maxBody {
		x.reply(http.StatusRequestEntityTooLarge)
		return
	}
	if p.b.Len() == 0 && p.b.expected.Load() <= 0 {
		x.reply(http.StatusServiceUnavailable)
		return
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if hasBody {
		expect := strings.EqualFold(x.names.Get(r.Header, head.Asked.Expect), "100-continue")
		if err := x.takeBody(expect); err != nil {
			x.bodyFailed(err)
			return
		}
		x.expect = expect && x.stream != nil
	}
	x.replayable = (!hasBody || x.stream == nil) && idempotent(r.Method)
	x.uri = requestURI(r)
	x.upType = upType
	if p.forward != nil {
		p.forward(&x.fwd, x, r)
		if x.fwd.Scheme != "" {
			x.rec.Scheme = x.fwd.Scheme
		}
	}
	x.run()
}

// takeBody reads a small enough request body whole, or sets it up to
// stream.
func (x *exchange) takeBody(expect bool) error {
	r, p := x.r, x.p
	body, cl := r.Body, r.ContentLength
	if cl < 0 && p.maxBody > 0 {
		body = http.MaxBytesReader(x.w, body, p.maxBody)
	}
	switch {
	case cl > 0 && cl <= p.bufBody:
		x.bodyBuf = getBuf(int(cl))
		for n := 0; n < len(*x.bodyBuf); {
			x.bodyDeadline()
			m, err := body.Read((*x.bodyBuf)[n:])
			n += m
			if err == io.EOF && n < len(*x.bodyBuf) {
				return io.ErrUnexpectedEOF
			}
			if err != nil && err != io.EOF {
				return err
			}
		}
		x.body = *x.bodyBuf
		return nil
	case cl < 0 && p.bufBody > 0 && !expect && r.Trailer == nil:
		x.bodyBuf = getBuf(int(min(4<<10, p.bufBody+1)))
		n := 0
		for {
			if n == len(*x.bodyBuf) {
				if int64(n) > p.bufBody {
					break // too big to buffer: stream it
				}
				nb := getBuf(int(min(int64(2*n), p.bufBody+1)))
				copy(*nb, *x.bodyBuf)
				putBuf(x.bodyBuf)
				x.bodyBuf = nb
			}
			x.bodyDeadline()
			m, err := body.Read((*x.bodyBuf)[n:])
			n += m
			if err == io.EOF {
				x.body = (*x.bodyBuf)[:n]
				return nil
			}
			if err != nil {
				return err
			}
		}
		x.prefix, x.stream, x.streamLen = (*x.bodyBuf)[:n], body, -1
		return nil
	default:
		x.stream, x.streamLen = body, cl
		return nil
	}
}

type outcome int

const (
	finished   outcome = iota
	retryFresh         // a pooled connection was stale: try a new one
	retryOther         // nothing reached the instance: try another
)

func (x *exchange) run() {
	var skip tried
	fresh := false
	var lastBe *backend
	var holdUntil time.Time
	for attempts := 0; attempts < maxAttempts; {
		changed := x.p.b.changed()
		be := x.p.b.pick(&skip)
		if be == nil {
			// Nothing of a request that is not replayable went out (it
			// would have finished): it may wait as any other. After a
			// refusal, the instance may have just died and gsup not yet
			// reaped it: a short wait lets the rotation catch up.
			if holdUntil.IsZero() {
				holdUntil = time.Now().Add(x.p.hold)
			}
			if !x.p.b.hold(x.r.Context(), holdUntil, changed, lastBe != nil) {
				break
			}
			continue
		}
		attempts++
		lastBe = be
		pc, reused, err := x.connect(be, fresh)
		fresh = false
		if err != nil {
			be.done(false)
			if x.r.Context().Err() != nil && !x.p.ignoreAbort {
				x.clientAbort(be, err)
				return
			}
			be.markDown()
			skip.add(be)
			x.lastErr = fmt.Errorf("connecting: %w", err)
			x.p.b.failed(be, false, x.lastErr.Error())
			x.upLog(be.addr).Debugf("upstream %s: %s %s: %v; trying another instance", be.addr, x.r.Method, x.uri, err)
			continue
		}
		switch x.roundTrip(be, pc, reused) {
		case finished:
			x.stopAbort()
			return
		case retryFresh:
			fresh = true
		case retryOther:
			skip.add(be)
		}
		x.upLog(be.addr).Debugf("upstream %s: %s %s: %v; trying again", be.addr, x.r.Method, x.uri, x.lastErr)
	}
	x.stopAbort()
	if lastBe == nil {
		x.reply(http.StatusServiceUnavailable)
		return
	}
	x.upLog(lastBe.addr).Errorf("upstream %s: %s %s: %v", lastBe.addr, x.r.Method, x.uri, x.lastErr)
	x.rec.Upstream = lastBe.addr
	x.reply(http.StatusBadGateway)
}

// connect returns an idle connection to be, or a new one.
func (x *exchange) connect(be *backend, fresh bool) (pc *pconn, reused bool, err error) {
	if !fresh {
		for pc = be.getIdle(); pc != nil; pc = be.getIdle() {
			if x.replayable || !stale(pc.c) {
				return pc, true, nil
			}
			pc.c.Close()
		}
	}
	// A connect to a local app is short (and bounded by dialTimeout): it
	// is not cancelled. A client gone meanwhile is seen by roundTrip.
	if pc, err = be.dial(); err != nil {
		return nil, false, err
	}
	if be.isDown() {
		be.markUp()
	}
	return pc, false, nil
}

// drop closes the connection of a failed attempt.
func (x *exchange) drop(pc *pconn) {
	x.cur.Store(nil)
	pc.c.Close()
}

// roundTrip sends the request on pc and handles the response.
func (x *exchange) roundTrip(be *backend, pc *pconn, reused bool) outcome {
	x.rec.Upstream = be.addr
	if !x.p.ignoreAbort {
		x.cur.Store(pc)
		if x.stop == nil {
			if n, ok := writerAs[clientGoneNotifier](x.w); ok {
				x.stop = n.OnClientGone(x.abortFn)
			} else {
				x.stop = stopFunc(context.AfterFunc(x.r.Context(), x.abortFn))
			}
		}
		if x.aborted.Load() {
			x.drop(pc)
			be.done(false)
			x.clientAbort(be, context.Canceled)
			return finished
		}
	}
	d := x.p.timeout
	if x.hang = x.p.b.hangLimit(x.p.timeout); x.hang > 0 {
		d = x.hang
	}
	now := time.Now()
	x.deadline = now.Add(d)
	pc.readDeadline(x.deadline, d)
	if len(x.body) > bigWrite {
		pc.c.SetWriteDeadline(x.deadline)
		pc.wdl = true
	} else if pc.wdl {
		pc.c.SetWriteDeadline(time.Time{})
		pc.wdl = false
	}
	host := x.r.Host
	if host == "" {
		host = be.host
	}
	head := x.appendHead(pc.head[:0], host)
	// A request whose body (if any) is small goes out in one write.
	whole := len(x.body) == 0 || len(head)+len(x.body) <= oneWrite
	if whole {
		head = append(head, x.body...)
	}
	var n int64
	var err error
	var m int
	switch {
	case !whole:
		n, err = pc.writeBuffers(net.Buffers{head, x.body})
	case x.stream == nil:
		// The request is whole in head: the app's answer comes next.
		m, err = pc.writeWait(head)
		n = int64(m)
	default:
		m, err = pc.write(head)
		n = int64(m)
	}
	pc.head = head[:0]
	x.sent = n > 0
	if err != nil {
		if n == 0 && !x.aborted.Load() {
			x.drop(pc)
			be.done(false)
			x.lastErr = fmt.Errorf("writing request: %w", err)
			if reused {
				return retryFresh
			}
			be.markDown()
			return retryOther
		}
		// Part of it went out: the app may have answered early.
		x.writeErr = err
	}
	if x.stream != nil && x.writeErr == nil {
		if x.expect {
			x.expectPending = true
			if t := now.Add(expectTimeout); t.Before(x.deadline) {
				pc.setReadDeadline(t)
			}
		} else {
			x.startBody(pc)
		}
	}
	return x.readResponse(be, pc, reused)
}

func (x *exchange) readResponse(be *backend, pc *pconn, reused bool) outcome {
	h := &x.h
	n1xx := 0
	for {
		got, err := h.read(pc.br)
		if err != nil {
			if x.expectPending && !got && isTimeout(err) && time.Now().Before(x.deadline) {
				// The app did not answer Expect: send the body anyway.
				x.expectPending = false
				pc.setReadDeadline(x.deadline)
				x.startBody(pc)
				continue
			}
			if !got && x.hang > 0 && isTimeout(err) && !x.aborted.Load() {
				// The instance hung: out of rotation, and the request
				// goes to another when it can be sent again.
				x.p.b.failed(be, true, "")
				if x.replayable && x.r.Context().Err() == nil {
					x.drop(pc)
					be.done(true)
					x.lastErr = fmt.Errorf("no response head within hang_timeout %v", x.hang)
					return retryOther
				}
			}
			if !got && x.replayable && !isTimeout(err) && !x.aborted.Load() {
				x.drop(pc)
				be.done(false)
				if reused {
					x.lastErr = fmt.Errorf("reading response head on a reused connection: %w", err)
					return retryFresh
				}
				// The instance went away before answering: another, or
				// the next one, gets the request.
				x.lastErr = fmt.Errorf("reading response head: %w", err)
				x.p.b.failed(be, false, x.lastErr.Error())
				return retryOther
			}
			x.headFailed(be, pc, err)
			return finished
		}
		switch {
		case h.status >= 200:
		case h.status == http.StatusSwitchingProtocols:
			be.answered()
			x.switchProtocols(be, pc)
			return finished
		case h.status == http.StatusContinue:
			if x.expectPending {
				x.expectPending = false
				pc.setReadDeadline(x.deadline)
				x.w.WriteHeader(http.StatusContinue)
				x.startBody(pc)
			}
			continue
		default:
			if n1xx++; n1xx > max1xx {
				x.headFailed(be, pc, errors.New("too many 1xx responses"))
				return finished
			}
			dst := x.w.Header()
			h.copyTo(dst)
			x.w.WriteHeader(h.status)
			clear(dst) // 1xx fields must not stick to the final response
			continue
		}
		break
	}
	be.answered()
	if x.expectPending {
		// A final answer to Expect: the body is not sent.
		x.expectPending, x.skipBody = false, true
	}
	x.forward(be, pc)
	return finished
}

// headFailed handles an exchange that ended before a final response head
// was forwarded.
func (x *exchange) headFailed(be *backend, pc *pconn, err error) {
	// Whether the client went away is decided before cutBody: its
	// deadline in the past makes net/http cancel the request, which an
	// instance that died under a streamed body must not look like.
	gone := x.aborted.Load() || !x.p.ignoreAbort && x.r.Context().Err() != nil
	// A body cut short stays unread: the answer must reach the client
	// all the same (lingerClient).
	cut := x.bodyDone != nil
	if cut {
		defer func() {
			if x.answered && x.rec.Status != 499 {
				x.lingerClient()
			}
		}()
	}
	x.cutBody(pc)
	x.drop(pc)
	be.done(x.sent)
	switch {
	case isTimeout(x.bodyReadErr):
		// Before the abort: net/http cancels the request when a read from
		// the client fails.
		x.bodyFailed(x.bodyReadErr)
	case gone:
		x.clientAbort(be, err)
	case x.bodyReadErr != nil:
		x.bodyFailed(x.bodyReadErr)
	case isTimeout(err):
		wait := x.p.timeout
		if x.hang > 0 {
			wait = x.hang
		} else {
			x.p.b.failed(be, false, fmt.Sprintf("no response head within %v", wait))
		}
		x.upLog(be.addr).Errorf("upstream %s: %s %s: no response head within %v", be.addr, x.r.Method, x.uri, wait)
		x.reply(http.StatusGatewayTimeout)
	default:
		x.p.b.failed(be, false, err.Error())
		if x.writeErr != nil {
			err = fmt.Errorf("%w (after writing request: %v)", err, x.writeErr)
		} else if x.bodyWriteErr != nil {
			err = fmt.Errorf("%w (after sending request body: %v)", err, x.bodyWriteErr)
		}
		x.upLog(be.addr).Errorf("upstream %s: %s %s: reading response: %v", be.addr, x.r.Method, x.uri, err)
		x.reply(http.StatusBadGateway)
	}
}

// finishUpstream ends the exchange with the app: the connection goes back
// to the pool if it can carry another request, and the instance counts one
// request fewer in flight. whole says the response was read to its end;
// the connection is kept only if the request went whole too and the app
// did not say it closes (x.h.close).
func (x *exchange) finishUpstream(be *backend, pc *pconn, whole bool) {
	if x.bodyDone != nil {
		select {
		case <-x.bodyDone:
		default:
			whole = false
		}
		x.cutBody(pc)
		whole = whole && x.bodyComplete
	}
	whole = whole && !x.skipBody && x.writeErr == nil && pc.br.Buffered() == 0
	stopped := x.stopAbort()
	if stopped && whole && !x.h.close {
		x.cur.Store(nil)
		if be.oneShot.Load() {
			be.oneShot.Store(false)
		}
		if _, raw := pc.c.(*rawsock.Conn); raw {
			// The app keeps connections now: its next ones go by net's
			// dial, whose waits for an answer cost less on a kept
			// connection than rawsock's.
			pc.recycle()
		} else {
			be.put(pc)
		}
	} else {
		if pc.uses == 0 && x.h.close && !be.oneShot.Load() {
			be.oneShot.Store(true)
		}
		if stopped && whole && x.h.close {
			pc.reset()
		}
		pc.recycle()
	}
	be.done(true)
}

// forward passes a final response on to the client.
func (x *exchange) forward(be *backend, pc *pconn) {
	h, w, rec := &x.h, x.w, x.rec
	if !h.hasBody(x.r.Method) {
		x.finishUpstream(be, pc, true)
		x.writeHead(be)
		return
	}
	if !h.chunked && h.clen >= 0 && h.clen <= x.p.bufResp && !h.sse {
		if x.fw != nil && h.clen <= int64(pc.br.Buffered()) && h.clen <= head.Held {
			// The body came with the head and the HTTP/1.1 layer keeps
			// it without waiting for the client: it is given from the
			// read buffer, which is let go of only afterwards.
			body, _ := pc.br.Peek(int(h.clen))
			var err error
			if x.writeHead(be) && len(body) > 0 {
				var n int
				n, err = w.Write(body)
				rec.BytesSent += int64(n)
			}
			pc.br.Discard(len(body))
			x.finishUpstream(be, pc, true)
			if err != nil {
				x.clientAbort(be, err)
			}
			return
		}
		var bp *[]byte
		if h.clen > 0 {
			bp = getBuf(int(h.clen))
			if h.clen > int64(pc.br.Buffered()) {
				pc.readDeadline(time.Now().Add(x.p.timeout), x.p.timeout)
			}
			if _, err := io.ReadFull(pc.br, *bp); err != nil {
				putBuf(bp)
				x.headFailed(be, pc, fmt.Errorf("body: %w", unexpected(err)))
				return
			}
		}
		x.finishUpstream(be, pc, true)
		if x.writeHead(be) && bp != nil {
			n, err := w.Write(*bp)
			rec.BytesSent += int64(n)
			if err != nil {
				x.clientAbort(be, err)
			}
		}
		putBuf(bp)
		return
	}

	// Streaming: flushed whenever the app has nothing more ready.
	pc.setReadDeadline(time.Time{})
	var src io.Reader
	var ready func() bool
	switch {
	case h.chunked:
		x.cr.reset(pc.br)
		src, ready = &x.cr, x.cr.ready
	case h.clen >= 0:
		x.lr = lengthReader{br: pc.br, n: h.clen}
		src = &x.lr
	default:
		src, h.close = pc.br, true
	}
	if !x.writeHead(be) {
		x.finishUpstream(be, pc, false)
		return
	}
	flusher, _ := w.(http.Flusher)
	bp := getBuf(copySize)
	var rerr, werr error
	for {
		n, err := src.Read(*bp)
		if n > 0 {
			m, e := w.Write((*bp)[:n])
			rec.BytesSent += int64(m)
			if e != nil {
				werr = e
				break
			}
			if err == nil && (ready == nil && pc.br.Buffered() == 0 || ready != nil && !ready()) {
				flush(w, flusher)
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	putBuf(bp)
	switch {
	case werr != nil:
		x.finishUpstream(be, pc, false)
		x.clientAbort(be, werr)
	case rerr != nil && (x.aborted.Load() || !x.p.ignoreAbort && x.r.Context().Err() != nil):
		x.finishUpstream(be, pc, false)
		x.clientAbort(be, rerr)
	case rerr != nil:
		x.finishUpstream(be, pc, false)
		if x.bodyReadErr != nil {
			// The client's body failed (too large, cut off) while the
			// response was already streaming: the client's doing.
			x.upLog(be.addr).Debugf("upstream %s: %s %s: request body: %v", be.addr, x.r.Method, x.uri, x.bodyReadErr)
		} else {
			x.upLog(be.addr).Errorf("upstream %s: %s %s: response body cut after %d bytes: %v", be.addr, x.r.Method, x.uri, rec.BytesSent, rerr)
		}
		x.abortClient()
	default:
		if h.chunked && len(x.cr.trailer.fields) > 0 {
			// Flush first so that net/http sends a chunked body, which
			// can carry trailers, and not a Content-Length.
			flush(w, flusher)
			dst := w.Header()
			for _, f := range x.cr.trailer.fields {
				if hopByHop(f.Name) || f.Name == "Content-Length" {
					continue
				}
				k := http.TrailerPrefix + f.Name
				dst[k] = append(dst[k], f.Value)
			}
		}
		x.finishUpstream(be, pc, true)
	}
}

// writeHead copies the final response head to w and writes it. It reports
// false when the client has already gone (IgnoreClientAbort only: otherwise
// the exchange was cancelled before).
func (x *exchange) writeHead(be *backend) bool {
	if x.p.ignoreAbort && x.r.Context().Err() != nil {
		x.clientAbort(be, context.Canceled)
		return false
	}
	x.rec.Status = x.h.status
	x.answered = true
	if x.fw != nil {
		// Nothing between the proxy and the connection reads the map:
		// the app's fields go as a list, with no map filled and read.
		x.fs = x.h.forwarded(x.fs[:0])
		x.fw.WriteFields(x.h.status, x.fs)
		return true
	}
	dst := x.w.Header()
	if vs, ok := writerAs[headerValueStore](x.w); ok {
		x.h.copyInto(dst, vs.HeaderValues(len(x.h.fields)))
	} else {
		x.h.copyTo(dst)
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil // no sniffing: the app did not say
	}
	x.w.WriteHeader(x.h.status)
	return true
}

// abortClient cuts the client connection after a response head went out,
// so that the client sees a broken response rather than a short one. On
// HTTP/1 the connection is taken over and closed, and the handler returns
// normally (an access log written after ServeHTTP still gets its line);
// where that is not possible it panics with http.ErrAbortHandler, which
// net/http recovers quietly, as ReverseProxy does.
func (x *exchange) abortClient() {
	if c, _, err := http.NewResponseController(x.w).Hijack(); err == nil {
		c.Close()
		return
	}
	if x.r.Context().Value(http.ServerContextKey) != nil {
		x.noReuse = true
		panic(http.ErrAbortHandler)
	}
}

// lingerClient ends the client connection after gsup's own answer to a
// request whose body was left unread (its instance died while it was
// streamed): on HTTP/1 it sends the answer, half-closes, and reads and
// drops what the client still sends for up to lingerTime, as nginx's
// lingering close does, so that the client reads the answer instead of a
// reset (closing a socket with unread bytes resets it).
// On HTTP/2 the stream's reset is net/http's, and the connection stays.
func (x *exchange) lingerClient() {
	c, _, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		return
	}
	go func() {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, c)
		c.Close()
	}()
}

func flush(w http.ResponseWriter, f http.Flusher) {
	if f != nil {
		f.Flush()
		return
	}
	http.NewResponseController(w).Flush()
}

// clientAbort records a client that went away before the response was
// complete: 499, also when the head (and some of the body) went out
// already, so that the access log tells a stream cut by its client from
// one sent whole (BytesSent says how much it got).
func (x *exchange) clientAbort(be *backend, err error) {
	x.rec.Status = 499
	x.rec.ClientAbort = true
	addr := "-"
	if be != nil {
		addr = be.addr
	}
	x.upLog(addr).Debugf("upstream %s: %s %s: client went away: %v", addr, x.r.Method, x.uri, err)
	if !x.answered {
		// Nothing was answered yet: close the connection rather than let
		// net/http send an empty 200 for a request that never reached
		// the app (a client that half-closed after sending looks gone).
		x.abortClient()
	}
}

// bodyDeadline gives the next read of the request body BodyTimeout from
// now, which it returns.
func (x *exchange) bodyDeadline() time.Time {
	now := time.Now()
	http.NewResponseController(x.w).SetReadDeadline(now.Add(x.p.bodyTimeout))
	return now
}

// bodyFailed answers a request whose body could not be read from the
// client.
func (x *exchange) bodyFailed(err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		x.reply(http.StatusRequestEntityTooLarge)
	case isTimeout(err) && x.sent:
		// Part of the request went to the app (whose connection is closed
		// by now): too late for an answer.
		x.rec.Status = http.StatusRequestTimeout
		x.p.log.Debugf("%s %s: no request body from the client within %v", x.r.Method, x.uri, x.p.bodyTimeout)
		x.abortClient()
	case isTimeout(err):
		x.reply(http.StatusRequestTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isNetErr(err):
		x.clientAbort(nil, fmt.Errorf("reading request body: %w", err))
	default:
		x.p.log.Debugf("%s %s: bad request body: %v", x.r.Method, x.r.RequestURI, err)
		x.reply(http.StatusBadRequest)
	}
}

// reply sends a short plain-text error response.
func (x *exchange) reply(code int) {
	h := x.w.Header()
	switch code {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestTimeout:
		h.Set("Connection", "close")
	}
	x.answered = true
	if x.p.errorPage != nil {
		if n, ok := x.p.errorPage(x.w, x.r, code); ok {
			x.rec.Status = code
			x.rec.BytesSent += n
			return
		}
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	x.w.WriteHeader(code)
	n, _ := io.WriteString(x.w, http.StatusText(code)+"\n")
	x.rec.Status = code
	x.rec.BytesSent += int64(n)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func isNetErr(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// startBody starts the goroutine that streams the request body to the app
// while the response is read, with full duplex enabled on the client side
// so that net/http lets both run at once.
func (x *exchange) startBody(pc *pconn) {
	http.NewResponseController(x.w).EnableFullDuplex()
	x.bodyDone = make(chan struct{})
	go x.sendBody(pc)
}

// sendBody writes the streamed request body to pc. It never touches the
// client after cutBody has started.
func (x *exchange) sendBody(pc *pconn) {
	defer close(x.bodyDone)
	bp := getBuf(copySize)
	defer putBuf(bp)
	buf := *bp
	chunked := x.streamLen < 0
	var werr error
	write := func(p []byte) bool {
		if len(p) == 0 {
			return true
		}
		if chunked {
			var hdr [20]byte
			b := append(strconv.AppendInt(hdr[:0], int64(len(p)), 16), "\r\n"...)
			_, werr = pc.writeBuffers(net.Buffers{b, p, crlf})
		} else {
			_, werr = pc.write(p)
		}
		return werr == nil
	}
	if !write(x.prefix) {
		x.bodyWriteErr = werr
		return
	}
	for {
		// Before readingClient: cutBody's deadline in the past must come
		// after this one.
		since := x.bodyDeadline()
		x.readingClient.Store(true)
		if x.cutting.Load() {
			x.readingClient.Store(false)
			return
		}
		n, err := x.stream.Read(buf)
		x.readingClient.Store(false)
		if n > 0 && !write(buf[:n]) {
			x.bodyWriteErr = werr
			return
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if !x.cutting.Load() {
				x.bodyReadErr = err
				pc.c.Close() // the app must not take a truncated body for a whole one
			} else if isTimeout(err) && time.Since(since) >= x.p.bodyTimeout {
				// The client stalled, and net/http, cancelling the request
				// for that, made the exchange cut the body meanwhile.
				x.bodyReadErr = err
			}
			return
		}
	}
	if chunked {
		end := []byte("0\r\n")
		for k, vv := range x.r.Trailer {
			for _, v := range vv {
				end = append(end, k...)
				end = append(end, ": "...)
				end = appendValue(end, v, false)
				end = append(end, "\r\n"...)
			}
		}
		end = append(end, "\r\n"...)
		if _, werr = pc.write(end); werr != nil {
			x.bodyWriteErr = werr
			return
		}
	}
	x.bodyComplete = true
}

var crlf = []byte("\r\n")

// cutBody stops the body goroutine, if any, and waits for it: it closes the
// app connection (which ends a blocked write) and makes a blocked read from
// the client return.
func (x *exchange) cutBody(pc *pconn) {
	if x.bodyDone == nil {
		return
	}
	select {
	case <-x.bodyDone:
	default:
		x.cutting.Store(true)
		pc.c.Close()
		if x.readingClient.Load() {
			http.NewResponseController(x.w).SetReadDeadline(aLongTimeAgo)
		}
		<-x.bodyDone
	}
	x.bodyDone = nil
}
