package testprog

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

// readPid reads the pid in file (relative to the script's folder).
func readPid(ts *testscript.TestScript, file string) int {
	data, err := os.ReadFile(ts.MkAbs(file))
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		ts.Fatalf("%s: no pid in %q", file, data)
	}
	return pid
}

// Proc is what /proc/PID/stat says of a process.
type Proc struct {
	Pid, Ppid int
	State     byte   // 'R', 'S', 'Z'...
	Comm      string // the command name, at most 15 bytes
}

// readProc parses /proc/PID/stat: "pid (comm) S ppid ...", where comm may
// hold spaces and ')'. It reports false if there is no such process.
func readProc(pid int) (Proc, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Proc{}, false
	}
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open || end+2 >= len(data) {
		return Proc{}, false
	}
	f := strings.Fields(string(data[end+2:]))
	if len(f) < 2 {
		return Proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return Proc{Pid: pid, Ppid: ppid, State: f[0][0], Comm: string(data[open+1 : end])}, true
}

// procState returns the state letter of pid ("R", "S", "Z"...), or "" if
// there is no such process.
func procState(pid int) string {
	if p, ok := readProc(pid); ok {
		return string(p.State)
	}
	return ""
}

// alive reports whether pid is a process that has not exited (zombies
// and dead entries count as exited).
func alive(pid int) bool {
	switch procState(pid) {
	case "", "Z", "X", "x":
		return false
	}
	return true
}

// pids lists the numeric entries of /proc.
func pids() []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		if pid, err := strconv.Atoi(d.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Children returns the processes whose parent is ppid, zombies included:
// the one way tests here find a child's pid.
func Children(ppid int) []Proc {
	var out []Proc
	for _, pid := range pids() {
		if p, ok := readProc(pid); ok && p.Ppid == ppid {
			out = append(out, p)
		}
	}
	return out
}

// cmdline returns pid's command line with spaces between arguments.
func cmdline(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
}

// tagged returns the live processes, other than this one, whose
// environment has tag: an entry equal to it when it holds '=', else an
// entry containing it. Processes whose environment cannot be read are
// skipped.
func tagged(tag string) []int {
	self := os.Getpid()
	var out []int
	for _, pid := range pids() {
		if pid == self {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || len(data) == 0 {
			continue
		}
		for entry := range bytes.SplitSeq(data, []byte{0}) {
			e := string(entry)
			if e == tag || (!strings.Contains(tag, "=") && strings.Contains(e, tag)) {
				if alive(pid) {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

// scriptTag is the GSUP_TEST_TAG=$WORK entry that Setup gives the
// script's processes.
func scriptTag(ts *testscript.TestScript, cmd string) string {
	v := ts.Getenv("GSUP_TEST_TAG")
	if v == "" {
		ts.Fatalf("%s: GSUP_TEST_TAG is not set", cmd)
	}
	return "GSUP_TEST_TAG=" + v
}

// cleanup: SIGKILL to the script's tagged processes when it ends.
func cmdCleanup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: cleanup")
	}
	tag := scriptTag(ts, "cleanup")
	ts.Defer(func() {
		for _, pid := range tagged(tag) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// childpid [-t DUR] PIDFILE OUTFILE
func cmdChildpid(ts *testscript.TestScript, neg bool, args []string) {
	timeout, pos := cmdFlags(ts, flag.NewFlagSet("childpid", flag.ContinueOnError), args, 2, 2, "[-t DUR] PIDFILE OUTFILE")
	if neg {
		ts.Fatalf("childpid: no ! form")
	}
	ppid := readPid(ts, pos[0])
	var child int
	Eventually(ts, "childpid "+pos[0], timeout, func() (bool, string) {
		kids := Children(ppid)
		if len(kids) == 0 {
			return false, fmt.Sprintf("pid %d has no child", ppid)
		}
		child = kids[0].Pid
		return true, ""
	})
	ts.Check(os.WriteFile(ts.MkAbs(pos[1]), []byte(strconv.Itoa(child)+"\n"), 0o644))
}

// reaped [-t DUR] PIDFILE NAME
func cmdReaped(ts *testscript.TestScript, neg bool, args []string) {
	timeout, pos := cmdFlags(ts, flag.NewFlagSet("reaped", flag.ContinueOnError), args, 2, 2, "[-t DUR] PIDFILE NAME")
	if neg {
		ts.Fatalf("reaped: no ! form")
	}
	ppid := readPid(ts, pos[0])
	Eventually(ts, "reaped "+pos[0], timeout, func() (bool, string) {
		var left []string
		for _, c := range Children(ppid) {
			if c.State == 'Z' || c.Comm == pos[1] {
				left = append(left, fmt.Sprintf("pid %d (%s, %c)", c.Pid, c.Comm, c.State))
			}
		}
		return len(left) == 0, strings.Join(left, ", ")
	})
}
