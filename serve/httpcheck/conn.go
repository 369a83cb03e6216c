package httpcheck

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// WrapListener returns a listener whose connections check the raw bytes
// of every request head before net/http parses them, and the framing of
// every request body, on every request of a keep-alive connection. Serve
// it with http.Server, MaxHeaderBytes set to MaxHeaderBytes(lim), and call
// Check (and DropUnderscoreFields) in the handler for what can only be
// judged once parsed. A nil log logs nothing. refused, if not nil, is
// called with the connection (the one l accepted) and the answer of each
// refused request head, once that answer is written.
//
// What the raw checks refuse, that net/http would take: request lines over
// the limit (414), header field lines over the limits (431), bare LF or CR
// line endings, obsolete line folding, white space before a colon,
// control bytes in header values, Transfer-Encoding in HTTP/1.0, both
// Transfer-Encoding and Content-Length, more than one Content-Length, a
// Content-Length over lim.Body (413); in chunked bodies, chunk sizes with
// anything but hex digits, malformed chunk extensions, missing CRLFs after
// chunk data, and framing or routing fields in trailers.
//
// How a refusal works. A refused request head is never handed to net/http
// whole: the connection hands over the bytes before the offending one, then
// a line that net/http cannot parse, then end of file. net/http, in
// its own time (after answering any earlier pipelined request), answers
// "400 Bad Request" and closes; the connection writes its own answer in
// place of that one (400, 414, 431, 413 or 505 with the reason, and
// "Connection: close"), logs one warning, and drains the client's
// unread bytes for up to 500 ms on Close so the answer is not lost to a
// TCP reset. A refused request body makes Read return an *Error, which
// the handler reading the body sees (use errors.As) and should answer with
// its Status; later reads return io.EOF.
//
// Upgrades. After a CONNECT, or an HTTP/1.1 request with "Connection:
// upgrade" and an Upgrade header, what the client sends next may be
// another protocol. The connection watches the response: when a handler
// that hijacked the connection writes 101 (or 2xx to a CONNECT), it stops
// checking for good; on any other answer it checks the next request as
// usual, so asking for an upgrade the app refuses does not smuggle the
// next request past the checks. Bytes the client sends before that
// answer is written (which RFC 6455 section 4.1 and RFC 9113 section 3.2
// forbid) are held back until it is: a hijacking handler must write its
// answer before it reads from the client.
//
// Costs. No goroutine, no allocation per request, and no copy: the checks
// run over the bytes net/http reads, as it reads them; bodies are skipped by
// their length. The connection returned by Accept is not the listener's
// own: use its NetConn method to reach that one (for a PROXY header or
// SO_PEERCRED, say).
func WrapListener(l net.Listener, lim Limits, log *logrus.Logger, refused func(net.Conn, Error)) net.Listener {
	return WrapListenerFunc(l, func() Limits { return lim }, log, refused)
}

// WrapListenerFunc is WrapListener with limits that may change (at a
// reload): each connection takes those lim returns when it is accepted.
// Serve it with MaxHeaderBytes at least MaxHeaderBytes of any limits lim
// may return (MaxHeaderCeiling will do: the checks come first).
func WrapListenerFunc(l net.Listener, lim func() Limits, log *logrus.Logger, refused func(net.Conn, Error)) net.Listener {
	return &listener{Listener: l, lim: lim, log: log, refused: refused}
}

type listener struct {
	net.Listener
	lim     func() Limits
	log     *logrus.Logger
	refused func(net.Conn, Error)
}

// Accept returns the next connection, wrapped.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, sc: newScanner(l.lim().normalize()), log: l.log, refused: l.refused}, nil
}

// poison is handed to net/http in place of a refused request: it is not a
// valid request line (NUL is not a token byte) or header line anywhere in a
// head, it is longer than the 4 bytes net/http peeks at between requests,
// and it ends in CRLF so net/http needs no more bytes to refuse it.
var poison = []byte("\x00refused\r\n\r\n")

// netHTTPError is part of every error answer net/http writes itself for an
// unreadable request (http.Server's errorHeaders): the answer the
// connection replaces with its own.
var netHTTPError = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

const (
	wPoison uint32 = 1 << iota // a refused head was replaced by poison
	wAwait                     // waiting for the response to a CONNECT or an Upgrade
)

const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

type verdict uint8

const (
	vUnknown verdict = iota
	vSwitched
	vNotSwitched
)

// conn checks what a client sends. Read is called by one goroutine at a
// time (net/http's connection goroutine, or its background read, or a
// handler after Hijack); Write and the deadline setters may run
// concurrently with it.
type conn struct {
	net.Conn
	log     *logrus.Logger
	refused func(net.Conn, Error)

	// Read side only.
	sc      scanner
	out     []byte // poison still to hand out
	outErr  error  // returned once out is empty
	pend    []byte // bytes read while waiting for a verdict
	pendErr error  // the read error that came with pend

	watch atomic.Uint32 // wPoison|wAwait; 0 on the fast path
	rdl   atomic.Int64  // read deadline in Unix ns; 0 none, -1 past

	mu        sync.Mutex
	refusal   Error   // the refused request's answer
	answered  bool    // a refusal was answered: linger on Close
	verdict   verdict // while watch has wAwait
	connect   bool    // the request awaiting a verdict was a CONNECT
	hijacked  bool    // net/http handed the connection to a handler since
	resp      respScan
	wake      chan struct{} // made when the first wait starts
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// NetConn returns the connection the listener accepted.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.out) > 0 {
		n := copy(p, c.out)
		c.out = c.out[n:]
		return n, nil
	}
	if c.outErr != nil {
		err := c.outErr
		if _, ok := err.(*Error); ok {
			c.outErr = io.EOF // the handler has seen it; net/http gets EOF
		}
		return 0, err
	}
	if c.sc.st == stAwait {
		if err := c.await(p); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	if len(c.pend) > 0 || c.pendErr != nil {
		n = copy(p, c.pend)
		c.pend = c.pend[n:]
		if len(c.pend) == 0 {
			c.pend, err, c.pendErr = nil, c.pendErr, nil
		}
	} else {
		n, err = c.Conn.Read(p)
	}
	if n > 0 && c.sc.st != stPassthrough {
		n, err = c.scan(p, n, err)
	}
	return n, err
}

// scan checks p[:n], just read, and returns what to hand to the caller.
func (c *conn) scan(p []byte, n int, err error) (int, error) {
	k, ev := c.sc.feed(p[:n])
	switch ev {
	case evRefuseHead:
		c.mu.Lock()
		c.refusal = Error{Status: c.sc.status, Reason: c.sc.reason}
		c.mu.Unlock()
		c.watch.Or(wPoison)
		c.out, c.outErr = poison, io.EOF
		if k == 0 {
			k = copy(p, c.out)
			c.out = c.out[k:]
		}
		return k, nil
	case evRefuseBody:
		ref := &Error{Status: c.sc.status, Reason: c.sc.reason}
		c.mu.Lock()
		c.refusal, c.answered = *ref, true
		c.mu.Unlock()
		c.logRefusal(*ref)
		if k == 0 {
			c.outErr = io.EOF
			return 0, ref
		}
		c.outErr = ref
		return k, nil
	case evAwait:
		// Keep what followed the request, ahead of anything still pending,
		// until the response says what it is.
		if k < n {
			c.pend = append(append([]byte(nil), p[k:n]...), c.pend...)
		}
		if err != nil {
			c.pendErr, err = err, nil
		}
		c.mu.Lock()
		c.verdict, c.connect, c.hijacked, c.resp = vUnknown, c.sc.req.connect, false, respScan{}
		c.mu.Unlock()
		c.watch.Or(wAwait)
		return k, err
	}
	return n, err
}

// await returns once the response to the request that may switch
// protocols has said whether it did, with the bytes the client sent since
// in c.pend. It reads from the socket first if nothing is pending, and
// returns a timeout error when the read deadline passes, as a socket would
// (net/http interrupts its background read that way).
func (c *conn) await(p []byte) error {
	if len(c.pend) == 0 && c.pendErr == nil {
		n, err := c.Conn.Read(p)
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return err
		}
		c.pend, c.pendErr = append([]byte(nil), p[:n]...), err
	}
	c.mu.Lock()
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	wake := c.wake
	for c.verdict == vUnknown {
		if c.closed {
			c.mu.Unlock()
			return net.ErrClosed
		}
		c.mu.Unlock()
		if err := c.sleep(wake); err != nil {
			return err
		}
		c.mu.Lock()
	}
	switched := c.verdict == vSwitched
	c.mu.Unlock()
	c.sc.resume(switched)
	return nil
}

// sleep waits for a poke or the read deadline.
func (c *conn) sleep(wake <-chan struct{}) error {
	dl := c.rdl.Load()
	if dl < 0 {
		return os.ErrDeadlineExceeded
	}
	if dl == 0 {
		<-wake
		return nil
	}
	d := time.Until(time.Unix(0, dl))
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

func (c *conn) poke() {
	c.mu.Lock()
	if c.wake != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
}

func (c *conn) Write(p []byte) (int, error) {
	if c.watch.Load() == 0 {
		return c.Conn.Write(p)
	}
	return c.writeWatched(p)
}

func (c *conn) writeWatched(p []byte) (int, error) {
	w := c.watch.Load()
	if w&wPoison != 0 && bytes.HasPrefix(p, []byte("HTTP/1.1 ")) && bytes.Contains(p, netHTTPError) {
		c.mu.Lock()
		ref, already := c.refusal, c.answered
		c.answered = true
		c.mu.Unlock()
		if !already {
			c.logRefusal(ref)
		}
		_, err := c.Conn.Write(refusalResponse(ref))
		if !already && c.refused != nil {
			c.refused(c.Conn, ref)
		}
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if w&wAwait != 0 {
		c.mu.Lock()
		if c.verdict == vUnknown {
			v := c.resp.feed(p, c.connect)
			if v == vSwitched && !c.hijacked {
				// Only a handler that took the connection over can switch
				// protocols; net/http itself never does. (This also keeps
				// a response body that looks like "HTTP/1.1 101" from
				// ending the checks.)
				v = vNotSwitched
			}
			if v != vUnknown {
				c.verdict = v
				c.watch.And(^wAwait)
				if c.wake != nil {
					select {
					case c.wake <- struct{}{}:
					default:
					}
				}
			}
		}
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

// ReadFrom lets net/http use sendfile or splice through the connection
// when nothing is being watched.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok && c.watch.Load() == 0 {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c}, r)
}

type writerOnly struct{ io.Writer }

// CloseWrite half-closes the connection when the accepted one can.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SetDeadline sets both deadlines. net/http calls it only when a handler
// hijacks the connection: while a protocol switch is pending, that is the
// sign that the next response head written is the handler's own.
func (c *conn) SetDeadline(t time.Time) error {
	if c.watch.Load()&wAwait != 0 {
		c.mu.Lock()
		if c.verdict == vUnknown {
			c.hijacked, c.resp = true, respScan{}
		}
		c.mu.Unlock()
	}
	c.setReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) setReadDeadline(t time.Time) {
	switch {
	case t.IsZero():
		c.rdl.Store(0)
	case !t.After(time.Now()):
		c.rdl.Store(-1)
	default:
		c.rdl.Store(t.UnixNano())
	}
	if c.watch.Load()&wAwait != 0 {
		c.poke()
	}
}

// Close closes the connection; after a refusal it first half-closes it and
// reads what the client still sends, for up to 500 ms, so that the client
// reads the answer instead of a reset.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		answered := c.answered
		c.mu.Unlock()
		c.poke()
		if answered {
			c.CloseWrite()
			c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			io.CopyN(io.Discard, c.Conn, lingerBytes)
		}
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

func (c *conn) logRefusal(ref Error) {
	if c.log == nil {
		return
	}
	c.log.WithFields(logrus.Fields{
		"client": c.Conn.RemoteAddr().String(),
		"status": ref.Status,
	}).Warnf("refused a request: %s", ref.Reason)
}

// Body is the body of the answer to a refused request head.
func (e Error) Body() string {
	return fmt.Sprintf("%d %s: %s\n", e.Status, statusText(e.Status), e.Reason)
}

// refusalResponse is the answer to a refused request.
func refusalResponse(ref Error) []byte {
	body := ref.Body()
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		ref.Status, statusText(ref.Status), len(body), body)
}

func statusText(code int) string {
	switch code {
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 431:
		return "Request Header Fields Too Large"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Bad Request"
}

// respScan finds the final status of the response to a request that may
// switch protocols, skipping interim (1xx) responses other than 101.
type respScan struct {
	skipping bool // in an interim response's head
	line     [12]byte
	n        int
	tail     uint32 // last four bytes, while skipping
}

// feed returns the verdict once p (the next bytes written) holds it.
func (s *respScan) feed(p []byte, connect bool) verdict {
	for _, c := range p {
		if s.skipping {
			s.tail = s.tail<<8 | uint32(c)
			if s.tail == 0x0d0a0d0a { // "\r\n\r\n"
				s.skipping, s.n, s.tail = false, 0, 0
			}
			continue
		}
		s.line[s.n] = c
		s.n++
		if s.n < len(s.line) {
			continue
		}
		// "HTTP/1.x NNN"
		l := s.line
		if string(l[:7]) != "HTTP/1." || l[8] != ' ' || !isDigit(l[9]) || !isDigit(l[10]) || !isDigit(l[11]) {
			return vNotSwitched
		}
		code := int(l[9]-'0')*100 + int(l[10]-'0')*10 + int(l[11]-'0')
		switch {
		case code == 101:
			return vSwitched
		case code/100 == 1:
			s.skipping, s.tail = true, 0
		case connect && code/100 == 2:
			return vSwitched
		default:
			return vNotSwitched
		}
	}
	return vUnknown
}
