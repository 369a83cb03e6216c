package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/acme"

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
	log   *logrus.Logger
	obs   Observer // nil: handshakes are not counted

	ready chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	run   bool // a goroutine is accepting from inner
}

func newTLSListener(inner net.Listener, conf *tls.Config, h2 *h2Layer, b Bind, log *logrus.Logger, obs Observer) *tlsListener {
	return &tlsListener{inner: inner, conf: conf, h2: h2, bind: b, log: log, obs: obs,
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
		t.h2.serve(tc, t.bind)
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

// h2Layer is the HTTP/2 connection layer: net/http's HTTP/2 server, fed
// only connections whose handshake chose h2. Its Shutdown sends GOAWAY.
type h2Layer struct {
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// h2Listener hands the layer's connections to its http.Server.
type h2Listener struct{ l *h2Layer }

func (h h2Listener) Accept() (net.Conn, error) {
	select {
	case c := <-h.l.conns:
		return c, nil
	case <-h.l.done:
		return nil, net.ErrClosed
	}
}

func (h h2Listener) Close() error {
	h.l.once.Do(func() { close(h.l.done) })
	return nil
}

func (h2Listener) Addr() net.Addr { return &net.TCPAddr{} }

func newH2Layer(s *Server, log *logrus.Logger) *h2Layer {
	l := &h2Layer{conns: make(chan net.Conn), done: make(chan struct{})}
	l.srv = &http.Server{
		Handler:                      s,
		ReadHeaderTimeout:            readHeaderTimeout,
		IdleTimeout:                  idleTimeout,
		MaxHeaderBytes:               httpcheck.MaxHeaderBytes(s.limits),
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     newErrorLog(log),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return ConnContext(ctx, c, Bind{TLS: true})
		},
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(h2Listener{l})
	}()
	return l
}

// serve serves c, a TLS connection that chose h2.
func (l *h2Layer) serve(c *tls.Conn, _ Bind) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// shutdown sends GOAWAY to every connection and waits until their
// streams are done, or ctx ends.
func (l *h2Layer) shutdown(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// close closes every connection at once.
func (l *h2Layer) close() { l.srv.Close() }
