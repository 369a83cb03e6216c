package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"gsup/procfile"
)

// readySlack is added to ready_timeout when a rollout waits for an
// instance, so the instance's own timeout fires first.
const readySlack = time.Second

// ErrRolledBack is found (errors.Is) in the error of a reload or load
// that failed and was undone.
var ErrRolledBack = errors.New("rolled back")

// step replaces (or starts) instance number num of type t with one
// running d.
type step struct {
	t   *ptype
	num int
	old *instance // nil: start a new one
	d   *def
}

// Reload makes the first app run spec (the same as `load` of the first
// app's name): every instance is replaced one at a time, in type order.
// Instances of the served type are started before their predecessor stops
// (on the next free port of the type's block) and must be ready first;
// others stop, then start. Types that are gone, and instances beyond the
// new counts, are stopped once every replacement is made.
//
// A reload is one unit. When a new instance exits before it is ready, is
// not ready in time, or gsup begins to stop, the replacements already made
// are undone the same rolling way (the old definition started again where
// an old instance stopped, the new instances drained and stopped), the old
// definition stays in force for every later restart and scale, and the
// error says which instance failed, how, and its last output lines.
func (s *Supervisor) Reload(spec *procfile.Spec) error {
	return s.rollout(spec, "")
}

// Load adds spec as an app, or replaces the app of the same name the way
// Reload does. It returns when the app's instances have been started (or
// replaced).
func (s *Supervisor) Load(spec *procfile.Spec) error {
	return s.rollout(spec, spec.App)
}

// Unload stops an app's instances and forgets the app. The first app
// cannot be unloaded.
func (s *Supervisor) Unload(name string) error {
	var err error
	var insts []*instance
	if !s.call(func() {
		a := s.appNamed(name)
		switch {
		case a == nil:
			err = fmt.Errorf("no app %q", name)
			return
		case a.first:
			err = fmt.Errorf("app %q is the first app; stop gsup instead", name)
			return
		}
		for _, inst := range s.insts {
			if inst.t.app == a {
				inst.remove = true
				insts = append(insts, inst)
			}
		}
		for _, inst := range insts {
			s.stopLocked(inst, false)
		}
		for i, x := range s.apps {
			if x == a {
				s.apps = append(s.apps[:i], s.apps[i+1:]...)
				break
			}
		}
		s.log.Infof("app %s unloaded", name)
		s.events.publish(Event{Time: time.Now(), Kind: EventUnloaded, App: name})
	}) {
		return ErrStopped
	}
	if err != nil {
		return err
	}
	for _, inst := range insts {
		select {
		case <-inst.doneC:
		case <-s.quit:
			return ErrStopped
		}
	}
	return nil
}

func (s *Supervisor) rollout(spec *procfile.Spec, appName string) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var ctx context.Context
	name := ""
	if !s.call(func() {
		ctx = s.rolloutCtx
		if a := s.appNamed(appName); a != nil && !s.shutdown {
			name = a.name
			s.events.publish(Event{Time: time.Now(), Kind: EventReloading, App: a.name})
		}
	}) {
		return ErrStopped
	}
	if ctx.Err() != nil {
		return ErrStopping
	}
	if err := s.runRelease(ctx, spec); err != nil {
		err = fmt.Errorf("%w; %w: nothing was replaced", err, ErrRolledBack)
		if name != "" {
			s.post(func() {
				s.events.publish(Event{Time: time.Now(), Kind: EventReloaded, App: name, Message: "reload failed: " + err.Error()})
			})
		}
		return err
	}
	var pl *plan
	var isNew bool
	if !s.call(func() {
		if s.shutdown {
			return
		}
		a := s.appNamed(appName)
		if a == nil {
			isNew = true
			s.loadLocked(spec)
			s.log.Infof("app %s loaded", spec.App)
			return
		}
		pl = s.planLocked(a, spec, appName != "")
	}) {
		return ErrStopped
	}
	if isNew {
		return nil
	}
	if pl == nil || ctx.Err() != nil {
		return ErrStopping
	}
	made, err := s.runSteps(ctx, pl.steps)
	if err == nil {
		s.call(func() { s.commitLocked(pl) })
	} else {
		out := ""
		if len(made) > 0 && !errors.Is(err, ErrStopped) && !errors.Is(err, ErrStopping) {
			out = s.lastLines(made[len(made)-1].fresh)
		}
		s.rollBack(ctx, pl, made)
		err = fmt.Errorf("%w; %w: %s keeps its running definition%s", err, ErrRolledBack, pl.a.name, out)
	}
	msg := "done"
	if err != nil {
		msg = "reload failed: " + err.Error()
	}
	s.post(func() {
		s.events.publish(Event{Time: time.Now(), Kind: EventReloaded, App: pl.a.name, Message: msg})
	})
	return err
}

// plan is a rollout of app a to spec: the replacements to make, and what
// becomes the definition in force once they are made.
type plan struct {
	a     *app
	spec  *procfile.Spec  // spec under the app's name
	types []*ptype        // the app's types once committed, in spec order
	defs  map[*ptype]*def // each one's new definition
	added map[*ptype]bool // types the app did not have
	steps []step
}

// planLocked lists the replacements that switch app a to spec; nothing
// changes yet. With onlyChanged (load of an app that runs), the running
// instances of a type whose definition and environment did not change
// are kept.
func (s *Supervisor) planLocked(a *app, spec *procfile.Spec, onlyChanged bool) *plan {
	old := map[string]*ptype{}
	unchanged := map[string]bool{}
	sameEnv := maps.Equal(a.spec.Env, spec.Env) && a.spec.Dir == spec.Dir
	for _, t := range a.types {
		old[t.spec.Name] = t
		if p := spec.Lookup(t.spec.Name); onlyChanged && sameEnv && p != nil && sameProcess(t.spec, *p) {
			unchanged[t.spec.Name] = true
		}
	}
	spec2 := *spec
	spec2.App = a.name
	pl := &plan{a: a, spec: &spec2, defs: map[*ptype]*def{}, added: map[*ptype]bool{}}
	for _, p := range spec2.Processes {
		t := old[p.Name]
		if t == nil {
			t = s.newTypeLocked(a, p)
			pl.added[t] = true
		}
		pl.types = append(pl.types, t)
		d := &def{p: p, app: &spec2}
		pl.defs[t] = d
		for n := 1; n <= p.Scale; n++ {
			prev := s.findLocked(t, n)
			if prev != nil && unchanged[p.Name] {
				prev.def = d
				continue
			}
			pl.steps = append(pl.steps, step{t: t, num: n, old: prev, d: d})
		}
	}
	return pl
}

// commitLocked makes pl's definitions the ones in force, and stops the
// types that are gone and the instances beyond the new counts.
func (s *Supervisor) commitLocked(pl *plan) {
	a := pl.a
	for _, t := range a.types {
		if pl.defs[t] != nil {
			continue
		}
		s.log.Infof("process type %s is gone; stopping it", t.spec.Name)
		s.stopTypeLocked(t, 0)
		if t.logFile != nil {
			t.logFile.Close()
		}
	}
	a.spec = pl.spec
	a.types = pl.types
	for _, t := range pl.types {
		p := pl.defs[t].p
		if !pl.added[t] && t.spec.LogFile != p.LogFile {
			if t.logFile != nil {
				t.logFile.Close()
				t.logFile = nil
			}
			if p.LogFile != "" {
				if lf, err := OpenLogFile(p.LogFile); err != nil {
					s.log.Errorf("%s: %v; its output goes to stdout", p.Name, err)
				} else {
					t.logFile = lf
				}
			}
		}
		t.spec = p
		t.scale = p.Scale
		s.stopTypeLocked(t, t.scale)
	}
	s.widthLocked()
}

// stopTypeLocked drains and stops t's instances numbered above n.
func (s *Supervisor) stopTypeLocked(t *ptype, n int) {
	for _, inst := range s.ordered() {
		if inst.t == t && !inst.remove && inst.num > n {
			inst.remove = true
			s.stopLocked(inst, true)
		}
	}
}

// rollBack undoes the replacements made (newest first): where an old
// instance was stopped, one with its definition replaces the new one the
// same way the new one came; a new instance that replaced nothing is
// drained and stopped. A type the plan added is dropped.
func (s *Supervisor) rollBack(ctx context.Context, pl *plan, made []replacement) {
	s.log.Warnf("rolling back the reload of %s", pl.a.name)
	for _, r := range slices.Backward(made) {
		if ctx.Err() != nil {
			return
		}
		if r.oldDef != nil && r.oldStopped {
			back := step{t: r.st.t, num: r.st.num, old: r.fresh, d: r.oldDef}
			var stopped bool
			s.call(func() { stopped = r.fresh.remove })
			if stopped {
				// Already stopped (it failed): start the old one once it is gone.
				if err := s.waitDone(ctx, r.fresh); err != nil {
					return
				}
				back.old = nil
			}
			if _, err := s.runStep(ctx, back); err != nil {
				s.log.WithFields(r.fresh.fields()).Errorf("rolling back %s: %v", r.fresh.name, err)
			}
			continue
		}
		s.call(func() {
			if !r.fresh.remove {
				r.fresh.remove = true
				s.stopLocked(r.fresh, true)
			}
		})
	}
	s.call(func() {
		for t := range pl.added {
			s.stopTypeLocked(t, 0)
			if t.logFile != nil {
				t.logFile.Close()
			}
		}
	})
}

// replace replaces the given served instances one at a time with the
// definition in force.
func (s *Supervisor) replace(insts []*instance) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var steps []step
	var ctx context.Context
	if !s.call(func() {
		ctx = s.rolloutCtx
		for _, inst := range insts {
			if !inst.remove {
				steps = append(steps, step{t: inst.t, num: inst.num, old: inst, d: inst.t.current()})
			}
		}
	}) {
		return ErrStopped
	}
	_, err := s.runSteps(ctx, steps)
	return err
}

// replacement is one step made (or begun): the instance it started, and
// whether the instance it replaced was stopped.
type replacement struct {
	st         step
	fresh      *instance
	oldDef     *def // the replaced instance's definition; nil = it replaced none
	oldStopped bool
}

// runSteps makes the steps in order; on error, made lists the steps
// begun, the failed one last when it stopped an old instance.
func (s *Supervisor) runSteps(ctx context.Context, steps []step) (made []replacement, err error) {
	for _, st := range steps {
		if ctx.Err() != nil {
			return made, ErrStopping
		}
		r, err := s.runStep(ctx, st)
		if r.fresh != nil {
			made = append(made, r)
		}
		if err != nil {
			return made, err
		}
	}
	return made, nil
}

func (s *Supervisor) runStep(ctx context.Context, st step) (replacement, error) {
	r := replacement{st: st}
	var fresh, old *instance
	rolling := false
	if !s.call(func() {
		old = st.old
		if old != nil && old.remove {
			old = nil // stopped meanwhile (scale, unload)
		}
		if s.shutdown {
			return
		}
		if old != nil {
			r.oldDef = old.def
		}
		alive := old != nil && (old.state == StateRunning || old.state == StateStarting)
		if alive && old.served() {
			rolling = true
			fresh = s.newInstanceLocked(st.t, st.d, st.num, s.freePortLocked(st.t, st.d))
			s.startLocked(fresh)
			return
		}
		if old != nil {
			r.oldStopped = true
			old.remove = true
			s.stopLocked(old, false)
		}
		if !alive {
			fresh = s.newInstanceLocked(st.t, st.d, st.num, st.d.p.BasePort+st.num-1)
			s.startLocked(fresh)
		}
	}) {
		return r, ErrStopped
	}
	if fresh == nil && old == nil {
		return r, nil
	}
	if !rolling && fresh == nil {
		// Stop first, then start on the same port.
		if err := s.waitDone(ctx, old); err != nil {
			return r, err
		}
		if !s.call(func() {
			if s.shutdown {
				return
			}
			fresh = s.newInstanceLocked(st.t, st.d, st.num, st.d.p.BasePort+st.num-1)
			s.startLocked(fresh)
		}) {
			return r, ErrStopped
		}
		if fresh == nil {
			return r, ErrStopping
		}
	}
	r.fresh = fresh
	if err := s.waitReady(ctx, fresh); err != nil {
		s.call(func() {
			fresh.remove = true
			s.stopLocked(fresh, false)
		})
		if rolling {
			return r, fmt.Errorf("%s (new) %w; %s kept running", fresh.name, err, old.name)
		}
		return r, fmt.Errorf("%s %w", fresh.name, err)
	}
	if rolling {
		r.oldStopped = true
		s.call(func() {
			old.remove = true
			s.stopLocked(old, true)
		})
		return r, s.waitDone(ctx, old)
	}
	return r, nil
}

// lastLines are inst's last output lines, for an error about it. It
// gives the output of its last process a moment to be read.
func (s *Supervisor) lastLines(inst *instance) string {
	var pumped chan struct{}
	s.call(func() { pumped = inst.ended })
	if pumped != nil {
		t := time.NewTimer(time.Second)
		select {
		case <-pumped:
		case <-t.C:
		}
		t.Stop()
	}
	return tail(inst.ring.snapshot())
}

// tail describes the last few of lines for an error message.
func tail(lines []Line) string {
	const n = 5
	if len(lines) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nits last output:")
	for _, l := range lines[max(0, len(lines)-n):] {
		b.WriteString("\n  " + l.Text)
	}
	return b.String()
}

// freePortLocked is the lowest port of d's block no instance of t holds.
func (s *Supervisor) freePortLocked(t *ptype, d *def) int {
	used := map[int]bool{}
	for _, inst := range s.insts {
		if inst.t == t {
			used[inst.port] = true
		}
	}
	for p := d.p.BasePort; p < d.p.BasePort+procfile.PortsPerType; p++ {
		if !used[p] {
			return p
		}
	}
	return d.p.BasePort + procfile.PortsPerType - 1
}

func (s *Supervisor) waitReady(ctx context.Context, inst *instance) error {
	timeout := inst.def.p.ReadyTimeout
	if timeout <= 0 {
		timeout = procfile.DefaultReadyTimeout
	}
	t := time.NewTimer(timeout + readySlack)
	defer t.Stop()
	select {
	case <-inst.readyC:
		return nil
	case <-inst.failC:
		var st string
		var late bool
		s.call(func() {
			late = inst.readyFailed
			if inst.exit != nil {
				st = " with " + inst.exit.String()
			}
		})
		if late {
			return fmt.Errorf("was not ready within %v (killed)", timeout)
		}
		return fmt.Errorf("exited%s before it was ready", st)
	case <-inst.doneC:
		return errors.New("exited before it was ready")
	case <-t.C:
		return fmt.Errorf("was not ready within %v", timeout)
	case <-ctx.Done():
		return errors.New("was not ready before gsup began to stop")
	case <-s.quit:
		return ErrStopped
	}
}

// waitDone waits until inst has stopped. Stopping is bounded by its
// stop_timeout and SIGKILL, so only gsup's end cuts it short.
func (s *Supervisor) waitDone(ctx context.Context, inst *instance) error {
	select {
	case <-inst.doneC:
		return nil
	case <-s.quit:
		return ErrStopped
	}
}

// sameProcess reports two definitions of a type that run the same way
// (the instance count aside).
func sameProcess(a, b procfile.Process) bool {
	a.Scale, b.Scale = 0, 0
	a.Line, b.Line = 0, 0
	a.File, b.File = "", ""
	return reflect.DeepEqual(a, b)
}
