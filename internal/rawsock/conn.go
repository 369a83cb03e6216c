package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"gsup/internal/rawio"
)

// Conn is a connected socket of the poller. It implements net.Conn as
// net's own do (Read returns io.EOF at end of file, Write writes all, a
// passed deadline fails every call with os.ErrDeadlineExceeded until it
// is moved, Close makes calls in progress return net.ErrClosed), plus
// syscall.Conn, io.ReaderFrom (sendfile for an *os.File), CloseWrite and
// SetLinger.
type Conn struct {
	fd      int
	gen     uint32 // told apart from an earlier Conn of the same fd
	p       *poller
	network string // "tcp" or "unix", for errors and addresses
	// state: closed (the high bit) and the references: one while open,
	// one per call in progress. The descriptor is closed at zero.
	state atomic.Int64
	rd    half
	wr    half
	// ended: an event said the peer shut its side, or the connection
	// failed. No other event comes for that, so a read after it tries.
	ended atomic.Bool
	// onRead is WatchRead's (under the poller's lock).
	onRead rawio.ReadEvents
	raw    rawConn    // SyscallConn's
	io     rawio.Conn // Read and Write, on raw

	laddrMu sync.Mutex
	laddr   net.Addr
	raddr   net.Addr
	// peer and peerIP hold an accepted TCP connection's raddr, in the
	// Conn's own allocation.
	peer   net.TCPAddr
	peerIP [16]byte
}

const closedBit = 1 << 62

// half is one direction: its waiter's token, its deadline.
type half struct {
	mu sync.Mutex // one call at a time in this direction
	// ready holds the direction's chan struct{} (capacity 1): a token
	// for a call waiting, the socket may be ready, or see why not. It is
	// made by the first call that waits, before it stores waiting: most
	// connections never wait in one direction, or in either (a new
	// connection's request is there at accept), and pay no channel.
	ready atomic.Value
	// kept: a token left while no call waited, taken by the next wait
	// (most events find no one waiting in one direction: each event of
	// a socket that is writable says so, and most writes do not wait).
	kept atomic.Bool
	// drained: the last read found the socket empty (Drained). Bytes
	// that came after it came with an event, so the next read waits for
	// a token before it tries (reads only).
	drained atomic.Bool

	dmu     sync.Mutex
	when    time.Time // the deadline; zero: none
	fires   time.Time // when the armed deadline (timers) passes; zero: none is armed
	expired atomic.Bool
	// pending is the deadline (monoOf) while no timer is armed for it:
	// a call that does not wait compares it with the clock, and a wait
	// arms the timer first. Most calls of a new connection never wait
	// (its request is there at accept), so most connections arm none.
	// 0: none pending.
	pending atomic.Int64
	// waiting: a call waits, or is about to, for the direction's token;
	// a deadline set meanwhile arms its timer at once.
	waiting atomic.Bool

	// In timers' heap (under timers.mu): the index + 1 (0: not in it),
	// and when the deadline passes (monoOf).
	pos int
	key int64
}

// epoch is the origin of monoOf: monotonic readings as one integer.
var epoch = time.Now()

func monoOf(t time.Time) int64 { return int64(t.Sub(epoch)) }

// monoNow is monoOf(time.Now()), without the wall clock.
func monoNow() int64 { return int64(time.Since(epoch)) }

// testHookWake, when set, runs in wake between its first look at waiting
// and its store of kept.
var testHookWake atomic.Pointer[func(*half)]

// wake leaves a token for the direction's waiter: on the channel for a
// call that waits, in kept otherwise. A call about to wait stores
// waiting, then takes kept; wake stores kept, then loads waiting again:
// one of the two sees the other's store, so no token is lost (a wait
// that finds both takes one, and the next wait returns at once, to try
// again for nothing).
func (h *half) wake() {
	if !h.waiting.Load() {
		if hook := testHookWake.Load(); hook != nil {
			(*hook)(h)
		}
		h.kept.Store(true)
		if !h.waiting.Load() {
			return
		}
	}
	select {
	case h.readyChan() <- struct{}{}:
	default:
	}
}

// readyChan is the direction's token channel, nil while no call has
// waited (wake sends on it only after it saw waiting, which a waiter
// stores after it made the channel).
func (h *half) readyChan() chan struct{} {
	ch, _ := h.ready.Load().(chan struct{})
	return ch
}

// setDeadline sets the direction's deadline, as net's SetReadDeadline.
// The timer is moved only when the deadline comes before it fires: a
// deadline moved later (as each request of a kept connection does) or
// taken away leaves it armed, and when it fires, expire arms it again for
// the deadline then in force, if any (nginx's timers are lazy the same
// way). So a busy connection pays a field update per deadline, not a
// timer update. A deadline that no armed timer covers is armed only when
// a call waits (pending): until then, calls compare it with the clock,
// and setting it reads none (a deadline already past is seen as such by
// the next call, or by a wait as it arms it).
func (h *half) setDeadline(t time.Time) {
	h.dmu.Lock()
	h.when = t
	if t.IsZero() || !h.fires.IsZero() && !t.Before(h.fires) {
		// None, or after the armed timer: expire sees it when the timer
		// fires (no clock reading here).
		h.pending.Store(0)
		h.expired.Store(false)
		h.dmu.Unlock()
		return
	}
	h.expired.Store(false)
	// pending, then waiting; a wait stores waiting, then loads pending:
	// one of the two sees the other's store, and arms the timer.
	at := monoOf(t)
	if at == 0 {
		at = -1 // 0 says none; the epoch itself is past
	}
	h.pending.Store(at)
	if h.waiting.Load() {
		if d := time.Until(t); d > 0 {
			h.armLocked(d)
		} else {
			h.pending.Store(0)
			h.expired.Store(true)
			h.dmu.Unlock()
			h.wake()
			return
		}
	}
	h.dmu.Unlock()
}

// armLocked arms the deadline h.when, d from now (h.dmu held).
func (h *half) armLocked(d time.Duration) {
	timers.add(h, monoOf(h.when), d)
	h.fires = h.when
	h.pending.Store(0)
}

// armPending arms the timer for a pending deadline, before a wait; one
// passed already expires the direction.
func (h *half) armPending() {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	if h.pending.Load() == 0 {
		return
	}
	if d := time.Until(h.when); d > 0 {
		h.armLocked(d)
		return
	}
	h.pending.Store(0)
	h.expired.Store(true)
}

// passed reports whether the direction's deadline has passed: the
// timer's word, or the clock's for a pending deadline.
func (h *half) passed() bool {
	if h.expired.Load() {
		return true
	}
	at := h.pending.Load()
	return at != 0 && monoNow() >= at
}

// expire runs when the armed deadline passes: it marks the direction expired, unless
// the deadline moved later or went meanwhile (it then waits for a later
// one, or for none).
func (h *half) expire() {
	h.dmu.Lock()
	h.fires = time.Time{}
	if h.when.IsZero() {
		h.dmu.Unlock()
		return
	}
	if d := time.Until(h.when); d > 0 {
		h.armLocked(d)
		h.dmu.Unlock()
		return
	}
	h.pending.Store(0)
	h.expired.Store(true)
	h.dmu.Unlock()
	h.wake()
}

// stop disarms the direction's deadline, at Close. (An expire already
// under way finds no deadline, and arms nothing again.)
func (h *half) stop() {
	h.dmu.Lock()
	h.when = time.Time{}
	if !h.fires.IsZero() {
		h.fires = time.Time{}
		timers.remove(h)
	}
	h.dmu.Unlock()
}

// newConn registers fd (non-blocking, close-on-exec) with the poller;
// fd is closed if that fails. The remote address is raddr, or when rsa
// is not nil the socket address the kernel wrote there.
func newConn(fd int, network string, laddr, raddr net.Addr, rsa *syscall.RawSockaddrAny) (*Conn, error) {
	p, err := getPoller()
	if err != nil {
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
		return nil, err
	}
	c := &Conn{fd: fd, p: p, network: network, laddr: laddr, raddr: raddr}
	if rsa != nil {
		c.setPeer(rsa)
	}
	c.state.Store(1)
	c.raw.c = c
	c.io.Init(&c.raw)
	if err := p.add(c); err != nil {
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
		return nil, err
	}
	return c, nil
}

// RawIO is the rawio.Conn that Read and Write use, for a wrapper of c to
// share rather than make one more on SyscallConn.
func (c *Conn) RawIO() *rawio.Conn { return &c.io }

// incref takes a reference for a call; false once closed.
func (c *Conn) incref() bool {
	for {
		s := c.state.Load()
		if s&closedBit != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// decref drops a reference; the last one closes the descriptor.
func (c *Conn) decref() {
	if c.state.Add(-1) == closedBit {
		c.p.remove(c)
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(c.fd), 0, 0)
	}
}

// Close closes the connection: calls in progress return net.ErrClosed,
// and the descriptor is closed once they have.
func (c *Conn) Close() error {
	for {
		s := c.state.Load()
		if s&closedBit != 0 {
			return c.opError("close", net.ErrClosed)
		}
		if c.state.CompareAndSwap(s, s|closedBit) {
			break
		}
	}
	c.rd.stop()
	c.wr.stop()
	// A call waiting for a token is woken to see the close; one about to
	// wait sees the closed bit (wait stores waiting, then loads the state:
	// of the two, one sees the other's store). Most connections close
	// with no call waiting, and so without a send on either channel.
	if c.rd.waiting.Load() {
		c.rd.wake()
	}
	if c.wr.waiting.Load() {
		c.wr.wake()
	}
	c.decref()
	return nil
}

// wait waits for h's token, then reports why the caller cannot go on, if
// it cannot.
func (c *Conn) wait(h *half) error {
	ready := h.readyChan()
	if ready == nil {
		// A RawConn's callers may wait at once in one direction: the
		// channel the first of them made is the others' too.
		h.ready.CompareAndSwap(nil, make(chan struct{}, 1))
		ready = h.readyChan()
	}
	h.waiting.Store(true)
	if h.pending.Load() != 0 {
		h.armPending()
	}
	if !h.expired.Load() && c.state.Load()&closedBit == 0 && !h.kept.Swap(false) {
		<-ready
	}
	h.waiting.Store(false)
	return c.check(h)
}

// check is the reason a call in h's direction fails before it tries.
func (c *Conn) check(h *half) error {
	if c.state.Load()&closedBit != 0 {
		return net.ErrClosed
	}
	if h.passed() {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.raddr, Err: err}
}

// Read reads into b, waiting for data within the read deadline (rawio's
// read, on this package's waits).
func (c *Conn) Read(b []byte) (int, error) {
	c.rd.mu.Lock()
	n, err := c.io.Read(b)
	c.rd.mu.Unlock()
	return n, c.wrap("read", err)
}

// Write writes b whole, waiting for room within the write deadline, and
// returns how much was written, also when it fails. One write at a time,
// with ReadFrom's.
func (c *Conn) Write(b []byte) (int, error) {
	c.wr.mu.Lock()
	n, err := c.io.Write(b)
	c.wr.mu.Unlock()
	return n, c.wrap("write", err)
}

// maxIovecs bounds one writev, as the kernel does (UIO_MAXIOV).
const maxIovecs = 1024

// WriteBuffers writes every buffer of *bufs, in order, with writev, and
// consumes what it wrote as net.Buffers.WriteTo does: a request head and
// its body go to an app in one system call, as they do on net's sockets.
func (c *Conn) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if !c.incref() {
		return 0, c.opError("writev", net.ErrClosed)
	}
	defer c.decref()
	c.wr.mu.Lock()
	defer c.wr.mu.Unlock()
	var iov [8]syscall.Iovec
	var total int64
	for len(*bufs) > 0 {
		vs := iov[:0]
		for _, b := range *bufs {
			if len(b) == 0 {
				continue
			}
			if len(vs) == maxIovecs {
				break
			}
			v := syscall.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			vs = append(vs, v)
		}
		if len(vs) == 0 {
			*bufs = (*bufs)[:0]
			break
		}
		if err := c.check(&c.wr); err != nil {
			return total, c.opError("writev", err)
		}
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(c.fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(len(vs)))
		switch e {
		case 0:
			total += int64(m)
			consume(bufs, int64(m))
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := c.wait(&c.wr); err != nil {
				return total, c.opError("writev", err)
			}
		default:
			return total, c.opError("writev", os.NewSyscallError("writev", e))
		}
	}
	return total, nil
}

// consume drops the first n bytes of *v, as net.Buffers' own.
func consume(v *net.Buffers, n int64) {
	for len(*v) > 0 {
		if l := int64(len((*v)[0])); l > n {
			(*v)[0] = (*v)[0][n:]
			return
		} else {
			n -= l
		}
		(*v)[0] = nil
		*v = (*v)[1:]
	}
}

// wrap gives a wait's error (closed, deadline) the *net.OpError net's
// calls return; rawio's own errors have one already.
func (c *Conn) wrap(op string, err error) error {
	if _, ok := err.(*net.OpError); ok || err == nil || err == io.EOF {
		return err
	}
	return c.opError(op, err)
}

// sendfileChunk is the most one sendfile is asked for.
const sendfileChunk = 4 << 20

// ReadFrom sends r to the socket: with sendfile when r is an *os.File (or
// an *io.LimitedReader around one), from the file's offset, which moves
// as io.Copy's would; else by copying.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	orig := r
	remain := int64(1<<63 - 1)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		remain, r = lr.N, lr.R
		if remain <= 0 {
			return 0, nil
		}
	}
	f, ok := r.(*os.File)
	if !ok {
		return io.Copy(writerOnly{c}, orig)
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return io.Copy(writerOnly{c}, orig)
	}
	if !c.incref() {
		return 0, c.opError("sendfile", net.ErrClosed)
	}
	defer c.decref()
	c.wr.mu.Lock()
	var written int64
	var werr error
	unsupported := false
	cerr := fc.Control(func(src uintptr) {
		for remain > 0 {
			if werr = c.check(&c.wr); werr != nil {
				return
			}
			n, _, e := syscall.RawSyscall6(syscall.SYS_SENDFILE, uintptr(c.fd), src, 0, uintptr(min(remain, sendfileChunk)), 0, 0)
			switch e {
			case 0:
				if n == 0 {
					return // end of file
				}
				written += int64(n)
				remain -= int64(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				if werr = c.wait(&c.wr); werr != nil {
					return
				}
			case syscall.EINVAL, syscall.ENOSYS, syscall.EOPNOTSUPP:
				unsupported = written == 0
				if !unsupported {
					werr = os.NewSyscallError("sendfile", e)
				}
				return
			default:
				werr = os.NewSyscallError("sendfile", e)
				return
			}
		}
	})
	c.wr.mu.Unlock()
	if limited {
		lr.N = remain
	}
	if unsupported {
		return io.Copy(writerOnly{c}, orig)
	}
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		return written, c.opError("sendfile", werr)
	}
	return written, nil
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// shutdown shuts one or both sides down.
func (c *Conn) shutdown(how int) error {
	if !c.incref() {
		return c.opError("shutdown", net.ErrClosed)
	}
	defer c.decref()
	if _, _, e := syscall.RawSyscall(syscall.SYS_SHUTDOWN, uintptr(c.fd), uintptr(how), 0); e != 0 {
		return c.opError("shutdown", os.NewSyscallError("shutdown", e))
	}
	return nil
}

// CloseWrite shuts the writing side down (the peer reads end of file).
func (c *Conn) CloseWrite() error { return c.shutdown(syscall.SHUT_WR) }

// SetLinger sets SO_LINGER, as net.TCPConn's (0: Close resets).
func (c *Conn) SetLinger(sec int) error {
	l := syscall.Linger{}
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	return c.setsockopt(syscall.SOL_SOCKET, syscall.SO_LINGER, unsafe.Pointer(&l), unsafe.Sizeof(l))
}

func (c *Conn) setsockopt(level, name int, v unsafe.Pointer, size uintptr) error {
	if !c.incref() {
		return c.opError("setsockopt", net.ErrClosed)
	}
	defer c.decref()
	if _, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(c.fd), uintptr(level), uintptr(name), uintptr(v), size, 0); e != 0 {
		return c.opError("setsockopt", os.NewSyscallError("setsockopt", e))
	}
	return nil
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.setDeadline(t)
	c.wr.setDeadline(t)
	return nil
}

// SetReadDeadline sets the deadline of reads.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rd.setDeadline(t)
	return nil
}

// SetWriteDeadline sets the deadline of writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wr.setDeadline(t)
	return nil
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// LocalAddr is the socket's own address (asked of the kernel at the
// first call when the listener's did not tell it).
func (c *Conn) LocalAddr() net.Addr {
	c.laddrMu.Lock()
	defer c.laddrMu.Unlock()
	if c.laddr == nil && c.incref() {
		var rsa syscall.RawSockaddrAny
		n := uint32(syscall.SizeofSockaddrAny)
		_, _, e := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(c.fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
		c.decref()
		if e == 0 {
			c.laddr = sockaddrAddr(&rsa)
		}
	}
	return c.laddr
}

// SyscallConn gives the descriptor to callers that do their own system
// calls on it, with the waits of this package.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return &c.raw, nil }

// rawConn is Conn's syscall.RawConn.
type rawConn struct{ c *Conn }

func (r *rawConn) Control(f func(fd uintptr)) error {
	c := r.c
	if !c.incref() {
		return net.ErrClosed
	}
	defer c.decref()
	f(uintptr(c.fd))
	return nil
}

func (r *rawConn) Read(f func(fd uintptr) bool) error  { return r.c.rawWait(&r.c.rd, f, nil) }
func (r *rawConn) Write(f func(fd uintptr) bool) error { return r.c.rawWait(&r.c.wr, f, nil) }

// OpError makes the socket a rawio.OpErrorer: rawio's errors name its
// network and addresses.
func (r *rawConn) OpError(op string, err error) error { return r.c.opError(op, err) }

// ReadTry and WriteTry make the socket a rawio.TryConn: Read and Write
// with a Try, which rawio's Conn has without binding a function.
func (r *rawConn) ReadTry(t rawio.Try) error  { return r.c.rawWait(&r.c.rd, nil, t) }
func (r *rawConn) WriteTry(t rawio.Try) error { return r.c.rawWait(&r.c.wr, nil, t) }

// Drained is called by a read function given to Read when its read(2)
// returned less than it asked for: the socket had nothing more then. The
// next Read waits for the next event before it calls its function, and
// spares the read that would find nothing (a request's answer sent, the
// next request is not there yet): nginx, too, reads again only after an
// event once a read came short. An edge-triggered event comes for bytes
// that arrive after a read, and a token left by it stays until a wait
// takes it; a call that takes a token and then fails (deadline, close)
// clears drained, so the call after it tries first again. The peer's
// end of file (or a reset) is no byte: once an event has said so
// (ended, set before its token is left, so before any wait could take
// it), reads try first, as nginx's do after EPOLLRDHUP.
func (r *rawConn) Drained() { r.c.rd.drained.Store(true) }

// WatchRead and StopWatch make the socket a rawio.ReadWatcher: e.OnRead
// runs on the poller's goroutine, with its lock held, at each read event
// (so it must not call into this package), and the descriptor it is
// given is open while it runs. WatchRead calls it at once, the same way,
// when the socket may already hold something no event will announce
// again: the last read did not find it empty, an event came that no read
// has taken, or one said the peer ended its side.
func (r *rawConn) WatchRead(e rawio.ReadEvents) {
	c := r.c
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	c.onRead = e
	look := !c.rd.drained.Load() || c.ended.Load() || c.rd.kept.Load() || len(c.rd.readyChan()) > 0
	if look && c.fd < len(p.socks) && p.socks[c.fd] == c {
		e.OnRead(c.fd)
	}
}

func (r *rawConn) StopWatch() {
	c := r.c
	c.p.mu.Lock()
	c.onRead = nil
	c.p.mu.Unlock()
}

// rawWait calls f, or t when f is nil, until it returns true, waiting in
// h's direction between calls. (A function that does not escape keeps
// what it captures on its caller's stack; a Try is for a call's state
// kept in the heap already.)
func (c *Conn) rawWait(h *half, f func(fd uintptr) bool, t rawio.Try) error {
	if !c.incref() {
		return net.ErrClosed
	}
	defer c.decref()
	if h == &c.rd && h.drained.Swap(false) && !c.ended.Load() {
		if err := c.check(h); err != nil {
			return err
		}
		if err := c.wait(h); err != nil {
			return err
		}
	}
	for {
		if err := c.check(h); err != nil {
			return err
		}
		if f != nil && f(uintptr(c.fd)) || f == nil && t.Try(uintptr(c.fd)) {
			return nil
		}
		if err := c.wait(h); err != nil {
			return err
		}
	}
}
