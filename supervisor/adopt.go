package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"gsup/internal/handoff"
	"gsup/procfile"
)

// Snapshot is the supervisor's state handed over at an in-place upgrade
// (Exec), and adopted by the next gsup binary in the same process
// (Config.Adopt). Descriptors (…FD, -1 = none) are numbers that survive
// the exec.
type Snapshot struct {
	Apps      []AppSnapshot  `json:"apps"`
	Instances []InstSnapshot `json:"instances"`
	NextID    uint64         `json:"next_id"`
	Seq       uint64         `json:"seq"`
	Rundir    string         `json:"rundir"`
	GuardPid  int            `json:"guard_pid"`
	GuardFD   int            `json:"guard_fd"`
}

// AppSnapshot is one app: the Spec it runs now and its types' counts.
type AppSnapshot struct {
	Spec  *procfile.Spec `json:"spec"`
	First bool           `json:"first"`
	Types []TypeSnapshot `json:"types"`
}

// TypeSnapshot is one process type's running state.
type TypeSnapshot struct {
	Name    string `json:"name"`
	Scale   int    `json:"scale"`
	Waiting bool   `json:"waiting"`
	Color   int    `json:"color"`
}

// InstSnapshot is one instance.
type InstSnapshot struct {
	ID       uint64        `json:"id"`
	App      string        `json:"app"`
	Type     string        `json:"type"`
	Num      int           `json:"num"`
	Name     string        `json:"name"`
	Port     int           `json:"port"`
	Socket   string        `json:"socket,omitempty"`
	State    State         `json:"state"`
	Since    time.Time     `json:"since"`
	Started  time.Time     `json:"started"`
	Pid      int           `json:"pid"`
	Cgroup   string        `json:"cgroup,omitempty"`  // the running start's cgroup folder
	Release  string        `json:"release,omitempty"` // the folder its process started in
	Seq      uint64        `json:"seq"`
	Restarts int           `json:"restarts"`
	Backoff  time.Duration `json:"backoff"`
	Quick    []time.Time   `json:"quick,omitempty"`
	Due      time.Time     `json:"due,omitzero"` // backoff: when it starts again
	Ready    bool          `json:"ready"`
	Exit     *ExitStatus   `json:"exit,omitempty"`
	Status   string        `json:"status,omitempty"`
	OutFD    int           `json:"out_fd"`
	NotifyFD int           `json:"notify_fd"`
	Carry    []byte        `json:"carry,omitempty"` // an incomplete output line
	Lines    []Line        `json:"lines,omitempty"` // recent output, for gsup logs
}

// ReadyServed returns the address of every ready instance of the served
// type, by instance ID: the front's rotation, filled before it serves.
func (snap *Snapshot) ReadyServed() map[uint64]string {
	out := map[uint64]string{}
	for _, a := range snap.Apps {
		if !a.First || !a.Spec.Serve.Enabled {
			continue
		}
		for _, in := range snap.Instances {
			if in.App == a.Spec.App && in.Type == a.Spec.Serve.Upstream && in.Ready && in.Pid > 0 {
				out[in.ID] = (&instance{port: in.Port, socket: in.Socket}).addr()
			}
		}
	}
	return out
}

// ErrUpgradeRefused wraps the reasons Exec cannot hand over now.
var ErrUpgradeRefused = errors.New("upgrade refused")

// HoldRollouts keeps reloads, loads and rolling restarts from starting
// (until release) so nothing is half replaced at an upgrade; it fails when
// one is in progress.
func (s *Supervisor) HoldRollouts() (release func(), err error) {
	if s.os == nil || !s.os.onMain {
		return nil, fmt.Errorf("%w: gsup's children were not forked by its main thread", ErrUpgradeRefused)
	}
	if !s.reloadMu.TryLock() {
		return nil, fmt.Errorf("%w: a reload is in progress; upgrade when it is done", ErrUpgradeRefused)
	}
	return s.reloadMu.Unlock, nil
}

// Exec hands gsup over to the binary at path in this same process: on
// the supervisor's goroutine (so nothing changes meanwhile) it stops the
// output readers, calls prepare with the state (prepare adds its own and
// returns the environment of the exec, the descriptors it keeps, and how
// to undo what it did), clears close-on-exec on every kept descriptor,
// and execs argv on the thread that forked the children. It returns
// only when that did not happen, with everything as it was.
func (s *Supervisor) Exec(path string, argv []string, prepare func(*Snapshot) (env []string, keep []int, undo func(), err error)) error {
	var err error
	if !s.call(func() { err = s.execLocked(path, argv, prepare) }) {
		return ErrStopped
	}
	return err
}

func (s *Supervisor) execLocked(path string, argv []string, prepare func(*Snapshot) ([]string, []int, func(), error)) error {
	if s.shutdown {
		return ErrStopping
	}
	for _, inst := range s.insts {
		if inst.state == StateStopping || inst.remove || inst.restartAfter {
			return fmt.Errorf("%w: %s is stopping; upgrade when it has stopped", ErrUpgradeRefused, inst.name)
		}
	}
	// Stop the output readers of the running processes, keeping what
	// they read of an unfinished line.
	var paused []*instance
	carry := map[*instance][]byte{}
	resume := func() {
		for _, inst := range paused {
			_ = inst.out.SetReadDeadline(time.Time{})
			s.pumpLocked(inst, inst.out, carry[inst])
		}
	}
	for _, inst := range s.insts {
		if inst.proc == nil || inst.out == nil {
			continue
		}
		select {
		case <-inst.ended:
			continue // the process closed its output
		default:
		}
		if err := inst.out.SetReadDeadline(time.Now()); err != nil {
			resume()
			return fmt.Errorf("stopping the output reader of %s: %w", inst.name, err)
		}
		select {
		case c := <-inst.held:
			carry[inst] = c
			paused = append(paused, inst)
		case <-time.After(5 * time.Second):
			_ = inst.out.SetReadDeadline(time.Time{})
			resume()
			return fmt.Errorf("%w: the output of %s cannot be written", ErrUpgradeRefused, inst.name)
		}
	}
	snap, keep, err := s.snapshotLocked(carry)
	if err != nil {
		resume()
		return err
	}
	env, more, undo, err := prepare(snap)
	if err != nil {
		resume()
		return err
	}
	keep = append(keep, more...)
	if err = handoff.Inherit(keep, true); err == nil {
		s.log.Infof("executing %s", path)
		err = s.os.exec(path, argv, env)
	}
	_ = handoff.Inherit(keep, false)
	undo()
	resume()
	return fmt.Errorf("executing %s: %w", path, err)
}

// pumpLocked reads inst's output from r (carry: an incomplete line read
// before).
func (s *Supervisor) pumpLocked(inst *instance, r *os.File, carry []byte) {
	t := inst.t
	inst.out, inst.held, inst.ended = r, make(chan []byte, 1), make(chan struct{})
	go s.out.pump(r, stream{name: inst.name, color: t.color + inst.num - 1, file: t.logFile, ring: inst.ring,
		held: inst.held, ended: inst.ended, carry: carry})
}

func (s *Supervisor) snapshotLocked(carry map[*instance][]byte) (*Snapshot, []int, error) {
	snap := &Snapshot{NextID: s.nextID, Seq: s.seq, Rundir: s.rundir, GuardFD: -1}
	var keep []int
	fd := func(c syscall.Conn) (int, error) {
		n, err := handoff.FD(c)
		if err == nil {
			keep = append(keep, n)
		}
		return n, err
	}
	if s.guard != nil {
		n, err := fd(s.guard.w)
		if err != nil {
			return nil, nil, fmt.Errorf("guard pipe: %w", err)
		}
		snap.GuardFD, snap.GuardPid = n, s.guard.pid
	}
	for _, a := range s.apps {
		as := AppSnapshot{Spec: a.spec, First: a.first}
		for _, t := range a.types {
			as.Types = append(as.Types, TypeSnapshot{Name: t.spec.Name, Scale: t.scale, Waiting: t.waiting, Color: t.color})
		}
		snap.Apps = append(snap.Apps, as)
	}
	for _, inst := range s.insts {
		in := InstSnapshot{ID: inst.id, App: inst.t.app.name, Type: inst.t.spec.Name, Num: inst.num, Name: inst.name,
			Port: inst.port, Socket: inst.socket, State: inst.state, Since: inst.since, Started: inst.started,
			Seq: inst.seq, Restarts: inst.restarts, Backoff: inst.rs.backoff, Quick: inst.rs.quick,
			Ready: inst.ready, Exit: inst.exit, Release: inst.release, Status: inst.status, OutFD: -1, NotifyFD: -1,
			Lines: inst.ring.snapshot()}
		if inst.state == StateBackoff {
			in.Due = inst.due
		}
		if inst.proc != nil {
			in.Pid = inst.pid
			if inst.cg != nil {
				in.Cgroup = inst.cg.dir
			}
			if c, ok := carry[inst]; ok {
				n, err := fd(inst.out)
				if err != nil {
					return nil, nil, fmt.Errorf("output of %s: %w", inst.name, err)
				}
				in.OutFD, in.Carry = n, c
			}
			if inst.notify != nil {
				n, err := fd(inst.notify.conn)
				if err != nil {
					return nil, nil, fmt.Errorf("notify socket of %s: %w", inst.name, err)
				}
				in.NotifyFD = n
			}
		}
		snap.Instances = append(snap.Instances, in)
	}
	return snap, keep, nil
}

// adoptLocked takes over the processes, pipes and guard of the gsup this
// process replaced (Config.Adopt).
func (s *Supervisor) adoptLocked(snap *Snapshot) error {
	s.rundir, s.nextID, s.seq = snap.Rundir, snap.NextID, snap.Seq
	if snap.GuardFD >= 0 && s.os != nil {
		w, err := handoff.File(snap.GuardFD, "guard")
		if err != nil {
			return err
		}
		g := &guard{w: w, pid: snap.GuardPid, exited: make(chan struct{})}
		p := s.os.adopt(snap.GuardPid)
		go func() {
			p.Wait()
			close(g.exited)
		}()
		s.guard = g
		go s.watchGuard(g)
	}
	apps := map[string]*app{}
	for _, as := range snap.Apps {
		a := &app{name: as.Spec.App, spec: as.Spec, first: as.First}
		for _, p := range as.Spec.Processes {
			t := s.newTypeLocked(a, p)
			for _, ts := range as.Types {
				if ts.Name == p.Name {
					t.scale, t.waiting, t.color = ts.Scale, ts.Waiting, ts.Color
				}
			}
			a.types = append(a.types, t)
		}
		s.apps = append(s.apps, a)
		apps[a.name] = a
	}
	for _, in := range snap.Instances {
		a := apps[in.App]
		if a == nil || a.typeNamed(in.Type) == nil {
			return fmt.Errorf("adopting %s: no app %q type %q", in.Name, in.App, in.Type)
		}
		t := a.typeNamed(in.Type)
		inst := &instance{id: in.ID, t: t, def: t.current(), num: in.Num, name: in.Name, port: in.Port,
			socket: in.Socket, state: in.State, since: in.Since, started: in.Started, seq: in.Seq,
			restarts: in.Restarts, rs: restartState{backoff: in.Backoff, quick: in.Quick}, ready: in.Ready,
			exit: in.Exit, status: in.Status,
			release: in.Release, readyC: make(chan struct{}), failC: make(chan struct{}), doneC: make(chan struct{}), ring: &ring{name: in.Name, hub: &s.lines}}
		inst.ring.restore(in.Lines)
		if in.Ready {
			close(inst.readyC)
		}
		s.insts = append(s.insts, inst)
		if err := s.adoptInstanceLocked(inst, in); err != nil {
			return err
		}
	}
	s.widthLocked()
	s.log.Infof("adopted %d instances", len(snap.Instances))
	return nil
}

func (s *Supervisor) adoptInstanceLocked(inst *instance, in InstSnapshot) error {
	switch {
	case in.Pid > 0 && s.os != nil:
		if in.OutFD >= 0 {
			r, err := handoff.File(in.OutFD, inst.name+" output")
			if err != nil {
				return err
			}
			s.pumpLocked(inst, r, in.Carry)
		}
		if in.NotifyFD >= 0 {
			n, err := adoptNotify(in.NotifyFD, fmt.Sprintf("%s/%d.notify", s.rundir, inst.id))
			if err != nil {
				return fmt.Errorf("adopting %s: %w", inst.name, err)
			}
			inst.notify = n
		}
		if in.Cgroup != "" && s.cgroups != nil {
			inst.cg = s.cgroups.adopt(in.Cgroup)
		}
		p := s.os.adopt(in.Pid)
		inst.proc, inst.pid = p, in.Pid
		go func() {
			st := p.Wait()
			s.post(func() { s.exitedLocked(inst, p, st) })
		}()
		if inst.state == StateStarting {
			s.watchReadyLocked(inst, p)
		}
	case inst.state == StateBackoff:
		delay := max(time.Until(in.Due), 0)
		inst.due = in.Due
		inst.timer = time.AfterFunc(delay, func() {
			s.post(func() {
				if inst.state == StateBackoff && !s.shutdown {
					inst.timer = nil
					s.startLocked(inst)
				}
			})
		})
	case inst.state == StateStarting || inst.state == StateRunning:
		// Its process was gone before the exec: start it again.
		s.startLocked(inst)
	default:
		inst.doneOnce = true
		close(inst.doneC)
	}
	return nil
}

// adoptedProc is a child started by the gsup this process replaced:
// waited for by its pid (never a blind wait4(-1)).
type adoptedProc struct {
	pid     int
	p       *os.Process
	starter *osStarter
}

// adopt registers pid as a known child (the orphan reaper leaves it
// alone) and returns it as a Proc.
func (s *osStarter) adopt(pid int) *adoptedProc {
	s.mu.Lock()
	s.known[pid] = true
	s.mu.Unlock()
	p, _ := os.FindProcess(pid) // a pidfd on Linux; never fails there
	return &adoptedProc{pid: pid, p: p, starter: s}
}

func (p *adoptedProc) Pid() int { return p.pid }

// GroupAlive reports whether any process is left in p's process group.
func (p *adoptedProc) GroupAlive() bool { return groupAlive(p.pid) }

func (p *adoptedProc) Signal(sig syscall.Signal, group bool) error {
	if group {
		err := syscall.Kill(-p.pid, sig)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	err := p.p.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Wait waits for the process by its pid. A process that had already been
// reaped before the exec is reported as exited with status -1.
func (p *adoptedProc) Wait() ExitStatus {
	ps, err := p.p.Wait()
	p.starter.mu.Lock()
	delete(p.starter.known, p.pid)
	p.starter.mu.Unlock()
	st := ExitStatus{Code: -1}
	if err != nil || ps == nil {
		return st
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Signal = ws.Signal()
	} else {
		st.Code = ps.ExitCode()
	}
	return st
}

// exec runs execve on the forking thread; it returns only on failure.
func (s *osStarter) exec(path string, argv, env []string) error {
	if !s.onMain {
		return errors.New("the children were not forked by the main thread")
	}
	done := make(chan error, 1)
	f := func() {
		s.mu.Lock() // no orphan reaping meanwhile
		err := syscall.Exec(path, argv, env)
		s.mu.Unlock()
		done <- err
	}
	select {
	case s.forks <- f:
	case <-s.quit:
		return ErrStopping
	}
	return <-done
}

// restore puts lines (oldest first) back in an empty ring.
func (r *ring) restore(lines []Line) {
	if len(lines) > ringSize {
		lines = lines[len(lines)-ringSize:]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = make([]Line, ringSize)
	r.next = copy(r.lines, lines) % ringSize
	r.full = len(lines) == ringSize
}

// adoptNotify makes a notifyListener of an inherited notify socket.
func adoptNotify(fd int, path string) (*notifyListener, error) {
	f, err := handoff.File(fd, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("notify socket: fd %d is not a UNIX socket", fd)
	}
	return &notifyListener{path: path, conn: uc}, nil
}
