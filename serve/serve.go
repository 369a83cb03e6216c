// Package serve is gsup's HTTP front: it listens on the binds, applies
// the PROXY protocol and forwarded-header trust, refuses bad requests,
// balances the rest over the ready instances of the served process type,
// and writes the access log.
//
// It never imports the supervisor: main hands it the ready instances
// (Add, Remove) and calls Drain before an instance stops.
//
// Subpackages: listen (binds, UNIX sockets, systemd sockets, PROXY
// protocol), forward (who is trusted, X-Forwarded-*), httpcheck (request
// validation and limits), upstream (the pooled client and balancer
// towards the app), accesslog (Gunicorn's format).
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/handoff"
	"gsup/procfile"
	"gsup/serve/accesslog"
	"gsup/serve/forward"
	"gsup/serve/httpcheck"
	"gsup/serve/listen"
	"gsup/serve/upstream"
)

// Timeouts towards clients (the app side has Timeout).
const (
	readHeaderTimeout = 10 * time.Second // whole request head
	idleTimeout       = 75 * time.Second // idle keep-alive connection (nginx's keepalive_timeout)
	proxyHeaderWait   = 5 * time.Second  // PROXY header
	bodyReadTimeout   = 60 * time.Second // a buffered request body (nginx's client_body_timeout)
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
	cfg     Config
	set     procfile.Serve
	log     *logrus.Logger
	policy  forward.Policy
	limits  httpcheck.Limits
	bal     *upstream.Balancer
	proxy   *upstream.Proxy
	format  *accesslog.Format
	access  *accesslog.Writer
	srv     *http.Server
	lnMu    sync.Mutex // guards lns and dropped
	lns     []*listen.Listener
	dropped map[*listen.Listener]bool // closed by Rebind
	pid     int
	wg      sync.WaitGroup
	served  chan struct{}
	closing sync.Once

	pausables []*handoff.Pausable // the served listeners; guarded by lnMu
	pausing   atomic.Bool         // Pause was called: answers close their connection
}

type ctxKey struct{}

// reqInfo is what the requests of one connection carry through the
// proxy. It is worked out on the connection's first request, in the
// connection's own goroutine: a PROXY header is read there, never in the
// accept loop.
type reqInfo struct {
	conn    net.Conn
	once    sync.Once
	ci      forward.ClientInfo
	trusted bool
}

func (ri *reqInfo) resolve(p forward.Policy) *reqInfo {
	ri.once.Do(func() {
		c := ri.conn
		// Under the request checker sits the PROXY layer that knows the client.
		if w, ok := c.(interface{ NetConn() net.Conn }); ok {
			c = w.NetConn()
		}
		ri.ci = listen.Info(c)
		ri.trusted = p.Trusted(ri.ci)
	})
	return ri
}

// info returns the connection facts of r.
func (s *Server) info(r *http.Request) *reqInfo {
	ri, _ := r.Context().Value(ctxKey{}).(*reqInfo)
	if ri == nil {
		return &reqInfo{}
	}
	return ri.resolve(s.policy)
}

// New prepares a Server; it opens the access log but no listener.
func New(cfg Config) (*Server, error) {
	set := cfg.Settings
	allow, err := forward.ParseAllowList(set.ForwardedAllowIPs)
	if err != nil {
		return nil, fmt.Errorf("forwarded_allow_ips: %w", err)
	}
	if allow.All() {
		cfg.Log.Warn("forwarded_allow_ips = *: every client may set X-Forwarded-* (safe only when nothing but trusted proxies can reach gsup)")
	}
	format, err := accesslog.Compile(set.AccessLogformat)
	if err != nil {
		return nil, fmt.Errorf("access_logformat: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		set:    set,
		log:    cfg.Log,
		policy: forward.Policy{Allow: allow, TrustUnixPeers: set.TrustUnixPeers},
		limits: httpcheck.Limits{RequestLine: set.LimitRequestLine, Fields: set.LimitRequestFields, FieldSize: set.LimitRequestFieldSize, Body: set.MaxBody},
		bal:    upstream.NewBalancer(),
		format: format,
		pid:    os.Getpid(),
		served: make(chan struct{}),
	}
	if set.AccessLogfile != "" {
		w, err := accesslog.OpenWriter(set.AccessLogfile, cfg.Stdout)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		s.access = w
	}
	if set.MaxRequests > 0 && cfg.OnLimit != nil {
		s.bal.SetMaxRequests(set.MaxRequests, set.MaxRequestsJitter, cfg.OnLimit)
	}
	s.proxy = upstream.NewProxy(s.bal, upstream.Options{
		Timeout:           set.Timeout,
		BufferBody:        set.BufferBody,
		BufferResponse:    set.BufferResponse,
		MaxBody:           set.MaxBody,
		HoldTimeout:       set.HoldTimeout,
		IgnoreClientAbort: set.IgnoreClientAbort,
		Rewrite:           s.rewrite,
		Log:               cfg.Log,
	})
	s.srv = s.newHTTPServer()
	return s, nil
}

// newHTTPServer returns the http.Server that serves the listeners (a new
// one after an upgrade that did not happen: a shut down one cannot serve
// again).
func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    httpcheck.MaxHeaderBytes(s.limits),
		// "OPTIONS *" goes to the app like any other request: net/http
		// would answer it itself (200, empty), for an app it never asked.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     newErrorLog(s.log),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, &reqInfo{conn: c})
		},
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
	}
}

// Listen opens binds; with none, the sockets systemd passed (except
// those named in exclude, which are returned for the children), else
// 0.0.0.0:$PORT when port is set, else 127.0.0.1:8000.
func (s *Server) Listen(binds []procfile.Bind, exclude []string, port string) (held []*listen.Listener, err error) {
	if _, err := forward.ParseAllowList(s.set.ProxyAllowFrom); err != nil {
		return nil, fmt.Errorf("proxy_allow_from: %w", err)
	}
	o := s.listenOptions()
	if len(binds) == 0 {
		var inherited []*listen.Listener
		inherited, held, err = listen.Inherited(o, exclude)
		if err != nil {
			return nil, err
		}
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
	lns, err := listen.Open(binds, o)
	if err != nil {
		for _, l := range held {
			l.Close()
		}
		return nil, err
	}
	s.lns = append(s.lns, lns...)
	return held, nil
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
}

func (s *Server) serveLocked(l *listen.Listener) {
	s.log.Infof("listening at %s", l.Name)
	p := &handoff.Pausable{Listener: httpcheck.WrapListener(l, s.limits, s.log), Socket: l}
	s.pausables = append(s.pausables, p)
	srv := s.srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.Serve(p)
		s.lnMu.Lock()
		dropped := s.dropped[l]
		s.lnMu.Unlock()
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !dropped && !p.Paused() {
			s.log.Errorf("serving %s: %v", l.Name, err)
		}
	}()
}

// Rebind makes the server listen on exactly binds (at a reload):
// addresses not yet open are opened and served, and listeners no longer
// listed are closed (their connections finish their requests). A bind
// that cannot be opened is an error, and then nothing changes.
func (s *Server) Rebind(binds []procfile.Bind) error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	have := map[string]bool{}
	for _, l := range s.lns {
		have[l.Name] = true
	}
	want := map[string]bool{}
	var add []procfile.Bind
	for _, b := range binds {
		want[b.Address] = true
		if !have[b.Address] {
			add = append(add, b)
		}
	}
	var opened []*listen.Listener
	if len(add) > 0 {
		var err error
		if opened, err = listen.Open(add, s.listenOptions()); err != nil {
			return err
		}
	}
	var keep []*listen.Listener
	for _, l := range s.lns {
		if want[l.Name] {
			keep = append(keep, l)
			continue
		}
		s.log.Infof("no longer listening at %s", l.Name)
		if s.dropped == nil {
			s.dropped = map[*listen.Listener]bool{}
		}
		s.dropped[l] = true
		l.Close()
	}
	s.lns = append(keep, opened...)
	for _, l := range opened {
		s.serveLocked(l)
	}
	return nil
}

// Shutdown stops accepting, waits for requests in flight (until ctx
// ends), then closes every connection, listener and the access log.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	s.wg.Wait()
	s.lnMu.Lock()
	for _, l := range s.lns {
		l.Close()
	}
	s.lnMu.Unlock()
	if s.access != nil {
		s.access.Close()
	}
	return err
}

// Close closes every listener (also one never served) and connection at
// once; a Shutdown waiting for requests returns.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for _, l := range s.lns {
		l.Close()
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

// Reopen reopens the access log (USR1).
func (s *Server) Reopen() error {
	if s.access == nil {
		return nil
	}
	return s.access.Reopen()
}

func (s *Server) rewrite(out http.Header, in *http.Request) {
	ri := s.info(in)
	forward.Rewrite(out, in.Host, ri.ci, ri.trusted)
}

// ServeHTTP checks the request, proxies it and logs it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ri := s.info(r)
	rec := &upstream.Record{}
	if s.pausing.Load() {
		w.Header().Set("Connection", "close") // the client reconnects to the next gsup
	}
	if o := s.cfg.Observer; o != nil {
		o.Begin()
		defer observe(o, r, rec, start)
	}
	if s.access != nil {
		// Deferred: an app that dies mid-body aborts the handler with
		// http.ErrAbortHandler, and that request must be logged too.
		defer s.logAccess(r, ri, rec, w.Header(), start)
	}
	switch {
	case s.set.HealthPath != "" && r.URL.Path == s.set.HealthPath:
		rec.Status = http.StatusOK
		body := "ok\n"
		if s.bal.Len() == 0 {
			rec.Status = http.StatusServiceUnavailable
			body = "no instance ready\n"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(rec.Status)
		n, _ := io.WriteString(w, body)
		rec.BytesSent = int64(n)
	default:
		if !ri.trusted {
			// Underscore spellings of header names (X_Forwarded_For) are
			// dropped, as Gunicorn and nginx do, unless a trusted proxy
			// sent them.
			httpcheck.DropUnderscoreFields(r.Header)
		}
		if status, reason := httpcheck.Check(r, s.limits); status != 0 {
			s.log.Debugf("refused a request from %s: %s", ri.ci.Addr, reason)
			w.Header().Set("Connection", "close")
			http.Error(w, reason, status)
			rec.Status = status
			break
		}
		s.proxy.ServeHTTP(w, r.WithContext(upstream.WithRecord(r.Context(), rec)))
	}
}

func (s *Server) logAccess(r *http.Request, ri *reqInfo, rec *upstream.Record, h http.Header, start time.Time) {
	e := accesslog.Entry{
		Request:        r,
		Status:         rec.Status,
		BytesSent:      rec.BytesSent,
		ResponseHeader: h,
		Start:          start,
		Duration:       time.Since(start),
		PID:            s.pid,
		Scheme:         forward.Scheme(r.Header, ri.ci, ri.trusted),
	}
	if ri.ci.Addr.IsValid() {
		e.RemoteAddr = ri.ci.Addr.Addr().Unmap().String()
		e.RemotePort = strconv.Itoa(int(ri.ci.Addr.Port()))
	}
	bp := lineBufs.Get().(*[]byte)
	*bp = s.format.Append((*bp)[:0], &e)
	s.access.Write(*bp)
	lineBufs.Put(bp)
}

// lineBufs holds access-log line buffers (the Writer copies what it gets).
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// newErrorLog sends net/http's own messages (connections it refuses
// itself, and the like) to gsup's log at debug level.
func newErrorLog(l *logrus.Logger) *log.Logger {
	return log.New(l.WriterLevel(logrus.DebugLevel), "", 0)
}
