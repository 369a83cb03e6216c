package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// tagKey is the environment entry set on every process a run starts. It is
// inherited by everything below, so leftovers can be found and killed by
// pid even after their parent is gone.
const tagKey = "GSUPBENCH_TAG"

// target is one measured supervisor (or, with -direct, a set of children
// started by the probe itself).
type target struct {
	argv   []string
	dir    string
	stdout string
	stderr string
	tag    string
	binDir string // programs under it are the children of the run

	cmd     *exec.Cmd
	pid     int
	t0      time.Time // just before fork
	done    chan struct{}
	exitErr error
	exited  time.Time

	extra []*exec.Cmd // -direct: the children themselves
}

func openOut(path string, appendMode bool) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendMode {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	return os.OpenFile(path, flags, 0o644)
}

func (t *target) command(argv []string, stdout, stderr *os.File) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = t.dir
	cmd.Env = append(os.Environ(), tagKey+"="+t.tag)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Own session: no terminal signal reaches it, and its session id is one
	// more way to find what it left behind. Pdeathsig: if the probe dies,
	// so does the supervisor (what it started is found by the tag).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start launches the supervisor in its own session.
func (t *target) start() error {
	so, err := openOut(t.stdout, false)
	if err != nil {
		return err
	}
	defer so.Close()
	se := so
	if t.stderr != t.stdout {
		if se, err = openOut(t.stderr, false); err != nil {
			return err
		}
		defer se.Close()
	}
	t.cmd = t.command(t.argv, so, se)
	t.done = make(chan struct{})
	t.t0 = time.Now()
	if err := t.cmd.Start(); err != nil {
		return err
	}
	t.pid = t.cmd.Process.Pid
	register(t)
	go func() {
		t.exitErr = t.cmd.Wait()
		t.exited = time.Now()
		close(t.done)
	}()
	return nil
}

// startDirect runs n copies of argv with their stdout appended to one file,
// no supervisor in between: the ceiling for the throughput phase.
func (t *target) startDirect(n int) error {
	out, err := openOut(t.stdout, true)
	if err != nil {
		return err
	}
	defer out.Close()
	t.done = make(chan struct{})
	close(t.done)
	register(t)
	t.t0 = time.Now()
	for i := 0; i < n; i++ {
		cmd := t.command(t.argv, out, out)
		if err := cmd.Start(); err != nil {
			return err
		}
		t.extra = append(t.extra, cmd)
	}
	return nil
}

func (t *target) alive() bool {
	if t.done == nil {
		return false
	}
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

func (t *target) exitText() string {
	if t.exitErr == nil {
		return "0"
	}
	if ee, ok := t.exitErr.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
		return fmt.Sprint(ee.ExitCode())
	}
	return t.exitErr.Error()
}

// members lists the processes of this run still alive.
func (t *target) members() []member {
	sid := 0
	if t.pid > 0 {
		sid = t.pid
	}
	return members(tagKey, t.tag, sid, t.binDir)
}

// stop sends sig to the supervisor and waits (bounded) for it to exit; it
// returns the ms it took ("timeout" if it did not) and what of the run was
// still alive 2 s after the supervisor was gone. Then it kills whatever is
// left, supervisor side first so that nothing is restarted.
func (t *target) stop(sig syscall.Signal, timeout time.Duration) (stopMS string, left string) {
	stopMS = "-"
	if t.cmd != nil && t.alive() {
		t0 := time.Now()
		_ = syscall.Kill(t.pid, sig)
		select {
		case <-t.done:
			stopMS = fmt.Sprintf("%.1f", ms(t.exited.Sub(t0)))
		case <-time.After(timeout):
			stopMS = "timeout"
		}
	}
	for _, c := range t.extra {
		_ = c.Process.Signal(sig)
	}
	var rest []member
	deadline := time.Now().Add(2 * time.Second)
	for {
		rest = t.members()
		if len(rest) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	left = summarize(rest)
	t.kill()
	return stopMS, left
}

// kill SIGKILLs everything of the run, in bounded rounds.
func (t *target) kill() {
	for round := 0; round < 20; round++ {
		if t.cmd != nil && t.alive() {
			_ = syscall.Kill(t.pid, syscall.SIGKILL)
		}
		rest := t.members()
		if len(rest) == 0 {
			break
		}
		killMembers(rest, t.binDir)
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range t.extra {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	t.extra = nil
	if t.done != nil {
		select {
		case <-t.done:
		case <-time.After(5 * time.Second):
		}
	}
	unregister(t)
}

// killMembers SIGKILLs the supervisor side first, then the children.
func killMembers(ms []member, binDir string) {
	for pass := 0; pass < 2; pass++ {
		for _, m := range ms {
			child := binDir != "" && strings.HasPrefix(m.path, binDir+"/")
			if child == (pass == 1) {
				_ = syscall.Kill(m.pid, syscall.SIGKILL)
			}
		}
	}
}

// summarize renders processes as "name×count,..." ("none" when empty).
func summarize(ms []member) string {
	if len(ms) == 0 {
		return "none"
	}
	count := map[string]int{}
	for _, m := range ms {
		count[m.exe]++
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s*%d", n, count[n])
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// waitCount waits until n processes run exe, polling every poll; it returns
// the time they were first all seen, or false on timeout or when the
// supervisor exits first.
func waitCount(t *target, exe string, n int, timeout, poll time.Duration) (time.Time, bool) {
	c := newExeCounter(exe)
	deadline := time.Now().Add(timeout)
	for {
		if c.count() >= n {
			return time.Now(), true
		}
		if time.Now().After(deadline) || (t.cmd != nil && !t.alive()) {
			return time.Time{}, false
		}
		time.Sleep(poll)
	}
}
