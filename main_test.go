package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"gsup/internal/testprog"
	"gsup/supervisor"
)

// TestMain registers gsup and the helper programs as commands scripts
// can run (testscript re-executes the test binary under their names).
func TestMain(m *testing.M) {
	progs := testprog.Programs()
	progs["gsup"] = func() { os.Exit(gsupMain()) }
	testscript.Main(m, progs)
}

// TestScripts runs testscripts/*.txtar with the real gsup binary and real
// processes.
func TestScripts(t *testing.T) {
	cmds := testprog.Commands()
	for name, cmd := range upgradeCommands() {
		cmds[name] = cmd
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testscripts",
		Cmds:                cmds,
		Setup:               testprog.Setup,
		RequireExplicitExec: true,
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			case "ci":
				return os.Getenv("CI") == "true", nil
			case "cgroup":
				return hasCgroups()
			}
			if prog, ok := strings.CutPrefix(cond, "peer:"); ok {
				return hasPeer(prog)
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// hasPeer reports whether a peer program is installed. Under CI
// (CI=true) a missing one is an error, so a script's
// `[!peer:nginx] skip 'needs the Debian package nginx'` fails there
// instead of skipping: CI must never pass by skipping.
func hasPeer(prog string) (bool, error) {
	if _, err := exec.LookPath(prog); err == nil {
		return true, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/gunicorn"} {
		if _, err := os.Stat(filepath.Join(dir, prog)); err == nil {
			return true, nil
		}
	}
	if os.Getenv("CI") == "true" {
		return false, fmt.Errorf("%s is not installed and CI=true: peer tests must run (see .ci/run)", prog)
	}
	return false, nil
}

// hasCgroups reports whether gsup can run instances in cgroups here;
// under CI (which runs as root on machines with cgroup v2) their absence
// is an error.
func hasCgroups() (bool, error) {
	err := supervisor.CgroupsWritable()
	if err != nil && os.Getenv("CI") == "true" {
		return false, fmt.Errorf("cgroups are not usable and CI=true: %w", err)
	}
	return err == nil, nil
}

// gsupBinary returns a path named gsup that runs this test binary as gsup
// (testscript.Main dispatches on the name).
func gsupBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gsup")
	if err := os.Symlink(self, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// A closed stdout is reported once and never kills gsup: it keeps
// supervising, and stops cleanly when asked.
func TestClosedStdoutDoesNotKillGsup(t *testing.T) {
	dir := t.TempDir()
	procfile := "talker: i=0; while :; do i=$((i+1)); echo line $i; echo $i > count; sleep 0.01; done\n"
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(gsupBinary(t), "start", "--no-serve", "--port", "7000", "--control", "gsup.sock")
	cmd.Dir = dir
	cmd.Stdout = w
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Read a line, then close the read end: gsup's next writes get EPIPE.
	buf := make([]byte, 64)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	r.Close()
	count := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "count"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	// The child keeps running (so gsup is alive and writing) well past the close.
	start := count()
	testprog.Eventually(t, "the child to make progress after stdout closed", 10*time.Second, func() (bool, string) {
		return count() >= start+50, fmt.Sprintf("%d lines since the close", count()-start)
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gsup exited with %v after its stdout closed; stderr:\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "writing children's output"); n != 1 {
		t.Errorf("closed stdout reported %d times, want once; stderr:\n%s", n, stderr.String())
	}
}

// With --subreaper, orphans of the children are adopted by gsup and
// reaped when they exit: no zombie piles up, even when they exit one
// after another while gsup is reaping the ones before (a CHLD that
// arrives during a reaping pass must lead to another pass).
func TestSubreaperReapsOrphans(t *testing.T) {
	dir := t.TempDir()
	procfile := "orphaner: for i in $(seq 10 69); do (sleep 0.$i &); done; exec sleep 1000\n"
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gsupBinary(t), "start", "--no-serve", "--subreaper", "--port", "7000", "--control", "gsup.sock")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	adopted := func() int {
		n := 0
		for _, c := range testprog.Children(pid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.Pid)); strings.HasPrefix(string(b), "sleep\x000.") {
				n++
			}
		}
		return n
	}
	testprog.Eventually(t, "gsup to adopt an orphan", 10*time.Second, func() (bool, string) {
		return adopted() > 0, "no adopted orphan"
	})
	testprog.Eventually(t, "gsup to reap its adopted orphans", 10*time.Second, func() (bool, string) {
		var zombies []string
		for _, c := range testprog.Children(pid) {
			if c.State == 'Z' {
				zombies = append(zombies, strconv.Itoa(c.Pid))
			}
		}
		return len(zombies) == 0 && adopted() == 0, fmt.Sprintf("%d adopted orphans, zombie children of gsup: %v", adopted(), zombies)
	})
}
