package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"gsup/internal/testprog"
)

// upgradeCommands are the script commands of the in-place upgrade tests.
func upgradeCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"buildgsup":    cmdBuildgsup,
		"procsnap":     cmdProcsnap,
		"buildexample": cmdBuildexample,
	}
}

// buildgsup VERSION PATH builds gsup (without the race detector, from
// this module) with main.version set to VERSION: two builds differ.
func cmdBuildgsup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: buildgsup VERSION PATH")
	}
	goBuild(ts, args[1], "-ldflags", "-X main.version="+args[0], ".")
}

// buildexample NAME PATH builds the example program examples/NAME.
func cmdBuildexample(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: buildexample NAME PATH")
	}
	goBuild(ts, args[1], "./examples/"+args[0])
}

// goBuild runs go build -o out with args in this module (the test's
// working directory), not the script's.
func goBuild(ts *testscript.TestScript, out string, args ...string) {
	wd, err := os.Getwd()
	ts.Check(err)
	cmd := exec.Command("go", append([]string{"build", "-o", ts.MkAbs(out)}, args...)...)
	cmd.Dir = wd
	if out, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("go build: %v\n%s", err, out)
	}
}

// procsnap PIDFILE OUT writes to OUT the pid in PIDFILE and the pid and
// command line of each of its children, sorted; to OUT.exe the path of
// its executable.
func cmdProcsnap(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: procsnap PIDFILE OUT")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	ts.Check(err)
	var lines []string
	for _, child := range testprog.Children(pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child.Pid))
		lines = append(lines, fmt.Sprintf("%d %s", child.Pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	sort.Strings(lines)
	out := fmt.Sprintf("gsup %d\n%s\n", pid, strings.Join(lines, "\n"))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(out), 0o644))
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1])+".exe", []byte(filepath.Clean(exe)+"\n"), 0o644))
}
