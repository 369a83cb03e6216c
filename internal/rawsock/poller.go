// Package rawsock keeps gsup's own sockets on one processor: the front's
// client sockets and its connections to apps that close each one after
// an answer, accepted or connected, read, written and closed by their
// descriptors with RawSyscall, and waited for in an epoll instance of
// gsup's own, which Go's network poller itself waits on.
//
// Why not net's sockets: net accepts, connects and closes through the
// scheduler's system-call path, and when the runtime's monitor sleeps (it
// does whenever the process idles, which a front pinned to one CPU does
// between events) each such call wakes it: a thread switch for every
// accept, connect and close, on the CPU the front shares with its app.
// Once awake, the monitor polls every 20 µs, and takes the processor
// back from any such call that outlasts that (a loopback connect runs
// the handshake inside the call). net also asks the kernel for the local
// address and removes each socket from its epoll set before closing it;
// a socket here costs accept4 (or socket, setsockopt and connect), one
// epoll_ctl, its reads and writes, and close.
//
// The waiting: one goroutine reads the epoll instance's events (with
// epoll_wait(0), when Go's poller says there are some) and wakes the
// goroutine waiting on each socket through a channel of one token per
// direction. Deadlines wake the same way, from one heap of armed
// deadlines and one runtime timer for the first (deadlines.go); Close wakes
// both directions, and the descriptor is closed when the last call in
// progress returns, so that a descriptor number is never reused under a
// call.
package rawsock

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pollEvents is how many events one epoll_wait takes.
const pollEvents = 128

// poller is the epoll instance of every Conn, made at first use.
type poller struct {
	epfd int
	f    *os.File        // the instance, open for the process's life
	rc   syscall.RawConn // f's, in Go's poller
	gen  atomic.Uint32   // the last Conn's generation

	mu    sync.Mutex
	socks []*Conn // by descriptor

	evs  [pollEvents]unix.EpollEvent // run's
	wait func(fd uintptr) bool       // p.drain, bound once
}

var (
	pollOnce sync.Once
	thePoll  *poller
	pollErr  error
)

// getPoller returns the poller, made (and its goroutine started) at the
// first call.
func getPoller() (*poller, error) {
	pollOnce.Do(func() {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			pollErr = os.NewSyscallError("epoll_create1", err)
			return
		}
		// os.NewFile puts a non-blocking descriptor in Go's poller; an
		// epoll descriptor is always pollable.
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			pollErr = os.NewSyscallError("fcntl", err)
			return
		}
		f := os.NewFile(uintptr(fd), "rawsock-epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			pollErr = err
			return
		}
		p := &poller{epfd: fd, f: f, rc: rc}
		p.wait = p.drain
		thePoll = p
		go p.run()
	})
	return thePoll, pollErr
}

// run waits for events for as long as the process lives.
func (p *poller) run() {
	for {
		// drain never returns true: Read returns only if p.f failed,
		// which it cannot while open.
		if err := p.rc.Read(p.wait); err != nil {
			panic("rawsock: epoll instance failed: " + err.Error())
		}
	}
}

// drain takes the instance's events and wakes their Conns, until there
// are none; false then, to wait for more. The instance is in Go's
// poller edge-triggered: an event that comes after the last epoll_wait
// here makes it readable again.
func (p *poller) drain(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd,
			uintptr(unsafe.Pointer(&p.evs[0])), pollEvents, 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || n == 0 {
			return false
		}
		p.dispatch(p.evs[:n])
		if n < pollEvents {
			return false
		}
	}
}

// Readiness that wakes a reader, and a writer.
const (
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	writeEvents = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
)

func (p *poller) dispatch(evs []unix.EpollEvent) {
	p.mu.Lock()
	for i := range evs {
		ev := &evs[i]
		fd := int(ev.Fd)
		if fd < 0 || fd >= len(p.socks) {
			continue
		}
		c := p.socks[fd]
		if c == nil || c.gen != uint32(ev.Pad) {
			continue // closed; its number may be another's now
		}
		if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.ended.Store(true) // before the token: see Drained
		}
		if ev.Events&readEvents != 0 {
			c.rd.wake()
			if c.onRead != nil {
				c.onRead.OnRead(c.fd)
			}
		}
		if ev.Events&writeEvents != 0 {
			c.wr.wake()
		}
	}
	p.mu.Unlock()
}

// add puts c (its fd and gen set) in the instance.
func (p *poller) add(c *Conn) error {
	c.gen = p.gen.Add(1)
	p.mu.Lock()
	if c.fd >= len(p.socks) {
		n := max(2*len(p.socks), c.fd+1, 1024)
		socks := make([]*Conn, n)
		copy(socks, p.socks)
		p.socks = socks
	}
	p.socks[c.fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(c.fd),
		Pad:    int32(c.gen),
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.remove(c)
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// remove takes c out of the table; closing its descriptor takes it out of
// the instance.
func (p *poller) remove(c *Conn) {
	p.mu.Lock()
	if c.fd < len(p.socks) && p.socks[c.fd] == c {
		p.socks[c.fd] = nil
	}
	p.mu.Unlock()
}

// errNotSupported is NewListener's answer for a listener without a
// descriptor.
var errNotSupported = errors.New("rawsock: listener without a descriptor")

// force overrides Preferred: 0 decides, 1 yes, 2 no.
var force atomic.Int32

// Preferred reports whether the front should use rawsock's sockets
// rather than net's: when the runtime has one processor. There, net's
// accept, connect and close each wake the runtime's monitor on the CPU
// the front works on, and the hand-off through the poller's goroutine
// costs nothing (BenchmarkPingPong: 14.5 µs against net's 14.2). With
// more processors, waking a waiter from that goroutine also wakes an idle
// processor's thread, and a round trip takes 22 µs against 14.
func Preferred() bool {
	switch force.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	return runtime.GOMAXPROCS(0) == 1
}

// Force makes Preferred report on whatever the processors (for tests,
// which then run the front on rawsock's sockets); the function it
// returns undoes it.
func Force(on bool) (undo func()) {
	v := int32(2)
	if on {
		v = 1
	}
	old := force.Swap(v)
	return func() { force.Store(old) }
}
