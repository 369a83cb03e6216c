// Package serve is gsup's HTTP front: it listens on the binds, applies
// the PROXY protocol and forwarded-header trust, refuses bad requests,
// balances the rest over the ready instances of the served process type,
// and writes the access log.
//
// It never imports the supervisor: main hands it the ready instances
// (Add, Remove) and calls Drain before an instance stops.
//
// Layers: one request-handling layer under two connection layers.
// Server.ServeHTTP is the handling layer's entry point, a plain
// http.Handler (handler.go): trust, limits, the host allow-list, the
// health path, redirect binds, then the app handler (serveApp: the proxy
// to the app, which static files and compression wrap; each fills the
// request's upstream.Record, passed to it, for the access log), then the
// access log. What it does with the settings is one immutable value
// (handling.go), swapped whole at a reload; each request keeps the one
// it began with. It needs of a connection layer only an http.ResponseWriter,
// an *http.Request, and a request context derived from ConnContext(ctx,
// conn, bind); it never touches net/http's server types. The HTTP/1.1
// layer is gsup's own (package h1), one per listener, which checks every
// byte with httpcheck's Stream as it reads it; on TLS binds tlsListener
// makes the handshakes and gives the connections that chose h2 by ALPN to
// the HTTP/2 layer (net/http's, conn_tls.go).
//
// Subpackages: listen (binds, UNIX sockets, systemd sockets, PROXY
// protocol), forward (who is trusted, X-Forwarded-*), httpcheck (request
// validation and limits), upstream (the pooled client and balancer
// towards the app), accesslog (Gunicorn's format), certs (TLS
// certificates by SNI, read again on change, or obtained by ACME: its
// TLS-ALPN-01 handshakes end in conn_tls.go, its HTTP-01 requests are
// answered in ServeHTTP before a redirect bind's 308).
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/handoff"
	"gsup/procfile"
	"gsup/serve/accesslog"
	"gsup/serve/certs"
	"gsup/serve/conns"
	"gsup/serve/forward"
	"gsup/serve/h1"
	"gsup/serve/listen"
	"gsup/serve/upstream"
)

// Timeouts towards clients (the app side has Timeout; body_timeout and
// send_timeout are settings).
const (
	readHeaderTimeout = 10 * time.Second // whole request head
	idleTimeout       = 75 * time.Second // idle keep-alive connection (nginx's keepalive_timeout)
	proxyHeaderWait   = 5 * time.Second  // PROXY header
	tlsHandshakeWait  = 10 * time.Second // TLS handshake
	certWatchInterval = 2 * time.Second  // how often certificate files are looked at
)

// Config is what a Server needs.
type Config struct {
	Settings procfile.Serve
	Log      *logrus.Logger
	Stdout   io.Writer // the access log's "-"
	// OnLimit is called when an instance served max_requests requests;
	// main replaces it gracefully.
	OnLimit func(id uint64)
	// Observer, when set, is told of every request the binds answer.
	Observer Observer
}

// Server is the HTTP front. Create with New, open with Listen, then Serve.
type Server struct {
	cfg      Config
	set      procfile.Serve // as at start: the listeners' settings
	log      *logrus.Logger
	cur      atomic.Pointer[handling] // the handling layer's settings in force (handling.go)
	reloadMu sync.Mutex               // one Reload at a time
	bal      *upstream.Balancer
	access   *accesslog.Writer
	gate     *conns.Gate
	certs    *certs.Store // nil without TLS
	acme     *certs.ACME  // nil without [serve.acme]
	tlsConf  *tls.Config
	h2       *h2Layer                     // the HTTP/2 connection layer; replaced after a Pause
	binds    map[string]Bind              // by address, from the settings
	fronts   map[*listen.Listener]*served // the served listeners; guarded by lnMu
	stop     chan struct{}                // closed by Shutdown and Close: ends the certificate watch
	stopped  sync.Once
	lnMu     sync.Mutex // guards lns and dropped
	lns      []*listen.Listener
	dropped  map[*listen.Listener]bool // closed by Rebind
	pid      int
	wg       sync.WaitGroup
	served   chan struct{}
	closing  sync.Once

	pausing atomic.Bool // Pause was called: answers close their connection

	connState   func(net.Conn, http.ConnState) // the HTTP/1.1 layer's ConnState (tests)
	headTimeout time.Duration                  // the HTTP/1.1 layer's, readHeaderTimeout but in tests
}

// served is one served listener and its HTTP/1.1 connection layer; on a
// TLS bind, the handshakes are made under it and its HTTP/2 connections
// go to the Server's HTTP/2 layer.
type served struct {
	l    *listen.Listener
	bind Bind
	h1   *h1.Server
	p    *handoff.Pausable
}

// New prepares a Server; it opens the access log but no listener.
func New(cfg Config) (*Server, error) {
	set := cfg.Settings
	s := &Server{
		cfg:         cfg,
		set:         set,
		log:         cfg.Log,
		headTimeout: readHeaderTimeout,
		bal:         upstream.NewBalancer(),
		pid:         os.Getpid(),
		served:      make(chan struct{}),
		fronts:      map[*listen.Listener]*served{},
		stop:        make(chan struct{}),
	}
	f, err := s.newHandling(set, nil)
	if err != nil {
		return nil, err
	}
	s.cur.Store(f)
	s.setBinds(set.Bind)
	if set.ACME != nil {
		if s.acme, err = certs.NewACME(set.ACME, cfg.Log); err != nil {
			return nil, err
		}
	}
	if set.TLS() {
		st, err := certs.New(set.TLSPairs(), s.acme, len(set.Hosts) > 0, cfg.Log)
		if err != nil {
			return nil, err
		}
		s.certs = st
		s.tlsConf = st.Config()
		s.tlsConf.CurvePreferences = set.TLSCurves
		go st.Watch(certWatchInterval, s.stop)
	}
	if set.AccessLogfile != "" {
		w, err := accesslog.OpenWriter(set.AccessLogfile, cfg.Stdout)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		s.access = w
	}
	s.gate = conns.New(conns.Options{Max: maxConnections(set), SendTimeout: f.set.SendTimeout, Log: cfg.Log, Refused: s.logRefusedConn})
	if set.MaxRequests > 0 && cfg.OnLimit != nil {
		s.bal.SetMaxRequests(set.MaxRequests, set.MaxRequestsJitter, cfg.OnLimit)
	}
	if o := cfg.Observer; o != nil {
		s.bal.SetHoldHook(&upstream.HoldHook{Begin: o.HoldBegin, End: o.HoldEnd})
	}
	s.h2 = newH2Layer(s, s.log)
	return s, nil
}

// setBinds records what each bind address is (TLS, redirect); with no
// bind given, the default one is TLS when the front has a certificate.
func (s *Server) setBinds(binds []procfile.Bind) {
	s.binds = map[string]Bind{}
	for _, b := range binds {
		s.binds[b.Address] = Bind{TLS: b.TLS, Redirect: b.Redirect != ""}
	}
}

// bindOf says what the listener l is: its bind's settings, or, for a
// listener no bind names (the default, or systemd's sockets), TLS when
// the front has a certificate and no bind was given.
func (s *Server) bindOf(l *listen.Listener) Bind {
	if b, ok := s.binds[l.Name]; ok {
		return b
	}
	return Bind{TLS: len(s.set.Bind) == 0 && s.certs != nil && l.Addr().Network() == "tcp"}
}

// httpsPort is the port of the first TLS listener, "" if none.
func (s *Server) httpsPort() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for _, l := range s.lns {
		if s.bindOf(l).TLS {
			if _, port, err := net.SplitHostPort(l.Addr().String()); err == nil {
				return port
			}
		}
	}
	return ""
}

// newHTTPServer returns an HTTP/1.1 connection layer for a listener of
// bind b (a new one after an upgrade that did not happen: a shut down
// one cannot serve again).
func (s *Server) newHTTPServer(b Bind) *h1.Server {
	return &h1.Server{
		Handler:           s,
		LimitsNow:         s.limitsNow, // a reload's limits apply to the connections accepted after it
		ReadHeaderTimeout: s.headTimeout,
		IdleTimeout:       idleTimeout,
		Log:               s.log,
		Refused:           s.logRefusedHead,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return ConnContext(ctx, c, b)
		},
		ConnState: s.connState,
	}
}

func (s *Server) listenOptions() listen.Options {
	allow, _ := forward.ParseAllowList(s.set.ProxyAllowFrom)
	return listen.Options{
		UnixMode:      s.set.UnixMode,
		UnixOwner:     s.set.UnixOwner,
		UnixGroup:     s.set.UnixGroup,
		ProxyProtocol: s.set.ProxyProtocol,
		ProxyAllow:    allow,
		HeaderTimeout: proxyHeaderWait,
		Log:           s.log,
		Refused:       s.logRefusedProxy,
	}
}

// Listen opens binds; with none, the sockets systemd passed (except
// those named in exclude, which are returned for the children), else
// 0.0.0.0:$PORT when port is set, else 127.0.0.1:8000. A bind whose
// address is that of a socket systemd passed takes that socket instead of
// binding again (a .socket unit for a configured unix:/path); systemd's
// other sockets are then closed, with a warning.
func (s *Server) Listen(binds []procfile.Bind, exclude []string, port string) (held []*listen.Listener, err error) {
	if _, err := forward.ParseAllowList(s.set.ProxyAllowFrom); err != nil {
		return nil, fmt.Errorf("proxy_allow_from: %w", err)
	}
	o := s.listenOptions()
	inherited, held, err := listen.Inherited(o, exclude)
	if err != nil {
		return nil, err
	}
	if len(binds) == 0 {
		if len(inherited) > 0 {
			s.lns = inherited
			return held, nil
		}
		addr := procfile.DefaultBind
		if port != "" {
			addr = "0.0.0.0:" + port
		}
		binds = []procfile.Bind{{Address: addr}}
	}
	var taken []*listen.Listener
	binds, taken = takeInherited(binds, inherited, s.log)
	lns, err := listen.Open(binds, o)
	if err != nil {
		for _, l := range append(held, taken...) {
			l.Close()
		}
		return nil, err
	}
	s.lns = append(s.lns, append(taken, lns...)...)
	return held, nil
}

// takeInherited matches binds with the sockets systemd passed, by address
// (a unix bind's absolute path, or host:port as written): each match is
// taken, named as the bind, and left out of the binds still to open. The
// unmatched sockets are closed.
func takeInherited(binds []procfile.Bind, inherited []*listen.Listener, log *logrus.Logger) (rest []procfile.Bind, taken []*listen.Listener) {
	key := func(network, addr string) string {
		if network == "unix" {
			addr, _ = filepath.Abs(addr)
		}
		return network + " " + addr
	}
	byAddr := map[string]*listen.Listener{}
	for _, l := range inherited {
		byAddr[key(l.Addr().Network(), l.Addr().String())] = l
	}
	for _, b := range binds {
		k := key("tcp", b.Address)
		if path, ok := strings.CutPrefix(b.Address, "unix:"); ok {
			k = key("unix", strings.TrimPrefix(path, "//"))
		}
		if l := byAddr[k]; l != nil {
			delete(byAddr, k)
			l.Name, l.Scheme = b.Address, b.Scheme
			taken = append(taken, l)
			continue
		}
		rest = append(rest, b)
	}
	for _, l := range inherited {
		if !slices.Contains(taken, l) {
			log.Warnf("socket %s passed by systemd is not used: no bind has its address %s", l.Name, l.Addr())
			l.Close()
		}
	}
	return rest, taken
}

// Addrs lists where the server listens.
func (s *Server) Addrs() []string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	var out []string
	for _, l := range s.lns {
		out = append(out, l.Name)
	}
	return out
}

// Serve serves every listener until Shutdown.
func (s *Server) Serve() {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for _, l := range s.lns {
		s.serveLocked(l)
	}
	if s.acme != nil {
		s.acme.Start()
	}
}

func (s *Server) serveLocked(l *listen.Listener) {
	b := s.bindOf(l)
	var inner net.Listener = s.gate.Wrap(l, l.Name)
	bindLog := s.log.WithField("bind", l.Name)
	switch {
	case b.TLS:
		bindLog.Infof("listening at %s (TLS, HTTP/2)", l.Name)
		inner = newTLSListener(inner, s.tlsConf, s.h2, b, l.Name, s.log, s.cfg.Observer)
	case b.Redirect:
		bindLog.Infof("listening at %s (redirecting to https)", l.Name)
	default:
		bindLog.Infof("listening at %s", l.Name)
	}
	p := &handoff.Pausable{Listener: inner, Socket: l}
	f := &served{l: l, bind: b, h1: s.newHTTPServer(b), p: p}
	s.fronts[l] = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := f.h1.Serve(p)
		s.lnMu.Lock()
		dropped := s.dropped[l]
		s.lnMu.Unlock()
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !dropped && !p.Paused() {
			bindLog.Errorf("serving %s: %v", l.Name, err)
		}
	}()
}

// Rebind makes the server listen on exactly binds: addresses not yet
// open are opened and served, and listeners no longer listed are closed
// (their HTTP/1.1 connections finish their requests, their HTTP/2 ones
// get GOAWAY and finish their streams). A bind that cannot be opened is
// an error, and then nothing changes. Reload does the same, as part of
// the reload.
func (s *Server) Rebind(binds []procfile.Bind) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	opened, err := s.openBinds(binds)
	if err != nil {
		return err
	}
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	s.swapBinds(binds, opened)
	return nil
}

// openBinds opens the addresses of binds that are not open yet, and
// changes nothing else (under reloadMu).
func (s *Server) openBinds(binds []procfile.Bind) ([]*listen.Listener, error) {
	s.lnMu.Lock()
	have := map[string]bool{}
	for _, l := range s.lns {
		have[l.Name] = true
	}
	s.lnMu.Unlock()
	var add []procfile.Bind
	for _, b := range binds {
		if !have[b.Address] {
			add = append(add, b)
		}
	}
	if len(add) == 0 {
		return nil, nil
	}
	return listen.Open(add, s.listenOptions())
}

// swapBinds closes the listeners binds no longer lists, and serves
// opened (under reloadMu and lnMu).
func (s *Server) swapBinds(binds []procfile.Bind, opened []*listen.Listener) {
	want := map[string]bool{}
	for _, b := range binds {
		want[b.Address] = true
	}
	var keep []*listen.Listener
	for _, l := range s.lns {
		if want[l.Name] {
			keep = append(keep, l)
			continue
		}
		s.log.WithField("bind", l.Name).Infof("no longer listening at %s", l.Name)
		if s.dropped == nil {
			s.dropped = map[*listen.Listener]bool{}
		}
		s.dropped[l] = true
		if f := s.fronts[l]; f != nil {
			delete(s.fronts, l)
			go f.h1.Shutdown(context.Background()) //nolint:errcheck // its connections finish their requests
		}
		s.h2.drop(l.Name) // GOAWAY: its streams finish
		l.Close()
	}
	s.lns = append(keep, opened...)
	for _, l := range opened {
		s.serveLocked(l)
	}
}

// Shutdown stops accepting, waits for requests in flight (until ctx
// ends), then closes every connection, listener and the access log.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopped.Do(func() { close(s.stop) })
	err := s.shutdownLayers(ctx)
	s.wg.Wait()
	s.lnMu.Lock()
	for _, l := range s.lns {
		l.Close()
	}
	s.lnMu.Unlock()
	if s.access != nil {
		s.access.Close()
	}
	s.cur.Load().retire()
	return err
}

// Close closes every listener (also one never served) and connection at
// once; a Shutdown waiting for requests returns.
func (s *Server) Close() error {
	s.stopped.Do(func() { close(s.stop) })
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	var errs []error
	for _, f := range s.fronts {
		errs = append(errs, f.h1.Close())
	}
	s.h2.close()
	for _, l := range s.lns {
		l.Close()
	}
	return errors.Join(errs...)
}

// shutdownLayers shuts down both connection layers at once: no more
// accepting, HTTP/1.1 keep-alive connections closed after their answer,
// HTTP/2 ones sent GOAWAY; then it waits for the requests in flight until
// ctx ends, and closes every connection left.
func (s *Server) shutdownLayers(ctx context.Context) error {
	s.lnMu.Lock()
	var layers []func(context.Context) error
	var closers []func() error
	for _, f := range s.fronts {
		layers = append(layers, f.h1.Shutdown)
		closers = append(closers, f.h1.Close)
	}
	h2 := s.h2
	s.lnMu.Unlock()
	layers = append(layers, h2.shutdown)
	errs := make(chan error, len(layers))
	for _, shut := range layers {
		go func() { errs <- shut(ctx) }()
	}
	var err error
	for range layers {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		for _, c := range closers {
			c()
		}
		h2.close()
	}
	return err
}

// Add puts a ready instance in rotation.
func (s *Server) Add(id uint64, addr string) { s.bal.Add(id, addr) }

// SetExpected says how many served instances are starting, restarting or
// backing off: requests wait for them while none is in rotation.
func (s *Server) SetExpected(n int) { s.bal.SetExpected(n) }

// SetHealth sets the passive health checks of the served instances
// (upstream.Balancer.SetHealth).
func (s *Server) SetHealth(maxFails int, hang time.Duration, fn upstream.SickFunc) {
	s.bal.SetHealth(maxFails, hang, fn)
}

// Remove takes an instance out of rotation; its requests in flight go on.
func (s *Server) Remove(id uint64) { s.bal.Remove(id) }

// Drain waits until id has no request in flight, or ctx ends.
func (s *Server) Drain(ctx context.Context, id uint64) {
	s.bal.Remove(id)
	s.bal.Drain(ctx, id)
}

// Ready is the number of instances in rotation.
func (s *Server) Ready() int { return s.bal.Len() }

// Reopen reopens the access log and reads the certificates again (USR1).
func (s *Server) Reopen() error {
	var errs []error
	if s.certs != nil {
		errs = append(errs, s.certs.Reload(true))
	}
	if s.access != nil {
		errs = append(errs, s.access.Reopen())
	}
	return errors.Join(errs...)
}
