package h1

import (
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parking: a kept connection that waits long for its next request is
// let go by its goroutine and watched by the server's own epoll instance
// instead; a worker takes it up again where it was when the socket
// becomes readable or the client hangs up. An idle connection then costs
// its conn and its socket, not a goroutine's stack. Only plain sockets
// read by their descriptor (c.raw) park; TLS connections wait in their
// goroutine.
const (
	// parkAfter is how long a kept connection waits for its next request
	// in its goroutine before it is parked. A busy connection's next
	// request comes well within it: it pays no epoll_ctl nor hand-off (a
	// request on a parked connection costs ~10 µs more in
	// BenchmarkKeepAlive).
	parkAfter = time.Second
	// parkCrowd: once this many kept connections wait in their
	// goroutines, the next ones to wait are parked after crowdWait. Not
	// at once: with hundreds of busy connections, that would park
	// requests that come tens of microseconds after their answer.
	parkCrowd = 256
	crowdWait = 20 * time.Millisecond
	// parkEvents is how many readiness events one epoll_wait takes.
	parkEvents = 128
)

// parker is the set of parked connections of a server, made with the
// first one parked. Its epoll instance is itself waited on by Go's
// network poller (an epoll descriptor is pollable): one goroutine, run,
// reads its events with epoll_wait(0) when the poller says there are
// some, and a read deadline on the descriptor paces the sweep that closes
// the connections past IdleTimeout. A goroutine blocked in epoll_wait
// would hold a thread in a system call for good, and need a descriptor
// of its own to be woken for the sweep and for stop; here stop closes
// the descriptor, and the poller's timers do the rest.
type parker struct {
	waiting atomic.Int32 // kept connections waiting in their goroutines

	mu       sync.Mutex
	srv      *Server
	started  bool
	closed   bool // stop was called, or the instance could not be made
	epfd     *os.File
	rc       syscall.RawConn  // epfd's
	conns    map[uint64]*conn // by the id their epoll event carries
	lastID   uint64
	sweeping bool // a sweep is due (the read deadline on epfd is set)
}

// parkWait is the wait in a goroutine before parking.
func (s *Server) parkWait() time.Duration {
	if s.parkAfter != 0 {
		return s.parkAfter
	}
	return parkAfter
}

// sweepEvery is how often the parked connections are checked against
// IdleTimeout: a sixteenth of it, from 10 ms to 1 s.
func (s *Server) sweepEvery() time.Duration {
	return min(max(s.IdleTimeout/16, 10*time.Millisecond), time.Second)
}

// idleFor is prepare's read deadline for the next request on a kept
// connection that would wait d (none when d <= 0) from now: it notes when
// the wait ends (d from the answer) and returns the part of it to wait in
// the goroutine, parkAfter (crowdWait when crowded), or d when that is
// shorter; c.shortWait says which. A connection taken up from the parker
// waits what is left of its d.
func (c *conn) idleFor(now time.Time, d time.Duration) time.Duration {
	c.shortWait = false
	if c.resumed {
		if c.idleUntil.IsZero() {
			return 0
		}
		return max(c.idleUntil.Sub(now), 1)
	}
	c.idleUntil = time.Time{}
	if d > 0 {
		c.idleUntil = now.Add(d)
	}
	if c.raw == nil {
		return d
	}
	w := c.srv.parkWait()
	if c.srv.park.waiting.Load() >= parkCrowd {
		w = min(w, crowdWait)
	}
	if d > 0 && d <= w {
		return d
	}
	c.shortWait = true
	return w
}

// waitIdle is waitFill for the next request of a kept connection (read
// by its descriptor: canWait said so): it waits in the goroutine up to
// the deadline prepare set, then parks the connection if that deadline
// was idleFor's shorter one. It reports true when c was parked: c then
// belongs to the parker, and the caller leaves it at once.
func (c *conn) waitIdle() (parked bool) {
	if c.resumed {
		c.resumed = false // readable or hung up: the read does not wait
		if c.idleUntil.IsZero() {
			_ = c.nc.SetReadDeadline(time.Time{}) // the parking's is past
		}
		c.waitFill()
		return false
	}
	p := &c.srv.park
	p.waiting.Add(1)
	c.waitFill()
	p.waiting.Add(-1)
	switch {
	case c.readErr == nil:
		// A body gets IdleTimeout's deadline back (bodyDeadline); a
		// head not yet whole gets ReadHeaderTimeout's (readRequest,
		// which clears shortWait then).
	case c.shortWait && errors.Is(c.readErr, os.ErrDeadlineExceeded) && !c.idleOver(time.Now()):
		c.readErr, c.shortWait = nil, false
		c.dropHeaders()
		if p.park(c) {
			return true
		}
		if c.srv.shutting.Load() {
			c.readErr = ErrServerClosed // the connection ends
			return false
		}
		_ = c.nc.SetReadDeadline(c.idleUntil) // it waits here instead
		c.waitFill()
	}
	return false
}

// bodyDeadline gives the request read after a wait shortened for
// parking, when it has a body, the read deadline it would have had
// without parking: IdleTimeout's, from the last answer. A request
// without a body reads nothing more (a busy connection's GETs pay no
// second deadline).
func (c *conn) bodyDeadline(body bool) {
	if c.shortWait {
		c.shortWait = false
		if body {
			_ = c.nc.SetReadDeadline(c.idleUntil)
		}
	}
}

// park hands c, waiting for a request with nothing buffered, to the
// epoll instance. It reports false when c could not be parked (the
// server is shutting down, or epoll failed): c is then still the
// caller's.
func (p *parker) park(c *conn) bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	sock, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	op := unix.EPOLL_CTL_MOD
	if !c.epolled {
		op = unix.EPOLL_CTL_ADD
	}
	p.mu.Lock()
	if !p.start(c.srv) {
		p.mu.Unlock()
		return false
	}
	// Set before c is in the map: once there, it may be taken.
	c.epolled, c.resumed = true, true
	c.resp = response{} // the header map kept for the next request goes too
	p.lastID++
	id := p.lastID
	p.conns[id] = c
	if !p.sweeping {
		p.sweeping = true
		_ = p.epfd.SetReadDeadline(time.Now().Add(c.srv.sweepEvery()))
	}
	p.mu.Unlock()
	// From here another goroutine may take c: the parker's when the
	// socket is readable, the sweep's, stop's.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(id), Pad: int32(id >> 32)}
	cerr := sock.Control(func(fd uintptr) {
		if cerr := p.rc.Control(func(epfd uintptr) {
			err = unix.EpollCtl(int(epfd), op, int(fd), &ev)
			if err == unix.ENOENT {
				err = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_ADD, int(fd), &ev)
			}
		}); cerr != nil {
			err = cerr // stop closed it
		}
	})
	if cerr == nil && err == nil {
		return true
	}
	p.mu.Lock()
	_, mine := p.conns[id]
	delete(p.conns, id)
	p.mu.Unlock()
	if !mine {
		return true // the sweep or stop took it, and ends it
	}
	if c.srv.Log != nil && cerr == nil && !errors.Is(err, os.ErrClosed) {
		c.srv.Log.WithField("client", c.remoteAddr).Debugf("parking a connection: %v", err)
	}
	c.resumed = false // c.epolled stays: a MOD that finds nothing adds
	return false
}

// start makes the epoll instance and starts its goroutine, once; it
// reports whether the parker takes connections. Called with p.mu held.
func (p *parker) start(s *Server) bool {
	if p.started || p.closed {
		return !p.closed
	}
	p.started, p.srv = true, s
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err == nil {
		if err = unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
		}
	}
	if err == nil {
		p.epfd = os.NewFile(uintptr(fd), "epoll")
		if err = p.epfd.SetReadDeadline(time.Time{}); err != nil { // not pollable
			p.epfd.Close()
		}
	}
	if err != nil {
		p.closed = true
		if s.Log != nil {
			s.Log.Warnf("idle connections keep their goroutines: epoll: %v", err)
		}
		return false
	}
	p.conns = map[uint64]*conn{}
	p.rc, _ = p.epfd.SyscallConn()
	go p.run()
	return true
}

// run takes up the connections whose sockets became readable, and sweeps
// at the epoll descriptor's read deadline, until stop closes it.
func (p *parker) run() {
	var evs [parkEvents]unix.EpollEvent
	for {
		n := 0
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				k, err := unix.EpollWait(int(fd), evs[:], 0)
				if err == unix.EINTR {
					continue
				}
				n = max(k, 0)
				return n > 0 || err != nil
			}
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.sweep()
			continue
		case err != nil:
			return // stop closed it
		}
		for _, ev := range evs[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			c := p.conns[id]
			delete(p.conns, id)
			p.mu.Unlock()
			if c != nil {
				p.srv.dispatch(c)
			}
		}
	}
}

// sweep ends the parked connections whose IdleTimeout has passed, and
// sets the next sweep while any is left.
func (p *parker) sweep() {
	now := time.Now()
	var ended []*conn
	p.mu.Lock()
	for id, c := range p.conns {
		if c.idleOver(now) {
			ended = append(ended, c)
			delete(p.conns, id)
		}
	}
	if p.sweeping = len(p.conns) > 0; p.sweeping {
		_ = p.epfd.SetReadDeadline(now.Add(p.srv.sweepEvery()))
	} else {
		_ = p.epfd.SetReadDeadline(time.Time{})
	}
	p.mu.Unlock()
	for _, c := range ended {
		c.endParked()
	}
}

// idleOver reports whether c's wait for its next request has ended.
func (c *conn) idleOver(now time.Time) bool {
	return !c.idleUntil.IsZero() && !now.Before(c.idleUntil)
}

// stop ends every parked connection and the parker (Shutdown and Close);
// no connection parks after it.
func (p *parker) stop() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	if p.epfd != nil {
		p.epfd.Close()
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.endParked()
	}
}

// parked is how many connections are parked.
func (p *parker) parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// endParked closes a connection taken from the parker, as serve ends one
// (it holds no buffer).
func (c *conn) endParked() {
	c.nc.Close()
	c.setState(http.StateClosed)
	c.srv.forget(c)
}
