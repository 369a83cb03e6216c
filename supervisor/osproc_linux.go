package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// osStarter starts real processes. Every fork happens on one goroutine
// locked to its OS thread for the starter's whole life: the parent-death
// signal fires when the forking *thread* exits (golang/go#27505), so that
// thread must outlive the children. Close ends the goroutine, and with it
// the thread, which sends SIGKILL to any child still alive.
type osStarter struct {
	forks  chan func()
	quit   chan struct{}
	onMain bool // forks run on the main thread (ServeMainThread)

	// mu is held across fork+registration and across orphan reaping, so
	// the reaper never takes a pid exec.Cmd.Wait is about to wait for.
	mu    sync.Mutex
	known map[int]bool

	// noClone3 is set once clone3 was refused (ENOSYS: an old kernel or
	// a container's seccomp filter): processes are then moved into their
	// cgroup right after they start.
	noClone3 atomic.Bool
}

func newOSStarter() *osStarter {
	s := &osStarter{quit: make(chan struct{}), known: map[int]bool{}}
	if mainThread.serving.Load() {
		s.forks, s.onMain = mainThread.forks, true
		return s
	}
	s.forks = make(chan func())
	go s.run()
	return s
}

func (s *osStarter) run() {
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	for {
		select {
		case f := <-s.forks:
			f()
		case <-s.quit:
			return
		}
	}
}

// Close stops the forking thread. Children still alive get SIGKILL.
func (s *osStarter) Close() { close(s.quit) }

// Start implements Starter.
func (s *osStarter) Start(req StartRequest) (Proc, error) {
	return s.start(req, true)
}

func (s *osStarter) start(req StartRequest, pdeathsig bool) (*osProc, error) {
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = req.Env
	cmd.Dir = req.Dir
	if req.Stdout != nil {
		cmd.Stdout = req.Stdout
		cmd.Stderr = req.Stdout
	}
	if req.Stdin != nil {
		cmd.Stdin = req.Stdin
	}
	cmd.ExtraFiles = req.Files
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: req.Setpgid, Credential: req.Cred}
	if req.Terminal {
		// A session leader cannot change its group: setsid alone makes
		// the group. Ctty is fd 1 of the child, the terminal.
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 1
	}
	intoCgroup := req.Cgroup != nil && !s.noClone3.Load()
	if intoCgroup {
		// Placed in its cgroup by clone3 itself: nothing it forks can
		// escape before gsup could move it.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(req.Cgroup.Fd())
	}
	if pdeathsig {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	done := make(chan error, 1)
	f := func() {
		s.mu.Lock()
		err := cmd.Start()
		if err == nil {
			s.known[cmd.Process.Pid] = true
		}
		s.mu.Unlock()
		done <- err
	}
	select {
	case s.forks <- f:
	case <-s.quit:
		return nil, errors.New("supervisor is shutting down")
	}
	if err := <-done; err != nil {
		if intoCgroup && errors.Is(err, syscall.ENOSYS) {
			s.noClone3.Store(true)
			return s.start(req, pdeathsig)
		}
		return nil, err
	}
	if req.Cgroup != nil && !intoCgroup {
		_ = moveToCgroup(req.Cgroup.Name(), cmd.Process.Pid)
	}
	return &osProc{cmd: cmd, starter: s}, nil
}

type osProc struct {
	cmd     *exec.Cmd
	starter *osStarter
}

func (p *osProc) Pid() int { return p.cmd.Process.Pid }

func (p *osProc) Signal(sig syscall.Signal, group bool) error {
	if group {
		err := syscall.Kill(-p.cmd.Process.Pid, sig)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	err := p.cmd.Process.Signal(sig) // a pidfd: safe after the process was reaped
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// GroupAlive reports whether any process is left in p's process group.
func (p *osProc) GroupAlive() bool { return groupAlive(p.cmd.Process.Pid) }

// groupAlive reports whether any process is left in process group pgid
// (a zombie counts until it is reaped).
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (p *osProc) Wait() ExitStatus {
	err := p.cmd.Wait()
	s := p.starter
	s.mu.Lock()
	delete(s.known, p.cmd.Process.Pid)
	s.mu.Unlock()
	st := ExitStatus{Code: -1}
	if p.cmd.ProcessState == nil {
		_ = err
		return st
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		st.Signal = ws.Signal()
	case ok:
		st.Code = ws.ExitStatus()
	default:
		st.Code = p.cmd.ProcessState.ExitCode()
	}
	return st
}

// setSubreaper makes gsup the reaper of orphans of its descendants.
func setSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reapOrphans reaps zombie children that are not processes this starter
// started (adopted orphans of descendants). It finds them by scanning
// /proc and waits for each by pid, so exec.Cmd.Wait keeps its statuses.
func (s *osStarter) reapOrphans() (reaped []int) {
	self := os.Getpid()
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, p := range scanProcs() {
		if s.known[pid] || p.ppid != self || p.state != 'Z' {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
		}
	}
	return reaped
}
