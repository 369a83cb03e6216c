package h1

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gsup/internal/rawio"
	"gsup/serve/head"
	"gsup/serve/httpcheck"
)

const (
	bufSize = 4 << 10
	// maxDiscard is the most of a request body the handler left unread
	// that is read and dropped to keep the connection (net/http's figure).
	maxDiscard = 256 << 10
	// watchAfter is how long a request runs before a goroutine starts
	// reading the client, to see it go away.
	watchAfter = 5 * time.Millisecond
	// newIdleAfter: a connection that sent nothing for this long counts
	// as idle at Shutdown (a younger one may still be sending its first
	// request).
	newIdleAfter = 5 * time.Second
)

// aLongTimeAgo is a deadline in the past, to end a read at once.
var aLongTimeAgo = time.Unix(1, 0)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// conn is one client connection.
type conn struct {
	srv    *Server
	nc     net.Conn
	state  atomic.Int32 // http.ConnState
	since  time.Time    // accepted
	lim    httpcheck.Limits
	stream httpcheck.Stream
	lctx   localCtx
	// prev and next link the server's connections (connList, under its
	// mu).
	prev, next *conn
	// st is the state of the request parse made last, until handle
	// takes it; spare is an answered request's, for the next parse to
	// reuse (handle keeps it when nothing can hold it any more).
	st    *reqState
	spare *reqState
	// hdr and hvals are the request header's map and values, reused from
	// request to request (parseFields).
	hdr   http.Header
	hvals []string
	// seen are the names of the last head's field lines, in order, as
	// sent and as keys (parseFields): a client on a kept connection
	// sends the same names in the same order, request after request.
	seen []seenName
	// host is the last Host value found valid (a kept connection's
	// requests most often name the same one).
	host string
	kept bool // a request of c's was answered and c went on

	// The read side, owned by the connection's goroutine (and the handler
	// it runs): c.buf[c.rp:c.wp] are checked bytes not yet used.
	bufp    *[]byte
	buf     []byte
	rp, wp  int
	readErr error            // the error of the last read, once the bytes before it are used
	refusal *httpcheck.Error // the stream refused what follows c.buf[:c.wp]
	refHead bool             // in a request head (else in a body)
	held    []byte           // read after a request that may switch protocols
	await   bool             // c.held waits for the answer to that request
	linger  bool             // a refusal was answered: linger before closing

	raw        *rawio.Conn       // the socket, when nothing between reads it
	rw         rawio.ReadWatcher // raw's, when its read events can be watched
	ctx        context.Context
	remoteAddr string
	tls        *tls.ConnectionState
	resp       response
	hijacked   bool
	panicked   bool     // a handler panicked: nothing of c's is passed on
	hdrHolder  *headers // the holder of the maps takeHeaders gave c

	watch watcher

	// Parking (park.go): the end of the wait for the next request; c is,
	// or was just, parked; its socket is in the parker's epoll set; the
	// read deadline is the wait before parking, not idleUntil.
	idleUntil time.Time
	resumed   bool
	epolled   bool
	shortWait bool
}

// setState records and reports a change of state.
func (c *conn) setState(st http.ConnState) {
	c.state.Store(int32(st))
	if c.srv.ConnState != nil {
		c.srv.ConnState(c.nc, st)
	}
}

// closeIfIdle closes c when it waits for a request (Shutdown).
func (c *conn) closeIfIdle() {
	switch http.ConnState(c.state.Load()) {
	case http.StateIdle:
		c.nc.Close()
	case http.StateNew:
		if time.Since(c.since) > newIdleAfter {
			c.nc.Close()
		}
	}
}

func (c *conn) serve() {
	parked := false
	defer func() {
		if parked {
			return // the parker has it, and may have handed it on
		}
		if c.hijacked {
			c.srv.forget(c)
			return
		}
		if !c.panicked {
			c.dropHeaders()
		}
		if c.linger {
			httpcheck.Linger(c.nc)
		}
		c.nc.Close()
		c.release()
		c.setState(http.StateClosed)
		c.srv.forget(c)
	}()
	first := !c.resumed // a parked connection goes on where it was
	if first {
		c.setup()
	}
	for ; ; first = false {
		started := c.prepare(first)
		if c.canWait() {
			// The wait for a request, from this shallow frame: a
			// goroutine's stack shrinks (at a collection) only to four
			// times what it uses. A kept connection that waits long
			// is parked, and its goroutine let go.
			if first {
				c.waitFill()
			} else if parked = c.waitIdle(); parked {
				return
			}
		}
		req, err := c.readRequest(first, started)
		if err != nil {
			c.failed(err)
			return
		}
		if !c.handle(req) || c.srv.shutting.Load() {
			return
		}
		c.setState(http.StateIdle)
	}
}

// setup readies a new connection: its limits, stream, context and
// socket.
func (c *conn) setup() {
	c.lim = c.srv.Limits
	if c.srv.LimitsNow != nil {
		c.lim = c.srv.LimitsNow()
	}
	c.stream.Init(c.lim)
	c.remoteAddr = remoteAddrText(c.nc)
	c.lctx.local = c.nc.LocalAddr()
	var ctx context.Context = &c.lctx
	if f := c.srv.ConnContext; f != nil {
		ctx = f(ctx, c.nc)
	}
	c.ctx = ctx
	if tc, ok := c.nc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		c.tls = &cs
	} else if r, ok := c.nc.(interface{ RawIO() *rawio.Conn }); ok && r.RawIO() != nil {
		c.raw = r.RawIO() // the listener's, shared: reads here, writes there
		c.rw, _ = c.raw.Watcher()
	} else if sc, ok := c.nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rawio.New(rc)
		}
	}
}

// localCtx is a connection's first context, as net/http's server makes
// it: context.Background() with the local address under
// http.LocalAddrContextKey. It is held in the conn, with no allocation of
// its own.
type localCtx struct{ local net.Addr }

func (*localCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*localCtx) Done() <-chan struct{}       { return nil }
func (*localCtx) Err() error                  { return nil }

func (l *localCtx) Value(key any) any {
	if key == http.LocalAddrContextKey {
		return l.local
	}
	return nil
}

// remoteAddrText is nc's remote address as text: as the connection has
// it made already (a listener's, through TLS too), else addrString's.
func remoteAddrText(nc net.Conn) string {
	under := nc
	if tc, ok := nc.(*tls.Conn); ok {
		under = tc.NetConn()
	}
	if t, ok := under.(interface{ RemoteAddrText() string }); ok {
		if s := t.RemoteAddrText(); s != "" {
			return s
		}
	}
	return addrString(nc.RemoteAddr())
}

// addrString is a.String(), made with one allocation for an IPv4 TCP
// address (net's makes three: the address, the port, the two joined).
func addrString(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.Zone == "" {
		if ip4 := t.IP.To4(); ip4 != nil && 0 <= t.Port && t.Port <= 0xffff {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip4)), uint16(t.Port)).String()
		}
	}
	return a.String()
}

// headers is what a connection keeps from request to request for the
// request's and the answer's fields: the maps, the values, the answer's
// sort scratch and the fields given as a list (WriteFields). A connection
// that ends, or waits long (parked), gives them to the next one that
// needs them: a new connection per request would make six allocations for
// them otherwise.
type headers struct {
	hdr   http.Header
	hvals []string
	resp  http.Header
	keys  []field
	vals  []string
	given []head.Field
	seen  []seenName
	// state is the state (reqState) of a kept connection's last
	// request, as it was: newState empties it.
	state *reqState
}

var headersPool sync.Pool // *headers, cleared

// maxPooledFields: maps and values grown for heads with more fields than
// this are not passed on (a map keeps its room when cleared).
const maxPooledFields = 32

// takeHeaders gives c the maps and values of a connection before it, if
// the pool has some (parseFields and reset make them otherwise); c keeps
// their holder for dropHeaders.
func (c *conn) takeHeaders() {
	hs, _ := headersPool.Get().(*headers)
	if hs == nil {
		return
	}
	c.hdr, c.hvals, c.seen = hs.hdr, hs.hvals, hs.seen
	c.resp.header, c.resp.keys, c.resp.vals, c.resp.given = hs.resp, hs.keys, hs.vals, hs.given
	if c.spare == nil {
		c.spare = hs.state
	}
	*hs = headers{}
	c.hdrHolder = hs
}

// dropHeaders lets go of the header maps and values kept from request to
// request (and the spare request state), for a connection about to wait
// long (parked) or that ended: it
// then holds as little as it can, and the next connection to need them
// takes them. Only the connection's goroutine calls it, when no handler
// of its runs (one that panicked or took the connection over may have left
// something running that reads them: such a connection keeps its own).
func (c *conn) dropHeaders() {
	// The spare state goes as it is (newState empties it): a caller that
	// broke the handler's contract and still reads its request's context
	// would race with the emptying here, at the connection's end.
	st := c.spare
	c.spare, c.host = nil, ""
	hs := c.hdrHolder
	if hs == nil {
		hs = new(headers)
	}
	*hs = headers{hdr: c.hdr, hvals: c.hvals, seen: c.seen, resp: c.resp.header, keys: c.resp.keys, vals: c.resp.vals, given: c.resp.given, state: st}
	c.hdrHolder = nil
	c.hdr, c.hvals, c.seen = nil, nil, nil
	c.resp.header, c.resp.keys, c.resp.vals, c.resp.given = nil, nil, nil, nil
	if hs.hdr == nil || hs.resp == nil || cap(hs.hvals) > maxPooledFields || cap(hs.vals) > maxPooledFields ||
		cap(hs.keys) > maxPooledFields || cap(hs.given) > maxPooledFields {
		return
	}
	clear(hs.hdr)
	clear(hs.hvals[:cap(hs.hvals)])
	clear(hs.seen) // they hold the last head's string (those past its length are clear: seen only grows by append)
	clear(hs.resp)
	clear(hs.keys[:cap(hs.keys)])
	clear(hs.vals[:cap(hs.vals)])
	clear(hs.given[:cap(hs.given)])
	hs.hvals, hs.seen, hs.keys, hs.vals, hs.given = hs.hvals[:0], hs.seen[:0], hs.keys[:0], hs.vals[:0], hs.given[:0]
	headersPool.Put(hs)
}

// release gives the read buffer back (to the pool when it came from
// there).
func (c *conn) release() {
	if c.bufp != nil {
		bufPool.Put(c.bufp)
	}
	c.bufp, c.buf = nil, nil
}

// TakeBuf and PutBuf lend rawio.ReadWaiting the read buffer.
func (c *conn) TakeBuf() []byte { c.ensureBuf(); return c.buf }
func (c *conn) PutBuf()         { c.release() }

func (c *conn) ensureBuf() {
	if c.buf == nil {
		c.bufp = bufPool.Get().(*[]byte)
		c.buf, c.rp, c.wp = *c.bufp, 0, 0
	}
}

// waitFill is fill for an empty buffer on a connection read by its
// descriptor: no buffer is held while it waits, one is taken from the
// pool when bytes are there. The system calls are those of fill: a read
// that finds nothing, the wait, the read.
func (c *conn) waitFill() {
	c.release()
	n, err := c.raw.ReadWaiting(c)
	switch {
	case err != nil:
		c.readErr = err
	case n == 0:
		c.readErr = io.EOF
	default:
		c.check(n)
	}
}

// write writes p to the client.
func (c *conn) write(p []byte) (int, error) { return c.nc.Write(p) }

// room makes space after c.wp: the unused bytes move to the start of
// the buffer, or a full buffer grows, to at most limit bytes.
func (c *conn) room(limit int) {
	c.ensureBuf()
	if c.rp == c.wp {
		c.rp, c.wp = 0, 0
	}
	switch {
	case c.wp < len(c.buf):
	case c.rp > 0:
		c.wp = copy(c.buf, c.buf[c.rp:c.wp])
		c.rp = 0
	default:
		c.grow(min(2*len(c.buf), limit))
	}
}

// grow replaces the read buffer, full, by a larger one.
func (c *conn) grow(size int) {
	nb := make([]byte, size)
	copy(nb, c.buf[:c.wp])
	c.release()
	c.buf = nb
}

// errNoRequest: the client closed or went quiet between requests.
var errNoRequest = errors.New("no request")

// failed answers a request that could not be read, if it can be answered.
func (c *conn) failed(err error) {
	var ref *httpcheck.Error
	switch {
	case errors.As(err, &ref):
		c.refuse(*ref)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Part of a head came, not all of it in time.
		c.refuse(httpcheck.Error{Status: http.StatusRequestTimeout, Reason: "request head not received in time"})
	}
}

// refuse answers a request the layer refuses itself, and logs it.
func (c *conn) refuse(e httpcheck.Error) {
	c.setState(http.StateActive)
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.nc.Write(e.Response())
	if log := c.srv.Log; log != nil {
		l := log.WithField("client", c.remoteAddr).WithField("status", e.Status)
		if e.Status == http.StatusRequestTimeout {
			l.Debugf("refused a request: %s", e.Reason)
		} else {
			l.Warnf("refused a request: %s", e.Reason)
		}
	}
	if c.srv.Refused != nil {
		c.srv.Refused(c.nc, e)
	}
	c.linger = err == nil
}

// maxHead is the largest request head read.
func (c *conn) maxHead() int { return httpcheck.MaxHeaderBytes(c.lim) + 4 }

// headEnd returns the length of the request head at the start of b, its
// empty line included, or -1 when b does not hold it whole; the search
// begins at from (what b held before was searched). The stream lets no
// bare LF through in a head, so its end is the first LF that CRLF follows:
// one IndexByte per line, where bytes.Index of CRLFCRLF also compares
// four bytes at each CR.
func headEnd(b []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i+1 >= len(b) {
			return -1
		}
		if b[i] == '\r' && b[i+1] == '\n' && i >= 2 && b[i-2] == '\r' {
			return i + 2
		}
	}
}

// prepare readies the connection for its next request: the read buffer
// let go while nothing is buffered, what the watch read taken, and the
// read deadline for the wait: IdleTimeout for a request on a kept
// connection, ReadHeaderTimeout for the first one or one already begun.
// It reports whether a request has begun.
func (c *conn) prepare(first bool) (started bool) {
	if c.rp == c.wp {
		c.rp, c.wp = 0, 0
		if c.raw != nil || len(c.buf) > bufSize {
			// No buffer while waiting (waitFill takes one when bytes
			// come); a buffer grown for a large head goes.
			c.release()
		}
	}
	c.watch.take(c)
	c.skipEmptyLines()
	started = c.rp < c.wp
	wait := c.srv.IdleTimeout
	if first || started || wait <= 0 {
		wait = c.srv.ReadHeaderTimeout
	}
	now := c.since // a new connection's first wait counts from its accept
	if !first {
		now = time.Now() // one reading for idleFor and the deadline
	}
	if !first && !started {
		wait = c.idleFor(now, wait)
	}
	if wait > 0 {
		_ = c.nc.SetReadDeadline(now.Add(wait))
	}
	return started
}

// canWait reports whether the next read is a wait for a request by the
// socket's descriptor: nothing buffered, held or pending.
func (c *conn) canWait() bool {
	return c.rp == c.wp && c.raw != nil && !c.await && c.readErr == nil && c.refusal == nil
}

// readRequest reads and parses the next request head, after prepare. A
// head begun on a kept connection gets ReadHeaderTimeout from its first
// byte.
func (c *conn) readRequest(first, started bool) (*http.Request, error) {
	seen := 0 // bytes after c.rp already searched
	for {
		begun := false // the head's first byte is in this time
		if !started {
			c.skipEmptyLines()
			if c.rp < c.wp {
				started, begun = true, true
			}
		}
		end := headEnd(c.buf[c.rp:c.wp], max(0, seen-3))
		if begun && end < 0 && c.srv.IdleTimeout > 0 && !first {
			// Not whole in what came: ReadHeaderTimeout from its first
			// byte (the wait that got it may have been one shortened
			// for parking: its deadline is not the one left now).
			c.shortWait = false
			_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.ReadHeaderTimeout))
		}
		if end >= 0 {
			end += c.rp
			head := string(c.buf[c.rp:end])
			c.rp = end
			c.setState(http.StateActive)
			return c.parse(head)
		}
		seen = c.wp - c.rp
		if c.refusal != nil {
			return nil, c.refusal
		}
		if c.readErr != nil {
			if c.rp < c.wp {
				return nil, c.readErr
			}
			return nil, errNoRequest
		}
		if c.wp-c.rp >= c.maxHead() {
			return nil, &httpcheck.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "request head too large"}
		}
		if c.canWait() {
			c.waitFill()
		} else {
			c.fill()
		}
	}
}

// skipEmptyLines drops CR and LF bytes before a request line (RFC 9112
// section 2.2; the stream allows them there).
func (c *conn) skipEmptyLines() {
	for c.rp < c.wp && (c.buf[c.rp] == '\r' || c.buf[c.rp] == '\n') {
		c.rp++
	}
}

// fill reads once from the client into the buffer, after its unused
// bytes, and checks what came. Call it only when c.readErr and c.refusal
// are nil.
func (c *conn) fill() {
	c.room(c.maxHead() + bufSize)
	n, err := c.nc.Read(c.buf[c.wp:])
	c.check(n)
	if err == io.EOF && n > 0 {
		err = nil // read again: the next read says it again
	}
	c.readErr = err
}

// check hands the n bytes just read at c.buf[c.wp:] to the stream, and
// keeps those it lets through.
func (c *conn) check(n int) {
	if n == 0 {
		return
	}
	k, v := c.stream.Feed(c.buf[c.wp : c.wp+n])
	switch v {
	case httpcheck.RefuseHead, httpcheck.RefuseBody:
		ref := c.stream.Refusal()
		c.refusal, c.refHead = &ref, v == httpcheck.RefuseHead
	case httpcheck.Await:
		c.held = append(c.held, c.buf[c.wp+k:c.wp+n]...)
		c.await = true
	}
	c.wp += k
}

// answered ends the wait for the answer to a request that may switch
// protocols: the handler did not take the connection, so the request
// did not switch, and the bytes held are checked as the next request.
func (c *conn) answered() {
	if !c.await {
		return
	}
	c.await = false
	c.stream.Resume(false)
	held := c.held
	c.held = nil
	c.put(held)
}

// put checks p, bytes read from the client, and appends them to the
// buffer.
func (c *conn) put(p []byte) {
	for len(p) > 0 && c.refusal == nil && !c.await {
		c.room(len(c.buf) + len(p))
		n := copy(c.buf[c.wp:], p)
		p = p[n:]
		c.check(n)
	}
	if c.await && len(p) > 0 {
		c.held = append(c.held, p...)
	}
}

// handle runs the handler for req and writes the response. It reports
// whether the connection can take another request.
func (c *conn) handle(req *http.Request) (keep bool) {
	st := c.st // req's, made by parse
	c.st = nil
	ctx := &st.ctx
	defer ctx.cancel()
	w := &c.resp
	w.reset(c, req)
	b, _ := req.Body.(*body)
	if b == nil || b.eof {
		c.watch.arm(c, ctx)
	} else {
		b.onEOF = func() { c.watch.arm(c, ctx) }
	}
	if !c.serveHandler(w, req) {
		return false
	}
	c.watch.stop(c)
	if c.hijacked {
		return false
	}
	w.finish()
	c.answered()
	if b != nil {
		b.onEOF = nil
	}
	if w.err != nil || w.closeAfter || req.Close {
		if w.err == nil && (b == nil || b.eof) {
			// An answer written whole, its request's body read to its
			// end: the state goes with the header maps to the next
			// connection (dropHeaders), as a kept connection's goes to
			// its next request.
			c.keepState(st)
		}
		return false
	}
	w.idle() // nothing of this request is kept while the connection waits
	c.kept = true
	clear(c.hdr)
	clear(c.hvals)
	if b != nil && !b.eof {
		if b.cont {
			return false // the client waits for 100 Continue before it sends the body
		}
		if !b.discard() {
			return false
		}
	}
	c.keepState(st)
	return true
}

// serveHandler calls the handler; it reports false when the handler
// panicked (the connection is then closed; http.ErrAbortHandler quietly).
func (c *conn) serveHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.watch.stop(c)
			if v != http.ErrAbortHandler && c.srv.Log != nil {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.Log.Errorf("panic serving %s: %v\n%s", c.remoteAddr, v, buf)
			}
			if !c.hijacked {
				w.flushOnAbort()
			}
			c.panicked = true
			ok = false
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// hijack hands the connection over, with the bytes read and not used.
func (c *conn) hijack() (net.Conn, []byte, error) {
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.watch.stop(c)
	c.hijacked = true
	rest := append(append([]byte(nil), c.buf[c.rp:c.wp]...), c.held...)
	c.rp, c.wp, c.held = 0, 0, nil
	c.release()
	c.setState(http.StateHijacked)
	_ = c.nc.SetDeadline(time.Time{})
	return c.nc, rest, nil
}

// watcher sees a client go away while its request runs, so that the
// request's context is cancelled (and its OnClientGone hook run), as
// net/http's background read does. On a rawsock socket it watches the
// socket's read events (rawio.ReadWatcher) from the start of the
// request: an event looks at the socket without taking anything from it
// (one byte, MSG_PEEK), and only an end of file or an error says the
// client went; no goroutine, no timer, no read while nothing comes, as
// nginx's check of a broken connection on its events. On other sockets
// a request that takes longer than watchAfter gets a goroutine reading
// the client; it reads one byte at most: one that comes is the next
// request's, kept for it.
type watcher struct {
	mu    sync.Mutex
	timer *time.Timer
	armed bool
	c     *conn
	ctx   *reqCtx       // the request's, cancelled when the client goes
	done  chan struct{} // non-nil while a read runs
	b     [1]byte
	got   bool  // b holds a byte read
	err   error // the read failed: the client is gone
	// gone is the request's hook (response.OnClientGone), called once
	// when the client goes; ran says it was.
	gone func()
	ran  bool
	// The event watch: on says it is set for the request numbered seq.
	on  bool
	seq uint64
}

// onGone sets the request's hook.
func (w *watcher) onGone(f func()) {
	w.mu.Lock()
	w.gone, w.ran = f, false
	w.mu.Unlock()
}

// Stop removes the request's hook; false if it ran (or is running).
func (w *watcher) Stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gone = nil
	return !w.ran
}

// arm sets the event watch on a socket that has one, else starts the
// read in watchAfter unless stop comes first. Nothing is armed when the
// client already sent more than the request.
func (w *watcher) arm(c *conn, ctx *reqCtx) {
	if c.rp < c.wp || c.await || len(c.held) > 0 || c.readErr != nil || c.refusal != nil {
		return
	}
	w.mu.Lock()
	if c.rw != nil {
		w.c, w.ctx, w.on = c, ctx, true
		w.seq++
		w.mu.Unlock()
		c.rw.WatchRead(w)
		return
	}
	defer w.mu.Unlock()
	w.c, w.ctx, w.armed = c, ctx, true
	d := watchAfter
	if c.srv.watchAfter != 0 {
		d = c.srv.watchAfter
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.start)
	} else {
		w.timer.Reset(d)
	}
}

func (w *watcher) start() {
	w.mu.Lock()
	if !w.armed {
		w.mu.Unlock()
		return
	}
	w.armed = false
	c, ctx := w.c, w.ctx
	done := make(chan struct{})
	w.done = done
	// Under the lock: stop's deadline in the past must come after this.
	_ = c.nc.SetReadDeadline(time.Time{})
	w.mu.Unlock()
	n, err := c.nc.Read(w.b[:])
	w.mu.Lock()
	w.got = n > 0
	stopped := w.c == nil
	var gone func()
	if n == 0 && err != nil && !(stopped && errors.Is(err, os.ErrDeadlineExceeded)) {
		w.err = err
		ctx.cancel()
		gone, w.gone = w.gone, nil
		w.ran = gone != nil
	}
	w.done = nil
	w.mu.Unlock()
	if gone != nil {
		gone()
	}
	close(done)
}

// OnRead is the event watch's look at the socket, on rawsock's poller
// (it must not block): bytes are the next request's and stay where they
// are; an end of file or an error is the client gone, told to the
// request from a goroutine of its own.
func (w *watcher) OnRead(fd int) {
	n, e := rawio.Peek(uintptr(fd))
	var err error
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR || e == 0 && n > 0:
		return
	case e != 0:
		err = os.NewSyscallError("recvfrom", e)
	default:
		err = io.EOF
	}
	w.mu.Lock()
	seq := w.seq
	w.mu.Unlock()
	go w.clientGone(seq, err)
}

// clientGone ends the request numbered seq, if the watch is still its.
func (w *watcher) clientGone(seq uint64, err error) {
	w.mu.Lock()
	if !w.on || w.seq != seq {
		w.mu.Unlock()
		return
	}
	w.err = err
	ctx := w.ctx
	gone := w.gone
	w.gone, w.ran = nil, gone != nil
	w.mu.Unlock()
	ctx.cancel()
	if gone != nil {
		gone()
	}
}

// stop ends the watch: an armed one is disarmed, a read in progress is
// ended and waited for, the event watch is taken off the socket.
func (w *watcher) stop(c *conn) {
	w.mu.Lock()
	w.armed = false
	on := w.on
	w.on = false
	w.c, w.ctx, w.gone = nil, nil, nil
	done := w.done
	w.mu.Unlock()
	if on {
		c.rw.StopWatch()
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	if done != nil {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// sawGone reports whether the watch found the client gone during the
// request: the goroutine that did may still be cancelling its context.
func (w *watcher) sawGone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// take gives c what the watch read: a byte, or the client's going.
func (w *watcher) take(c *conn) {
	w.mu.Lock()
	got, err := w.got, w.err
	w.got, w.err = false, nil
	w.mu.Unlock()
	if got {
		c.put(w.b[:1])
	}
	if err != nil && c.readErr == nil {
		c.readErr = err
	}
}

// body is a request body read from the connection.
type body struct {
	c       *conn
	chunked bool
	remain  int64 // bytes left: of the body, or of the current chunk
	crlf    bool  // chunked: a chunk's CRLF is still to read
	eof     bool
	err     error
	cont    bool // 100 Continue is to be sent before the first read
	onEOF   func()
	req     *http.Request
}

func (b *body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.cont {
		b.cont = false
		b.c.resp.writeContinue()
	}
	if b.chunked && b.remain == 0 {
		if err := b.nextChunk(); err != nil {
			return 0, b.fail(err)
		}
		if b.eof {
			return 0, io.EOF
		}
	}
	n, err := b.c.readData(p, b.remain)
	b.remain -= int64(n)
	if err != nil {
		return n, b.fail(err)
	}
	if b.remain == 0 && !b.chunked {
		b.end()
		if n > 0 {
			return n, nil
		}
		return 0, io.EOF
	}
	return n, nil
}

func (b *body) end() {
	b.eof = true
	if b.onEOF != nil {
		b.onEOF()
	}
}

// fail keeps the first error; an end of file before the body's end is
// io.ErrUnexpectedEOF.
func (b *body) fail(err error) error {
	if err == io.EOF || errors.Is(err, errNoRequest) {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return err
}

func (b *body) Close() error { return nil }

// nextChunk reads the CRLF after a chunk and the next chunk-size line; at
// the last chunk, the trailer section.
func (b *body) nextChunk() error {
	if b.crlf {
		line, err := b.c.line()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return fmt.Errorf("malformed chunked encoding")
		}
		b.crlf = false
	}
	line, err := b.c.line()
	if err != nil {
		return err
	}
	var size int64
	for _, ch := range line {
		v := unhex(ch)
		if v < 0 {
			break
		}
		if size > (1<<62)>>4 {
			return fmt.Errorf("chunk too large")
		}
		size = size<<4 | int64(v)
	}
	if size > 0 {
		b.remain, b.crlf = size, true
		return nil
	}
	for {
		line, err := b.c.line()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte{':'}); ok {
			if b.req.Trailer == nil {
				b.req.Trailer = http.Header{}
			}
			b.req.Trailer.Add(string(name), string(bytes.Trim(value, " \t")))
		}
	}
	b.end()
	return nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// line returns the next CRLF-ended line of the buffer, without its CRLF,
// reading as needed. It is valid until the next read.
func (c *conn) line() ([]byte, error) {
	for {
		if i := bytes.Index(c.buf[c.rp:c.wp], []byte("\r\n")); i >= 0 {
			l := c.buf[c.rp : c.rp+i]
			c.rp += i + 2
			return l, nil
		}
		if err := c.more(); err != nil {
			return nil, err
		}
	}
}

// more reads once, or says why it cannot.
func (c *conn) more() error {
	if c.refusal != nil {
		if !c.refHead {
			c.linger = true
		}
		return c.refusal
	}
	if c.readErr != nil {
		return c.readErr
	}
	c.fill()
	return nil
}

// readData reads at most limit body bytes into p: from the buffer, or,
// when it is empty and p is large, straight from the client.
func (c *conn) readData(p []byte, limit int64) (int, error) {
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	for c.rp == c.wp {
		if c.refusal == nil && c.readErr == nil && len(p) >= bufSize/2 && !c.await {
			n, err := c.nc.Read(p)
			if n > 0 {
				k, v := c.stream.Feed(p[:n])
				if v != httpcheck.Fine { // cannot happen within a body's length
					ref := c.stream.Refusal()
					c.refusal, c.refHead = &ref, v == httpcheck.RefuseHead
					n = k
				}
			}
			if err == io.EOF && n > 0 {
				err = nil
			}
			c.readErr = err
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err := c.more(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.rp:c.wp])
	c.rp += n
	return n, nil
}

// discard reads what the handler left of the request body, when that is
// little, so that the connection can take the next request. The read
// deadline in place bounds it: the handler's, or the head's.
func (b *body) discard() bool {
	if !b.chunked && b.remain > maxDiscard {
		return false
	}
	n, err := io.CopyN(io.Discard, b, maxDiscard+1)
	return err == io.EOF && n <= maxDiscard
}
