package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"gsup/control"
	"gsup/internal/fdlimit"
	"gsup/procfile"
	"gsup/serve"
	"gsup/serve/listen"
	"gsup/signals"
	"gsup/supervisor"
)

// specFlags are the flags that decide the Spec: start's and check's.
func specFlags() []cli.Flag {
	env := func(name string) []string { return []string{"GSUP_" + name} }
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML `FILE` (default: gsup.toml if present)", EnvVars: env("CONFIG")},
		&cli.StringFlag{Name: "procfile", Aliases: []string{"f"}, Usage: "Procfile `FILE` (default: Procfile)", EnvVars: env("PROCFILE")},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "env `FILE`, repeatable (default: .env if present)", EnvVars: env("ENV")},
		&cli.StringFlag{Name: "formation", Aliases: []string{"m"}, Usage: "instances per type, `web=2,worker=1` (default: all=1)", EnvVars: env("FORMATION")},
		&cli.IntFlag{Name: "port", Usage: "base `PORT` of the children (default: PORT from .env, else 5000)", EnvVars: env("PORT")},
		&cli.StringSliceFlag{Name: "bind", Aliases: []string{"b"}, Usage: "serve on `ADDR` (host:port, [::1]:port, unix:/path, fd://N), repeatable", EnvVars: env("BIND")},
		&cli.BoolFlag{Name: "no-serve", Usage: "do not serve HTTP", EnvVars: env("NO_SERVE")},
		&cli.StringFlag{Name: "upstream", Usage: "process `TYPE` to serve (default: web)", EnvVars: env("UPSTREAM")},
		&cli.StringFlag{Name: "forwarded-allow-ips", Usage: "`LIST` of addresses/CIDRs whose X-Forwarded-* are trusted, or *", EnvVars: []string{"GSUP_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"}},
		&cli.StringFlag{Name: "proxy-protocol", Usage: "PROXY protocol: `off|auto|v1|v2|required`", EnvVars: env("PROXY_PROTOCOL")},
		&cli.StringFlag{Name: "proxy-allow-from", Usage: "`LIST` of addresses/CIDRs allowed to send PROXY headers, or *", EnvVars: env("PROXY_ALLOW_FROM")},
		&cli.StringFlag{Name: "access-logfile", Usage: "access log `FILE` (- = stdout; default: none)", EnvVars: env("ACCESS_LOGFILE")},
		&cli.StringFlag{Name: "access-logformat", Usage: "access log `FORMAT` (Gunicorn's atoms)", EnvVars: env("ACCESS_LOGFORMAT")},
		&cli.StringFlag{Name: "error-logfile", Usage: "gsup's own log `FILE` (- = stderr)", EnvVars: env("ERROR_LOGFILE")},
		&cli.StringFlag{Name: "log-level", Usage: "`LEVEL`: debug, info, warning, error, critical", EnvVars: env("LOG_LEVEL")},
		&cli.StringFlag{Name: "log-format", Usage: "`FORMAT` of gsup's own log: text or json", EnvVars: env("LOG_FORMAT")},
		&cli.StringFlag{Name: "pid", Usage: "write gsup's pid to `FILE`", EnvVars: env("PID")},
		&cli.StringFlag{Name: "control", Usage: "control socket `PATH` (default: ./.gsup.sock)", EnvVars: env("CONTROL")},
		&cli.DurationFlag{Name: "graceful-timeout", Usage: "how long in-flight requests may take at stop and reload (default: 30s)", EnvVars: env("GRACEFUL_TIMEOUT")},
		&cli.DurationFlag{Name: "timeout", Usage: "how long to wait for the app's response headers (default: 30s)", EnvVars: env("TIMEOUT")},
		&cli.BoolFlag{Name: "subreaper", Usage: "become the child subreaper: reap orphans of the children (automatic as PID 1)", EnvVars: env("SUBREAPER")},
	}
}

// options builds procfile.Options from the flags that were given (on the
// command line or through GSUP_* variables).
func options(cliContext *cli.Context) procfile.Options {
	str := func(name string) *string {
		if !cliContext.IsSet(name) {
			return nil
		}
		v := cliContext.String(name)
		return &v
	}
	dur := func(name string) *time.Duration {
		if !cliContext.IsSet(name) {
			return nil
		}
		v := cliContext.Duration(name)
		return &v
	}
	o := procfile.Options{
		Config:    cliContext.String("config"),
		Procfile:  cliContext.String("procfile"),
		EnvFiles:  cliContext.StringSlice("env"),
		Formation: cliContext.String("formation"),
		Types:     cliContext.Args().Slice(),
		Environ:   os.Environ(),
	}
	o.Over = procfile.Overrides{
		Bind:              cliContext.StringSlice("bind"),
		NoServe:           cliContext.Bool("no-serve"),
		Upstream:          str("upstream"),
		ForwardedAllowIPs: str("forwarded-allow-ips"),
		ProxyProtocol:     str("proxy-protocol"),
		ProxyAllowFrom:    str("proxy-allow-from"),
		AccessLogfile:     str("access-logfile"),
		AccessLogformat:   str("access-logformat"),
		ErrorLogfile:      str("error-logfile"),
		LogLevel:          str("log-level"),
		LogFormat:         str("log-format"),
		Pid:               str("pid"),
		Control:           str("control"),
		GracefulTimeout:   dur("graceful-timeout"),
		Timeout:           dur("timeout"),
	}
	if cliContext.IsSet("port") {
		p := cliContext.Int("port")
		o.Over.Port = &p
	}
	if cliContext.IsSet("subreaper") {
		b := cliContext.Bool("subreaper")
		o.Over.Subreaper = &b
	}
	return o
}

func loadSpec(cliContext *cli.Context) (procfile.Options, *procfile.Spec, error) {
	if err := noFlagsAfterArgs(cliContext); err != nil {
		return procfile.Options{}, nil, err
	}
	opts := options(cliContext)
	spec, err := procfile.Load(opts)
	if err != nil {
		return opts, nil, configErr(err)
	}
	return opts, spec, nil
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate the config, Procfile and .env; print the resolved plan",
		ArgsUsage: "[TYPE...]",
		Flags:     specFlags(),
		Action: func(cliContext *cli.Context) error {
			_, spec, err := loadSpec(cliContext)
			if err != nil {
				return err
			}
			spec.WritePlan(cliContext.App.Writer)
			return nil
		},
	}
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "run the processes in the foreground (only the named types, if given)",
		ArgsUsage: "[TYPE...]",
		Flags:     specFlags(),
		Action: func(cliContext *cli.Context) error {
			opts, spec, err := loadSpec(cliContext)
			if err != nil {
				return err
			}
			return startGsup(cliContext, opts, spec)
		},
	}
}

// newLogger makes gsup's own logger writing to spec's error log.
func newLogger(spec *procfile.Spec, stderr interface{ Write([]byte) (int, error) }) (*logrus.Logger, *supervisor.LogFile, error) {
	log := logrus.New()
	log.SetOutput(stderr)
	var file *supervisor.LogFile
	if spec.ErrorLogfile != "" && spec.ErrorLogfile != "-" {
		f, err := supervisor.OpenLogFile(spec.ErrorLogfile)
		if err != nil {
			return nil, nil, fmt.Errorf("error log: %w", err)
		}
		file = f
		log.SetOutput(f)
	}
	switch spec.LogLevel {
	case "debug":
		log.SetLevel(logrus.DebugLevel)
	case "warning":
		log.SetLevel(logrus.WarnLevel)
	case "error":
		log.SetLevel(logrus.ErrorLevel)
	case "critical":
		log.SetLevel(logrus.FatalLevel)
	default:
		log.SetLevel(logrus.InfoLevel)
	}
	if spec.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		log.SetFormatter(&textFormatter{pid: os.Getpid()})
	}
	return log, file, nil
}

// levelNames are Gunicorn's names of the log levels.
var levelNames = map[logrus.Level]string{logrus.DebugLevel: "DEBUG", logrus.InfoLevel: "INFO", logrus.WarnLevel: "WARNING",
	logrus.ErrorLevel: "ERROR", logrus.FatalLevel: "CRITICAL", logrus.PanicLevel: "CRITICAL", logrus.TraceLevel: "DEBUG"}

// textFormatter writes Gunicorn's error-log layout:
// "[2006-01-02 15:04:05 -0700] [PID] [LEVEL] message key=value".
type textFormatter struct{ pid int }

func (f *textFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b := e.Buffer
	if b == nil {
		b = new(bytes.Buffer)
	}
	level := levelNames[e.Level]
	fmt.Fprintf(b, "[%s] [%d] [%s] %s", e.Time.Format("2006-01-02 15:04:05 -0700"), f.pid, level, e.Message)
	for k, v := range e.Data {
		fmt.Fprintf(b, " %s=%v", k, v)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// gsup is the running instance: it wires the supervisor to signals.
type gsup struct {
	opts      procfile.Options
	log       *logrus.Logger
	errLog    *supervisor.LogFile
	sup       *supervisor.Supervisor
	srv       *serve.Server // nil when not serving
	grace     time.Duration
	frontOnce sync.Once
	notify    *signals.Notifier
	rebind    bool // the front listens on configured binds: a reload may change them
}

// relayReadiness tells the service manager READY=1 once every instance
// that must be ready is (the listeners are open before any process
// starts), keeps STATUS= current, and brackets each reload with
// RELOADING=1 ... READY=1.
func (g *gsup) relayReadiness(evs <-chan supervisor.Event) {
	sent := false
	check := func() {
		ready, status, err := g.sup.Summary()
		if err != nil {
			return
		}
		if !sent && ready {
			sent = true
			g.notify.Ready(status)
			return
		}
		g.notify.Status(status)
	}
	check()
	for ev := range evs {
		switch ev.Kind {
		case supervisor.EventReloading:
			g.notify.Reloading()
		case supervisor.EventReloaded:
			_, status, _ := g.sup.Summary()
			g.notify.Ready(status)
		default:
			check()
		}
	}
}

// route keeps the front's rotation in step with the served instances
// (supervisor.Config.Rotation: called in order, synchronously).
func route(srv *serve.Server, ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.EventReady:
		srv.Add(ev.ID, ev.Addr)
	case supervisor.EventDraining, supervisor.EventStopping, supervisor.EventExited,
		supervisor.EventStopped, supervisor.EventFatal:
		srv.Remove(ev.ID)
	}
}

// stopFront closes the listeners and waits up to grace for the requests
// in flight (once; later calls return at once).
func (g *gsup) stopFront(grace time.Duration) {
	g.frontOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := g.srv.Shutdown(ctx); err != nil {
			g.log.Warnf("requests still in flight after %v were cut off", grace)
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

func startGsup(cliContext *cli.Context, opts procfile.Options, spec *procfile.Spec) error {
	// Signals are caught from the first instant: a TERM during start-up is
	// acted on once the supervisor runs, never the default (death).
	sigs, stopSignals := signals.Notify()
	defer stopSignals()
	stderr := cliContext.App.ErrWriter
	stdout := cliContext.App.Writer
	log, errLog, err := newLogger(spec, stderr)
	if err != nil {
		return failed(err)
	}
	if errLog != nil {
		defer errLog.Close()
	}
	var pidFile *signals.PidFile
	if spec.Pid != "" {
		pidFile, err = signals.WritePidFile(spec.Pid, os.Getpid())
		if err != nil {
			return failed(err)
		}
		defer pidFile.Remove()
	}
	self, err := selfPath()
	if err != nil {
		return failed(fmt.Errorf("finding gsup's executable: %w", err))
	}
	color := false
	if f, ok := stdout.(*os.File); ok {
		color = term.IsTerminal(int(f.Fd()))
	}
	nofile := fdlimit.Raise(log) // before serve.New, whose max_connections default follows it
	// The control socket first: a live gsup there stops this one before
	// it binds anything.
	ctl, err := control.Listen(spec.Control, spec.ControlMode)
	if err != nil {
		return failed(err)
	}
	defer ctl.Close()
	// The front and the children's sockets are opened before any process
	// starts: a bind that fails stops gsup with nothing started.
	var sup *supervisor.Supervisor
	var srv *serve.Server
	var held []*listen.Listener
	if spec.Serve.Enabled {
		srv, err = serve.New(serve.Config{Settings: spec.Serve, Log: log, Stdout: stdout,
			OnLimit: func(id uint64) { sup.Replace(id) }})
		if err != nil {
			return failed(err)
		}
		held, err = srv.Listen(spec.Serve.Bind, socketNames(spec), os.Getenv("PORT"))
		if err != nil {
			return failed(err)
		}
		// Closes the listeners (and removes UNIX socket files) when gsup
		// returns before serving; after a run it finds them closed.
		defer srv.Close()
	} else if len(spec.Sockets) > 0 {
		var unused []*listen.Listener
		unused, held, err = listen.Inherited(listen.Options{}, socketNames(spec))
		if err != nil {
			return failed(err)
		}
		for _, l := range unused {
			log.Warnf("socket %s passed by systemd is not used: serving is off and no [socket.NAME] names it", l.Name)
			l.Close()
		}
	}
	sockets, err := childSockets(spec, held)
	if err != nil {
		return failed(err)
	}
	cfg := supervisor.Config{
		Log:          log,
		Stdout:       stdout,
		Color:        color,
		Self:         self,
		Environ:      os.Environ(),
		Subreaper:    spec.Subreaper,
		DrainTimeout: spec.Serve.GracefulTimeout,
		Sockets:      sockets,
	}
	if srv != nil {
		cfg.Drain = func(ctx context.Context, ev supervisor.Event) { srv.Drain(ctx, ev.ID) }
		cfg.Rotation = func(ev supervisor.Event) { route(srv, ev) }
	}
	sup = supervisor.New(cfg)
	notifier := signals.NewNotifier(os.Environ(), log)
	g := &gsup{opts: opts, log: log, errLog: errLog, sup: sup, srv: srv, grace: spec.Serve.GracefulTimeout, notify: notifier,
		rebind: len(spec.Serve.Bind) > 0}
	go func() {
		if err := ctl.Serve(controlBackend{g}, log); err != nil {
			log.Errorf("control: %v", err)
		}
	}()
	if notifier.Enabled() {
		evs, stopEvents := sup.Subscribe()
		defer stopEvents()
		go g.relayReadiness(evs)
		if interval := signals.WatchdogInterval(os.Environ()); interval > 0 {
			stopDog := make(chan struct{})
			defer close(stopDog)
			go notifier.Watchdog(interval, func() bool { return sup.Ping(interval) }, stopDog)
		}
	}
	if srv != nil {
		srv.Serve()
	}

	ctx, cancel := context.WithCancel(cliContext.Context)
	defer cancel()
	go signals.Run(ctx, sigs, g, log)

	log.Infof("starting gsup (pid %d, open files limit %d) for %s", os.Getpid(), nofile, spec.App)
	err = sup.Run(ctx, spec)
	if srv != nil {
		g.stopFront(0)
	}
	if err != nil {
		if errors.Is(err, supervisor.ErrFailed) {
			return failed(err)
		}
		return failed(err)
	}
	log.Info("gsup stopped")
	return nil
}

// Stop implements signals.Target.
func (g *gsup) Stop(mode signals.StopMode) {
	g.notify.Stopping()
	switch mode {
	case signals.StopForce:
		if g.srv != nil {
			g.srv.Close()
		}
		g.sup.Shutdown(supervisor.StopForce)
	case signals.StopQuick:
		if g.srv != nil {
			go g.stopFront(0)
		}
		g.sup.Shutdown(supervisor.StopGraceful)
	default:
		if g.srv == nil {
			g.sup.Shutdown(supervisor.StopGraceful)
			return
		}
		go func() {
			g.stopFront(g.grace)
			g.sup.Shutdown(supervisor.StopGraceful)
		}()
	}
}

// Reload implements signals.Target (HUP): reloadConfig in the
// background.
func (g *gsup) Reload() {
	go func() {
		if err := g.reloadConfig(); err != nil {
			g.log.Errorf("reload: %v", err)
		}
	}()
}

// reloadConfig re-reads the config and replaces every instance, one at
// a time; it returns when the rollout is done. A bad config is refused
// (the error names file and line) and the running one is kept.
func (g *gsup) reloadConfig() error {
	spec, err := procfile.Load(g.opts)
	if err != nil {
		g.refuseReload(err)
		return configErr(err)
	}
	if g.srv != nil && g.rebind && len(spec.Serve.Bind) > 0 {
		if err := g.srv.Rebind(spec.Serve.Bind); err != nil {
			g.refuseReload(err)
			return failed(err)
		}
	}
	g.log.Info("reloading")
	if err := g.sup.Reload(spec); err != nil {
		return err
	}
	g.log.Info("reload done")
	return nil
}

// refuseReload reports a reload that cannot be made and tells the
// service manager it is over (RELOADING=1 then READY=1, as
// Type=notify-reload expects even when nothing changed).
func (g *gsup) refuseReload(err error) {
	g.log.Errorf("reload refused, the running config is kept: %v", err)
	g.notify.Reloading()
	_, status, _ := g.sup.Summary()
	g.notify.Ready(status)
}

// Reopen implements signals.Target.
func (g *gsup) Reopen() {
	if g.errLog != nil {
		if err := g.errLog.Reopen(); err != nil {
			g.log.Errorf("reopening error log: %v", err)
		}
	}
	g.sup.Reopen()
	if g.srv != nil {
		if err := g.srv.Reopen(); err != nil {
			g.log.Errorf("reopening access log: %v", err)
		}
	}
	g.log.Info("log files reopened")
}

// ScaleServed implements signals.Target.
func (g *gsup) ScaleServed(delta int) { g.sup.ScaleServed(delta) }

// Reap implements signals.Target.
func (g *gsup) Reap() { g.sup.Reap() }
