package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gsup/procfile"
)

// ErrStopped is returned by requests made after Run ended.
var ErrStopped = errors.New("supervisor is not running")

// ErrStopping is returned by requests that would start or replace
// processes while gsup stops.
var ErrStopping = errors.New("gsup is stopping")

// ErrNotFound is found (errors.Is) in the errors about a target, app or
// process type that does not exist; their messages name it.
var ErrNotFound = errors.New("not found")

// notFoundError is an error about something that does not exist.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

func notFound(format string, args ...any) error {
	return &notFoundError{msg: fmt.Sprintf(format, args...)}
}

// AppInfo describes one app the supervisor runs.
type AppInfo struct {
	Name  string
	First bool           // the app gsup started with: it cannot be unloaded
	Spec  *procfile.Spec // what it runs now; shared, never changed
}

// Apps returns the apps, the first app first.
func (s *Supervisor) Apps() ([]AppInfo, error) {
	var out []AppInfo
	if !s.call(func() {
		for _, a := range s.apps {
			out = append(out, AppInfo{Name: a.name, First: a.first, Spec: a.spec})
		}
	}) {
		return nil, ErrStopped
	}
	return out, nil
}

// Status is a snapshot of one instance.
type Status struct {
	ID       uint64    `json:"id"`
	App      string    `json:"app"`
	Type     string    `json:"type"`
	Name     string    `json:"name"` // "web.1", or "app/web.1" for a loaded app
	Pid      int       `json:"pid"`  // 0 when not running
	State    State     `json:"state"`
	Since    time.Time `json:"since"`   // when it entered State
	Started  time.Time `json:"started"` // when its process last started
	Restarts int       `json:"restarts"`
	Ready    bool      `json:"ready"`
	Port     int       `json:"port"`
	Socket   string    `json:"socket,omitempty"`
	Release  string    `json:"release,omitempty"` // the folder its process started in, symlinks resolved (its release)
	Exit     string    `json:"exit,omitempty"`    // last exit status
	Served   bool      `json:"served"`
	Message  string    `json:"message,omitempty"` // last STATUS= from a notify child
	Health   string    `json:"health,omitempty"`  // "ok", "failing N/M", "sick"; "" without health checks
	// Replacing says why the instance is being replaced ("health", "hang",
	// "max_rss", ...); "" when it is not.
	Replacing Reason `json:"replacing,omitempty"`
	// Procs counts the instance's processes: its cgroup's, or without
	// cgroups its descendants, group and adopted orphans (0 with a fake
	// Starter).
	Procs int `json:"procs"`
	// MemoryBytes and CPUSeconds are the resident memory and CPU time of
	// all the instance's processes, as the resource guards last measured
	// them (every second).
	MemoryBytes int64   `json:"memory_bytes"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	// RestartReasons counts the restarts and replacements of this
	// instance number of its type by reason, since the type was loaded;
	// HealthChecks counts its active health checks by result ("ok",
	// "failed").
	RestartReasons map[Reason]int `json:"restart_reasons,omitempty"`
	HealthChecks   map[string]int `json:"health_checks,omitempty"`
}

// Status returns every instance, in app and type order.
func (s *Supervisor) Status() ([]Status, error) {
	var out []Status
	ok := s.call(func() {
		procs, _ := s.procsLocked()
		for _, inst := range s.ordered() {
			st := Status{ID: inst.id, App: inst.t.app.name, Type: inst.t.spec.Name, Name: inst.name,
				State: inst.state, Since: inst.since, Restarts: inst.restarts, Ready: inst.ready,
				Port: inst.port, Socket: inst.socket, Served: inst.served(), Message: inst.status, Procs: len(procs[inst]),
				MemoryBytes: inst.usage.rss, CPUSeconds: inst.usage.cpu,
				Health: inst.health, Replacing: inst.recycling,
				RestartReasons: maps.Clone(inst.t.restarts[inst.num]), HealthChecks: maps.Clone(inst.t.checks[inst.num])}
			if inst.proc != nil {
				st.Pid, st.Started, st.Release = inst.pid, inst.started, inst.release
			}
			if inst.exit != nil {
				st.Exit = inst.exit.String()
			}
			out = append(out, st)
		}
	})
	if !ok {
		return nil, ErrStopped
	}
	return out, nil
}

// ordered returns the instances sorted by app, type order, number, age.
func (s *Supervisor) ordered() []*instance {
	appIdx := map[*app]int{}
	for i, a := range s.apps {
		appIdx[a] = i
	}
	typeIdx := map[*ptype]int{}
	for _, a := range s.apps {
		for i, t := range a.types {
			typeIdx[t] = i
		}
	}
	out := append([]*instance(nil), s.insts...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if appIdx[a.t.app] != appIdx[b.t.app] {
			return appIdx[a.t.app] < appIdx[b.t.app]
		}
		if typeIdx[a.t] != typeIdx[b.t] {
			return typeIdx[a.t] < typeIdx[b.t]
		}
		if a.num != b.num {
			return a.num < b.num
		}
		return a.id < b.id
	})
	return out
}

// match resolves targets — "web", "web.2", "APP", "APP/web", "APP/web.2"
// — to instances. An unknown target is an error naming it.
func (s *Supervisor) matchLocked(targets []string) ([]*instance, error) {
	seen := map[*instance]bool{}
	var out []*instance
	add := func(inst *instance) {
		if !seen[inst] && !inst.remove {
			seen[inst] = true
			out = append(out, inst)
		}
	}
	for _, target := range targets {
		n := len(out)
		appName, rest, hasApp := strings.Cut(target, "/")
		for _, inst := range s.ordered() {
			a := inst.t.app
			switch {
			case hasApp:
				if a.name == appName && (inst.t.spec.Name == rest || instName(inst) == rest) {
					add(inst)
				}
			case a.first && (inst.t.spec.Name == target || instName(inst) == target):
				add(inst)
			case a.name == target:
				add(inst)
			}
		}
		if len(out) == n && !s.knownTarget(target) {
			return nil, notFound("no process matches %q", target)
		}
	}
	return out, nil
}

// knownTarget reports a target naming an app or type that has no
// instance now (scaled to 0): not an error.
func (s *Supervisor) knownTarget(target string) bool {
	appName, rest, hasApp := strings.Cut(target, "/")
	for _, a := range s.apps {
		if hasApp && a.name != appName {
			continue
		}
		if !hasApp && a.name == target {
			return true
		}
		name := target
		if hasApp {
			name = rest
		}
		if (hasApp || a.first) && a.typeNamed(name) != nil {
			return true
		}
	}
	return false
}

func instName(inst *instance) string { return inst.t.spec.Name + "." + strconv.Itoa(inst.num) }

// Stop stops the targets' instances; they stay listed as stopped until
// restarted. It returns the names it stopped.
func (s *Supervisor) Stop(targets []string) ([]string, error) {
	return s.eachMatched(targets, func(inst *instance) error {
		inst.restartAfter = false
		s.stopLocked(inst, true)
		return nil
	})
}

// eachMatched calls f, in the owner goroutine, on each instance targets
// match, and returns the names of those f acted on: f returns errSkip to
// pass an instance over, another error to report it. The error joins a
// matching error and f's.
func (s *Supervisor) eachMatched(targets []string, f func(*instance) error) ([]string, error) {
	var names []string
	var err error
	if !s.call(func() {
		var insts []*instance
		insts, err = s.matchLocked(targets)
		for _, inst := range insts {
			switch e := f(inst); {
			case e == errSkip:
			case e != nil:
				err = errors.Join(err, e)
			default:
				names = append(names, inst.name)
			}
		}
	}) {
		return nil, ErrStopped
	}
	return names, err
}

// errSkip is what an eachMatched function returns for an instance it
// passes over.
var errSkip = errors.New("skipped")

// Restart restarts the targets' instances (starting stopped, exited and
// fatal ones). Served instances are replaced the rolling way (the new one
// ready before the old one stops); others stop, then start. It returns the
// names it restarted without waiting for them.
func (s *Supervisor) Restart(targets []string) ([]string, error) {
	var names []string
	var served []*instance
	var err error
	if !s.call(func() {
		var insts []*instance
		insts, err = s.matchLocked(targets)
		if err != nil {
			return
		}
		for _, inst := range insts {
			names = append(names, inst.name)
			inst.rs.reset()
			switch inst.state {
			case StateStopped, StateExited, StateFatal:
				s.startLocked(inst)
			case StateBackoff:
				inst.timer.Stop()
				inst.timer = nil
				s.startLocked(inst)
			case StateStopping:
				inst.restartAfter = true
			default:
				if inst.served() {
					served = append(served, inst)
					continue
				}
				inst.restartAfter = true
				s.stopLocked(inst, false)
			}
		}
	}) {
		return nil, ErrStopped
	}
	if len(served) > 0 {
		go func() {
			if err := s.replace(served); err != nil {
				s.log.Errorf("restart: %v", err)
			}
		}()
	}
	return names, err
}

// Signal sends sig to the main process of the targets' running instances
// (not the group: a Gunicorn worker dies on HUP, so its master must get
// it). It returns the names signalled.
func (s *Supervisor) Signal(sig syscall.Signal, targets []string) ([]string, error) {
	return s.eachMatched(targets, func(inst *instance) error {
		if inst.proc == nil {
			return errSkip
		}
		if err := inst.proc.Signal(sig, false); err != nil {
			return fmt.Errorf("signalling %s: %w", inst.name, err)
		}
		return nil
	})
}

// Scale sets the number of instances of appName's type typ (appName ""
// = the first app). Surplus instances (highest numbers first) are
// drained and stopped; missing ones are started.
func (s *Supervisor) Scale(appName, typ string, n int) error {
	if n < 0 {
		return fmt.Errorf("scale %s=%d: count must not be negative", typ, n)
	}
	var err error
	if !s.call(func() { err = s.scaleLocked(appName, typ, n) }) {
		return ErrStopped
	}
	return err
}

func (s *Supervisor) scaleLocked(appName, typ string, n int) error {
	a := s.appNamed(appName)
	if a == nil {
		return notFound("no app %q", appName)
	}
	t := a.typeNamed(typ)
	if t == nil {
		return notFound("no process type %q", typ)
	}
	if s.shutdown {
		return ErrStopping
	}
	if t.scale != n {
		s.log.Infof("scaling %s from %d to %d", typ, t.scale, n)
	}
	t.scale = n
	s.widthLocked()
	for _, inst := range append([]*instance(nil), s.insts...) {
		if inst.t == t && inst.num > n && !inst.remove {
			inst.remove = true
			s.stopLocked(inst, true)
		}
	}
	s.startTypeLocked(t)
	return nil
}

func (s *Supervisor) appNamed(name string) *app {
	for _, a := range s.apps {
		if name == "" && a.first || a.name == name {
			return a
		}
	}
	return nil
}

// ScaleServed adds delta instances to the served type of the first app
// (TTIN/TTOU); it never goes below one, as Gunicorn's TTOU.
func (s *Supervisor) ScaleServed(delta int) {
	s.post(func() {
		if len(s.apps) == 0 {
			return
		}
		a := s.apps[0]
		t := a.typeNamed(a.spec.Serve.Upstream)
		if t == nil {
			s.log.Warnf("no %q process type to scale", a.spec.Serve.Upstream)
			return
		}
		n := max(t.scale+delta, 1)
		if err := s.scaleLocked("", t.spec.Name, n); err != nil {
			s.log.Warn(err)
		}
	})
}

// Reopen reopens every per-process log file and sends each running
// instance whose type sets reopen_signal that signal.
func (s *Supervisor) Reopen() {
	s.post(func() {
		for _, t := range s.allTypes() {
			if t.logFile != nil {
				if err := t.logFile.Reopen(); err != nil {
					s.log.Errorf("reopening %s: %v", t.logFile.Path(), err)
				}
			}
		}
		for _, inst := range s.insts {
			if sig := inst.def.p.ReopenSignal; sig != 0 && inst.proc != nil {
				if err := inst.proc.Signal(sig, false); err != nil {
					s.instLog(inst).Warnf("sending %s to %s: %v", signalName(sig), inst.name, err)
				}
			}
		}
	})
}

// Reap reaps adopted orphans (call it on SIGCHLD). It only acts as the
// child subreaper or PID 1.
func (s *Supervisor) Reap() { s.post(s.reapLocked) }

// reapLocked starts a reaping pass, or, while one runs, asks for another
// after it: a SIGCHLD that arrives while a pass scans must not be lost, or
// the zombie it announced waits for the next one.
func (s *Supervisor) reapLocked() {
	if s.os == nil || !s.cfg.Subreaper {
		return
	}
	if s.reaping {
		s.reapAgain = true
		return
	}
	s.signalOrphansLocked(syscall.SIGKILL, false)
	s.reaping, s.reapAgain = true, false
	go func() {
		for _, pid := range s.os.reapOrphans() {
			s.log.Debugf("reaped orphan pid %d", pid)
		}
		s.post(func() {
			s.reaping = false
			if s.reapAgain {
				s.reapLocked()
			}
		})
	}()
}

// Lines returns the recent output lines of the targets' instances (all
// when targets is empty), oldest first.
func (s *Supervisor) Lines(targets []string) ([]Line, error) {
	var rings []*ring
	var err error
	if !s.call(func() {
		insts := s.ordered()
		if len(targets) > 0 {
			insts, err = s.matchLocked(targets)
		}
		for _, inst := range insts {
			rings = append(rings, inst.ring)
		}
	}) {
		return nil, ErrStopped
	}
	var out []Line
	for _, r := range rings {
		out = append(out, r.snapshot()...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, err
}

// Follow returns the new output lines of the targets' instances (every
// instance when targets is empty; instances started later included when
// they match a type or app), until cancel. Lines a slow follower cannot
// take are dropped.
func (s *Supervisor) Follow(targets []string) (<-chan Line, func(), error) {
	var err error
	first := ""
	if len(targets) > 0 && !s.call(func() {
		_, err = s.matchLocked(targets)
		if len(s.apps) > 0 {
			first = s.apps[0].name
		}
	}) {
		return nil, nil, ErrStopped
	}
	if err != nil {
		return nil, nil, err
	}
	want := func(name string) bool {
		if len(targets) == 0 {
			return true
		}
		for _, t := range targets {
			if lineMatches(name, t, first) {
				return true
			}
		}
		return false
	}
	ch, cancel := s.lines.follow(want)
	return ch, cancel, nil
}

// lineMatches reports whether instance name ("web.1", "app/web.1")
// matches a target ("web", "web.1", "app", "app/web"); first is the first
// app's name, whose instances carry no prefix.
func lineMatches(name, target, first string) bool {
	if name == target {
		return true
	}
	app, rest, hasApp := strings.Cut(name, "/")
	if !hasApp {
		rest, app = name, ""
	}
	typ, _, _ := strings.Cut(rest, ".")
	switch {
	case app == "":
		return target == typ || target == first || target == first+"/"+typ || target == first+"/"+rest
	default:
		return target == app || target == app+"/"+typ
	}
}

// Summary reports whether every instance the formation asks for is
// ready (a process that exited for good counts as done, a fatal one as
// not ready), with a one-line status such as "web 2/2 ready, worker 1/1
// ready".
func (s *Supervisor) Summary() (ready bool, status string, err error) {
	if !s.call(func() {
		ready = true
		var parts []string
		for _, a := range s.apps {
			for _, t := range a.types {
				if t.scale == 0 {
					continue
				}
				n := 0
				for _, inst := range s.insts {
					if inst.t == t && !inst.remove && (inst.ready || inst.state == StateExited) {
						n++
					}
				}
				if n < t.scale || t.waiting {
					ready = false
				}
				name := t.spec.Name
				if !a.first {
					name = a.name + "/" + name
				}
				parts = append(parts, fmt.Sprintf("%s %d/%d ready", name, n, t.scale))
			}
		}
		status = strings.Join(parts, ", ")
		if s.releasing {
			ready, status = false, "release running"
		}
		if s.shutdown {
			ready, status = false, "stopping"
		}
	}) {
		return false, "", ErrStopped
	}
	return ready, status, nil
}

// Ping reports whether the supervisor loop answers within timeout (the
// systemd watchdog's health check).
func (s *Supervisor) Ping(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		s.call(func() {})
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}
