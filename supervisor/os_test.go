package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gsup/internal/testprog"
	"gsup/procfile"
)

// TestMain lets the test binary play gsup's guard and child helper, and
// run a supervisor in a process of its own (GSUP_TEST_SUPERVISE=spec
// command) for the tests that SIGKILL it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case GuardArg:
			os.Exit(GuardMain(os.Stdin))
		case ChildArg:
			os.Exit(ChildMain(os.Args[2:]))
		}
	}
	if cmd := os.Getenv("GSUP_TEST_SUPERVISE"); cmd != "" {
		self, _ := os.Executable()
		s := New(Config{Log: quietLog(), Self: self, Environ: os.Environ()})
		spec := testSpec(procfile.Process{Name: "job", Command: cmd, Scale: 2})
		fmt.Println("supervising")
		_ = s.Run(context.Background(), spec)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runGrandchild runs, with real processes, a process name whose shell
// starts a grandchild (sleep 1000) in the background, writes its pid to a
// file, then runs then. It returns what runReal does but the output, the
// grandchild's pid and the file.
func runGrandchild(t *testing.T, name, then string) (*Supervisor, <-chan Event, <-chan error, int, string) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	cmd := fmt.Sprintf("sleep 1000 & echo $! > %s; %s", pidFile, then)
	s, _, evs, done := runReal(t, testSpec(procfile.Process{Name: name, Command: cmd}))
	return s, evs, done, readPidFile(t, pidFile), pidFile
}

// runReal runs spec with real processes.
func runReal(t *testing.T, spec *procfile.Spec) (*Supervisor, *testprog.Buffer, <-chan Event, <-chan error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &testprog.Buffer{}
	s := New(Config{Log: quietLog(), Stdout: out, Self: self, Environ: os.Environ()})
	evs, cancel := s.Subscribe()
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		done <- s.Run(context.Background(), spec)
		close(ended)
	}()
	t.Cleanup(func() {
		s.Shutdown(StopForce)
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Error("supervisor did not stop")
		}
		cancel()
	})
	return s, out, evs, done
}

// waitEvent waits (10 s at most) for an event matching ok.
func waitEvent(t *testing.T, evs <-chan Event, ok func(Event) bool) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-evs:
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("timed out waiting for an event")
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	p, ok := readStat(pid)
	return ok && p.state != 'Z'
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testprog.Eventually(t, path, 10*time.Second, func() (bool, string) {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, ""
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil, ""
	})
	return pid
}

func TestRealRestartAfterSIGKILL(t *testing.T) {
	s, _, evs, _ := runReal(t, testSpec(procfile.Process{Name: "sleeper", Command: "sleep 1000"}))
	first := waitEvent(t, evs, func(e Event) bool { return e.Kind == EventStarted })
	// A single simple command runs with exec: the pid is sleep's own.
	testprog.Eventually(t, "the shell to exec sleep", 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", first.Pid))
		return strings.TrimSpace(string(b)) == "sleep", ""
	})
	syscall.Kill(first.Pid, syscall.SIGKILL)
	ex := waitEvent(t, evs, func(e Event) bool { return e.Kind == EventExited })
	if ex.Status != "signal KILL" {
		t.Errorf("exit reported as %q", ex.Status)
	}
	second := waitEvent(t, evs, func(e Event) bool { return e.Kind == EventStarted })
	if second.Pid == first.Pid || !alive(second.Pid) {
		t.Fatalf("no new process after SIGKILL (old %d, new %d)", first.Pid, second.Pid)
	}
	sts, _ := s.Status()
	if sts[0].Restarts != 1 || sts[0].Pid != second.Pid {
		t.Errorf("status %+v", sts[0])
	}
}

func TestRealStopKillsGrandchildren(t *testing.T) {
	s, _, done, gc, _ := runGrandchild(t, "tree", "wait")
	if !alive(gc) {
		t.Fatal("grandchild not running")
	}
	s.Shutdown(StopGraceful)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testprog.Eventually(t, "grandchild to die", 10*time.Second, func() (bool, string) { return !alive(gc), "" })
}

func TestRealLeftoversOfAGroupAreKilledBeforeRestart(t *testing.T) {
	// The shell exits at once, leaving its background sleep in the group.
	_, evs, _, gc, pidFile := runGrandchild(t, "leaky", "sleep 0.2; exit 1")
	os.Remove(pidFile)
	waitEvent(t, evs, func(e Event) bool { return e.Kind == EventExited })
	testprog.Eventually(t, "the leftover grandchild to be killed", 10*time.Second, func() (bool, string) { return !alive(gc), "" })
}

func TestRealTERMIgnoringChildIsKilledAfterStopTimeout(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cmd := fmt.Sprintf("trap '' TERM; touch %s; while :; do sleep 0.05; done", ready)
	s, _, evs, done := runReal(t, testSpec(procfile.Process{Name: "stubborn", Command: cmd, StopTimeout: 300 * time.Millisecond}))
	st := waitEvent(t, evs, func(e Event) bool { return e.Kind == EventStarted })
	testprog.Eventually(t, "ready file", 10*time.Second, func() (bool, string) { _, err := os.Stat(ready); return err == nil, "" })
	start := time.Now()
	s.Shutdown(StopGraceful)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stopped after %v, before its stop_timeout", d)
	}
	if alive(st.Pid) {
		t.Fatal("TERM-ignoring process still alive")
	}
	stopped := waitEvent(t, evs, func(e Event) bool { return e.Kind == EventStopped })
	if stopped.Status != "signal KILL" {
		t.Errorf("stopped with %q, want signal KILL", stopped.Status)
	}
}

func TestRealOutputLines(t *testing.T) {
	long := strings.Repeat("x", readBufSize+100)
	cmd := fmt.Sprintf("echo hello; echo oops >&2; printf '%s\\n'; printf 'no newline'", long)
	spec := testSpec(procfile.Process{Name: "talker", Command: cmd, Restart: procfile.RestartNever}, procfile.Process{Name: "w", Command: "true", Restart: procfile.RestartNever})
	_, out, _, done := runReal(t, spec)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	var mine []string
	for _, l := range lines {
		if len(l) < 9 {
			t.Fatalf("short line %q", l)
		}
		if _, err := time.Parse("15:04:05", l[:8]); err != nil {
			t.Fatalf("line %q does not start with HH:MM:SS", l)
		}
		if strings.HasPrefix(l[9:], "talker.1 | ") {
			mine = append(mine, l[9+len("talker.1 | "):])
		}
	}
	want := []string{"hello", "oops", long[:readBufSize], long[readBufSize:], "no newline"}
	if len(mine) != len(want) {
		t.Fatalf("got %d lines, want %d: %q", len(mine), len(want), mine)
	}
	for i := range want {
		if mine[i] != want[i] {
			t.Errorf("line %d = %.40q..., want %.40q...", i, mine[i], want[i])
		}
	}
}

func TestRealNoOrphansAfterSIGKILLOfSupervisor(t *testing.T) {
	dir := t.TempDir()
	// Each instance leaves a grandchild that ignores TERM and HUP.
	cmd := fmt.Sprintf("(trap '' TERM HUP; exec sleep 1000) & echo $! > %s/$PS; wait", dir)
	c, gc1, gc2 := superviseApart(t, cmd, dir)
	c.Process.Kill()
	c.Wait()
	testprog.Eventually(t, "grandchildren to die with the supervisor", 10*time.Second, func() (bool, string) { return !alive(gc1) && !alive(gc2), "" })
}

func TestRealNoGoroutineGrowthAcrossRestarts(t *testing.T) {
	s, _, evs, _ := runReal(t, testSpec(procfile.Process{Name: "sleeper", Command: "sleep 1000"}))
	waitEvent(t, evs, func(e Event) bool { return e.Kind == EventStarted })
	restart := func() {
		if _, err := s.Restart([]string{"sleeper"}); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, evs, func(e Event) bool { return e.Kind == EventStarted })
	}
	for i := 0; i < 5; i++ {
		restart()
	}
	settle := func() int {
		runtime.GC()
		time.Sleep(50 * time.Millisecond) // let exited watchers finish returning
		return runtime.NumGoroutine()
	}
	before := settle()
	for i := 0; i < 50; i++ {
		restart()
	}
	var after int
	testprog.Eventually(t, "goroutines to settle", 10*time.Second, func() (bool, string) { after = settle(); return after <= before+2, "" })
	if after > before+2 {
		t.Fatalf("goroutines grew from %d to %d across 50 restarts", before, after)
	}
}

func TestRealKilledGuardIsReplaced(t *testing.T) {
	s, _, _, gc, _ := runGrandchild(t, "tree", "wait")
	var old int
	s.call(func() { old = s.guard.proc.Pid() })
	syscall.Kill(old, syscall.SIGKILL)
	var fresh int
	testprog.Eventually(t, "a new guard", 10*time.Second, func() (bool, string) {
		s.call(func() { fresh = s.guard.proc.Pid() })
		return fresh != old && alive(fresh), ""
	})
	// The new guard knows the live groups: closing its pipe kills them.
	var g *guard
	s.call(func() { g = s.guard })
	g.w.Close()
	testprog.Eventually(t, "the grandchild to be killed by the new guard", 10*time.Second, func() (bool, string) { return !alive(gc), "" })
}

func TestRealCgroupsKilledAndRemovedAfterSIGKILLOfSupervisor(t *testing.T) {
	if err := CgroupsWritable(); err != nil {
		testprog.Missing(t, "needs a writable cgroup v2 (run as root): %v", err)
	}
	own, _ := ownCgroup()
	dir := t.TempDir()
	// Each instance leaves a daemon in a session of its own.
	cmd := fmt.Sprintf("setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > %s/$PS; wait", dir)
	c, gc1, gc2 := superviseApart(t, cmd, dir)
	tree := filepath.Join(own, fmt.Sprintf("gsup-%d", c.Process.Pid))
	if _, err := os.Stat(filepath.Join(tree, "job.1", "cgroup.procs")); err != nil {
		t.Fatalf("no cgroup for job.1: %v", err)
	}
	c.Process.Kill()
	c.Wait()
	testprog.Eventually(t, "daemons to die with the supervisor", 10*time.Second, func() (bool, string) { return !alive(gc1) && !alive(gc2), "" })
	testprog.Eventually(t, "the cgroups to be removed", 10*time.Second, func() (bool, string) { _, err := os.Stat(tree); return os.IsNotExist(err), "" })
}

// superviseApart runs a supervisor of two instances of cmd in a process
// of its own (see TestMain); cmd writes a grandchild's pid to dir/$PS. It
// returns the process and the two grandchildren's pids.
func superviseApart(t *testing.T, cmd, dir string) (c *exec.Cmd, gc1, gc2 int) {
	t.Helper()
	self, _ := os.Executable()
	c = exec.Command(self)
	c.Env = append(os.Environ(), "GSUP_TEST_SUPERVISE="+cmd)
	c.Stdout = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c, readPidFile(t, filepath.Join(dir, "job.1")), readPidFile(t, filepath.Join(dir, "job.2"))
}
