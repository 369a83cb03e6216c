package arbiter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"gsup/control"
	"gsup/internal/fdlimit"
	"gsup/internal/gcfloor"
	"gsup/metrics"
	"gsup/procfile"
	"gsup/serve"
	"gsup/serve/listen"
	"gsup/signals"
	"gsup/supervisor"
)

// Config is what Run needs. Spec is the loaded config; Options are the
// ones it was loaded with, used again at every reload.
type Config struct {
	Options procfile.Options
	Spec    *procfile.Spec
	// Signals delivers the signals gsup acts on (signals.Notify's
	// channel; tests send their own).
	Signals <-chan os.Signal
	// Stdout receives the children's prefixed lines (and the access log
	// "-"); Stderr gsup's own log unless the Spec names a file.
	Stdout, Stderr io.Writer
	// Self is gsup's executable, re-executed for the guard and the
	// child helper.
	Self string
	// Environ is gsup's own environment (children inherit it, filtered;
	// NOTIFY_SOCKET, WATCHDOG_USEC and PORT are read from it).
	Environ []string
	// Args is gsup's command line, executed again (with Self) by an
	// in-place upgrade; Version is this binary's version.
	Args    []string
	Version string
	// Handoff, when set, is the state of the gsup this process replaced
	// (an in-place upgrade): Run adopts its sockets and processes, and
	// its Options, Spec, Args and Environ replace the Config's.
	Handoff *Handoff
}

// arbiter is the running instance. Its fields are set by Run before
// anything that calls its methods (signals, the control API, the front,
// the supervisor's hooks) is started, and never change afterwards.
type arbiter struct {
	opts      procfile.Options
	log       *logrus.Logger
	errLog    *supervisor.LogFile
	sup       *supervisor.Supervisor
	srv       *serve.Server // nil when not serving
	grace     time.Duration
	frontOnce sync.Once
	notify    *signals.Notifier
	environ   []string
	// expected holds the served instances that are starting, ready or
	// restarting; only route (on the supervisor's goroutine) uses it.
	expected map[uint64]bool

	ctl     *control.Server
	sockets map[string]*os.File // [socket.NAME] for children
	self    string
	args    []string
	version string
	started time.Time // when this binary took over the process
	up      upgradeState
	metrics *metrics.Metrics
}

// Run runs gsup until a signal stops it (nil) or something fails (the
// error says what: a bind, the control socket, a critical process gone
// fatal, ...). Run never exits the process; ctx ending stops it at once.
func Run(ctx context.Context, cfg Config) error {
	h := cfg.Handoff
	if h != nil {
		cfg.Spec, cfg.Options, cfg.Args, cfg.Environ = h.Supervisor.Apps[0].Spec, h.Options, h.Args, h.Environ
	}
	spec := cfg.Spec
	log, errLog, err := NewLogger(spec, cfg.Stderr)
	if err != nil {
		return err
	}
	if errLog != nil {
		defer errLog.Close()
	}
	if spec.Pid != "" {
		pidFile, err := signals.WritePidFile(spec.Pid, os.Getpid())
		if err != nil {
			return err
		}
		defer pidFile.Remove()
	}
	a := &arbiter{opts: cfg.Options, log: log, errLog: errLog, grace: spec.Serve.GracefulTimeout,
		notify: signals.NewNotifier(log), environ: cfg.Environ,
		self: cfg.Self, args: cfg.Args, version: cfg.Version, started: time.Now(), expected: map[uint64]bool{},
		metrics: metrics.New()}
	// The front's heap is small and allocates fast: see gcfloor.
	defer gcfloor.Set(gcfloor.Default)()
	if h != nil {
		return a.resume(ctx, cfg)
	}

	nofile := fdlimit.Raise(log) // before serve.New, whose max_connections default follows it
	// The control socket first: a live gsup there stops this one before
	// it binds anything.
	ctl, err := control.Listen(spec.Control, spec.ControlMode)
	if err != nil {
		return err
	}
	a.ctl = ctl
	defer ctl.Close()
	ctl.Allow(spec.ControlAllow)
	if err := a.register(); err != nil {
		return err
	}
	// The front and the children's sockets are opened before any process
	// starts: a bind that fails stops gsup with nothing started.
	var held []*listen.Listener
	if spec.Serve.Enabled {
		a.srv, err = serve.New(a.frontConfig(spec, cfg))
		if err != nil {
			return err
		}
		held, err = a.srv.Listen(spec.Serve.Bind, socketNames(spec), getenv(cfg.Environ, "PORT"))
		if err != nil {
			return err
		}
		// Closes the listeners (and removes UNIX socket files) when gsup
		// returns before serving; after a run it finds them closed.
		defer a.srv.Close()
	} else if len(spec.Sockets) > 0 {
		var unused []*listen.Listener
		unused, held, err = listen.Inherited(listen.Options{}, socketNames(spec))
		if err != nil {
			return err
		}
		for _, l := range unused {
			log.Warnf("socket %s passed by systemd is not used: serving is off and no [socket.NAME] names it", l.Name)
			l.Close()
		}
	}
	a.sockets, err = childSockets(spec, held)
	if err != nil {
		return err
	}
	log.Infof("starting gsup (pid %d, open files limit %d) for %s, version %s", os.Getpid(), nofile, spec.App, a.version)
	return a.run(ctx, cfg, nil)
}

// run supervises spec (or adopts snap's processes) and serves until gsup
// stops; the listeners and the control socket are open.
func (a *arbiter) run(ctx context.Context, cfg Config, snap *supervisor.Snapshot) error {
	spec, log := cfg.Spec, a.log
	supCfg := supervisor.Config{
		Log:          log,
		Stdout:       cfg.Stdout,
		Color:        isTerminal(cfg.Stdout),
		Self:         cfg.Self,
		Environ:      cfg.Environ,
		Subreaper:    spec.Subreaper,
		DrainTimeout: spec.Serve.GracefulTimeout,
		Sockets:      a.sockets,
		Adopt:        snap,
	}
	if a.srv != nil {
		supCfg.Drain = a.drain
		supCfg.Rotation = a.route
		a.setHealth(spec)
	}
	a.sup = supervisor.New(supCfg)
	a.metrics.SetSource(a.sup)
	a.ctl.Handle("GET /metrics", a.metrics.Handler())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	board := metrics.NewBoard(ctx, a.metrics, a.sup)
	a.ctl.Handle("GET /v1/status", board.JSON())
	if _, err := a.serveMetrics(ctx, spec.Serve.MetricsBind, readOnly(a.metrics, board)); err != nil {
		return err
	}

	go func() {
		if err := a.ctl.Serve(backend{a}, log); err != nil {
			log.Errorf("control: %v", err)
		}
	}()
	if a.notify.Enabled() {
		evs, stopEvents := a.sup.Subscribe()
		defer stopEvents()
		go a.relayReadiness(evs)
		if interval := signals.WatchdogInterval(); interval > 0 {
			stopDog := make(chan struct{})
			defer close(stopDog)
			go a.notify.Watchdog(interval, func() bool { return a.sup.Ping(interval) }, stopDog)
		}
	}
	if a.srv != nil {
		if snap == nil {
			// The served instances start once the front listens (after
			// the release phase, if any): a request that comes before
			// the first of them says it started waits for them, as for an
			// instance restarting, instead of a 503 at once.
			a.srv.SetExpected(servedScale(spec))
		}
		a.srv.Serve()
	}

	go signals.Run(ctx, cfg.Signals, a, log)

	err := a.sup.Run(ctx, spec)
	if a.srv != nil {
		a.stopFront(0)
	}
	if err != nil {
		return err
	}
	log.Info("gsup stopped")
	return nil
}

// getenv is os.Getenv over environ.
func getenv(environ []string, key string) string {
	for _, kv := range slices.Backward(environ) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// relayReadiness tells the service manager READY=1 once every instance
// that must be ready is (the listeners are open before any process
// starts), keeps STATUS= current, and brackets each reload with
// RELOADING=1 ... READY=1.
func (a *arbiter) relayReadiness(evs <-chan supervisor.Event) {
	sent := false
	check := func() {
		ready, status, err := a.sup.Summary()
		if err != nil {
			return
		}
		if !sent && ready {
			sent = true
			a.notify.Ready(status)
			return
		}
		a.notify.Status(status)
	}
	check()
	for ev := range evs {
		switch ev.Kind {
		case supervisor.EventReloading:
			a.notify.Reloading()
		case supervisor.EventReloaded:
			_, status, _ := a.sup.Summary()
			if failed, ok := strings.CutPrefix(ev.Message, "reload failed: "); ok {
				first, _, _ := strings.Cut(failed, "\n")
				status = "reload failed: " + first
			}
			a.notify.Ready(status)
		default:
			check()
		}
	}
}

// frontConfig is the front's configuration for spec.
func (a *arbiter) frontConfig(spec *procfile.Spec, cfg Config) serve.Config {
	return serve.Config{Settings: spec.Serve, Log: a.log, Stdout: cfg.Stdout, OnLimit: a.replace, Observer: a.metrics}
}

// route keeps the front's rotation in step with the served instances
// (supervisor.Config.Rotation: called in order, synchronously), and tells
// it how many are expected to be ready soon: requests wait for those.
func (a *arbiter) route(ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.EventStarted, supervisor.EventRestarting:
		a.expected[ev.ID] = true
	case supervisor.EventReady:
		a.expected[ev.ID] = true
		a.srv.Add(ev.ID, ev.Addr)
	case supervisor.EventExited:
		if ev.Final {
			delete(a.expected, ev.ID)
		}
		a.srv.Remove(ev.ID)
	case supervisor.EventSick:
		// Out of rotation now; it still counts as expected until it
		// stops, so requests wait for its replacement instead of failing.
		a.srv.Remove(ev.ID)
	case supervisor.EventDraining, supervisor.EventStopping, supervisor.EventStopped, supervisor.EventFatal:
		delete(a.expected, ev.ID)
		a.srv.Remove(ev.ID)
	}
	a.srv.SetExpected(len(a.expected))
}

// drain waits until the front has no request in flight on the instance
// (supervisor.Config.Drain).
func (a *arbiter) drain(ctx context.Context, ev supervisor.Event) { a.srv.Drain(ctx, ev.ID) }

// replace replaces the instance the rolling way when the front counted
// its max_requests (serve.Config.OnLimit).
func (a *arbiter) replace(id uint64) {
	a.sup.Replace(id, supervisor.ReasonMaxRequests, "served max_requests requests")
}

// servedScale is how many instances of the served type spec starts.
func servedScale(spec *procfile.Spec) int {
	for _, p := range spec.Processes {
		if p.Name == spec.Serve.Upstream {
			return p.Scale
		}
	}
	return 0
}

// setHealth gives the front the passive health settings of the served
// type.
func (a *arbiter) setHealth(spec *procfile.Spec) {
	for _, p := range spec.Processes {
		if p.Name == spec.Serve.Upstream {
			a.srv.SetHealth(p.Health.MaxFails, p.Health.Hang, a.sick)
		}
	}
}

// sick replaces an instance the front took out of rotation
// (upstream.SickFunc).
func (a *arbiter) sick(id uint64, hung bool, detail string) {
	reason := supervisor.ReasonUpstream
	if hung {
		reason = supervisor.ReasonHang
	}
	a.sup.Replace(id, reason, detail)
}

// stopFront closes the listeners and waits up to grace for the requests
// in flight (once; later calls return at once).
func (a *arbiter) stopFront(grace time.Duration) {
	a.frontOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			a.log.Warnf("requests still in flight after %v were cut off", grace)
		}
	})
}

func socketNames(spec *procfile.Spec) []string {
	var names []string
	for _, s := range spec.Sockets {
		names = append(names, s.Name)
	}
	return names
}

// childSockets opens the [socket.NAME] listeners gsup holds for its
// children: taken from systemd by name (held), else bound here.
func childSockets(spec *procfile.Spec, held []*listen.Listener) (map[string]*os.File, error) {
	out := map[string]*os.File{}
	for _, sock := range spec.Sockets {
		var l *listen.Listener
		for _, h := range held {
			if h.Name == sock.Name {
				l = h
			}
		}
		if l == nil {
			if sock.Bind == "" {
				return nil, fmt.Errorf("socket %s: no bind, and systemd passed no socket of that name", sock.Name)
			}
			lns, err := listen.Open([]procfile.Bind{{Address: sock.Bind}}, listen.Options{UnixMode: sock.Mode, ProxyProtocol: "off"})
			if err != nil {
				return nil, fmt.Errorf("socket %s: %w", sock.Name, err)
			}
			l = lns[0]
		}
		f, err := l.File()
		if err != nil {
			return nil, fmt.Errorf("socket %s: %w", sock.Name, err)
		}
		out[sock.Name] = f
	}
	return out, nil
}

// Stop implements signals.Target.
func (a *arbiter) Stop(mode signals.StopMode) {
	a.notify.Stopping()
	switch mode {
	case signals.StopForce:
		if a.srv != nil {
			a.srv.Close()
		}
		a.sup.Shutdown(supervisor.StopForce)
	case signals.StopQuick:
		if a.srv != nil {
			go a.stopFront(0)
		}
		a.sup.Shutdown(supervisor.StopGraceful)
	default:
		if a.srv == nil {
			a.sup.Shutdown(supervisor.StopGraceful)
			return
		}
		go func() {
			a.stopFront(a.grace)
			a.sup.Shutdown(supervisor.StopGraceful)
		}()
	}
}

// Reload implements signals.Target (HUP): reload in the background. The
// outcome is reported by reload itself.
func (a *arbiter) Reload() {
	go a.reload() //nolint:errcheck // reported by reload
}

// errInvalidConfig marks a reload refused because the new config is bad
// (the control API answers 400).
var errInvalidConfig = errors.New("invalid config")

// reload re-reads the config and replaces every instance, one at a
// time; it returns when the rollout is done. A bad config is refused
// (the error names file and line) and the running one is kept. reload
// logs its outcome; its callers only pass the error on.
func (a *arbiter) reload() error {
	spec, err := procfile.Load(a.opts)
	if err != nil {
		a.refuseReload(err)
		return errors.Join(err, errInvalidConfig)
	}
	if a.srv != nil {
		if err := a.srv.Reload(spec.Serve); err != nil {
			a.refuseReload(err)
			return errors.Join(err, errInvalidConfig)
		}
	}
	a.ctl.Allow(spec.ControlAllow)
	if a.srv != nil {
		a.setHealth(spec)
	}
	a.log.Info("reloading")
	err = a.sup.Reload(spec)
	a.metrics.Reload(err == nil)
	if err != nil {
		err = fmt.Errorf("reload failed: %w", err)
		a.log.Error(err)
		return err
	}
	a.log.Info("reload done")
	a.follow()
	return nil
}

// register also binds the control socket in gsup's runtime folder
// (control.Server.Register), so that clients reach it after a switch of
// a symlinked folder on its path. Only another gsup registered for the
// same path stops gsup; a folder that cannot be used is a warning.
func (a *arbiter) register() error {
	dir := control.RuntimeDirs(func(k string) string { return getenv(a.environ, k) })[0]
	path, err := a.ctl.Register(dir)
	switch {
	case errors.Is(err, control.ErrRunning):
		return err
	case err != nil:
		a.log.Warnf("%v; clients reach gsup only at %s", err, a.ctl.Path())
	default:
		a.log.WithField("socket", path).Debug("control socket registered")
	}
	return nil
}

// follow binds the control socket again where its path leads after a
// reload, when a symlink on it was switched (control.Server.Follow).
func (a *arbiter) follow() {
	path, err := a.ctl.Follow()
	switch {
	case err != nil:
		a.log.Warnf("the control path now leads elsewhere, and binding it there failed (clients look in gsup's runtime folder): %v", err)
	case path != "":
		a.log.WithField("socket", path).Infof("control socket %s bound again where it now leads", a.ctl.Path())
	}
}

// refuseReload reports a reload that cannot be made and tells the
// service manager it is over (RELOADING=1 then READY=1, as
// Type=notify-reload expects even when nothing changed).
func (a *arbiter) refuseReload(err error) {
	a.metrics.Reload(false)
	a.log.Errorf("reload refused, the running config is kept: %v", err)
	a.notify.Reloading()
	_, status, _ := a.sup.Summary()
	a.notify.Ready(status)
}

// Reopen implements signals.Target.
func (a *arbiter) Reopen() {
	if a.errLog != nil {
		if err := a.errLog.Reopen(); err != nil {
			a.log.Errorf("reopening error log: %v", err)
		}
	}
	a.sup.Reopen()
	if a.srv != nil {
		if err := a.srv.Reopen(); err != nil {
			a.log.Errorf("reopening access log: %v", err)
		}
	}
	a.log.Info("log files reopened")
}

// ScaleServed implements signals.Target.
func (a *arbiter) ScaleServed(delta int) { a.sup.ScaleServed(delta) }

// Reap implements signals.Target.
func (a *arbiter) Reap() { a.sup.Reap() }
