package serve

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/acme"

	"gsup/serve/h2"
	"gsup/serve/httpcheck"
)

// The connection layers on a TLS bind: tlsListener makes each handshake
// in a goroutine of its own, then hands the connection to the HTTP/1.1
// layer (its Accept, under the request checker) or, when the client chose
// h2 by ALPN, to the HTTP/2 layer (h2Layer). Both call the same handling
// layer (Server.ServeHTTP).

// tlsListener accepts TCP connections from inner, makes their TLS
// handshakes, and returns from Accept those that speak HTTP/1.1.
type tlsListener struct {
	inner net.Listener
	conf  *tls.Config
	h2    *h2Layer
	bind  Bind
	name  string // the bind's address, which names its HTTP/2 group
	log   *logrus.Logger
	obs   Observer // nil: handshakes are not counted

	ready chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	run   bool // a goroutine is accepting from inner
}

func newTLSListener(inner net.Listener, conf *tls.Config, h2 *h2Layer, b Bind, name string, log *logrus.Logger, obs Observer) *tlsListener {
	return &tlsListener{inner: inner, conf: conf, h2: h2, bind: b, name: name, log: log, obs: obs,
		ready: make(chan net.Conn), errc: make(chan error), done: make(chan struct{})}
}

// Accept returns the next connection whose handshake chose HTTP/1.1 (or
// no protocol), or the error accepting failed with (net/http's Serve
// backs off from a temporary one and calls again).
func (t *tlsListener) Accept() (net.Conn, error) {
	t.mu.Lock()
	if !t.run {
		t.run = true
		go t.acceptLoop()
	}
	t.mu.Unlock()
	select {
	case c := <-t.ready:
		return c, nil
	case err := <-t.errc:
		return nil, err
	case <-t.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop accepts until an error, which it hands to Accept.
func (t *tlsListener) acceptLoop() {
	for {
		c, err := t.inner.Accept()
		if err != nil {
			t.mu.Lock()
			t.run = false
			t.mu.Unlock()
			select {
			case t.errc <- err:
			case <-t.done:
			}
			return
		}
		go t.handshake(c)
	}
}

// handshake makes c's TLS handshake (tlsHandshakeWait at most), then
// serves it by the protocol chosen.
func (t *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, t.conf)
	_ = tc.SetDeadline(time.Now().Add(tlsHandshakeWait))
	err := tc.Handshake()
	if t.obs != nil {
		t.obs.Handshake(err == nil)
	}
	if err != nil {
		t.log.WithField("peer", c.RemoteAddr().String()).Debugf("TLS handshake from %s: %v", c.RemoteAddr(), err)
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	switch tc.ConnectionState().NegotiatedProtocol {
	case acme.ALPNProto: // an ACME server validated TLS-ALPN-01 by the handshake
		t.log.WithField("peer", c.RemoteAddr().String()).Infof("answered an ACME TLS-ALPN-01 challenge for %s", tc.ConnectionState().ServerName)
		tc.Close()
		return
	case "h2":
		t.h2.serve(tc, t.name)
		return
	}
	select {
	case t.ready <- tc:
	case <-t.done:
		tc.Close()
	}
}

func (t *tlsListener) Close() error {
	t.once.Do(func() { close(t.done) })
	return t.inner.Close()
}

func (t *tlsListener) Addr() net.Addr { return t.inner.Addr() }

// h2Layer is the HTTP/2 connection layer: gsup's own (serve/h2), fed
// only connections whose handshake chose h2. Each bind has a group of its
// own (an h2.Server), so that a reload that drops the bind sends GOAWAY
// to its connections alone (drop); shutdown sends it to all.
type h2Layer struct {
	s      *Server
	log    *logrus.Logger
	mu     sync.Mutex
	live   map[string]*h2Group // by bind: where its new connections go
	groups map[*h2Group]bool   // every group whose connections may be open
	closed bool                // shut down or closed: new connections are closed
}

// h2Group serves the HTTP/2 connections of one bind.
type h2Group struct {
	name  string // the bind's
	srv   *h2.Server
	ended bool // its Shutdown has begun (under h2Layer.mu)
}

func newH2Layer(s *Server, log *logrus.Logger) *h2Layer {
	return &h2Layer{s: s, log: log, live: map[string]*h2Group{}, groups: map[*h2Group]bool{}}
}

// group returns the group of bind name, made on its first connection;
// nil once the layer is shut down.
func (l *h2Layer) group(name string) *h2Group {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if g := l.live[name]; g != nil {
		return g
	}
	f := l.s.cur.Load()
	g := &h2Group{name: name}
	g.srv = &h2.Server{
		Handler:           l.s,
		MaxHeaderBytes:    httpcheck.MaxHeaderBytes(f.limits),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		SendTimeout:       f.set.SendTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return ConnContext(ctx, c, Bind{TLS: true})
		},
		Refused: func(c net.Conn, status, bytes int) {
			if l.s.access != nil {
				l.s.logRefusal(clientInfo(c), status, bytes)
			}
		},
		Log: l.log,
	}
	l.live[name] = g
	l.groups[g] = true
	return g
}

// serve serves c, a TLS connection of bind name that chose h2, until it
// ends.
func (l *h2Layer) serve(c *tls.Conn, name string) {
	g := l.group(name)
	if g == nil {
		c.Close()
		return
	}
	g.srv.ServeConn(c)
}

// drop sends GOAWAY to the connections of bind name (a reload dropped
// it) and lets their streams finish; new connections of that name make a
// new group.
func (l *h2Layer) drop(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.live, name)
	l.endLocked(func(g *h2Group) bool { return g.name == name })
}

// retire makes new connections go to new groups (made with the limits in
// force), and sends GOAWAY to the connections of the groups in use: their
// streams finish, and their clients come back on a new connection, with
// the new limits.
func (l *h2Layer) retire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.live)
	l.endLocked(func(*h2Group) bool { return true })
}

// endLocked shuts down the groups that which picks and no bind uses for
// new connections (under l.mu): each is forgotten once its connections
// are gone.
func (l *h2Layer) endLocked(which func(*h2Group) bool) {
	for g := range l.groups {
		if g.ended || !which(g) || l.live[g.name] == g {
			continue
		}
		g.ended = true
		go func() {
			_ = g.srv.Shutdown(context.Background())
			l.mu.Lock()
			delete(l.groups, g)
			l.mu.Unlock()
		}()
	}
}

// all marks the layer closed and returns its groups.
func (l *h2Layer) all() []*h2Group {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var out []*h2Group
	for g := range l.groups {
		out = append(out, g)
	}
	return out
}

// shutdown sends GOAWAY to every connection and waits until their
// streams are done, or ctx ends.
func (l *h2Layer) shutdown(ctx context.Context) error {
	groups := l.all()
	errs := make(chan error, len(groups))
	for _, g := range groups {
		go func() { errs <- g.srv.Shutdown(ctx) }()
	}
	var err error
	for range groups {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// close closes every connection at once.
func (l *h2Layer) close() {
	for _, g := range l.all() {
		g.srv.Close()
	}
}
