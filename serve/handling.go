package serve

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"gsup/internal/fdlimit"
	"gsup/procfile"
	"gsup/serve/accesslog"
	"gsup/serve/conns"
	"gsup/serve/forward"
	"gsup/serve/httpcheck"
	"gsup/serve/listen"
	"gsup/serve/upstream"
)

// handling is what the handling layer does with the [serve] settings in
// force: made whole from them, never changed, and swapped for a new one
// at a reload (Server.Reload). A request takes the handling in force
// when it begins and keeps it to its end, access-log line included; one
// put out of force closes its static folders when its last request ends.
type handling struct {
	set    procfile.Serve // the settings, with BodyTimeout and SendTimeout set
	policy forward.Policy
	limits httpcheck.Limits
	format *accesslog.Format
	edge   *edge // static files, X-Accel-Redirect, compression, error pages (edge.go)
	proxy  *upstream.Proxy

	users   atomic.Int64 // requests using it
	retired atomic.Bool  // out of force: closed once users is 0
	closed  sync.Once
}

// newHandling makes the handling of set; prev is the one in force, nil
// at start. An error names the setting.
func (s *Server) newHandling(set procfile.Serve, prev *handling) (*handling, error) {
	allow, err := forward.ParseAllowList(set.ForwardedAllowIPs)
	if err != nil {
		return nil, fmt.Errorf("forwarded_allow_ips: %w", err)
	}
	format, err := accesslog.Compile(set.AccessLogformat)
	if err != nil {
		return nil, fmt.Errorf("access_logformat: %w", err)
	}
	if set.BodyTimeout <= 0 {
		set.BodyTimeout = procfile.DefaultClientTimeout
	}
	if set.SendTimeout <= 0 {
		set.SendTimeout = procfile.DefaultClientTimeout
	}
	e, err := newEdge(set)
	if err != nil {
		return nil, err
	}
	if allow.All() && (prev == nil || !prev.policy.Allow.All()) {
		s.log.Warn("forwarded_allow_ips = *: every client may set X-Forwarded-* (safe only when nothing but trusted proxies can reach gsup)")
	}
	f := &handling{
		set:    set,
		policy: forward.Policy{Allow: allow, TrustUnixPeers: set.TrustUnixPeers},
		limits: httpcheck.Limits{RequestLine: set.LimitRequestLine, Fields: set.LimitRequestFields, FieldSize: set.LimitRequestFieldSize, Body: set.MaxBody},
		format: format,
		edge:   e,
	}
	f.proxy = upstream.NewProxy(s.bal, upstream.Options{
		Timeout:           set.Timeout,
		BufferBody:        set.BufferBody,
		BufferResponse:    set.BufferResponse,
		MaxBody:           set.MaxBody,
		HoldTimeout:       set.HoldTimeout,
		BodyTimeout:       set.BodyTimeout,
		IgnoreClientAbort: set.IgnoreClientAbort,
		Forward:           f.forward,
		ErrorPage:         e.errorPage,
		Log:               s.log,
	})
	return f, nil
}

// maxConnections is max_connections, or its default from the open files
// limit.
func maxConnections(set procfile.Serve) int {
	if set.MaxConnections > 0 {
		return set.MaxConnections
	}
	return conns.DefaultMax(fdlimit.Current())
}

// acquire returns the handling in force, which the caller gives back with
// release. (After Shutdown the one in force is retired and stays: a late
// request still gets it.)
func (s *Server) acquire() *handling {
	for {
		f := s.cur.Load()
		f.users.Add(1)
		if !f.retired.Load() || s.cur.Load() == f {
			return f
		}
		f.release() // swapped meanwhile: take the new one
	}
}

func (f *handling) release() {
	if f.users.Add(-1) == 0 && f.retired.Load() {
		f.close()
	}
}

// retire puts f out of force: it closes once its last request is done.
func (f *handling) retire() {
	f.retired.Store(true)
	if f.users.Load() == 0 {
		f.close()
	}
}

func (f *handling) close() { f.closed.Do(f.edge.close) }

// limitsNow returns the request limits in force, for connections being
// accepted.
func (s *Server) limitsNow() httpcheck.Limits { return s.cur.Load().limits }

// restartKeys are the [serve] settings a reload does not change: each
// belongs to something made once at start (a listener, the access log
// file, the ACME client, the metrics listener, the arbiter's stop).
var restartKeys = []struct {
	key string
	get func(*procfile.Serve) any
}{
	{"access_logfile", func(s *procfile.Serve) any { return s.AccessLogfile }},
	{"proxy_protocol", func(s *procfile.Serve) any { return s.ProxyProtocol }},
	{"proxy_allow_from", func(s *procfile.Serve) any { return s.ProxyAllowFrom }},
	{"unix_mode", func(s *procfile.Serve) any { return s.UnixMode }},
	{"unix_owner", func(s *procfile.Serve) any { return s.UnixOwner }},
	{"unix_group", func(s *procfile.Serve) any { return s.UnixGroup }},
	{"graceful_timeout", func(s *procfile.Serve) any { return s.GracefulTimeout }},
	{"metrics_bind", func(s *procfile.Serve) any { return s.MetricsBind }},
	{"[serve.acme]", func(s *procfile.Serve) any { return s.ACME }},
	{"tls_curves", func(s *procfile.Serve) any { return s.TLSCurves }},
}

// Reload applies the [serve] settings of a reload: the certificates are
// read again, and every setting that needs no new listener (root,
// [serve.static], compress, error_pages, hosts, health_path, the
// timeouts, buffers and limits, forwarded_allow_ips, trust_unix_peers,
// access_logformat, max_connections, max_requests...) applies to the
// requests that begin after it; those in flight keep the settings they
// began with. A bad setting or certificate changes nothing, and the
// error says which. A changed setting that needs a restart (restartKeys:
// tls_curves, unix_mode...) is logged as a warning and its running value
// kept. When the server was started on configured binds and set has
// binds, it then listens on exactly those (as Rebind): one that cannot be
// opened refuses the whole reload, settings included.
func (s *Server) Reload(set procfile.Serve) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cur.Load()
	if s.certs == nil && set.TLS() {
		return fmt.Errorf("TLS was off at start: a restart turns it on")
	}
	f, err := s.newHandling(set, old)
	if err != nil {
		return err
	}
	rebind := len(s.set.Bind) > 0 && len(set.Bind) > 0
	var opened []*listen.Listener
	if rebind {
		if opened, err = s.openBinds(set.Bind); err != nil {
			f.retire()
			return err
		}
	}
	if s.certs != nil {
		if err := s.certs.Set(set.TLSPairs()); err != nil {
			f.retire()
			for _, l := range opened {
				l.Close()
			}
			return err
		}
		s.certs.SetStrict(len(set.Hosts) > 0)
	}
	s.gate.Set(maxConnections(set), f.set.SendTimeout)
	if s.cfg.OnLimit != nil && (set.MaxRequests != old.set.MaxRequests || set.MaxRequestsJitter != old.set.MaxRequestsJitter) {
		s.bal.SetMaxRequests(set.MaxRequests, set.MaxRequestsJitter, s.cfg.OnLimit)
	}
	s.cur.Store(f)
	old.retire()
	s.lnMu.Lock()
	s.setBinds(set.Bind)
	if rebind {
		s.swapBinds(set.Bind, opened)
	}
	if f.limits != old.limits || f.set.SendTimeout != old.set.SendTimeout {
		s.h2.retire() // new HTTP/2 connections get the new header size limit and send timeout
	}
	s.lnMu.Unlock()
	for _, k := range restartKeys {
		if !reflect.DeepEqual(k.get(&set), k.get(&s.set)) {
			s.log.WithField("key", k.key).Warnf("%s changed: kept until a restart", k.key)
		}
	}
	return nil
}
