package upstream

import (
	"bufio"
	"net"
	"sync"
	"syscall"
	"time"

	"gsup/internal/rawio"
	"gsup/internal/rawsock"
)

const (
	// idleTimeout closes a pooled connection left unused this long. It is
	// below the shortest keep-alive timeout common among app servers
	// (Gunicorn's threaded workers: 2 s), so the app rarely closes a
	// connection the pool still offers.
	idleTimeout = time.Second
	// maxIdle bounds the idle connections kept per instance. It is above
	// the requests one instance has in flight behind HTTP/2 clients (many
	// streams each): a pool smaller than that closes connections it needs
	// again at once, and a busy front then connects anew for a good part
	// of its requests (each leaving a socket in TIME_WAIT). Connections
	// left idle close after idleTimeout anyway.
	maxIdle = 1024
	// readBufSize is the size of each connection's bufio.Reader.
	readBufSize = 4 << 10
)

// dialTimeout bounds a connect to a local app (a variable for tests).
var dialTimeout = 5 * time.Second

// pconn is one connection to an app instance.
type pconn struct {
	be       *backend
	c        net.Conn
	rio      *rawio.Conn // c's descriptor: rawsock's own, or one on net's; nil: none
	*connBuf             // br reads pc; head is the request head scratch
	uses     int         // exchanges completed on it
	idleAt   int64       // monoNow() when it was put back
	wdl      bool        // a write deadline is set
	rdl      time.Time   // the read deadline in force; zero: none
}

// readDeadline sets c's read deadline to t, the end of a wait of d from
// now, unless the deadline in force ends at most d/16 before t: then it
// stays, as conns leaves a client's write deadline, and the wait may end
// that much early. An exchange on a kept connection would otherwise move
// a timer of the runtime's, by the few milliseconds since the last one.
func (pc *pconn) readDeadline(t time.Time, d time.Duration) {
	if !pc.rdl.IsZero() && !t.Before(pc.rdl) && t.Sub(pc.rdl) <= d/16 {
		return
	}
	pc.setReadDeadline(t)
}

// setReadDeadline sets c's read deadline to t exactly.
func (pc *pconn) setReadDeadline(t time.Time) {
	pc.rdl = t
	pc.c.SetReadDeadline(t)
}

// dialer dials apps; each dial's context (dialContext) bounds it.
var dialer = net.Dialer{KeepAlive: -1}

// dialContext is a dial's context: a deadline and nothing else. net
// bounds a connect by its context's deadline only when the context has
// a Done channel; a Dialer.Timeout, or a context from context's own
// functions, then costs each dial a timer, a cancel context and a
// function registered on it (about ten allocations). This one's Done
// never closes, and its AfterFunc registers nothing: the deadline, a
// write deadline on the socket, is all the connect is bounded by.
type dialContext struct{ deadline time.Time }

// newDialContext is the context of a dial that begins now.
func newDialContext() *dialContext { return &dialContext{deadline: time.Now().Add(dialTimeout)} }

// never is the Done channel of every dialContext.
var never = make(chan struct{})

func (d *dialContext) Deadline() (time.Time, bool)  { return d.deadline, true }
func (d *dialContext) Done() <-chan struct{}        { return never }
func (d *dialContext) Err() error                   { return nil }
func (d *dialContext) Value(any) any                { return nil }
func (d *dialContext) AfterFunc(func()) func() bool { return neverRan }

func neverRan() bool { return true }

// dial opens a new connection to be. Behind an app that closes every
// connection after one exchange (be.oneShot: Gunicorn's sync workers), and
// where the front's client sockets are rawsock's (one processor:
// rawsock.Preferred), the connection is rawsock's too: its socket,
// connect and close are system calls of gsup's own, outside the runtime's
// system-call path, so that they neither wake the runtime's monitor nor
// keep it polling (on one processor it takes the processor back from a
// call that outlasts its tick, and a loopback connect runs the handshake
// inside the call; be.raw is the address made for it once). Behind
// Gunicorn that took about 20-25 µs of the front's CPU off a request in
// most rounds, and its context switches from 1.0-1.7 per request to
// 0.2-0.3 (bench/README.md).
//
// A connection the app keeps is net's: its waits for the app's answers
// then go by Go's poller directly, where rawsock's go through the
// goroutine that takes its events, which cost a kept request 3-7 µs of
// user time more. An app that starts keeping connections (a reload to
// threaded workers on the same address) has the rawsock connection it
// kept closed, not pooled (finishUpstream), and its next ones dialled by net.
// An address rawsock leaves to net (a host name, an IPv6 zone), and every
// connection on more processors, are net's too.
//
// net's dial: a UNIX socket's address was made when the instance was
// added. A TCP address goes by DialContext, whose resolver parses the
// literal again (a few allocations): Dialer.DialTCP, which takes it
// parsed, takes a local address too, and binds the socket to it, even to
// the zero one it is given for none: a bind(2) per connection, and a
// local port taken before the connect, unique among every socket's where
// the connect's own choice needs only its 4-tuple unique.
func (be *backend) dial() (*pconn, error) {
	var c net.Conn
	var err error
	switch {
	case be.raw != nil && be.oneShot.Load() && rawsock.Preferred():
		var rc *rawsock.Conn
		if rc, err = be.raw.Dial(dialTimeout); err == nil {
			c = rc
		}
	case be.unix != nil:
		c, err = dialer.DialUnix(newDialContext(), "unix", nil, be.unix)
	default:
		c, err = dialer.DialContext(newDialContext(), be.network, be.address)
	}
	if err != nil {
		return nil, err
	}
	var pc *pconn
	if rc, ok := c.(*rawsock.Conn); ok {
		// rawsock's own, shared: a connection to an app that closes each
		// one is smaller by a rawio.Conn, and the collector runs less.
		pc = &pconn{be: be, c: c, rio: rc.RawIO()}
	} else {
		pn := &netPconn{pconn: pconn{be: be, c: c}}
		pc = &pn.pconn
		if sc, ok := c.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				pn.io.Init(rc)
				pc.rio = &pn.io
			}
		}
	}
	b, _ := connBufs.Get().(*connBuf)
	if b == nil {
		b = &connBuf{br: bufio.NewReaderSize(nil, readBufSize), head: make([]byte, 0, headScratch)}
	}
	b.br.Reset(pc)
	pc.connBuf = b
	return pc, nil
}

// netPconn is a connection dialled by net with the rawio.Conn on its
// descriptor, in one allocation.
type netPconn struct {
	pconn
	io rawio.Conn
}

// headScratch is the capacity of a new connection's request head
// scratch; a larger one, grown by a large head, is not kept for reuse.
const headScratch = 1024

// connBuf holds the read buffer and head scratch of a closed connection
// for the next dial: behind an app that closes every connection
// (Gunicorn's sync workers) a dial per request would allocate 5 KiB
// otherwise, and the collector would run several times as often.
type connBuf struct {
	br   *bufio.Reader
	head []byte
}

var connBufs sync.Pool // *connBuf

// recycle closes pc and keeps its buffers for another connection. Only
// the exchange that owns pc calls it, when nothing reads pc.br or writes
// pc.head any more (abort only closes pc.c).
func (pc *pconn) recycle() {
	pc.c.Close()
	b := pc.connBuf
	pc.connBuf = nil
	if b == nil || cap(b.head) > headScratch {
		return
	}
	b.head = b.head[:0]
	b.br.Reset(nil)
	connBufs.Put(b)
}

// reset makes pc's close reset the connection (SO_LINGER 0) where it
// would end it with a FIN. finishUpstream calls it once the app has
// answered whole and said it closes, as Gunicorn's sync workers do after
// every request: nothing is left to pass either way, and the app has
// closed or is closing its socket. Ended by a FIN, the app's socket,
// closed first, would wait in TIME_WAIT for a minute: one for each
// request, up to the kernel's cap (net.ipv4.tcp_max_tw_buckets), and a
// later connect from the same port meets it. Behind Gunicorn on TCP, the
// front's CPU per request went from 0.96-1.04 of nginx's to 0.86-0.98
// with the reset, in pairs run at once (bench/README.md).
// HAProxy ends its connections to servers the same way. A UNIX socket
// has no TIME_WAIT and is closed as before.
func (pc *pconn) reset() {
	if _, tcp := pc.c.RemoteAddr().(*net.TCPAddr); !tcp {
		return
	}
	if l, ok := pc.c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
}

// Read reads from the app, by the connection's descriptor (rawio): the
// reads and writes of an exchange are short, and the system-call path
// would let the runtime hand the processor to another thread under them.
func (pc *pconn) Read(p []byte) (int, error) {
	if pc.rio == nil {
		return pc.c.Read(p)
	}
	return pc.rio.Read(p)
}

// write writes p to the app, by the descriptor when it is short.
func (pc *pconn) write(p []byte) (int, error) {
	if pc.rio == nil || len(p) > rawio.MaxWrite {
		return pc.c.Write(p)
	}
	return pc.rio.Write(p)
}

// writeBuffers writes bufs in one writev where it can (net's sockets
// and rawsock's both do).
func (pc *pconn) writeBuffers(bufs net.Buffers) (int64, error) {
	if rc, ok := pc.c.(*rawsock.Conn); ok {
		return rc.WriteBuffers(&bufs)
	}
	return bufs.WriteTo(pc.c)
}

// writeWait writes p, a whole request, to the app and waits for its
// answer to begin (rawio's WriteWait: the read that follows then finds it
// at its first try); without a descriptor, or for a long p, it writes as
// write does.
func (pc *pconn) writeWait(p []byte) (int, error) {
	if pc.rio == nil || len(p) > rawio.MaxWrite {
		return pc.c.Write(p)
	}
	return pc.rio.WriteWait(p)
}

// getIdle pops the most recently used idle connection, or returns nil.
// Connections idle for longer than idleTimeout are closed on the way.
func (be *backend) getIdle() *pconn {
	be.mu.Lock()
	n := len(be.idle)
	if n == 0 {
		be.mu.Unlock()
		return nil
	}
	pc := be.idle[n-1]
	be.idle[n-1] = nil
	be.idle = be.idle[:n-1]
	if monoNow()-pc.idleAt < int64(idleTimeout) {
		be.mu.Unlock()
		return pc
	}
	// The top one is stale, so is everything under it.
	stale := append([]*pconn{pc}, be.idle...)
	clear(be.idle)
	be.idle = be.idle[:0]
	be.mu.Unlock()
	for _, pc := range stale {
		pc.c.Close()
	}
	return nil
}

// put returns a connection after a complete exchange.
func (be *backend) put(pc *pconn) {
	pc.uses++
	if be.removed.Load() {
		pc.c.Close()
		return
	}
	pc.idleAt = monoNow()
	be.mu.Lock()
	if be.closed || len(be.idle) >= maxIdle {
		be.mu.Unlock()
		pc.c.Close()
		return
	}
	be.idle = append(be.idle, pc)
	if !be.reaping {
		be.reaping = true
		if be.reaper == nil {
			be.reaper = time.AfterFunc(idleTimeout, be.reap)
		} else {
			be.reaper.Reset(idleTimeout)
		}
	}
	be.mu.Unlock()
}

// reap closes connections idle for longer than idleTimeout; it runs on a
// timer while the pool holds any.
func (be *backend) reap() {
	now := monoNow()
	be.mu.Lock()
	i := 0
	for i < len(be.idle) && now-be.idle[i].idleAt >= int64(idleTimeout) {
		i++
	}
	stale := append([]*pconn(nil), be.idle[:i]...)
	n := copy(be.idle, be.idle[i:])
	clear(be.idle[n:])
	be.idle = be.idle[:n]
	if n > 0 && !be.closed {
		be.reaper.Reset(time.Duration(int64(idleTimeout) - (now - be.idle[0].idleAt)))
	} else {
		be.reaping = false
	}
	be.mu.Unlock()
	for _, pc := range stale {
		pc.c.Close()
	}
}

// closeIdle closes the idle connections and makes put close later ones.
func (be *backend) closeIdle() {
	be.mu.Lock()
	be.closed = true
	idle := be.idle
	be.idle = nil
	if be.reaper != nil {
		be.reaper.Stop()
	}
	be.reaping = false
	be.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// idleCount is the number of pooled connections (for tests).
func (be *backend) idleCount() int {
	be.mu.Lock()
	defer be.mu.Unlock()
	return len(be.idle)
}
