package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// deployDir is examples/deploy of this module, found from the folder go
// test runs the package in.
var deployDir = func() string {
	wd, err := os.Getwd()
	if err != nil {
		return "examples/deploy"
	}
	return filepath.Join(wd, "examples", "deploy")
}()

// deployCommands are the script commands of testscripts/deploy_*.txtar:
//
//	deploydir VAR
//	    Sets VAR to the absolute path of examples/deploy, so a script can
//	    copy an example file and adapt it with sed.
//	cleanup
//	    When the script ends, passed or failed, sends SIGKILL to each live
//	    process (found by pid) that has this script's GSUP_TEST_TAG in its
//	    environment: what a peer (runsv, supervisord) started and a failed
//	    script left behind, reparented where testscript cannot reach it.
//	childpid [-t DUR] PIDFILE OUTFILE
//	    Waits until the process in PIDFILE has a child, and writes the
//	    child's pid to OUTFILE: the pid, as seen from here, of what a
//	    wrapper (unshare --fork) started, for pidkill.
//	reaped [-t DUR] PIDFILE NAME
//	    Waits until the process in PIDFILE has no child that is a zombie
//	    and none whose command name is NAME: the orphans it adopted have
//	    exited and were reaped.
//	seqcheck REGEXP FILE...
//	    The lines of the FILEs (glob patterns; a name ending in .gz is
//	    read decompressed) that match REGEXP carry a number in its first
//	    capture group. Fails unless every number from 1 to the largest
//	    occurs exactly once, and prints "N numbered lines in K files".
func deployCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"childpid":  cmdChildpid,
		"cleanup":   cmdCleanup,
		"deploydir": cmdDeploydir,
		"reaped":    cmdReaped,
		"seqcheck":  cmdSeqcheck,
	}
}

func cmdDeploydir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: deploydir VAR")
	}
	if _, err := os.Stat(deployDir); err != nil {
		ts.Fatalf("deploydir: %v", err)
	}
	ts.Setenv(args[0], deployDir)
}

func cmdCleanup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: cleanup")
	}
	tag := "GSUP_TEST_TAG=" + ts.Getenv("GSUP_TEST_TAG")
	if tag == "GSUP_TEST_TAG=" {
		ts.Fatalf("cleanup: GSUP_TEST_TAG is not set")
	}
	ts.Defer(func() {
		for _, pid := range taggedPids(tag) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// taggedPids returns the processes other than this one whose environment
// holds the entry tag and that are not zombies.
func taggedPids(tag string) []int {
	dirs, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), tag) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitFlags parses an optional -t DUR (10s) in front of the arguments.
func waitFlags(ts *testscript.TestScript, name string, args []string) (time.Duration, []string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("t", 10*time.Second, "how long to wait")
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("%s: %v", name, err)
	}
	return *timeout, fs.Args()
}

// waitFor calls check every 20 ms until it reports done, or fails the
// script after timeout with what check last said.
func waitFor(ts *testscript.TestScript, what string, timeout time.Duration, check func() (bool, string)) {
	deadline := time.Now().Add(timeout)
	for {
		done, last := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s: timed out after %v; last saw: %s", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pidIn(ts *testscript.TestScript, file string) int {
	data, err := os.ReadFile(ts.MkAbs(file))
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		ts.Fatalf("%s: no pid in %q", file, data)
	}
	return pid
}

// procChild is a child process: its pid, state letter and command name.
type procChild struct {
	pid   int
	state byte
	comm  string
}

// childrenOf lists the processes whose parent is ppid.
func childrenOf(ppid int) []procChild {
	dirs, _ := os.ReadDir("/proc")
	var out []procChild
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || end+2 >= len(s) {
			continue
		}
		fields := strings.Fields(s[end+2:])
		if len(fields) < 2 {
			continue
		}
		if parent, _ := strconv.Atoi(fields[1]); parent == ppid {
			out = append(out, procChild{pid: pid, state: fields[0][0], comm: s[open+1 : end]})
		}
	}
	return out
}

func cmdChildpid(ts *testscript.TestScript, neg bool, args []string) {
	timeout, pos := waitFlags(ts, "childpid", args)
	if neg || len(pos) != 2 {
		ts.Fatalf("usage: childpid [-t DUR] PIDFILE OUTFILE")
	}
	ppid := pidIn(ts, pos[0])
	var child int
	waitFor(ts, "childpid "+pos[0], timeout, func() (bool, string) {
		kids := childrenOf(ppid)
		if len(kids) == 0 {
			return false, fmt.Sprintf("pid %d has no child", ppid)
		}
		child = kids[0].pid
		return true, ""
	})
	ts.Check(os.WriteFile(ts.MkAbs(pos[1]), []byte(strconv.Itoa(child)+"\n"), 0o644))
}

func cmdReaped(ts *testscript.TestScript, neg bool, args []string) {
	timeout, pos := waitFlags(ts, "reaped", args)
	if neg || len(pos) != 2 {
		ts.Fatalf("usage: reaped [-t DUR] PIDFILE NAME")
	}
	ppid := pidIn(ts, pos[0])
	waitFor(ts, "reaped "+pos[0], timeout, func() (bool, string) {
		var left []string
		for _, c := range childrenOf(ppid) {
			if c.state == 'Z' || c.comm == pos[1] {
				left = append(left, fmt.Sprintf("pid %d (%s, %c)", c.pid, c.comm, c.state))
			}
		}
		if len(left) > 0 {
			return false, strings.Join(left, ", ")
		}
		return true, ""
	})
}

func cmdSeqcheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! seqcheck")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: seqcheck REGEXP FILE...")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	if re.NumSubexp() < 1 {
		ts.Fatalf("seqcheck: %q has no capture group for the number", args[0])
	}
	var files []string
	for _, pattern := range args[1:] {
		matches, err := filepath.Glob(ts.MkAbs(pattern))
		ts.Check(err)
		if len(matches) == 0 {
			ts.Fatalf("seqcheck: no file matches %s", pattern)
		}
		files = append(files, matches...)
	}
	counts, err := countNumbers(re, files)
	ts.Check(err)
	if len(counts) == 0 {
		ts.Fatalf("seqcheck: no line matches %q in %s", args[0], strings.Join(args[1:], " "))
	}
	msg := seqProblems(counts)
	if msg != "" {
		ts.Fatalf("seqcheck: %s", msg)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	fmt.Fprintf(ts.Stdout(), "%d numbered lines in %d files\n", total, len(files))
}

// countNumbers counts, for each number, the lines of files whose match of
// re carries it in the first capture group.
func countNumbers(re *regexp.Regexp, files []string) (map[int]int, error) {
	counts := map[int]int{}
	for _, name := range files {
		if err := countFile(re, name, counts); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

func countFile(re *regexp.Regexp, name string, counts map[int]int) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", name, m[1])
		}
		counts[n]++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// seqProblems describes the numbers of 1..max(counts) that are missing or
// occur more than once (at most ten of each); "" when there are none.
func seqProblems(counts map[int]int) string {
	largest := 0
	var odd []int
	for n := range counts {
		largest = max(largest, n)
		if n < 1 {
			odd = append(odd, n)
		}
	}
	var missing, repeated []string
	for n := 1; n <= largest; n++ {
		switch c := counts[n]; {
		case c == 0 && len(missing) < 10:
			missing = append(missing, strconv.Itoa(n))
		case c > 1 && len(repeated) < 10:
			repeated = append(repeated, fmt.Sprintf("%d (%d times)", n, c))
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing: "+strings.Join(missing, ", "))
	}
	if len(repeated) > 0 {
		parts = append(parts, "repeated: "+strings.Join(repeated, ", "))
	}
	if len(odd) > 0 {
		sort.Ints(odd)
		parts = append(parts, fmt.Sprintf("out of range: %v", odd))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("numbers 1..%d: %s", largest, strings.Join(parts, "; "))
}

func TestSeqProblems(t *testing.T) {
	for _, tc := range []struct {
		counts map[int]int
		want   string
	}{
		{map[int]int{1: 1, 2: 1, 3: 1}, ""},
		{map[int]int{1: 1, 3: 1}, "numbers 1..3: missing: 2"},
		{map[int]int{1: 1, 2: 2}, "numbers 1..2: repeated: 2 (2 times)"},
		{map[int]int{0: 1, 1: 1}, "numbers 1..1: out of range: [0]"},
	} {
		if got := seqProblems(tc.counts); got != tc.want {
			t.Errorf("seqProblems(%v) = %q, want %q", tc.counts, got, tc.want)
		}
	}
}
