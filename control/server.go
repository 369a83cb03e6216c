package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/handoff"
	"gsup/internal/unixsock"
	"gsup/procfile"
	"gsup/supervisor"
)

// ErrRunning is wrapped by Listen's error when a live gsup answers on the
// socket: "another gsup is running at PATH".
var ErrRunning = errors.New("another gsup is running")

// heartbeatEvery is how often GET /v1/events writes a comment line, so
// that proxies and clients see a live stream.
const heartbeatEvery = 15 * time.Second

// Server is the control API on its socket. Listen makes one; Serve
// answers requests until Close.
type Server struct {
	ln  *unixsock.Listener
	hs  *http.Server      // guarded by mu: Resume makes a new one
	pl  *handoff.Pausable // ln as hs serves it; guarded by mu
	mux *http.ServeMux
	// also are the sockets bound besides ln (registry.go); guarded by
	// mu. serving says hs serves: one added then is served at once.
	also     []*alsoSocket
	serving  bool
	followMu sync.Mutex // one Follow at a time
	uid      uint32     // gsup's own (effective) uid: always answered
	// mode is the socket file's, for the ones bound besides ln.
	mode os.FileMode

	heartbeat time.Duration
	stats     stats

	allow atomic.Pointer[[]procfile.ControlPeer]

	mu     sync.Mutex
	b      Backend
	log    *logrus.Logger
	closed bool
}

// Listen binds the control socket at path with mode (0 = 0600), through
// unixsock: the file is never more open than mode, a stale socket is
// replaced, and a live one is an error wrapping ErrRunning. Until Allow
// says otherwise, only root and gsup's own uid are answered.
func Listen(path string, mode os.FileMode) (*Server, error) {
	ln, err := unixsock.Listen(path, unixsock.Options{Mode: mode})
	if errors.Is(err, unixsock.ErrInUse) {
		return nil, fmt.Errorf("%w at %s", ErrRunning, path)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := newServer(ln)
	s.mode = mode
	return s, nil
}

// newServer serves the control API on ln.
func newServer(ln *unixsock.Listener) *Server {
	s := &Server{ln: ln, uid: uint32(os.Geteuid()), heartbeat: heartbeatEvery}
	s.stats.procs = map[sampleKey]*sample{}
	s.allow.Store(&[]procfile.ControlPeer{})
	s.mux = http.NewServeMux()
	for pattern, h := range routes {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			b, _ := s.backend()
			h(s, w, r, b)
		})
	}
	s.hs = s.newHTTPServer()
	return s
}

// Handle answers pattern (an http.ServeMux pattern such as
// "GET /metrics") with h, for the peers Allow lets in. Call it before
// Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Allow sets who is answered besides root and gsup's own uid: the users
// and groups (the peer's group or one of its supplementary groups) of
// control_allow. Safe to call while serving; it applies to the next
// request.
func (s *Server) Allow(peers []procfile.ControlPeer) {
	peers = slices.Clone(peers)
	s.allow.Store(&peers)
}

// allowed reports whether the peer is answered.
func (s *Server) allowed(c unixsock.Cred) bool {
	if c.UID == 0 || c.UID == s.uid {
		return true
	}
	for _, p := range *s.allow.Load() {
		if p.Group && c.InGroup(p.ID) || !p.Group && c.UID == p.ID {
			return true
		}
	}
	return false
}

// Path is the socket's path, as given to Listen.
func (s *Server) Path() string { return s.ln.Path() }

// Serve answers requests with b until Close; it returns nil then, or the
// error that stopped it. log receives a line per request that changes
// something.
func (s *Server) Serve(b Backend, log *logrus.Logger) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.b, s.log = b, log
	s.hs.ErrorLog = stdlog.New(logWriter{log}, "", 0)
	hs, pl := s.hs, s.pausable()
	s.serving = true
	for _, a := range s.also {
		s.serveAlsoLocked(a)
	}
	s.mu.Unlock()
	err := hs.Serve(pl)
	if errors.Is(err, http.ErrServerClosed) || pl.Paused() {
		return nil
	}
	return err
}

// Close stops the server, ends every open request (streams included) and
// removes the socket file if it is still the one Listen bound (same
// device and inode). It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	hs, also := s.hs, s.also
	s.also = nil
	s.mu.Unlock()
	hs.Close()
	var errs []error
	for _, ln := range append([]*unixsock.Listener{s.ln}, alsoListeners(also)...) {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("control socket: %w", err))
		}
	}
	return errors.Join(errs...)
}

// logWriter passes http.Server's own messages (accept errors, above all)
// to gsup's log as warnings.
type logWriter struct{ log *logrus.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn("control: " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (s *Server) backend() (Backend, *logrus.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b, s.log
}

// routes are the endpoints, as http.ServeMux patterns: a GET pattern
// also answers HEAD, and a wrong method gets the mux's 405 with Allow.
var routes = map[string]func(s *Server, w http.ResponseWriter, r *http.Request, b Backend){
	"GET /v1/ps":       (*Server).ps,
	"POST /v1/scale":   (*Server).scale,
	"POST /v1/restart": (*Server).restart,
	"POST /v1/stop":    (*Server).stop,
	"POST /v1/signal":  (*Server).signal,
	"POST /v1/reload":  (*Server).reload,
	"POST /v1/load":    (*Server).load,
	"POST /v1/unload":  (*Server).unload,
	"POST /v1/upgrade": (*Server).upgrade,
	"GET /v1/version":  (*Server).version,
	"GET /v1/logs":     (*Server).logs,
	"GET /v1/events":   (*Server).events,
}

// ServeHTTP implements http.Handler: it answers only root, gsup's own uid
// and control_allow (403 and a warning for anyone else), then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, log := s.backend()
	cred, known := credOf(r.Context())
	if !known || !s.allowed(cred) {
		who := "a peer of unknown uid"
		if known {
			who = fmt.Sprintf("uid %d", cred.UID)
		}
		if log != nil {
			log.WithFields(credFields(cred)).Warnf("control: refused %s %s: %s is not root, gsup's uid or in control_allow", r.Method, r.URL.Path, who)
		}
		writeError(w, http.StatusForbidden, who+" may not use this control socket: control_allow does not name it")
		return
	}
	if b == nil {
		writeError(w, http.StatusServiceUnavailable, "gsup is not ready")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// logf logs a request that changes something, with the peer's identity.
func (s *Server) logf(r *http.Request, format string, args ...any) {
	_, log := s.backend()
	if log == nil {
		return
	}
	cred, _ := credOf(r.Context())
	log.WithFields(credFields(cred)).Infof("control: "+format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

// statusOf maps a Backend error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, supervisor.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, supervisor.ErrStopped), errors.Is(err, supervisor.ErrStopping):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeBackendError(w http.ResponseWriter, err error) {
	writeError(w, statusOf(err), err.Error())
}

// answer writes v with 200, or the backend's error err.
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// decode reads a JSON body of at most MaxBody bytes into v; on error it
// has answered (400 or 413) and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Exactly one value.
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("more than one JSON value")
			if err2 != nil {
				err = err2
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBody))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty request body: want a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
	}
	return false
}

func (s *Server) ps(w http.ResponseWriter, r *http.Request, b Backend) {
	sts, err := b.Status()
	if err != nil {
		writeBackendError(w, err)
		return
	}
	out := PsResponse{Processes: make([]Process, len(sts))}
	now := time.Now()
	for i, st := range sts {
		out.Processes[i].Status = st
		if st.Pid != 0 && !st.Started.IsZero() {
			out.Processes[i].UptimeSeconds = now.Sub(st.Started).Seconds()
		}
	}
	s.stats.fill(out.Processes)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request, b Backend) {
	var req ScaleRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Counts) == 0 {
		writeError(w, http.StatusBadRequest, `no counts: want {"counts": {"TYPE": N}}`)
		return
	}
	names := make([]string, 0, len(req.Counts))
	for name, n := range req.Counts {
		switch {
		case name == "":
			writeError(w, http.StatusBadRequest, "empty process type name")
			return
		case n < 0:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%d: count must not be negative", name, n))
			return
		case n > procfile.PortsPerType:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%d: at most %d instances a type (its port block)", name, n, procfile.PortsPerType))
			return
		}
		names = append(names, name)
	}
	sort.Strings(names)
	prefix := ""
	if req.App != "" {
		prefix = req.App + "/"
	}
	var words []string
	for _, name := range names {
		words = append(words, fmt.Sprintf("%s%s=%d", prefix, name, req.Counts[name]))
	}
	s.logf(r, "scale %s", strings.Join(words, " "))
	done := ScaleRequest{App: req.App, Counts: map[string]int{}}
	for _, name := range names {
		if err := b.Scale(req.App, name, req.Counts[name]); err != nil {
			writeBackendError(w, err)
			return
		}
		done.Counts[name] = req.Counts[name]
	}
	writeJSON(w, http.StatusOK, done)
}

func targetsOK(w http.ResponseWriter, targets []string) bool {
	if len(targets) == 0 {
		writeError(w, http.StatusBadRequest, `no targets: want {"targets": ["web", "web.2", "APP", "APP/web"]}`)
		return false
	}
	for _, t := range targets {
		if strings.TrimSpace(t) == "" {
			writeError(w, http.StatusBadRequest, "empty target")
			return false
		}
	}
	return true
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request, b Backend) {
	s.targets(w, r, "restart", b.Restart)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request, b Backend) {
	s.targets(w, r, "stop", b.Stop)
}

func (s *Server) targets(w http.ResponseWriter, r *http.Request, verb string, act func([]string) ([]string, error)) {
	var req TargetsRequest
	if !decode(w, r, &req) || !targetsOK(w, req.Targets) {
		return
	}
	s.logf(r, "%s %s", verb, strings.Join(req.Targets, " "))
	names, err := act(req.Targets)
	answer(w, NamesResponse{Names: nonNil(names)}, err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request, b Backend) {
	var req SignalRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Signal == "" {
		writeError(w, http.StatusBadRequest, `no signal: want {"signal": "HUP", "targets": [...]}`)
		return
	}
	sig, err := procfile.ParseSignal(req.Signal)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !targetsOK(w, req.Targets) {
		return
	}
	name := procfile.SignalName(sig)
	s.logf(r, "signal %s %s", name, strings.Join(req.Targets, " "))
	names, err := b.Signal(sig, req.Targets)
	answer(w, NamesResponse{Signal: name, Names: nonNil(names)}, err)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request, b Backend) {
	if r.ContentLength > 0 {
		var v struct{}
		if !decode(w, r, &v) {
			return
		}
	}
	s.logf(r, "reload")
	answer(w, OKResponse{OK: true}, b.Reload())
}

func (s *Server) load(w http.ResponseWriter, r *http.Request, b Backend) {
	var req LoadRequest
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.File == "":
		writeError(w, http.StatusBadRequest, `no file: want {"file": "/abs/path/Procfile"}`)
		return
	case !filepath.IsAbs(req.File):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file %q is not an absolute path", req.File))
		return
	}
	if req.App != "" {
		s.logf(r, "load %s as %s", req.File, req.App)
	} else {
		s.logf(r, "load %s", req.File)
	}
	name, err := b.Load(req.File, req.App)
	answer(w, AppRequest{App: name}, err)
}

func (s *Server) unload(w http.ResponseWriter, r *http.Request, b Backend) {
	var req AppRequest
	if !decode(w, r, &req) {
		return
	}
	if req.App == "" {
		writeError(w, http.StatusBadRequest, `no app: want {"app": "NAME"}`)
		return
	}
	s.logf(r, "unload %s", req.App)
	answer(w, AppRequest{App: req.App}, b.Unload(req.App))
}

// truthy reads a query flag: "1", "true", "yes" or empty-but-present.
func truthy(r *http.Request, key string) bool {
	q := r.URL.Query()
	if !q.Has(key) {
		return false
	}
	switch strings.ToLower(q.Get(key)) {
	case "", "1", "true", "yes", "on":
		return true
	}
	return false
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request, b Backend) {
	targets := r.URL.Query()["target"]
	follow := truthy(r, "follow")
	var ch <-chan supervisor.Line
	if follow {
		c, cancel, err := b.Follow(targets)
		if err != nil {
			writeBackendError(w, err)
			return
		}
		defer cancel()
		ch = c
	}
	lines, err := b.Lines(targets)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	rc, ok := streamHead(w, r, "application/x-ndjson", "X-Content-Type-Options", "nosniff")
	if !ok {
		return
	}
	enc := json.NewEncoder(w)
	// The followed lines that were already in the ring are skipped:
	// per instance, nothing at or before its last line sent.
	last := map[string]time.Time{}
	for _, l := range lines {
		if enc.Encode(l) != nil {
			return
		}
		if l.Time.After(last[l.Instance]) {
			last[l.Instance] = l.Time
		}
	}
	if rc.Flush() != nil || !follow {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case l := <-ch:
			if t, ok := last[l.Instance]; ok {
				if !l.Time.After(t) {
					continue
				}
				delete(last, l.Instance)
			}
			if enc.Encode(l) != nil {
				return
			}
			// Flush what is ready as one write.
			for more := true; more; {
				select {
				case l := <-ch:
					if enc.Encode(l) != nil {
						return
					}
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// streamHead sends the head of a streamed answer: 200, contentType, no
// caching, and the header key: value. ok is false for HEAD, whose answer
// is then complete; else rc flushes what the stream writes.
func streamHead(w http.ResponseWriter, r *http.Request, contentType, key, value string) (rc *http.ResponseController, ok bool) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set(key, value)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil, false
	}
	return http.NewResponseController(w), true
}

func (s *Server) events(w http.ResponseWriter, r *http.Request, b Backend) {
	ch, cancel := b.Subscribe()
	defer cancel()
	rc, ok := streamHead(w, r, "text/event-stream", "X-Accel-Buffering", "no")
	if !ok {
		return
	}
	if _, err := io.WriteString(w, ": gsup events\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			data, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, data); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
