// Package h1 is gsup's HTTP/1.1 connection layer: it reads requests from
// client connections and hands them to an http.Handler (serve's handling
// layer), in place of net/http's server.
//
// One goroutine per connection while it is served or waits briefly (kept
// for the next connection when it ends or parks, with the stack it grew),
// and nothing else on the fast path: the request head is read into a
// pooled buffer, checked byte by byte by httpcheck's Stream as it is
// read, and parsed once, into one string for the whole head; the response
// head and a body that fits are written with one write when the handler
// returns. Between requests a connection holds no buffer: a plain socket
// is read by its descriptor (internal/rawio), and the buffer taken when
// bytes are there. There is no background read per request: a client
// that goes away cancels the request's context as net/http's would, seen
// on a rawsock socket from its read events (a look at the socket when
// one comes, nothing while none does), on another socket by a goroutine
// reading the client once the request has taken longer than watchAfter.
//
// A kept connection on a plain socket that waits parkAfter (1 s) for its
// next request (crowdWait, 20 ms, once parkCrowd, 256, wait) is parked
// (park.go): its socket goes into an epoll set of the server's own, its
// goroutine back to the workers, and the header map kept between requests
// goes too, so that an idle connection costs its conn and its socket
// (~2 KB), not a goroutine's stack. A busy connection's next request
// comes well within parkAfter: it pays no epoll_ctl and no hand-off. The
// epoll descriptor is waited on by Go's own poller (one goroutine, no
// thread held); when a parked socket is readable or its client hangs up,
// a worker takes the connection up where it was. IdleTimeout still
// counts from the answer (a sweep, at a sixteenth of it, at most 1 s,
// closes the parked connections past it); Shutdown and Close end parked
// connections at once; ConnState sees them idle. TLS connections are never
// parked.
//
// What it keeps of net/http's server: the http.Handler contract (Flush,
// Hijack, SetReadDeadline, SetWriteDeadline and EnableFullDuplex through
// http.ResponseController), 100 Continue on the first read of a body,
// Content-Length for a body written whole, chunked encoding otherwise,
// Date, keep-alive rules of HTTP/1.0 and 1.1, reading what is left of a
// small body so that the connection can be kept, ConnState, and a
// graceful Shutdown.
//
// What it asks of the handler beyond net/http's contract: nothing of a
// request is used after ServeHTTP returns, the Request and its header
// included (a kept connection reuses them for its next request), but
// its context, and that only by what asked for it to be waited on
// (Done, a context derived from it, context.AfterFunc) before ServeHTTP
// returned. gsup's handling layer keeps no request past its handler.
package h1

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/serve/httpcheck"
)

// Server serves HTTP/1.1 on the listeners given to Serve. Set its fields
// before the first Serve.
type Server struct {
	Handler http.Handler
	// Limits are the request limits; when LimitsNow is set, each new
	// connection takes those it returns instead (they may change).
	Limits    httpcheck.Limits
	LimitsNow func() httpcheck.Limits
	// ReadHeaderTimeout bounds the reading of a request head, from its
	// first byte; IdleTimeout the wait for one on a kept connection.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// ConnContext, if set, derives each connection's context (the parent
	// of its requests' contexts) from the base one.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState, if set, is told of each connection's changes of state,
	// as http.Server's.
	ConnState func(net.Conn, http.ConnState)
	// Refused, if set, is called with the connection and the answer of
	// each request refused before it reached the handler, once that answer
	// is written (also a request head that did not come whole in time:
	// 408).
	Refused func(net.Conn, httpcheck.Error)
	Log     *logrus.Logger

	watchAfter time.Duration // the client watch's delay, if not watchAfter (tests)
	parkAfter  time.Duration // the wait before parking, if not parkAfter (tests)
	park       parker

	initOnce    sync.Once
	workq       chan *conn // hands a connection to a waiting worker; closed by stop
	idleWorkers atomic.Int32

	mu        sync.Mutex
	stopped   bool // workq is closed (under mu)
	listeners map[net.Listener]struct{}
	conns     connList
	gone      chan struct{} // made by Shutdown, closed once no connection is left
	shutting  atomic.Bool
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections from l and serves each in a goroutine of its
// own, until l fails or the server shuts down. A temporary failure to
// accept (out of file descriptors, say) is retried after a pause that
// grows from 5 ms to 1 s, as net/http does.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var pause time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				if s.Log != nil {
					s.Log.Debugf("accepting: %v; retrying in %v", err, pause)
				}
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			return ErrServerClosed
		}
		s.dispatch(c)
	}
}

// maxIdleWorkers bounds the goroutines kept waiting for a connection.
const maxIdleWorkers = 64

// dispatch serves c on a goroutine that waits for one, else a new one. A
// goroutine kept between connections keeps the stack it grew serving the
// last: a new goroutine per connection would grow (copy) its stack again
// on every request path, which costs a connection churn ~7 % of gsup's
// CPU.
//
// The hand-off is made under s.mu, which stop holds to close s.workq: a
// worker waits on that one channel (a receive, where waiting on it and on
// a second channel for the shutdown cost a select, about four times as
// much, on every new connection).
func (s *Server) dispatch(c *conn) {
	handed := false
	s.mu.Lock()
	if !s.stopped {
		select {
		case s.workq <- c:
			handed = true
		default:
		}
	}
	s.mu.Unlock()
	if !handed {
		go s.work(c)
	}
}

// work serves c, then waits for another connection while fewer than
// maxIdleWorkers wait, until the server shuts down.
func (s *Server) work(c *conn) {
	for {
		c.serve()
		if s.idleWorkers.Add(1) > maxIdleWorkers {
			s.idleWorkers.Add(-1)
			return
		}
		next, ok := <-s.workq
		s.idleWorkers.Add(-1)
		if !ok {
			return // stop closed it
		}
		c = next
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return nil
	}
	c := &conn{srv: s, nc: nc, since: time.Now()}
	c.state.Store(int32(http.StateNew))
	s.conns.add(c)
	if s.ConnState != nil {
		s.ConnState(nc, http.StateNew)
	}
	return c
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.workq = make(chan *conn)
	})
}

// stop ends the waiting workers (s.mu held: no hand-off is under way).
func (s *Server) stop() {
	s.init()
	if !s.stopped {
		s.stopped = true
		close(s.workq)
	}
}

// connList is the server's connections, linked through their prev and
// next: adding and removing one is a few stores, where a set in a map
// hashed and probed for every connection.
type connList struct {
	head *conn
	n    int
}

func (l *connList) add(c *conn) {
	c.prev, c.next = nil, l.head
	if l.head != nil {
		l.head.prev = c
	}
	l.head = c
	l.n++
}

// remove takes c out of the list; a c not in it (no one before it, and
// not the head) is left as it is.
func (l *connList) remove(c *conn) {
	if c.prev == nil && l.head != c {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	l.n--
}

// forget drops c, closed or hijacked.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns.remove(c)
	if s.conns.n == 0 && s.gone != nil {
		select {
		case <-s.gone:
		default:
			close(s.gone)
		}
	}
}

// Shutdown stops accepting, closes the idle connections, lets the busy
// ones finish their request (their answer says Connection: close), and
// returns once none is left or ctx ends (then with ctx's error; Close
// ends the rest). A connection that has sent nothing yet is given
// newIdleAfter to send its first request.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	s.stop()
	for l := range s.listeners {
		l.Close()
	}
	if s.gone == nil {
		s.gone = make(chan struct{})
		if s.conns.n == 0 {
			close(s.gone)
		}
	}
	gone := s.gone
	s.mu.Unlock()
	s.park.stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for c := s.conns.head; c != nil; c = c.next {
			c.closeIfIdle()
		}
		s.mu.Unlock()
		select {
		case <-gone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.park.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting.Store(true)
	s.stop()
	var errs []error
	for l := range s.listeners {
		errs = append(errs, l.Close())
	}
	for c := s.conns.head; c != nil; c = c.next {
		c.nc.Close()
	}
	return errors.Join(errs...)
}
