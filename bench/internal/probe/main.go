// Command probe is the measuring half of bench/supervise.sh: it launches one
// supervisor (gsup, runsvdir, supervisord) on a prepared directory, takes
// the figures from /proc, stops it and kills whatever it left behind. It is
// also the child program of the throughput phase, and holds the small
// helpers of bench/http.sh. Linux only, standard library only.
//
//	probe start      [flags] -- SUPERVISOR ARGS...   time until -n children run; RSS of the supervisor and its helpers
//	probe restart    [flags] -- SUPERVISOR ARGS...   SIGKILL a long-running child, time until a new pid runs the child program
//	probe throughput [flags] -- SUPERVISOR ARGS...   lines/s from writers through the supervisor into files, checked line by line
//	probe writer     [flags]                          the throughput child (run from a copy of this binary)
//	probe verify     -lines L -writers W FILE...      check output files alone
//	probe reap       -tag PREFIX [-bindir DIR]        kill every process of a run (by tag, or running a program under DIR,
//	                                                  which must hold a file named .bench-bin)
//
// For bench/http.sh:
//
//	probe freeport   [-n N] [-run N]                  free TCP ports on 127.0.0.1, one a line; -run: N in a row below the ephemeral range
//	probe waithttp   -url URL [-unix PATH] [-timeout D] [-pid P]   wait until URL answers 200 (or P is gone)
//	probe get        -url URL                         print a body (bounded)
//	probe waitexit   -pid P [-timeout D]              wait until P has exited
//	probe left       [-tag T] [-sid S] [-timeout D]   wait until no process of the tag / session is left
//	probe cpu        [-tree] [-exe PATH] PID...       utime+stime of the processes, in µs
//	probe mem        [-tree] [-exe PATH] PID...       VmRSS (kB) and open fds of the processes, summed
//	probe cpustat    CPU...                           busy / idle / steal time of CPUs since boot, in µs
//	probe wrk        FILE                             wrk's output (with --latency) as key=value
//
// Results are printed as key=value lines on stdout; progress and errors go
// to stderr. Every wait has a time limit.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type kv struct {
	k string
	v any
}

func emit(kvs ...kv) {
	for _, p := range kvs {
		v := fmt.Sprint(p.v)
		v = strings.ReplaceAll(v, "\n", " ")
		fmt.Printf("%s=%s\n", p.k, v)
	}
}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "probe: "+format+"\n", a...)
	os.Exit(1)
}

// Targets still running, killed if the probe is interrupted.
var (
	liveMu sync.Mutex
	live   = map[*target]bool{}
)

func register(t *target)   { liveMu.Lock(); live[t] = true; liveMu.Unlock() }
func unregister(t *target) { liveMu.Lock(); delete(live, t); liveMu.Unlock() }

func main() {
	if len(os.Args) < 2 {
		die("usage: probe start|restart|throughput|writer|verify|reap|freeport|waithttp|get|waitexit|left|cpu|mem|cpustat|wrk ...")
	}
	cmd, args := os.Args[1], os.Args[2:]
	// commands that start nothing need no clean-up on a signal
	simple := map[string]func([]string){
		"writer": runWriter, "freeport": cmdFreePort, "waithttp": cmdWaitHTTP, "get": cmdGet,
		"waitexit": cmdWaitExit, "cpu": cmdCPU, "mem": cmdMem, "wrk": cmdWrk, "left": cmdLeft, "cpustat": cmdCPUStat,
	}
	if f, ok := simple[cmd]; ok {
		f(args)
		return
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		s := <-c
		liveMu.Lock()
		for t := range live {
			for _, m := range t.members() {
				_ = syscall.Kill(m.pid, syscall.SIGKILL)
			}
			if t.pid > 0 {
				_ = syscall.Kill(t.pid, syscall.SIGKILL)
			}
		}
		liveMu.Unlock()
		fmt.Fprintln(os.Stderr, "probe: interrupted by", s)
		// die of the same signal, so that a calling shell sees it and stops too
		signal.Reset(s)
		_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
		time.Sleep(time.Second)
		os.Exit(130)
	}()
	switch cmd {
	case "start":
		cmdStart(args)
	case "restart":
		cmdRestart(args)
	case "throughput":
		cmdThroughput(args)
	case "verify":
		cmdVerify(args)
	case "reap":
		cmdReap(args)
	default:
		die("unknown command %q", cmd)
	}
}

// common flags of the phases that launch a supervisor
type launchFlags struct {
	dir, stdout, stderr, tag, binDir string
	stopSig                          string
	stopTimeout                      time.Duration
	poll                             time.Duration
}

func (l *launchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.dir, "dir", ".", "working directory of the supervisor")
	fs.StringVar(&l.stdout, "stdout", "", "file for the supervisor's stdout (default DIR/supervisor.out)")
	fs.StringVar(&l.stderr, "stderr", "", "file for its stderr (default: with stdout)")
	fs.StringVar(&l.tag, "tag", "", "value of "+tagKey+" given to the supervisor (required)")
	fs.StringVar(&l.binDir, "bindir", "", "directory holding the children's programs")
	fs.StringVar(&l.stopSig, "stop-signal", "TERM", "signal that stops the supervisor (TERM, HUP, INT, QUIT)")
	fs.DurationVar(&l.stopTimeout, "stop-timeout", 20*time.Second, "wait this long for the supervisor to exit")
	fs.DurationVar(&l.poll, "poll", 200*time.Microsecond, "/proc polling interval")
}

// binDirMark must exist in a -bindir: matching processes by the directory
// their program lives in is only safe for a directory made for the run.
const binDirMark = ".bench-bin"

func checkBinDir(dir string) string {
	if dir == "" {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		die("-bindir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(abs, binDirMark)); err != nil {
		die("-bindir %s: no %s in it; it must be a directory made for the run", abs, binDirMark)
	}
	return abs
}

func (l *launchFlags) target(fs *flag.FlagSet) *target {
	l.binDir = checkBinDir(l.binDir)
	argv := fs.Args()
	if len(argv) == 0 {
		die("%s: no supervisor command after --", fs.Name())
	}
	if l.tag == "" {
		die("%s: -tag is required", fs.Name())
	}
	dir, err := filepath.Abs(l.dir)
	if err != nil {
		die("%v", err)
	}
	if l.stdout == "" {
		l.stdout = filepath.Join(dir, "supervisor.out")
	}
	if l.stderr == "" {
		l.stderr = l.stdout
	}
	return &target{argv: argv, dir: dir, stdout: l.stdout, stderr: l.stderr, tag: l.tag, binDir: l.binDir}
}

// launch starts the supervisor of target(fs), or dies.
func (l *launchFlags) launch(fs *flag.FlagSet) *target {
	t := l.target(fs)
	if err := t.start(); err != nil {
		die("start %s: %v", t.argv[0], err)
	}
	return t
}

func (l *launchFlags) signal() syscall.Signal {
	switch strings.TrimPrefix(strings.ToUpper(l.stopSig), "SIG") {
	case "TERM":
		return syscall.SIGTERM
	case "HUP":
		return syscall.SIGHUP
	case "INT":
		return syscall.SIGINT
	case "QUIT":
		return syscall.SIGQUIT
	case "KILL":
		return syscall.SIGKILL
	}
	die("unknown signal %q", l.stopSig)
	return 0
}

// ---- start: time to N children, RSS -----------------------------------------

func cmdStart(args []string) {
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	var lf launchFlags
	lf.register(fs)
	exe := fs.String("exe", "", "the children's program (matched against /proc/PID/exe)")
	n := fs.Int("n", 100, "children to wait for")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for the children after this long")
	settle := fs.Duration("settle", 2*time.Second, "wait this long with all children up before reading RSS")
	fs.Parse(args)
	t := lf.launch(fs)
	defer t.kill()
	startMS := "timeout"
	if at, ok := waitCount(t, *exe, *n, *timeout, time.Millisecond); ok {
		startMS = fmt.Sprintf("%.1f", ms(at.Sub(t.t0)))
	} else if !t.alive() {
		startMS = "exited"
	}
	if t.alive() {
		time.Sleep(*settle)
	}
	out := []kv{{"start_ms", startMS}, {"children", len(pidsRunning(*exe))}}
	// RSS "with n children" only means something once they all run
	if t.alive() && startMS != "timeout" {
		var helpers []member
		for _, m := range t.members() {
			if m.pid != t.pid && m.path != *exe {
				helpers = append(helpers, m)
			}
		}
		hr, hp := 0, 0
		for _, m := range helpers {
			hr += statusKB(m.pid, "VmRSS")
			hp += pssKB(m.pid)
		}
		rss, pss := statusKB(t.pid, "VmRSS"), pssKB(t.pid)
		out = append(out,
			kv{"rss_kb", rss}, kv{"hwm_kb", statusKB(t.pid, "VmHWM")}, kv{"pss_kb", pss},
			kv{"helpers", summarize(helpers)}, kv{"helpers_n", len(helpers)},
			kv{"helpers_rss_kb", hr}, kv{"helpers_pss_kb", hp},
			kv{"total_rss_kb", rss + hr}, kv{"total_pss_kb", pss + hp})
	}
	stopMS, left := t.stop(lf.signal(), lf.stopTimeout)
	out = append(out, kv{"stop_ms", stopMS}, kv{"left", left}, kv{"exit", t.exitText()})
	emit(out...)
}

// ---- restart: SIGKILL a child, time until its replacement runs ---------------

func cmdRestart(args []string) {
	fs := flag.NewFlagSet("restart", flag.ExitOnError)
	var lf launchFlags
	lf.register(fs)
	exe := fs.String("exe", "", "the children's program (matched against /proc/PID/exe)")
	n := fs.Int("n", 10, "children to wait for")
	kills := fs.Int("kills", 10, "children to kill, one at a time, oldest first")
	age := fs.Duration("age", 2*time.Second, "a child is killed only after it has run this long")
	gap := fs.Duration("gap", 300*time.Millisecond, "pause after a replacement is seen, before the next kill")
	each := fs.Duration("each-timeout", 5*time.Second, "give up on one replacement after this long")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for the first children after this long")
	fs.Parse(args)
	t := lf.launch(fs)
	defer t.kill()
	out := []kv{}
	at, ok := waitCount(t, *exe, *n, *timeout, time.Millisecond)
	if !ok {
		stopMS, left := t.stop(lf.signal(), lf.stopTimeout)
		emit(kv{"start_ms", "timeout"}, kv{"children", len(pidsRunning(*exe))}, kv{"restart_ms", ""}, kv{"restart_median", "none"},
			kv{"stop_ms", stopMS}, kv{"left", left}, kv{"exit", t.exitText()})
		return
	}
	out = append(out, kv{"start_ms", fmt.Sprintf("%.1f", ms(at.Sub(t.t0)))})
	firstSeen := map[int]time.Time{}
	for _, p := range pidsRunning(*exe) {
		firstSeen[p] = at
	}
	var lat []float64
	misses := 0
	for k := 0; k < *kills && t.alive(); k++ {
		pids := pidsRunning(*exe)
		if len(pids) == 0 {
			misses++
			break
		}
		// oldest by the probe's own first sighting, then by kernel start time
		sort.Slice(pids, func(i, j int) bool {
			a, b := firstSeen[pids[i]], firstSeen[pids[j]]
			if a.IsZero() != b.IsZero() {
				return !a.IsZero()
			}
			return a.Before(b)
		})
		victim := pids[0]
		if seen, ok := firstSeen[victim]; ok {
			if wait := *age - time.Since(seen); wait > 0 {
				time.Sleep(wait)
			}
		} else {
			time.Sleep(*age)
		}
		d, newPid, ok := killAndWatch(t, victim, *exe, *each, lf.poll)
		if !ok {
			misses++
			fmt.Fprintf(os.Stderr, "probe: kill %d of %d: no replacement within %s\n", k+1, *kills, *each)
			break
		}
		firstSeen[newPid] = time.Now()
		lat = append(lat, ms(d))
		time.Sleep(*gap)
	}
	exited := !t.alive()
	var parts []string
	for _, v := range lat {
		parts = append(parts, fmt.Sprintf("%.2f", v))
	}
	med, p90, mx := "none", "none", "none"
	if len(lat) > 0 && misses == 0 {
		m, p, x := stats(lat)
		med, p90, mx = f2(m), f2(p), f2(x)
	} else if len(lat) > 0 {
		_, _, x := stats(lat)
		mx = f2(x)
	}
	if exited {
		med = "none(exited)"
	}
	out = append(out, kv{"restart_ms", strings.Join(parts, ",")}, kv{"restart_n", len(lat)},
		kv{"restart_misses", misses}, kv{"restart_median", med}, kv{"restart_p90", p90}, kv{"restart_max", mx},
		kv{"supervisor_exited", exited})
	stopMS, left := t.stop(lf.signal(), lf.stopTimeout)
	out = append(out, kv{"stop_ms", stopMS}, kv{"left", left}, kv{"exit", t.exitText()})
	emit(out...)
}

// killAndWatch SIGKILLs victim and polls /proc until a process that did not
// exist before the kill runs exe (it has exec'd the child program, not
// merely been forked). Only pids new since the kill are looked at, so a poll
// costs one read of /proc plus a readlink per new pid.
func killAndWatch(t *target, victim int, exe string, timeout, poll time.Duration) (time.Duration, int, bool) {
	before := map[int]bool{}
	for _, p := range pidList() {
		before[p] = true
	}
	delete(before, victim)
	t0 := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		return 0, 0, false
	}
	deadline := t0.Add(timeout)
	for {
		for _, p := range pidList() {
			if before[p] || p == victim {
				continue
			}
			if exeOf(p) == exe {
				return time.Since(t0), p, true
			}
		}
		now := time.Now()
		if now.After(deadline) || !t.alive() {
			return 0, 0, false
		}
		// fine polling while a fast supervisor can still answer, coarser
		// after that so as not to take the CPU a slow one needs
		switch el := now.Sub(t0); {
		case el < 20*time.Millisecond:
			time.Sleep(poll)
		case el < 200*time.Millisecond:
			time.Sleep(max(poll, time.Millisecond))
		default:
			time.Sleep(max(poll, 5*time.Millisecond))
		}
	}
}

// stats returns the median, the 90th percentile (nearest rank) and the maximum.
func stats(v []float64) (med, p90, mx float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	r := int(math.Ceil(0.9*float64(n))) - 1
	return med, s[max(r, 0)], s[n-1]
}

func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// ---- throughput -----------------------------------------------------------------

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func cmdThroughput(args []string) {
	fs := flag.NewFlagSet("throughput", flag.ExitOnError)
	var lf launchFlags
	lf.register(fs)
	var files multiFlag
	fs.Var(&files, "files", "glob of the files the lines end up in (repeatable)")
	wexe := fs.String("exe", "", "the writers' program (matched against /proc/PID/exe)")
	writers := fs.Int("writers", 10, "number of writers")
	lines := fs.Int("lines", 100000, "lines each writer writes")
	goFile := fs.String("go", "", "file whose creation starts the writers")
	prefix := fs.String("prefix", "", "regexp the text before \"child-\" must match in full (empty: anything)")
	direct := fs.Bool("direct", false, "no supervisor: start -writers copies of the command, stdout appended to -stdout")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up waiting for all lines after this long")
	stall := fs.Duration("stall", 10*time.Second, "give up when no byte arrived for this long")
	startTimeout := fs.Duration("start-timeout", 30*time.Second, "give up waiting for the writers to run after this long")
	fs.Parse(args)
	if *goFile == "" || len(files) == 0 {
		die("throughput: -go and -files are required")
	}
	c, err := newChecker(*lines, *prefix)
	if err != nil {
		die("throughput: -prefix: %v", err)
	}
	_ = os.Remove(*goFile)
	t := lf.target(fs)
	if *direct {
		err = t.startDirect(*writers)
	} else {
		err = t.start()
	}
	if err != nil {
		die("start %s: %v", t.argv[0], err)
	}
	defer t.kill()

	out := []kv{}
	if _, ok := waitCount(t, *wexe, *writers, *startTimeout, time.Millisecond); !ok {
		stopMS, left := t.stop(lf.signal(), lf.stopTimeout)
		emit(kv{"lines_per_s", "none"}, kv{"check", "writers-not-started"}, kv{"children", len(pidsRunning(*wexe))}, kv{"stop_ms", stopMS},
			kv{"left", left}, kv{"exit", t.exitText()})
		return
	}
	time.Sleep(500 * time.Millisecond) // writers reach their wait for the start file

	want := *writers * *lines
	tail := newTailer(files)
	tail.skipExisting() // lines written before the start (supervisor messages) do not count
	if err := os.WriteFile(*goFile, nil, 0o644); err != nil {
		die("throughput: %v", err)
	}
	tGo := time.Now()
	deadline := tGo.Add(*timeout)
	lastGrowth := tGo
	var tDone time.Time
	got := 0
	for {
		n, grew := tail.poll()
		got += n
		now := time.Now()
		if grew {
			lastGrowth = now
		}
		if got >= want {
			tDone = now
			break
		}
		if now.After(deadline) || now.Sub(lastGrowth) > *stall {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	complete := !tDone.IsZero()
	if !complete {
		tDone = lastGrowth
	}
	hwm := 0
	if t.pid > 0 && t.alive() {
		hwm = statusKB(t.pid, "VmHWM")
	}
	stopMS, left := t.stop(lf.signal(), lf.stopTimeout)

	for _, p := range tail.paths() {
		if err := c.readFile(p); err != nil {
			die("throughput: %v", err)
		}
	}
	secs := tDone.Sub(tGo).Seconds()
	rate := "none"
	if secs > 0 && c.valid > 0 {
		rate = fmt.Sprintf("%.0f", float64(min(c.valid, want))/secs)
	}
	out = append(out, kv{"lines_per_s", rate}, kv{"secs", fmt.Sprintf("%.3f", secs)}, kv{"complete", complete},
		kv{"lines_expected", want}, kv{"files", len(tail.paths())}, kv{"bytes", tail.total}, kv{"hwm_kb", hwm})
	out = append(out, c.report(*writers)...)
	out = append(out, kv{"stop_ms", stopMS}, kv{"left", left}, kv{"exit", t.exitText()})
	emit(out...)
}

// tailer follows the files matched by a set of globs (they may appear late)
// and counts the newlines appended to them.
type tailer struct {
	globs []string
	files map[string]*tailFile
	buf   []byte
	total int64
}

type tailFile struct {
	f   *os.File
	off int64
}

func newTailer(globs []string) *tailer {
	return &tailer{globs: globs, files: map[string]*tailFile{}, buf: make([]byte, 1<<20)}
}

func (t *tailer) discover() {
	for _, g := range t.globs {
		ms, _ := filepath.Glob(g)
		for _, p := range ms {
			if _, ok := t.files[p]; ok {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			t.files[p] = &tailFile{f: f}
		}
	}
}

// skipExisting moves past what the files hold now, counting nothing.
func (t *tailer) skipExisting() {
	t.discover()
	for _, tf := range t.files {
		if st, err := tf.f.Stat(); err == nil {
			tf.off = st.Size()
		}
	}
}

// poll reads what was appended since the last call; it returns the newlines
// seen and whether any byte arrived.
func (t *tailer) poll() (int, bool) {
	t.discover()
	lines, grew := 0, false
	for _, tf := range t.files {
		for {
			n, _ := tf.f.ReadAt(t.buf, tf.off)
			if n <= 0 {
				break
			}
			grew = true
			tf.off += int64(n)
			t.total += int64(n)
			for _, b := range t.buf[:n] {
				if b == '\n' {
					lines++
				}
			}
			if n < len(t.buf) {
				break
			}
		}
	}
	return lines, grew
}

func (t *tailer) paths() []string {
	ps := make([]string, 0, len(t.files))
	for p := range t.files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// ---- verify / reap -----------------------------------------------------------------

func cmdVerify(args []string) {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	lines := fs.Int("lines", 100000, "lines each writer wrote")
	writers := fs.Int("writers", 10, "number of writers")
	prefix := fs.String("prefix", "", "regexp the text before \"child-\" must match in full")
	fs.Parse(args)
	c, err := newChecker(*lines, *prefix)
	if err != nil {
		die("verify: -prefix: %v", err)
	}
	for _, p := range fs.Args() {
		if err := c.readFile(p); err != nil {
			die("verify: %v", err)
		}
	}
	emit(c.report(*writers)...)
	if c.verdict(*writers) != "ok" {
		os.Exit(1)
	}
}

func cmdReap(args []string) {
	fs := flag.NewFlagSet("reap", flag.ExitOnError)
	tag := fs.String("tag", "", "kill processes whose "+tagKey+" starts with this")
	binDir := fs.String("bindir", "", "also kill processes running a program under this directory")
	fs.Parse(args)
	if *tag == "" && *binDir == "" {
		die("reap: -tag or -bindir is required")
	}
	*binDir = checkBinDir(*binDir)
	killed := map[int]bool{}
	for round := 0; round < 20; round++ {
		ms := members(tagKey, *tag, 0, *binDir)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			killed[m.pid] = true
		}
		killMembers(ms, *binDir)
		time.Sleep(50 * time.Millisecond)
	}
	emit(kv{"killed", len(killed)})
}
