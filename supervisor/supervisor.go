package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/procfile"
)

// Config is what a Supervisor needs besides the Spec.
type Config struct {
	Log     *logrus.Logger // gsup's own log; required
	Stdout  io.Writer      // children's prefixed lines; nil = os.Stdout
	Color   bool           // colour the prefixes (stdout is a terminal)
	Starter Starter        // nil = real processes (and the guard, when Self is set)
	// Self is gsup's executable, re-executed as the guard process and as
	// the child helper (umask, LISTEN_PID). "" = no guard; umask and
	// sockets are then refused.
	Self      string
	Environ   []string // children's base environment (gsup's own); NOTIFY_SOCKET, LISTEN_*, WATCHDOG_* are dropped
	Subreaper bool     // become the child subreaper (automatic as PID 1)
	// Drain is called (on its own goroutine) after a served instance left
	// rotation (EventDraining) and before its stop signal is sent; it
	// returns when the instance's requests are done or ctx ends. nil = no
	// drain.
	Drain func(ctx context.Context, ev Event)
	// Rotation, when set, is told every event of a served instance
	// (Event.Served) synchronously, on the supervisor's goroutine, before
	// subscribers see it: the front adds an instance on EventReady before
	// a rollout goes on to drain its predecessor, so the rotation is never
	// empty in between. It must return quickly and not call the
	// Supervisor.
	Rotation func(Event)
	// DrainTimeout bounds Drain (the front's graceful timeout).
	DrainTimeout time.Duration
	// Sockets are the listeners of [socket.NAME], by name, passed to the
	// process types that ask for them.
	Sockets map[string]*os.File
	// Adopt, when set, is the state of the gsup this process replaced by
	// an in-place upgrade: Run adopts its processes instead of starting
	// the Spec's.
	Adopt *Snapshot
	// Probe checks readiness "port" and "http:/path" at addr until it
	// passes (true) or ctx ends (false); nil = the real check. Tests with
	// a fake Starter set it.
	Probe func(ctx context.Context, mode, addr string) bool
	// Health runs one active health check of the instance at addr; nil =
	// the real one. Tests with a fake Starter set it.
	Health func(ctx context.Context, mode, addr string) error
}

// State is an instance's state.
type State string

// The instance states.
const (
	StateStarting State = "starting" // process started, not yet ready
	StateRunning  State = "running"  // ready
	StateStopping State = "stopping" // stop signal sent (or draining)
	StateStopped  State = "stopped"  // stopped by us
	StateBackoff  State = "backoff"  // exited, waiting to be started again
	StateExited   State = "exited"   // exited for good (restart policy)
	StateFatal    State = "fatal"    // kept crashing; not retried until asked
)

// StopMode says how Shutdown stops.
type StopMode int

// The stop modes.
const (
	StopGraceful StopMode = iota // stop_signal to every group, SIGKILL after stop_timeout
	StopForce                    // SIGKILL to every group now
)

// ErrFailed wraps the reason gsup stops because something failed (exit 1).
var ErrFailed = errors.New("failed")

// Supervisor runs the processes of one or more apps. Create it with New,
// then call Run; every other method may be called from any goroutine
// while Run runs.
type Supervisor struct {
	cfg     Config
	log     *logrus.Logger
	out     *Output
	starter Starter
	os      *osStarter // nil with a fake Starter
	guard   *guard
	cgroups *cgroups // nil without cgroup v2 (or with GSUP_CGROUP=off)
	events  broadcaster
	lines   lineHub
	posts   chan func()
	quit    chan struct{}                                                         // closed when the loop ends
	rundir  string                                                                // per-instance sockets (notify, listen = "unix")
	probe   func(ctx context.Context, mode, addr string) error                    // readiness check; a seam for tests
	check   func(ctx context.Context, mode, addr, dir string, env []string) error // health check

	reloadMu sync.Mutex // one rollout at a time

	// Owned by the loop goroutine.
	apps       []*app
	insts      []*instance
	nextID     uint64
	seq        uint64
	starts     uint64 // every start, for MarkerEnv
	shutdown   bool
	finished   bool
	result     error
	rolloutCtx context.Context
	rolloutEnd context.CancelFunc
	reaping    bool // a reaping pass runs
	reapAgain  bool // a SIGCHLD came during it: another pass follows
	releasing  bool // the first app's release command runs: nothing started yet
}

type app struct {
	name  string
	spec  *procfile.Spec
	first bool
	types []*ptype
}

// ptype is a process type. Its spec (with its app's spec) is the
// definition in force: what scaling and new instances use. A rollout
// changes it only once every instance is replaced.
type ptype struct {
	app     *app
	spec    procfile.Process
	scale   int  // desired instances
	waiting bool // start deferred until its `after` types are ready
	blocked bool // not started: a one-shot it comes after failed
	color   int
	logFile *LogFile
	// restarts counts, per instance number, the restarts and
	// replacements by reason, over the type's life.
	restarts map[int]map[Reason]int
	checks   map[int]map[string]int // health check results by instance number
	// memoryTold: whether memory_max could be applied was said.
	memoryTold bool
}

// def is a process type's definition as one Spec gave it.
type def struct {
	p   procfile.Process
	app *procfile.Spec
}

// current is t's definition in force.
func (t *ptype) current() *def { return &def{p: t.spec, app: t.app.spec} }

type instance struct {
	id       uint64
	t        *ptype
	def      *def // what it runs, and runs again at each restart
	num      int
	name     string // "web.1" or "app/web.1"
	port     int
	socket   string // GSUP_SOCKET path with listen = "unix"
	state    State
	since    time.Time
	proc     Proc
	pid      int
	started  time.Time
	release  string // the folder its process started in, symlinks resolved
	seq      uint64 // start order
	restarts int
	rs       restartState
	ready    bool
	exit     *ExitStatus
	marker   string   // MarkerEnv of the current start
	env      []string // environment of the current start (exec health checks)
	cg       *cgroup  // the current start's cgroup, with cgroups

	wantStop     bool  // the current stop was asked for
	restartAfter bool  // start again once stopped
	remove       bool  // forget the instance once stopped
	readyFailed  bool  // killed because it did not become ready in time
	readyShort   error // ...because gsup could not check it (out of fds)
	short        int   // starts in a row that failed for want of gsup's resources

	timer *time.Timer // backoff or kill timer
	// groupStop is the process whose whole group was sent the stop
	// signal: its group may outlive it until the KILL (exitedLocked).
	groupStop Proc
	due       time.Time // when the backoff timer fires
	probeEnd  context.CancelFunc
	notify    *notifyListener
	status    string // last STATUS= from the child

	health    string             // "", "ok", "failing N/M", "sick"
	healthEnd context.CancelFunc // stops the active health checks
	recycling Reason             // being replaced, and why
	hung      bool               // stop it without draining its requests
	hungProbe bool               // its last health check timed out
	usage     usage              // measured by the resource guards
	maxAge    time.Duration      // max_age plus this start's jitter; 0 = none

	readyC   chan struct{} // closed when it first becomes ready
	failC    chan struct{} // closed when it first exits before it was ever ready
	doneC    chan struct{} // closed when it reaches stopped, exited or fatal
	doneOnce bool
	ring     *ring

	out   *os.File      // read end of the current process's output pipe
	held  chan []byte   // its pump's incomplete line, when an upgrade stops it
	ended chan struct{} // closed when its pump has read the pipe to the end
}

// New returns a Supervisor; nothing runs until Run.
func New(cfg Config) *Supervisor {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	s := &Supervisor{
		cfg:   cfg,
		log:   cfg.Log,
		posts: make(chan func(), 256),
		quit:  make(chan struct{}),
		probe: probe,
		check: check,
	}
	if cfg.Health != nil {
		s.check = func(ctx context.Context, mode, addr, _ string, _ []string) error { return cfg.Health(ctx, mode, addr) }
	}
	if cfg.Probe != nil {
		s.probe = func(ctx context.Context, mode, addr string) error {
			if cfg.Probe(ctx, mode, addr) {
				return nil
			}
			return ctx.Err()
		}
	}
	s.out = NewOutput(cfg.Stdout, cfg.Color, cfg.Log)
	s.rolloutCtx, s.rolloutEnd = context.WithCancel(context.Background())
	return s
}

// post runs f on the loop goroutine. It does nothing once the loop ended.
func (s *Supervisor) post(f func()) {
	select {
	case s.posts <- f:
	case <-s.quit:
	}
}

// call runs f on the loop goroutine and waits for it; false when the
// loop has ended.
func (s *Supervisor) call(f func()) bool {
	done := make(chan struct{})
	select {
	case s.posts <- func() { f(); close(done) }:
	case <-s.quit:
		return false
	}
	select {
	case <-done:
		return true
	case <-s.quit:
		return false
	}
}

// publish tells the front (served instances) and then every subscriber.
func (s *Supervisor) publish(ev Event) {
	if ev.Served && s.cfg.Rotation != nil {
		s.cfg.Rotation(ev)
	}
	s.events.publish(ev)
}

// Subscribe returns every event published from now on, and a function
// that ends the subscription.
func (s *Supervisor) Subscribe() (<-chan Event, func()) { return s.events.subscribe() }

// Run starts spec's processes and supervises them until a Shutdown
// finishes (nil), every process has exited for good (nil if all exited 0,
// else an error wrapping ErrFailed), or a critical process went fatal (an
// error wrapping ErrFailed). Canceling ctx is a graceful Shutdown.
func (s *Supervisor) Run(ctx context.Context, spec *procfile.Spec) error {
	defer close(s.quit)
	if s.cfg.Starter != nil {
		s.starter = s.cfg.Starter
	} else {
		s.os = newOSStarter()
		defer s.os.Close()
		s.starter = s.os
		cg, err := setupCgroups(s.cfg.Environ, s.cfg.Adopt != nil)
		switch {
		case err != nil:
			s.log.Infof("instances run without cgroups (%v); gsup is their child subreaper", err)
		case cg == nil:
			s.log.Infof("instances run without cgroups (%s=off); gsup is their child subreaper", CgroupEnv)
		default:
			s.cgroups = cg
			defer cg.close()
			cg.enableMemory()
			s.log.Debugf("instances run in cgroups below %s", cg.base)
		}
		if s.cfg.Subreaper || s.cgroups == nil || os.Getpid() == 1 {
			if err := setSubreaper(); err != nil {
				return fmt.Errorf("becoming child subreaper: %w", err)
			}
			s.cfg.Subreaper = true
		}
		if s.cfg.Self != "" && s.cfg.Adopt == nil {
			g, err := startGuard(s.os, s.cfg.Self, s.cgroups)
			if err != nil {
				return err
			}
			s.guard = g
			defer func() { s.guard.close() }()
			go s.watchGuard(g)
		}
		if s.tracksOrphans() {
			go s.sweepOrphans()
		}
		go s.watchUsage()
	}
	if s.cfg.Adopt != nil {
		if err := s.adoptLocked(s.cfg.Adopt); err != nil {
			return err
		}
		defer func() { s.guard.close() }()
		defer os.RemoveAll(s.rundir)
	} else {
		dir, err := os.MkdirTemp("", "gsup")
		if err != nil {
			return fmt.Errorf("creating runtime folder: %w", err)
		}
		s.rundir = dir
		defer os.RemoveAll(dir)
		if spec.Release == nil {
			s.loadLocked(spec)
		}
	}
	if spec.Release == nil || s.cfg.Adopt != nil {
		s.checkDoneLocked()
	} else {
		// The release phase first; nothing starts unless it succeeds.
		s.releasing = true
		relCtx := s.rolloutCtx
		go func() {
			err := s.runRelease(relCtx, spec)
			s.post(func() {
				s.releasing = false
				switch {
				case err != nil:
					s.log.Error(err)
					s.failLocked(fmt.Errorf("%w: %v", ErrFailed, err))
				case !s.shutdown:
					s.loadLocked(spec)
				}
				s.checkDoneLocked()
			})
		}()
	}
	stopCtx := ctx.Done()
	for !s.finished {
		select {
		case f := <-s.posts:
			f()
		case <-stopCtx:
			stopCtx = nil
			s.shutdownLocked(StopGraceful)
		}
	}
	for _, t := range s.allTypes() {
		if t.logFile != nil {
			t.logFile.Close()
		}
	}
	for _, inst := range s.insts {
		if inst.cg != nil {
			inst.cg.remove()
		}
	}
	s.killOrphans()
	return s.result
}

// watchGuard replaces the guard process if it dies while gsup runs (it
// was killed by someone), so the instances stay covered.
func (s *Supervisor) watchGuard(g *guard) {
	select {
	case <-g.exited:
	case <-s.quit:
		return
	}
	s.post(func() {
		if s.finished || s.guard != g {
			return
		}
		s.log.Warn("the guard process exited; starting a new one")
		ng, err := startGuard(s.os, s.cfg.Self, s.cgroups)
		if err != nil {
			s.log.Errorf("%v; children will not be cleaned up if gsup is killed", err)
			return
		}
		g.w.Close()
		for _, inst := range s.insts {
			if inst.proc != nil {
				ng.add(inst.pid)
			}
		}
		s.guard = ng
		go s.watchGuard(ng)
	})
}

// Shutdown stops every process: StopGraceful sends each its stop_signal
// (to the whole group, in reverse start order) and SIGKILL after its
// stop_timeout; StopForce sends SIGKILL at once (also during a graceful
// stop). Run returns once all have stopped.
func (s *Supervisor) Shutdown(mode StopMode) {
	s.post(func() { s.shutdownLocked(mode) })
}

func (s *Supervisor) shutdownLocked(mode StopMode) {
	if mode == StopForce {
		if !s.shutdown {
			s.shutdownLocked(StopGraceful)
		}
		for _, inst := range s.insts {
			if inst.proc != nil {
				s.killLocked(inst, inst.proc)
			}
		}
		return
	}
	if s.shutdown {
		return
	}
	s.shutdown = true
	s.rolloutEnd()
	order := append([]*instance(nil), s.insts...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].seq > order[j].seq })
	for _, inst := range order {
		s.stopLocked(inst, false)
	}
	s.checkDoneLocked()
}

// failLocked stops everything and makes Run return err.
func (s *Supervisor) failLocked(err error) {
	if s.result == nil {
		s.result = err
	}
	s.shutdownLocked(StopGraceful)
}

func (s *Supervisor) allTypes() []*ptype {
	var out []*ptype
	for _, a := range s.apps {
		out = append(out, a.types...)
	}
	return out
}

// loadLocked adds an app and starts its processes.
func (s *Supervisor) loadLocked(spec *procfile.Spec) *app {
	a := &app{name: spec.App, spec: spec, first: len(s.apps) == 0}
	s.apps = append(s.apps, a)
	for _, p := range spec.Processes {
		t := s.newTypeLocked(a, p)
		a.types = append(a.types, t)
	}
	s.widthLocked()
	s.publish(Event{Time: time.Now(), Kind: EventLoaded, App: a.name})
	for _, t := range a.types {
		s.startTypeLocked(t)
	}
	return a
}

func (s *Supervisor) newTypeLocked(a *app, p procfile.Process) *ptype {
	t := &ptype{app: a, spec: p, scale: p.Scale, color: len(s.allTypes()) + len(a.types)}
	if p.LogFile != "" {
		lf, err := OpenLogFile(p.LogFile)
		if err != nil {
			s.log.Errorf("%s: %v; its output goes to stdout", p.Name, err)
		} else {
			t.logFile = lf
		}
	}
	return t
}

// startTypeLocked starts the missing instances of t, unless its `after`
// types are not ready yet.
func (s *Supervisor) startTypeLocked(t *ptype) {
	if s.shutdown {
		return
	}
	ok, failed := s.afterReadyLocked(t)
	if !ok {
		switch {
		case failed != "":
			if !t.blocked {
				t.blocked = true
				s.log.Errorf("%s is not started: %s", t.spec.Name, failed)
			}
			t.waiting = true
		case !t.waiting:
			t.waiting = true
			s.log.Infof("%s waits for %v to be ready", t.spec.Name, t.spec.After)
		}
		return
	}
	t.waiting, t.blocked = false, false
	for n := 1; n <= t.scale; n++ {
		if s.findLocked(t, n) == nil {
			inst := s.newInstanceLocked(t, t.current(), n, t.spec.BasePort+n-1)
			s.startLocked(inst)
		}
	}
}

// afterReadyLocked reports whether every instance of t's `after` types is
// ready, or, for a type that runs once (restart = "never"), has exited
// with status 0. failed says which one-shot exited otherwise.
func (s *Supervisor) afterReadyLocked(t *ptype) (ok bool, failed string) {
	for _, name := range t.spec.After {
		dep := t.app.typeNamed(name)
		if dep == nil {
			continue
		}
		oneShot := dep.spec.Restart == procfile.RestartNever
		n := 0
		for _, inst := range s.insts {
			if inst.t != dep || inst.remove {
				continue
			}
			switch {
			case !oneShot:
				if !inst.ready {
					return false, ""
				}
			case inst.state != StateExited || inst.exit == nil:
				return false, ""
			case !inst.exit.Success():
				return false, fmt.Sprintf("%s exited with %s", inst.name, inst.exit)
			}
			n++
		}
		if n < dep.scale {
			return false, ""
		}
	}
	return true, ""
}

// startWaitingLocked starts the types of app a that wait for others.
func (s *Supervisor) startWaitingLocked(a *app) {
	for _, t := range a.types {
		if t.waiting {
			s.startTypeLocked(t)
		}
	}
}

func (a *app) typeNamed(name string) *ptype {
	for _, t := range a.types {
		if t.spec.Name == name {
			return t
		}
	}
	return nil
}

// findLocked returns the live instance number n of t (not one being
// replaced).
func (s *Supervisor) findLocked(t *ptype, n int) *instance {
	for _, inst := range s.insts {
		if inst.t == t && inst.num == n && !inst.remove {
			return inst
		}
	}
	return nil
}

func (s *Supervisor) newInstanceLocked(t *ptype, d *def, n, port int) *instance {
	s.nextID++
	name := fmt.Sprintf("%s.%d", t.spec.Name, n)
	if !t.app.first {
		name = t.app.name + "/" + name
	}
	inst := &instance{
		id: s.nextID, t: t, def: d, num: n, name: name, port: port,
		state: StateStopped, since: time.Now(),
		readyC: make(chan struct{}), failC: make(chan struct{}), doneC: make(chan struct{}),
		ring: &ring{name: name, hub: &s.lines},
	}
	if d.p.Listen == "unix" {
		inst.socket = fmt.Sprintf("%s/%s.%d.%d.sock", s.rundir, t.spec.Name, n, inst.id)
	}
	s.insts = append(s.insts, inst)
	s.widthLocked()
	return inst
}

// widthLocked pads names to the longest of the instances that exist or
// the formation asks for, so the first lines already line up.
func (s *Supervisor) widthLocked() {
	w := 0
	for _, inst := range s.insts {
		w = max(w, len(inst.name))
	}
	for _, a := range s.apps {
		for _, t := range a.types {
			if t.scale == 0 {
				continue
			}
			n := len(t.spec.Name) + 1 + len(strconv.Itoa(t.scale))
			if !a.first {
				n += len(a.name) + 1
			}
			w = max(w, n)
		}
	}
	s.out.setWidth(w)
}

// served reports whether inst belongs to the type the HTTP front serves.
func (inst *instance) served() bool {
	sp := inst.def.app
	return inst.t.app.first && sp.Serve.Enabled && inst.t.spec.Name == sp.Serve.Upstream
}

// addr is where inst listens: "unix:/path" or "127.0.0.1:port".
func (inst *instance) addr() string {
	if inst.socket != "" {
		return "unix:" + inst.socket
	}
	return fmt.Sprintf("127.0.0.1:%d", inst.port)
}

func (s *Supervisor) event(kind EventKind, inst *instance) Event {
	ev := Event{Time: time.Now(), Kind: kind, App: inst.t.app.name, Type: inst.t.spec.Name,
		Instance: inst.name, ID: inst.id, Pid: inst.pid, Addr: inst.addr(), Served: inst.served()}
	return ev
}

// fields are the log fields of inst that never change (app and
// instance), safe to read outside the owner goroutine.
func (inst *instance) fields() logrus.Fields {
	return logrus.Fields{"app": inst.t.app.name, "instance": inst.name}
}

// instLog is gsup's log with inst's fields, and the pid of its process
// (its current one, or the last one while it is stopped).
func (s *Supervisor) instLog(inst *instance) *logrus.Entry {
	f := inst.fields()
	if inst.pid != 0 {
		f["pid"] = inst.pid
	}
	return s.log.WithFields(f)
}

func (s *Supervisor) setState(inst *instance, st State) {
	inst.state = st
	inst.since = time.Now()
}

// startLocked starts inst's process.
func (s *Supervisor) startLocked(inst *instance) {
	inst.wantStop, inst.readyFailed, inst.readyShort, inst.ready = false, false, nil, false
	inst.status, inst.health, inst.recycling, inst.hung, inst.hungProbe = "", "", "", false, false
	s.starts++
	inst.marker = fmt.Sprintf("%s#%d", inst.name, s.starts)
	argv, env, err := s.commandLocked(inst)
	var cred *syscall.Credential
	if err == nil {
		cred, err = credential(inst.def.p.User, inst.def.p.Group)
	}
	var p Proc
	if err == nil {
		p, err = s.spawnLocked(inst, argv, env, cred)
	}
	if err != nil {
		inst.pid = 0 // no process: its log lines and events carry no pid
		if errno, ok := shortage(err, spawnShortages); ok {
			s.shortLocked(inst, err, errno)
			return
		}
		s.instLog(inst).Errorf("starting %s: %v", inst.name, err)
		inst.started = time.Now()
		s.afterExitLocked(inst, ExitStatus{Code: 127})
		return
	}
	s.seq++
	inst.seq = s.seq
	inst.env = env
	inst.usage, inst.maxAge = usage{}, ageLimit(inst.def.p.Guards)
	s.memoryMaxLocked(inst)
	inst.proc = p
	inst.pid = p.Pid()
	inst.started = time.Now()
	inst.release = inst.dir()
	if real, err := filepath.EvalSymlinks(inst.release); err == nil {
		inst.release = real
	}
	s.setState(inst, StateStarting)
	s.guard.add(inst.pid)
	if inst.short > 0 {
		s.instLog(inst).Infof("%s started (pid %d) after %d attempts: gsup has its resources back", inst.name, inst.pid, inst.short+1)
		inst.short = 0
	} else {
		s.instLog(inst).Infof("%s started (pid %d)", inst.name, inst.pid)
	}
	s.publish(s.event(EventStarted, inst))
	go func() {
		st := p.Wait()
		s.post(func() { s.exitedLocked(inst, p, st) })
	}()
	s.watchReadyLocked(inst, p)
}

func (s *Supervisor) spawnLocked(inst *instance, argv, env []string, cred *syscall.Credential) (Proc, error) {
	d := inst.def
	r, w, err := outputPipe(d.p.TTY, s.cfg.Stdout)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, name := range d.p.Sockets {
		f := s.cfg.Sockets[name]
		if f == nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("socket %q is not open", name)
		}
		files = append(files, f)
	}
	dir := inst.dir()
	if s.cgroups != nil && inst.cg == nil {
		if inst.cg, err = s.cgroups.create(inst.name, s.starts); err != nil {
			w.Close()
			r.Close()
			return nil, err
		}
	}
	req := StartRequest{Name: inst.name, Argv: argv, Env: env, Dir: dir, Stdout: w, Files: files, Cred: cred, Setpgid: true, Terminal: d.p.TTY}
	if inst.cg != nil {
		req.Cgroup = inst.cg.f
	}
	p, err := s.starter.Start(req)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	s.pumpLocked(inst, r, nil)
	return p, nil
}

// dir is the folder inst's process starts in, as the user named it (its
// type's cwd, else the app's folder): a `current` symlink in it is
// followed afresh at each start, and PWD keeps the name.
func (inst *instance) dir() string {
	if inst.def.p.Cwd != "" {
		return inst.def.p.Cwd
	}
	return inst.def.app.Dir
}

// commandLocked returns the argv and environment of inst's process.
func (s *Supervisor) commandLocked(inst *instance) (argv, env []string, err error) {
	t, d := inst.t, &inst.def.p
	own := map[string]string{
		"PORT":     fmt.Sprint(inst.port),
		"PS":       fmt.Sprintf("%s.%d", t.spec.Name, inst.num),
		"GSUP_APP": t.app.name,
		MarkerEnv:  inst.marker,
	}
	if dir := inst.dir(); dir != "" {
		own["PWD"] = dir
	}
	if inst.socket != "" {
		_ = os.Remove(inst.socket)
		own["GSUP_SOCKET"] = inst.socket
	}
	if d.Ready == "notify" {
		path := fmt.Sprintf("%s/%d.notify", s.rundir, inst.id)
		if inst.notify == nil {
			n, err := listenNotify(path)
			if err != nil {
				return nil, nil, fmt.Errorf("notify socket: %w", err)
			}
			inst.notify = n
		}
		own["NOTIFY_SOCKET"] = path
	}
	if len(d.Sockets) > 0 {
		own["LISTEN_FDS"] = fmt.Sprint(len(d.Sockets))
		own["LISTEN_FDNAMES"] = joinNames(d.Sockets)
	}
	env = procfile.Environ(s.cfg.Environ, inst.def.app.Env, d.Env, own)
	argv = ShellArgv(d.Command)
	if d.Umask >= 0 || len(d.Sockets) > 0 {
		if s.cfg.Self == "" {
			return nil, nil, errors.New("umask and sockets need gsup's own executable")
		}
		helper := []string{s.cfg.Self, ChildArg}
		if d.Umask >= 0 {
			helper = append(helper, "-umask", fmt.Sprintf("%03o", d.Umask))
		}
		argv = append(append(helper, "--"), argv...)
	}
	return argv, env, nil
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ":"
		}
		out += n
	}
	return out
}

// watchReadyLocked starts inst's readiness check.
func (s *Supervisor) watchReadyLocked(inst *instance, p Proc) {
	mode := inst.def.p.Ready
	timeout := inst.def.p.ReadyTimeout
	if timeout <= 0 {
		timeout = procfile.DefaultReadyTimeout
	}
	if mode == "" || mode == "none" {
		s.readyLocked(inst, p)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	inst.probeEnd = cancel
	onTimeout := func(err error) {
		if inst.proc != p || inst.ready || inst.state != StateStarting {
			return
		}
		inst.readyFailed = true
		if _, ok := shortage(err, probeShortages); ok {
			inst.readyShort = err
			s.instLog(inst).Warnf("%s not ready after %v, but gsup could not check it: %v; killing it", inst.name, timeout, err)
		} else {
			s.instLog(inst).Errorf("%s not ready after %v; killing it", inst.name, timeout)
		}
		_ = p.Signal(syscall.SIGKILL, true)
	}
	if mode == "notify" {
		n := inst.notify
		go n.serve(func() { s.post(func() { s.readyLocked(inst, p) }) },
			func(st string) { s.post(func() { inst.status = st }) })
		go func() {
			<-ctx.Done()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				s.post(func() { onTimeout(nil) })
			}
		}()
		return
	}
	addr := inst.addr()
	go func() {
		defer cancel()
		err := s.probe(ctx, mode, addr)
		if err == nil {
			s.post(func() { s.readyLocked(inst, p) })
		} else if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			s.post(func() { onTimeout(err) })
		}
	}()
}

func (s *Supervisor) readyLocked(inst *instance, p Proc) {
	if inst.proc != p || inst.ready || inst.state != StateStarting {
		return
	}
	inst.ready = true
	s.setState(inst, StateRunning)
	if inst.def.p.Ready != "" && inst.def.p.Ready != "none" {
		s.instLog(inst).Infof("%s ready", inst.name)
	}
	s.publish(s.event(EventReady, inst))
	s.watchHealthLocked(inst, p)
	select {
	case <-inst.readyC:
	default:
		close(inst.readyC)
	}
	s.startWaitingLocked(inst.t.app)
}

// groupWaiter is a Proc that tells whether any process is left in its
// process group (osProc, adoptedProc).
type groupWaiter interface {
	GroupAlive() bool
}

// groupPoll is how often the group of a process that exited during a
// stop is looked at (awaitGroupLocked).
const groupPoll = 10 * time.Millisecond

// exitedLocked handles the exit of inst's process p. When p's whole group
// was sent the stop signal and the group outlives p, the rest of the group
// has until the stop's KILL to end, as the main process had (systemd's
// KillMode=control-group): the exit is handled once the group is empty.
// Otherwise, what is left of the group is killed at once.
func (s *Supervisor) exitedLocked(inst *instance, p Proc, st ExitStatus) {
	if inst.proc != p {
		return
	}
	if g, ok := p.(groupWaiter); ok && inst.groupStop == p && g.GroupAlive() {
		s.awaitGroupLocked(inst, p, g, st)
		return
	}
	s.endedLocked(inst, p, st)
}

// awaitGroupLocked handles p's exit once nothing is left in its group. The
// stop's timer, still armed, kills the group at stop_timeout; the wait
// ends a little after that whatever the group does.
func (s *Supervisor) awaitGroupLocked(inst *instance, p Proc, g groupWaiter, st ExitStatus) {
	limit := time.Now().Add(inst.def.p.StopTimeout + 5*time.Second)
	go func() {
		t := time.NewTicker(groupPoll)
		defer t.Stop()
		for range t.C {
			if !g.GroupAlive() || time.Now().After(limit) {
				break
			}
		}
		s.post(func() {
			if inst.proc == p {
				s.endedLocked(inst, p, st)
			}
		})
	}()
}

// endedLocked handles the end of inst's process p and of its group.
func (s *Supervisor) endedLocked(inst *instance, p Proc, st ExitStatus) {
	inst.groupStop = nil
	s.killLocked(inst, p) // whatever is left of the group, the cgroup
	if inst.cg != nil {
		// Each start gets a new cgroup: the kernel kills a process
		// cloned into a cgroup that was once killed (cgroup.kill).
		go inst.cg.remove()
		inst.cg = nil
	}
	s.guard.remove(inst.pid)
	inst.proc = nil
	s.signalOrphansLocked(syscall.SIGKILL, false)
	if inst.timer != nil {
		inst.timer.Stop()
		inst.timer = nil
	}
	if inst.probeEnd != nil {
		inst.probeEnd()
		inst.probeEnd = nil
	}
	if inst.healthEnd != nil {
		inst.healthEnd()
		inst.healthEnd = nil
	}
	if inst.notify != nil {
		inst.notify.close()
		inst.notify = nil
	}
	inst.ready = false
	inst.exit = &st
	if inst.wantStop || s.shutdown {
		s.setState(inst, StateStopped)
		s.instLog(inst).Infof("%s stopped (%s)", inst.name, st)
		ev := s.event(EventStopped, inst)
		ev.Status, ev.Code = st.String(), st.Code
		s.publish(ev)
		if inst.restartAfter && !s.shutdown && !inst.remove {
			inst.restartAfter = false
			s.startLocked(inst)
			return
		}
		s.doneLocked(inst)
		return
	}
	s.afterExitLocked(inst, st)
}

// afterExitLocked applies the restart policy to an exit inst did on its
// own (or a failed start).
func (s *Supervisor) afterExitLocked(inst *instance, st ExitStatus) {
	now := time.Now()
	uptime := now.Sub(inst.started)
	policyUptime, success := uptime, st.Success()
	if inst.readyFailed {
		// Never ready: a failed start, however long it ran.
		policyUptime, success = 0, false
	}
	if err := inst.readyShort; err != nil {
		// gsup's own readiness check ran short of resources: not the
		// app's failure, and not counted towards fatal.
		ev := s.event(EventExited, inst)
		ev.Status, ev.Code = st.String(), st.Code
		s.publish(ev)
		errno, _ := shortage(err, probeShortages)
		s.shortLocked(inst, fmt.Errorf("readiness check: %w", err), errno)
		return
	}
	select {
	case <-inst.readyC:
	case <-inst.failC:
	default:
		close(inst.failC) // it never was ready
	}
	d, delay := inst.rs.decide(inst.def.p.Restart, success, policyUptime, now)
	ev := s.event(EventExited, inst)
	ev.Status, ev.Code, ev.Final = st.String(), st.Code, d != decideRestart
	s.publish(ev)
	switch d {
	case decideDone:
		s.setState(inst, StateExited)
		if success {
			s.instLog(inst).Infof("%s exited with %s; not restarted (restart = %s)", inst.name, st, inst.def.p.Restart)
		} else {
			s.instLog(inst).Errorf("%s exited with %s; not restarted (restart = %s)", inst.name, st, inst.def.p.Restart)
		}
		s.startWaitingLocked(inst.t.app)
		if !success && inst.def.p.Critical {
			s.failLocked(fmt.Errorf("%w: critical process %s exited with %s", ErrFailed, inst.name, st))
		}
		s.doneLocked(inst)
	case decideFatal:
		s.setState(inst, StateFatal)
		s.instLog(inst).Errorf("%s exited with %s; it exited %d times within %v, each soon after starting: fatal, not restarted until asked", inst.name, st, flapMaxQuick+1, flapWindow)
		ev := s.event(EventFatal, inst)
		ev.Status, ev.Code = st.String(), st.Code
		s.publish(ev)
		s.doneLocked(inst)
		if inst.def.p.Critical {
			s.failLocked(fmt.Errorf("%w: critical process %s is fatal", ErrFailed, inst.name))
		}
	case decideRestart:
		inst.restarts++
		inst.t.count(inst.num, ReasonExit)
		ev := s.event(EventRestarting, inst)
		ev.Delay = delay
		s.publish(ev)
		if delay == 0 {
			s.instLog(inst).Warnf("%s exited with %s after %v; restarting", inst.name, st, uptime.Round(time.Millisecond))
			s.startLocked(inst)
			return
		}
		s.instLog(inst).Warnf("%s exited with %s after %v; restarting in %v", inst.name, st, uptime.Round(time.Millisecond), delay)
		s.backoffLocked(inst, delay)
	}
}

// backoffLocked puts inst in backoff and starts it again after delay.
func (s *Supervisor) backoffLocked(inst *instance, delay time.Duration) {
	s.setState(inst, StateBackoff)
	inst.due = time.Now().Add(delay)
	inst.timer = time.AfterFunc(delay, func() {
		s.post(func() {
			if inst.state == StateBackoff && !s.shutdown {
				inst.timer = nil
				s.startLocked(inst)
			}
		})
	})
}

// doneLocked marks inst as having reached a final state.
func (s *Supervisor) doneLocked(inst *instance) {
	if !inst.doneOnce {
		inst.doneOnce = true
		close(inst.doneC)
	}
	if inst.remove {
		for i, x := range s.insts {
			if x == inst {
				s.insts = append(s.insts[:i], s.insts[i+1:]...)
				break
			}
		}
		if inst.socket != "" {
			_ = os.Remove(inst.socket)
		}
		if inst.cg != nil {
			go inst.cg.remove()
			inst.cg = nil
		}
		s.widthLocked()
	}
	s.checkDoneLocked()
}

// checkDoneLocked ends Run when there is nothing left to supervise.
func (s *Supervisor) checkDoneLocked() {
	if s.finished {
		return
	}
	if s.shutdown {
		if s.releasing {
			return
		}
		for _, inst := range s.insts {
			switch inst.state {
			case StateStarting, StateRunning, StateStopping:
				return
			}
		}
		s.finished = true
		return
	}
	if len(s.insts) == 0 {
		return
	}
	failed := 0
	for _, inst := range s.insts {
		if inst.state != StateExited {
			return
		}
		if inst.exit != nil && !inst.exit.Success() {
			failed++
		}
	}
	for _, t := range s.allTypes() {
		if t.waiting && !t.blocked {
			return
		}
	}
	if failed > 0 {
		s.result = fmt.Errorf("%w: every process has exited, %d with a non-zero status", ErrFailed, failed)
	} else {
		s.log.Info("every process has exited with status 0")
	}
	s.finished = true
}

// stopLocked stops inst. With drain, a served ready instance first leaves
// rotation and is drained.
func (s *Supervisor) stopLocked(inst *instance, drain bool) {
	switch inst.state {
	case StateBackoff:
		if inst.timer != nil {
			inst.timer.Stop()
			inst.timer = nil
		}
		s.setState(inst, StateStopped)
		s.publish(s.event(EventStopped, inst))
		s.doneLocked(inst)
	case StateStopped, StateExited, StateFatal:
		if inst.remove {
			s.doneLocked(inst)
		}
	case StateStarting, StateRunning:
		inst.wantStop = true
		p := inst.proc
		wasReady := inst.ready
		s.setState(inst, StateStopping)
		if drain && wasReady && inst.served() && s.cfg.Drain != nil && !inst.hung {
			ev := s.event(EventDraining, inst)
			s.publish(ev)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
				defer cancel()
				s.cfg.Drain(ctx, ev)
				s.post(func() {
					if inst.proc == p {
						s.signalStopLocked(inst)
					}
				})
			}()
			return
		}
		s.signalStopLocked(inst)
	}
}

// signalStopLocked sends inst's stop signal to its group (to its main
// process only with kill_mode "mixed") and arms the SIGKILL timer.
func (s *Supervisor) signalStopLocked(inst *instance) {
	p := inst.proc
	if p == nil {
		return
	}
	sig := inst.def.p.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	timeout := inst.def.p.StopTimeout
	group := inst.def.p.KillMode != "mixed"
	if err := p.Signal(sig, group); err != nil {
		s.instLog(inst).Warnf("sending %s to %s: %v", signalName(sig), inst.name, err)
	}
	if group {
		inst.groupStop = p
	}
	if group && s.tracksOrphans() {
		marker := inst.marker
		s.signalAdopted(sig, func(m string) bool { return m == marker })
	}
	s.publish(s.event(EventStopping, inst))
	if inst.timer != nil {
		inst.timer.Stop()
	}
	inst.timer = time.AfterFunc(timeout, func() {
		s.post(func() {
			if inst.proc == p {
				s.instLog(inst).Warnf("%s did not stop within %v of %s; sending KILL", inst.name, timeout, signalName(sig))
				s.killLocked(inst, p)
			}
		})
	})
}

// killLocked sends SIGKILL to p's process group and kills everything in
// inst's cgroup.
func (s *Supervisor) killLocked(inst *instance, p Proc) {
	_ = p.Signal(syscall.SIGKILL, true)
	if inst.cg != nil {
		if err := inst.cg.kill(); err != nil {
			s.instLog(inst).Warnf("killing the cgroup of %s: %v", inst.name, err)
		}
	}
}
