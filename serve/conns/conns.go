// Package conns keeps the front's client connections within bounds: a
// cap on how many are open at once (max_connections), a bound on how long
// a write to a client may go without progress (send_timeout), accepting
// that backs off and says so when gsup runs out of file descriptors, and
// memory handed back to the system after a burst of connections.
//
// A Gate is shared by every listener of the front; Wrap puts one in front
// of a listener, under the layers that read requests, so a refused
// connection costs an accept, one write and a close.
package conns

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/rawio"
)

// Reserve is the number of file descriptors the default cap leaves for
// gsup's own files, pipes, upstream connections and children.
const Reserve = 256

// DefaultMax is the default max_connections for a limit on open files:
// the limit less Reserve, and never less than half of it.
func DefaultMax(fdLimit uint64) int {
	n := max(fdLimit-min(fdLimit, Reserve), fdLimit/2, 1)
	return int(min(n, 1<<31-1))
}

// Back-off of the accept loop after a failure, as net/http's.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// A burst of at least burstMin connections, once at most a quarter of
// them is left, makes the Gate hand memory back to the system,
// releaseDelay later (the rest of the burst has closed by then).
const (
	burstMin     = 1000
	releaseDelay = 2 * time.Second
)

// refusal is the whole answer to a connection over the cap. It is written
// without reading the request: the connection is closed at once.
const refusal = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 20\r\n" +
	"\r\n" +
	"Service Unavailable\n"

// RefusalBytes is the length of the body of the answer to a connection
// over the cap, for the access log.
const RefusalBytes = 20

// Options configure a Gate.
type Options struct {
	// Max is the number of client connections open at once (0: no cap).
	// One more is answered 503 and closed without its request being read.
	Max int
	// SendTimeout cuts a connection when a write to it makes no progress
	// for that long (0: never). It does not apply while a deadline set by
	// the connection's user is in force.
	SendTimeout time.Duration
	// Log gets the accept failures and the refusals, each at most once a
	// second, with their count.
	Log *logrus.Logger
	// Refused, if set, is called with each connection refused over Max,
	// just before it is closed, in the accept loop.
	Refused func(c net.Conn)
}

// Gate counts the connections of the listeners it wraps. Its methods are
// safe for concurrent use.
type Gate struct {
	o      Options // Max and SendTimeout are read from max and send
	max    atomic.Int64
	send   atomic.Int64 // a time.Duration
	active atomic.Int64
	peak   atomic.Int64 // highest active since the last release
	// releasing is set while a release is scheduled.
	releasing atomic.Bool
	refused   atomic.Int64
	refusals  rate
}

// New returns a Gate.
func New(o Options) *Gate {
	g := &Gate{o: o}
	g.Set(o.Max, o.SendTimeout)
	return g
}

// Set changes Max and SendTimeout (at a reload): a lower Max refuses new
// connections until enough have closed; SendTimeout applies from each
// connection's next write.
func (g *Gate) Set(max int, sendTimeout time.Duration) {
	g.max.Store(int64(max))
	g.send.Store(int64(sendTimeout))
}

// Active is the number of connections open now.
func (g *Gate) Active() int { return int(g.active.Load()) }

// Refused is the number of connections refused over the cap so far.
func (g *Gate) Refused() int64 { return g.refused.Load() }

// Wrap returns a listener whose Accept counts and bounds connections, and
// retries, with a back-off, when accepting fails for want of resources
// (EMFILE, ENFILE, ENOBUFS, ENOMEM): net/http's Serve never sees those.
// name is the bind, for log lines.
func (g *Gate) Wrap(l net.Listener, name string) net.Listener {
	return &listener{Listener: l, g: g, name: name, done: make(chan struct{})}
}

type listener struct {
	net.Listener
	g         *Gate
	name      string
	done      chan struct{}
	closeOnce sync.Once
	failures  rate
	failed    int // failures since the last success
}

func (l *listener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !outOfResources(err) {
				return nil, err
			}
			l.failed++
			if n, due := l.failures.add(); due {
				l.g.log().WithField("bind", l.name).WithField("failures", n).
					Errorf("accepting connections on %s: %v; retrying (%d failed in the last second)", l.name, err, n)
			}
			wait = min(max(2*wait, minBackoff), maxBackoff)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
			}
			continue
		}
		if l.failed > 0 {
			l.g.log().WithField("bind", l.name).WithField("failures", l.failed).
				Infof("accepting connections on %s again, after %d failures", l.name, l.failed)
			l.failed, wait = 0, 0
			l.failures.reset()
		}
		if cc := l.g.admit(c); cc != nil {
			return cc, nil
		}
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// outOfResources reports whether an accept failed for want of memory or
// file descriptors, which pass.
func outOfResources(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
		return true
	}
	return false
}

func (g *Gate) log() *logrus.Logger {
	if g.o.Log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		return l
	}
	return g.o.Log
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// admit counts c in and wraps it, or refuses it and returns nil.
func (g *Gate) admit(c net.Conn) *Conn {
	n := g.active.Add(1)
	if max := g.max.Load(); max > 0 && n > max {
		g.active.Add(-1)
		g.refuse(c)
		return nil
	}
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return &Conn{Conn: c, g: g}
}

func (g *Gate) refuse(c net.Conn) {
	total := g.refused.Add(1)
	if n, due := g.refusals.add(); due {
		max := g.max.Load()
		g.log().WithField("refused", n).WithField("max_connections", max).
			Warnf("refused %d connections in the last second: max_connections (%d) reached (%d refused in all)", n, max, total)
	}
	// A fresh socket's send buffer is empty: this write does not block.
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(refusal))
	if g.o.Refused != nil {
		g.o.Refused(c)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.Close()
}

// closed counts a connection out and, after a burst, schedules handing
// memory back.
func (g *Gate) closed() {
	n := g.active.Add(-1)
	if p := g.peak.Load(); p >= burstMin && n <= p/4 && g.releasing.CompareAndSwap(false, true) {
		time.AfterFunc(releaseDelay, g.release)
	}
}

// release frees what a burst of connections left behind: net/http's and
// gsup's pooled buffers (sync.Pool empties over two collections) and
// goroutine stacks, and returns the freed memory to the system.
func (g *Gate) release() {
	runtime.GC()
	debug.FreeOSMemory()
	g.peak.Store(g.active.Load())
	g.releasing.Store(false)
}

// Conn is a connection a Gate admitted.
type Conn struct {
	net.Conn
	g         *Gate
	wdl       atomic.Int64 // write deadline armed by Write, ns since epoch (monotonic)
	manual    atomic.Bool  // the user set a write deadline
	cut       atomic.Bool  // a write made no progress within SendTimeout
	closeOnce sync.Once
	closeErr  error
}

// NetConn returns the connection the listener accepted.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// RemoteAddrText is the accepted connection's, when it has one (a
// listener's: RemoteAddr as text, made once), else "".
func (c *Conn) RemoteAddrText() string {
	if t, ok := c.Conn.(interface{ RemoteAddrText() string }); ok {
		return t.RemoteAddrText()
	}
	return ""
}

// SyscallConn is the accepted connection's (reads are not counted or
// bounded here: a reader may read its descriptor directly).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// RawIO is the accepted connection's rawio.Conn, if it has one (reads
// by it are not counted or bounded here, as SyscallConn's).
func (c *Conn) RawIO() *rawio.Conn {
	if r, ok := c.Conn.(interface{ RawIO() *rawio.Conn }); ok {
		return r.RawIO()
	}
	return nil
}

// Write writes p. With a SendTimeout, each write must make progress
// within it: a write that times out after some progress goes on, one that
// made none fails, and the connection is then reset when it is closed (the
// client learns that the response was cut, and the system drops what was
// left to send at once).
func (c *Conn) Write(p []byte) (int, error) {
	d := time.Duration(c.g.send.Load())
	if d <= 0 || c.manual.Load() {
		return c.Conn.Write(p)
	}
	c.arm(d, false)
	n, err := c.Conn.Write(p)
	for m := n; err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.manual.Load(); n += m {
		if m == 0 {
			c.cut.Store(true)
			break
		}
		c.arm(d, true)
		m, err = c.Conn.Write(p[n:])
	}
	return n, err
}

// sendSlice is how much of a file ReadFrom hands the system at once: each
// slice must make progress within SendTimeout, as a Write must.
const sendSlice = 1 << 20

// ReadFrom lets net/http send files with sendfile through the Gate (its
// responses copy an *os.File, or an *io.LimitedReader of one, to the
// connection), with SendTimeout applied as for Write.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	d := time.Duration(c.g.send.Load())
	if d <= 0 || c.manual.Load() {
		return rf.ReadFrom(r)
	}
	src, limit := r, int64(-1)
	if lr, ok := r.(*io.LimitedReader); ok {
		src, limit = lr.R, lr.N
		defer func() { lr.N = limit }()
	}
	var total int64
	for limit != 0 {
		n := int64(sendSlice)
		if limit > 0 {
			n = min(n, limit)
		}
		c.arm(d, true)
		m, err := rf.ReadFrom(&io.LimitedReader{R: src, N: n})
		total += m
		if limit > 0 {
			limit -= m
		}
		switch {
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.manual.Load() && m > 0:
			continue
		case err != nil:
			if m == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				c.cut.Store(true)
			}
			return total, err
		case m < n:
			return total, nil // the source ended
		}
	}
	return total, nil
}

// epoch anchors wdl's monotonic readings.
var epoch = time.Now()

// arm sets the write deadline d from now, unless one set less than d/16
// ago is still in force (a deadline costs a timer update).
func (c *Conn) arm(d time.Duration, force bool) {
	t := time.Now()
	now := int64(t.Sub(epoch)) // the monotonic readings'
	if !force && c.wdl.Load()-now > int64(d-d/16) {
		return
	}
	c.wdl.Store(now + int64(d))
	c.Conn.SetWriteDeadline(t.Add(d))
}

// SetDeadline sets both deadlines; a zero one hands the write deadline
// back to SendTimeout.
func (c *Conn) SetDeadline(t time.Time) error {
	c.userDeadline(t)
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline; a zero one hands it back to
// SendTimeout.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.userDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *Conn) userDeadline(t time.Time) {
	c.manual.Store(!t.IsZero())
	c.wdl.Store(0)
}

// CloseWrite half-closes the connection when the accepted one can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection and counts it out, once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.cut.Load() {
			if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
				l.SetLinger(0)
			}
		}
		c.closeErr = c.Conn.Close()
		c.g.closed()
	})
	return c.closeErr
}

// rate counts events and says when one is due to be logged: the first,
// then at most one a second, with the count since the last one logged.
type rate struct {
	mu   sync.Mutex
	n    int
	last time.Time
}

func (r *rate) add() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		return 0, false
	}
	n := r.n
	r.n, r.last = 0, now
	return n, true
}

func (r *rate) reset() {
	r.mu.Lock()
	r.n, r.last = 0, time.Time{}
	r.mu.Unlock()
}
