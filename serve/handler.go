package serve

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gsup/serve/accesslog"
	"gsup/serve/certs"
	"gsup/serve/conns"
	"gsup/serve/forward"
	"gsup/serve/httpcheck"
	"gsup/serve/listen"
	"gsup/serve/upstream"
)

// The handling layer: everything done to a request once a connection
// layer (HTTP/1.1 or HTTP/2) has parsed it. It sees only an
// http.ResponseWriter, an *http.Request and the connection facts that
// ConnContext put in the request's context; nothing here knows which
// connection layer it runs under.

type ctxKey struct{}

// Bind says what a listener's requests get beyond the handling every
// request gets.
type Bind struct {
	TLS      bool // the connection layers under it speak TLS (HTTP/2 by ALPN)
	Redirect bool // every request gets a 308 to https (but the health path and ACME's HTTP-01 challenges)
}

// ConnContext is what a connection layer calls once a connection: the
// returned context (the parent of every request's context on c) carries
// the connection facts the handling layer needs. c is the connection as
// accepted, with whatever wraps it (TLS, the request checker, the Gate)
// and the PROXY layer under them.
func ConnContext(ctx context.Context, c net.Conn, b Bind) context.Context {
	return &reqInfo{Context: ctx, conn: c, bind: b}
}

// reqInfo is what the requests of one connection carry through the
// proxy. It is worked out on the connection's first request, in the
// connection's own goroutine: a PROXY header is read there, never in the
// accept loop.
type reqInfo struct {
	context.Context // the connection's context, ConnContext's parent
	conn            net.Conn
	bind            Bind
	once            sync.Once
	ci              forward.ClientInfo
	trust           atomic.Pointer[trustOf] // whether the client is trusted, by the front that decided it
	first           trustOf                 // the first decision, written once (in once)
}

// Value makes a reqInfo the context ConnContext returns: ctx with the
// reqInfo itself under ctxKey{}, in one allocation.
func (ri *reqInfo) Value(key any) any {
	if key == (ctxKey{}) {
		return ri
	}
	return ri.Context.Value(key)
}

// trustOf is a front's decision on a connection's client, kept until a
// reload changes the front.
type trustOf struct {
	f       *handling
	trusted bool
}

// clientInfo describes the client of c, a connection the request checker
// (or the Gate under it) made: under them sits the PROXY layer that knows
// the client.
func clientInfo(c net.Conn) forward.ClientInfo {
	https := false
	for {
		switch x := c.(type) {
		case *tls.Conn:
			https, c = true, x.NetConn()
			continue
		case *conns.Conn:
			c = x.NetConn()
			continue
		case interface{ NetConn() net.Conn }: // the request checker's
			c = x.NetConn()
			continue
		}
		ci := listen.Info(c)
		ci.HTTPS = ci.HTTPS || https
		return ci
	}
}

// info returns the connection facts of r, and whether f trusts its
// client.
func (f *handling) info(r *http.Request) (*reqInfo, bool) {
	ri, _ := r.Context().Value(ctxKey{}).(*reqInfo)
	if ri == nil {
		return &reqInfo{}, false
	}
	ri.once.Do(func() {
		ri.ci = clientInfo(ri.conn)
		// The first front's decision, in ri's own allocation.
		ri.first = trustOf{f: f, trusted: f.policy.Trusted(ri.ci)}
		ri.trust.Store(&ri.first)
	})
	if t := ri.trust.Load(); t != nil && t.f == f {
		return ri, t.trusted
	}
	trusted := f.policy.Trusted(ri.ci)
	ri.trust.Store(&trustOf{f: f, trusted: trusted})
	return ri, trusted
}

// forward decides the forwarding headers of a request going to the
// app; the proxy keeps the plan's scheme in the Record, for the access
// log (which would compute it again).
func (f *handling) forward(p *forward.Plan, in forward.Source, r *http.Request) {
	ri, trusted := f.info(r)
	p.Decide(in, r.Host, ri.ci, trusted)
}

// ServeHTTP is the handling layer's entry point, the http.Handler both
// connection layers call: it checks the request (limits, host
// allow-list, forwarded-header trust), answers the health path and the
// redirect binds, hands the rest to serveApp (the edge, then the proxy
// to the app) and writes the access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	f := s.acquire()
	defer f.release()
	ri, trusted := f.info(r)
	if r.ContentLength != 0 {
		// Bounds the wait for a body gsup does not read too (its own
		// answers): net/http reads what is left of it after the handler.
		// The proxy gives each read of its own the same time.
		http.NewResponseController(w).SetReadDeadline(start.Add(f.set.BodyTimeout))
	}
	rec := &upstream.Record{} // on the stack: nothing keeps it
	if s.pausing.Load() {
		w.Header().Set("Connection", "close") // the client reconnects to the next gsup
	}
	if o := s.cfg.Observer; o != nil {
		o.Begin()
	}
	if s.access != nil || s.cfg.Observer != nil {
		// Deferred: an app that dies mid-body aborts the handler with
		// http.ErrAbortHandler, and that request must be logged too. One
		// reading of the clock ends the request for both.
		defer func() {
			end := time.Now()
			if s.access != nil {
				var h http.Header
				if f.format.ReadsResponseHeader() {
					h = w.Header() // the app's fields are in it only now
				}
				f.logAccess(s, r, ri, trusted, rec, h, start, end)
			}
			if o := s.cfg.Observer; o != nil {
				observe(o, r, rec, start, end)
			}
		}()
	}
	switch {
	case f.set.HealthPath != "" && r.URL.Path == f.set.HealthPath:
		s.health(w, rec)
	case s.acme != nil && !ri.bind.TLS && strings.HasPrefix(r.URL.Path, certs.ChallengePath):
		rec.Status = s.acme.ServeChallenge(w, r) // HTTP-01, before any redirect
	case ri.bind.Redirect:
		s.redirect(w, r, rec)
	case !f.hostAllowed(r.Host):
		s.log.WithField("host", r.Host).Debugf("refused a request from %s for host %q: not in hosts", ri.ci.Addr, r.Host)
		rec.Status = http.StatusMisdirectedRequest
		http.Error(w, "misdirected request: this server does not serve that host", rec.Status)
	default:
		if !trusted {
			// Underscore spellings of header names (X_Forwarded_For) are
			// dropped, as Gunicorn and nginx do, unless a trusted proxy
			// sent them.
			httpcheck.DropUnderscoreFields(r.Header)
		}
		if status, reason := httpcheck.Check(r, f.limits); status != 0 {
			s.log.Debugf("refused a request from %s: %s", ri.ci.Addr, reason)
			w.Header().Set("Connection", "close")
			http.Error(w, reason, status)
			rec.Status = status
			break
		}
		f.serveApp(w, r, rec)
	}
}

// health answers the health path: 200 while an instance is ready.
func (s *Server) health(w http.ResponseWriter, rec *upstream.Record) {
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
}

// redirect answers a request on a redirect bind: 308 to the same host
// and path in https (on the port of the first TLS bind when it is not
// 443).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, rec *upstream.Record) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := s.httpsPort(); port != "" && port != "443" {
		host += ":" + port
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.Header().Set("Connection", "close")
	rec.Status = http.StatusPermanentRedirect
	w.WriteHeader(rec.Status)
}

// hostAllowed reports whether [serve] hosts lets host (a Host header,
// with or without a port) in.
func (f *handling) hostAllowed(host string) bool {
	if len(f.set.Hosts) == 0 {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return HostMatches(f.set.Hosts, host)
}

// HostMatches reports whether host is one of patterns ("example.com", or
// "*.example.com" for one label more).
func HostMatches(patterns []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range patterns {
		if p == host {
			return true
		}
		if rest, ok := strings.CutPrefix(p, "*."); ok {
			if _, parent, ok := strings.Cut(host, "."); ok && parent == rest {
				return true
			}
		}
	}
	return false
}

// logRefusedConn logs a connection refused over max_connections, with
// its peer's address: nothing is read from it, not even a PROXY header.
func (s *Server) logRefusedConn(c net.Conn) {
	if s.access == nil {
		return
	}
	var ci forward.ClientInfo
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ci.Peer = a.AddrPort()
		ci.Addr = ci.Peer
	case *net.UnixAddr:
		ci.Unix = true
	}
	s.logRefusal(ci, http.StatusServiceUnavailable, conns.RefusalBytes)
}

// logRefusedHead logs a request head the request checker refused.
func (s *Server) logRefusedHead(c net.Conn, ref httpcheck.Error) {
	if s.access != nil {
		s.logRefusal(clientInfo(c), ref.Status, len(ref.Body()))
	}
}

// logRefusedProxy logs a connection the PROXY layer refused with 400.
func (s *Server) logRefusedProxy(ci forward.ClientInfo, status, bytes int) {
	if s.access != nil {
		s.logRefusal(ci, status, bytes)
	}
}

// logRefusal logs an answer of gsup's own to a request it did not parse.
func (s *Server) logRefusal(ci forward.ClientInfo, status, bytes int) {
	now := time.Now()
	s.writeEntry(s.cur.Load().format, &accesslog.Entry{Status: status, BytesSent: int64(bytes), Start: now, PID: s.pid,
		Scheme: forward.Scheme(nil, ci, false)}, ci)
}

func (f *handling) logAccess(s *Server, r *http.Request, ri *reqInfo, trusted bool, rec *upstream.Record, h http.Header, start, end time.Time) {
	e := accesslog.Entry{
		Request:        r,
		Status:         rec.Status,
		BytesSent:      rec.BytesSent,
		ResponseHeader: h,
		Start:          start,
		Duration:       end.Sub(start),
		PID:            s.pid,
		Scheme:         rec.Scheme,
	}
	if e.Scheme == "" { // not forwarded: gsup answered itself
		e.Scheme = forward.Scheme(r.Header, ri.ci, trusted)
	}
	s.writeEntry(f.format, &e, ri.ci)
}

func (s *Server) writeEntry(format *accesslog.Format, e *accesslog.Entry, ci forward.ClientInfo) {
	e.RemoteAddr, e.RemotePort = ci.Host(), ci.Port()
	s.access.WriteEntry(format, e)
}
