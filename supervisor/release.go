package supervisor

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"gsup/procfile"
)

// releaseStopTimeout is how long a release command asked to stop (gsup
// stops) has after TERM before KILL.
const releaseStopTimeout = 10 * time.Second

// runRelease runs spec's release command once, in the app's folder with
// the app's environment, its output prefixed "release", and waits for it.
// It returns nil when there is none or it exited 0; else an error saying
// how it ended (exit status, timeout, gsup stopping) with its last output
// lines. It must not be called on the loop goroutine, which must run.
func (s *Supervisor) runRelease(ctx context.Context, spec *procfile.Spec) error {
	rel := spec.Release
	if rel == nil {
		return nil
	}
	own := map[string]string{"GSUP_APP": spec.App, "PWD": spec.Dir}
	env := procfile.Environ(s.cfg.Environ, spec.Env, own)
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	p, err := s.starter.Start(StartRequest{Name: "release", Argv: ShellArgv(rel.Command), Env: env, Dir: spec.Dir, Stdout: w, Setpgid: true})
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("release: starting %q: %w", rel.Command, err)
	}
	pid := p.Pid()
	s.call(func() { s.guard.add(pid) })
	rg := &ring{name: "release", hub: &s.lines}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		s.out.pump(r, stream{name: "release", ring: rg})
	}()
	s.log.WithField("pid", pid).Infof("release started (pid %d): %s", pid, rel.Command)
	exited := make(chan ExitStatus, 1)
	go func() { exited <- p.Wait() }()

	timeout := time.NewTimer(rel.Timeout)
	defer timeout.Stop()
	var st ExitStatus
	why := ""
	select {
	case st = <-exited:
	case <-timeout.C:
		why = fmt.Sprintf("did not finish within %v (killed)", rel.Timeout)
		_ = p.Signal(syscall.SIGKILL, true)
		st = <-exited
	case <-ctx.Done():
		why = "was stopped: gsup is stopping"
		_ = p.Signal(syscall.SIGTERM, true)
		kill := time.AfterFunc(releaseStopTimeout, func() { _ = p.Signal(syscall.SIGKILL, true) })
		st = <-exited
		kill.Stop()
	}
	_ = p.Signal(syscall.SIGKILL, true) // whatever is left of its group
	s.call(func() { s.guard.remove(pid) })
	wait := time.NewTimer(time.Second)
	select {
	case <-pumped:
	case <-wait.C:
	}
	wait.Stop()
	if why == "" && st.Success() {
		s.log.Info("release done")
		return nil
	}
	if why == "" {
		why = "exited with " + st.String()
	}
	return fmt.Errorf("release command %s%s", why, tail(rg.snapshot()))
}
