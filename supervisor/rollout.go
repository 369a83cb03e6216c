package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"time"

	"gsup/procfile"
)

// readySlack is added to ready_timeout when a rollout waits for an
// instance, so the instance's own timeout fires first.
const readySlack = time.Second

// step replaces (or starts) instance number num of type t.
type step struct {
	t   *ptype
	num int
	old *instance // nil: start a new one
}

// Reload makes the first app run spec (the same as `load` of the first
// app's name): every instance is replaced one at a time, in type order.
// Instances of the served type are started before their predecessor stops
// (on the next free port of the type's block) and must be ready first;
// others stop, then start. Types that are gone are stopped; new ones are
// started. It returns when the rollout is done, or with an error (the
// instances not yet replaced keep running the old spec) when a new
// instance did not become ready in time or gsup began to stop.
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
	var steps []step
	var ctx context.Context
	var isNew bool
	if !s.call(func() {
		ctx = s.rolloutCtx
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
		s.events.publish(Event{Time: time.Now(), Kind: EventReloading, App: a.name})
		steps = s.planLocked(a, spec, appName != "")
	}) {
		return ErrStopped
	}
	if isNew {
		return nil
	}
	if ctx.Err() != nil {
		return ErrStopping
	}
	err := s.runSteps(ctx, steps)
	msg := "done"
	if err != nil {
		msg = err.Error()
	}
	s.post(func() {
		s.events.publish(Event{Time: time.Now(), Kind: EventReloaded, App: spec.App, Message: msg})
	})
	return err
}

// planLocked switches app a to spec and lists the replacements to make.
// Gone types and surplus instances are stopped at once. With onlyChanged
// (load of an app that runs), the running instances of a type whose
// definition and environment did not change are kept.
func (s *Supervisor) planLocked(a *app, spec *procfile.Spec, onlyChanged bool) []step {
	old := map[string]*ptype{}
	unchanged := map[string]bool{}
	sameEnv := maps.Equal(a.spec.Env, spec.Env) && a.spec.Dir == spec.Dir
	for _, t := range a.types {
		old[t.spec.Name] = t
		if p := spec.Lookup(t.spec.Name); onlyChanged && sameEnv && p != nil && sameProcess(t.spec, *p) {
			unchanged[t.spec.Name] = true
		}
	}
	name := a.name
	spec2 := *spec
	spec2.App = name
	a.spec = &spec2
	var types []*ptype
	for _, p := range spec.Processes {
		t := old[p.Name]
		if t == nil {
			t = s.newTypeLocked(a, p)
		} else {
			delete(old, p.Name)
			if t.spec.LogFile != p.LogFile {
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
		}
		t.scale = p.Scale
		types = append(types, t)
	}
	a.types = types
	for _, t := range old {
		s.log.Infof("process type %s is gone; stopping it", t.spec.Name)
		for _, inst := range s.insts {
			if inst.t == t {
				inst.remove = true
				s.stopLocked(inst, true)
			}
		}
	}
	var steps []step
	for _, t := range types {
		for _, inst := range s.ordered() {
			if inst.t == t && !inst.remove && inst.num > t.scale {
				inst.remove = true
				s.stopLocked(inst, true)
			}
		}
		for n := 1; n <= t.scale; n++ {
			prev := s.findLocked(t, n)
			if prev != nil && unchanged[t.spec.Name] {
				continue
			}
			steps = append(steps, step{t: t, num: n, old: prev})
		}
	}
	return steps
}

// replace replaces the given served instances one at a time.
func (s *Supervisor) replace(insts []*instance) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var steps []step
	var ctx context.Context
	if !s.call(func() {
		ctx = s.rolloutCtx
		for _, inst := range insts {
			if !inst.remove {
				steps = append(steps, step{t: inst.t, num: inst.num, old: inst})
			}
		}
	}) {
		return ErrStopped
	}
	return s.runSteps(ctx, steps)
}

func (s *Supervisor) runSteps(ctx context.Context, steps []step) error {
	for _, st := range steps {
		if ctx.Err() != nil {
			return ErrStopping
		}
		if err := s.runStep(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func (s *Supervisor) runStep(ctx context.Context, st step) error {
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
		if old != nil && st.t.app.typeNamed(st.t.spec.Name) != st.t {
			return
		}
		alive := old != nil && (old.state == StateRunning || old.state == StateStarting)
		if alive && old.served() {
			rolling = true
			fresh = s.newInstanceLocked(st.t, st.num, s.freePortLocked(st.t))
			s.startLocked(fresh)
			return
		}
		if old != nil {
			old.remove = true
			s.stopLocked(old, false)
		}
		if !alive {
			fresh = s.newInstanceLocked(st.t, st.num, st.t.spec.BasePort+st.num-1)
			s.startLocked(fresh)
		}
	}) {
		return ErrStopped
	}
	if fresh == nil && old == nil {
		return nil
	}
	if !rolling && fresh == nil {
		// Stop first, then start on the same port.
		if err := s.waitDone(ctx, old); err != nil {
			return err
		}
		if !s.call(func() {
			if s.shutdown {
				return
			}
			fresh = s.newInstanceLocked(st.t, st.num, st.t.spec.BasePort+st.num-1)
			s.startLocked(fresh)
		}) {
			return ErrStopped
		}
		if fresh == nil {
			return ErrStopping
		}
	}
	if err := s.waitReady(ctx, fresh); err != nil {
		if rolling {
			s.call(func() {
				fresh.remove = true
				s.stopLocked(fresh, false)
			})
			return fmt.Errorf("%s (new) %w; %s keeps running and the rest of the rollout is cancelled", fresh.name, err, old.name)
		}
		return fmt.Errorf("%s %w; the rest of the rollout is cancelled", fresh.name, err)
	}
	if rolling {
		s.call(func() {
			old.remove = true
			s.stopLocked(old, true)
		})
		return s.waitDone(ctx, old)
	}
	return nil
}

// freePortLocked is the lowest port of t's block no instance of t holds.
func (s *Supervisor) freePortLocked(t *ptype) int {
	used := map[int]bool{}
	for _, inst := range s.insts {
		if inst.t == t {
			used[inst.port] = true
		}
	}
	for p := t.spec.BasePort; p < t.spec.BasePort+procfile.PortsPerType; p++ {
		if !used[p] {
			return p
		}
	}
	return t.spec.BasePort + procfile.PortsPerType - 1
}

func (s *Supervisor) waitReady(ctx context.Context, inst *instance) error {
	timeout := inst.t.spec.ReadyTimeout
	if timeout <= 0 {
		timeout = procfile.DefaultReadyTimeout
	}
	t := time.NewTimer(timeout + readySlack)
	defer t.Stop()
	select {
	case <-inst.readyC:
		return nil
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
