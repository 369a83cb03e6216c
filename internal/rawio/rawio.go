// Package rawio reads and writes a non-blocking socket by its
// descriptor, without entering the scheduler's system-call path: a read
// or write of a non-blocking socket never blocks, and RawSyscall keeps
// the processor where the system-call path may hand it to another thread
// (the runtime's monitor takes it from a call that spans one of its
// ticks, and a thread switch follows). The waiting is the network
// poller's, with the connection's deadlines, as net's own. ReadWaiting
// waits for data without holding a buffer.
package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a socket read and written by its descriptor. A read and a
// write may run at once; each direction's state is kept here, so that a
// call allocates nothing (calls in the same direction take turns).
type Conn struct {
	rc   syscall.RawConn
	tc   TryConn // rc's, when it is one
	r, w op

	// WriteWait's state, under both ops' locks: its function, bound at
	// its first call on a RawConn that is no TryConn (most Conns never
	// make one), and how many times the read wait has called it.
	ww    func(fd uintptr) bool
	tries int
}

// TryConn is a RawConn that takes its calls' tries as a Try (rawsock's):
// a Conn on one binds no function to each of its ops.
type TryConn interface {
	ReadTry(t Try) error
	WriteTry(t Try) error
}

// Try is one try of a call on a TryConn: true when the call is done,
// false to wait for the socket's readiness and try again.
type Try interface {
	Try(fd uintptr) bool
}

// The Trys of a Conn's calls: its ops' and WriteWait's.
type (
	readTry      op
	writeTry     op
	writeWaitTry Conn
)

func (o *readTry) Try(fd uintptr) bool      { return (*op)(o).read(fd) }
func (o *writeTry) Try(fd uintptr) bool     { return (*op)(o).write(fd) }
func (c *writeWaitTry) Try(fd uintptr) bool { return (*Conn)(c).writeWait(fd) }

// op is one direction's call in progress; fn is bound once, in Init,
// unless the RawConn is a TryConn.
type op struct {
	mu    sync.Mutex // one call at a time uses the fields below
	fn    func(fd uintptr) bool
	p     []byte
	bufs  Buffers
	n     int
	errno syscall.Errno

	// drained, when the RawConn is one (rawsock's), is told of a read
	// that came short.
	drained drainer
}

// Buffers lends ReadWaiting a buffer when the socket may have data, and
// takes it back when it had none after all.
type Buffers interface {
	TakeBuf() []byte
	PutBuf()
}

// New returns the Conn of rc.
func New(rc syscall.RawConn) *Conn {
	c := new(Conn)
	c.Init(rc)
	return c
}

// Init makes c, a zero Conn, rc's: for a Conn held in another struct
// rather than allocated on its own.
func (c *Conn) Init(rc syscall.RawConn) {
	c.rc = rc
	if tc, ok := rc.(TryConn); ok {
		c.tc = tc
	} else {
		c.r.fn = c.r.read
		c.w.fn = c.w.write
	}
	if d, ok := rc.(drainer); ok {
		c.r.drained = d
	}
}

// drainer is a RawConn told of a read that came short (rawsock's): the
// socket is empty until its next event.
type drainer interface{ Drained() }

// ReadWatcher is a socket whose read events can be watched without a
// read waiting (rawsock's): WatchRead has e.OnRead called with the
// descriptor at each one (bytes came, the peer ended its side, or the
// connection failed), and at once when the socket may already hold what
// an event would have announced, until StopWatch, after which it neither
// runs nor will. OnRead runs where the events are taken: it must not
// block.
type ReadWatcher interface {
	WatchRead(e ReadEvents)
	StopWatch()
}

// ReadEvents is what a ReadWatcher tells of its read events.
type ReadEvents interface {
	OnRead(fd int)
}

// Peek looks at the socket fd without taking anything from it or
// waiting (one byte, MSG_PEEK|MSG_DONTWAIT): n > 0 is bytes waiting,
// n == 0 with no errno the peer's end of file, EAGAIN nothing yet.
func Peek(fd uintptr) (n int, errno syscall.Errno) {
	var b [1]byte
	r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(r), e
}

// Watcher returns c's socket as a ReadWatcher, if it is one.
func (c *Conn) Watcher() (ReadWatcher, bool) {
	w, ok := c.rc.(ReadWatcher)
	return w, ok
}

// ReadWaiting reads into the buffer b.TakeBuf returns (called when the
// socket has data, or may have: it can be called again after EAGAIN,
// once b.PutBuf has taken the first back), waiting for readability
// without one. It returns what read(2) returned; n is 0 and err nil at
// end of file.
func (c *Conn) ReadWaiting(b Buffers) (n int, err error) {
	return c.run(&c.r, nil, b)
}

// Read reads into p, as net's Read does (io.EOF at end of file), at most
// MaxWrite bytes at a time, for the same reason as Write's bound.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.run(&c.r, p[:min(len(p), MaxWrite)], nil)
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// MaxWrite is the longest write that should go through Write: the copy
// of a larger buffer holds the processor for longer, and is better given
// to net's own Write, whose system call lets the processor go.
const MaxWrite = 64 << 10

// Write writes p whole to the socket, waiting for room (within the
// connection's write deadline) as net's own Write does, and returns how
// many bytes were written, also when it fails.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.run(&c.w, p, nil)
}

// WriteWait writes p whole, as Write, then waits until the socket is
// readable (the peer's answer to p has come), or until the read deadline
// passes or the connection closes, and reads nothing. The Read that
// follows then finds the answer at its first try. A Write then a Read
// would try a read as soon as p was written, and that read would find
// nothing yet (EAGAIN) before the wait: one system call per exchange
// for nothing.
//
// p is written inside the read wait's first try, after the poller has
// forgotten the socket's earlier readiness and before it waits for the
// next, so an answer cannot come unseen between the write and the wait.
// When the socket cannot take p whole at once, the rest is written as
// Write does and there is no wait. A wait that ends by the deadline or
// the close is not an error of WriteWait: the Read that follows meets
// the same end. Its results are Write's.
//
// On net's sockets the readiness forgotten is also that of bytes already
// waiting when WriteWait begins: the wait then lasts until more come,
// the deadline or the close. WriteWait is for a peer that has nothing
// left to say before p's answer (an app connection after its last
// answer was read whole).
//
// A socket told of short reads (rawsock's) keeps its events whether a
// call waits or not, and its read after one marked empty waits for the
// next event first. There WriteWait is a Write that marks the socket
// empty: the Read that follows waits for the answer's event, and no
// event can be missed between the two.
func (c *Conn) WriteWait(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.tc != nil && c.r.drained != nil {
		n, err := c.run(&c.w, p, nil)
		if err == nil {
			c.r.drained.Drained()
		}
		return n, err
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	w := &c.w
	w.p, w.n, w.errno = p, 0, 0
	c.tries = 0
	if c.tc != nil {
		_ = c.tc.ReadTry((*writeWaitTry)(c))
	} else {
		if c.ww == nil {
			c.ww = c.writeWait
		}
		_ = c.rc.Read(c.ww)
	}
	if w.errno == 0 && w.n < len(p) {
		// The wait failed before the first try (the read deadline had
		// passed, say), or the socket had no room for all of p: the
		// write goes on as Write's.
		return c.finish(w, "write", c.tryWrite(w))
	}
	return c.finish(w, "write", nil)
}

// writeWait is WriteWait's function for the read wait: the write at the
// first try (false, to wait, once p is written whole), then true when
// the socket is readable.
func (c *Conn) writeWait(fd uintptr) bool {
	c.tries++
	if c.tries > 1 {
		return true
	}
	return !c.w.write(fd) || c.w.errno != 0 || c.w.n < len(c.w.p)
}

// run does o (c.r or c.w) with p: the system calls, and the poller's
// waits between them.
func (c *Conn) run(o *op, p []byte, b Buffers) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.bufs, o.n, o.errno = p, b, 0, 0
	if o == &c.w {
		return c.finish(o, "write", c.tryWrite(o))
	}
	return c.finish(o, "read", c.tryRead(o))
}

// tryRead has the RawConn make r's read, waiting as it must.
func (c *Conn) tryRead(r *op) error {
	if c.tc != nil {
		return c.tc.ReadTry((*readTry)(r))
	}
	return c.rc.Read(r.fn)
}

// tryWrite has the RawConn make w's write, waiting as it must.
func (c *Conn) tryWrite(w *op) error {
	if c.tc != nil {
		return c.tc.WriteTry((*writeTry)(w))
	}
	return c.rc.Write(w.fn)
}

// finish ends a call of o (named name) that the RawConn ended with err:
// what it did, and its error.
func (c *Conn) finish(o *op, name string, err error) (int, error) {
	o.p, o.bufs = nil, nil
	if err != nil {
		return o.n, err
	}
	if o.errno != 0 {
		return o.n, c.opError(name, o.errno)
	}
	return o.n, nil
}

// read is one try of a read: false to wait for readability.
func (o *op) read(fd uintptr) bool {
	b := o.p
	if o.bufs != nil {
		b = o.bufs.TakeBuf()
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if o.bufs != nil {
				o.bufs.PutBuf()
			}
			return false
		case 0:
			o.n = int(r)
			if o.n > 0 && o.n < len(b) && o.drained != nil {
				o.drained.Drained()
			}
		default:
			o.errno = e
		}
		return true
	}
}

// write writes what is left of o.p: false to wait for room.
func (o *op) write(fd uintptr) bool {
	for o.n < len(o.p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.p[o.n])), uintptr(len(o.p)-o.n))
		switch e {
		case 0:
			o.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
	return true
}

// OpErrorer is a RawConn that makes its socket's errors as net's own
// calls do, with its network and addresses (rawsock's).
type OpErrorer interface {
	OpError(op string, err error) error
}

// opError is what net's own calls return for errno: the RawConn's error
// when it makes them, else one that names no network (net's RawConn does
// not say which): "read: connection reset by peer".
func (c *Conn) opError(op string, errno syscall.Errno) error {
	if oe, ok := c.rc.(OpErrorer); ok {
		return oe.OpError(op, os.NewSyscallError(op, errno))
	}
	return &net.OpError{Op: op, Err: errno}
}
