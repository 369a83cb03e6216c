package main

// Helpers of bench/http.sh: a free port, bounded waits for an HTTP answer
// and for a process to exit, a bounded GET, CPU time of a set of processes
// from /proc, and wrk's output turned into key=value lines.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// cmdFreePort prints a TCP port on 127.0.0.1 that was free a moment ago.
// With -run N it prints the first of N consecutive free ports below the
// kernel's ephemeral range (ip_local_port_range), where no outgoing
// connection takes one meanwhile: a base port for gsup's instances.
func cmdFreePort(args []string) {
	fs := flag.NewFlagSet("freeport", flag.ExitOnError)
	n := fs.Int("n", 1, "how many distinct ports")
	run := fs.Int("run", 0, "print the first of this many consecutive free ports below the ephemeral range")
	fs.Parse(args)
	if *run > 0 {
		fmt.Println(freeRun(*run))
		return
	}
	var held []net.Listener
	for i := 0; i < *n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			die("freeport: %v", err)
		}
		held = append(held, ln) // held until all are chosen, so they differ
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range held {
		ln.Close()
	}
}

func freeRun(n int) int {
	hi := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				hi = v
			}
		}
	}
	const lo = 10000
	if hi-lo < 2*n {
		die("freeport: no room below the ephemeral range (%d)", hi)
	}
	for range 200 {
		base := lo + rand.IntN(hi-lo-n)
		var held []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(held) == n {
			return base
		}
	}
	die("freeport: no %d consecutive free ports found", n)
	return 0
}

// httpClient makes one-shot requests: no connection is kept, every
// exchange is bounded. https URLs are accepted with any certificate: the
// fronts' TLS rows use a self-signed one made for the run.
func httpClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// cmdWaitHTTP polls a URL until it answers with the wanted status.
func cmdWaitHTTP(args []string) {
	fs := flag.NewFlagSet("waithttp", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	want := fs.Int("status", 200, "status that counts as ready")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after this long")
	pid := fs.Int("pid", 0, "give up at once when this process is gone")
	unix := fs.String("unix", "", "connect to this UNIX socket, whatever the URL's host")
	fs.Parse(args)
	if *url == "" {
		die("waithttp: -url is required")
	}
	c := httpClient(time.Second)
	if *unix != "" {
		d := net.Dialer{Timeout: time.Second}
		c.Transport.(*http.Transport).DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", *unix)
		}
	}
	t0 := time.Now()
	deadline := t0.Add(*timeout)
	last := "no answer"
	for {
		resp, err := c.Get(*url)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == *want {
				emit(kv{"ready_ms", fmt.Sprintf("%.1f", ms(time.Since(t0)))})
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if *pid > 0 && !running(*pid) {
			emit(kv{"ready_ms", "exited"}, kv{"last", last})
			os.Exit(1)
		}
		if time.Now().After(deadline) {
			emit(kv{"ready_ms", "timeout"}, kv{"last", last})
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdGet prints the body of one GET (status other than 200: exit 1).
func cmdGet(args []string) {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	timeout := fs.Duration("timeout", 3*time.Second, "limit for the whole exchange")
	fs.Parse(args)
	resp, err := httpClient(*timeout).Get(*url)
	if err != nil {
		die("get: %v", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, io.LimitReader(resp.Body, 1<<20)); err != nil {
		die("get: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "probe: get:", resp.Status)
		os.Exit(1)
	}
}

// cmdWaitExit waits until a process has exited (a zombie counts as exited).
func cmdWaitExit(args []string) {
	fs := flag.NewFlagSet("waitexit", flag.ExitOnError)
	pid := fs.Int("pid", 0, "process to wait for")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	fs.Parse(args)
	if *pid <= 0 {
		die("waitexit: -pid is required")
	}
	t0 := time.Now()
	for running(*pid) {
		if time.Since(t0) > *timeout {
			emit(kv{"exit_ms", "timeout"})
			os.Exit(1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	emit(kv{"exit_ms", fmt.Sprintf("%.1f", ms(time.Since(t0)))})
}

// cpuTicks returns utime+stime of pid (all its threads, live and exited)
// in clock ticks, from /proc/PID/stat.
func cpuTicks(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStatCPU(b)
}

// parseStatCPU takes fields 14 (utime) and 15 (stime) of a stat line. The
// command name in parentheses may hold blanks and ')', so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (uint64, bool) {
	j := bytes.LastIndexByte(b, ')')
	if j < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[j+1:]))
	// after ')': state(3) ppid(4) ... utime(14) stime(15)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + s, true
}

// switches returns the context switches of pid's live threads so far,
// voluntary (the thread waited) and not (it was preempted), from each
// /proc/PID/task/TID/status.
func switches(pid int) (vol, invol uint64) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if err != nil {
			continue
		}
		v, n := parseSwitches(b)
		vol += v
		invol += n
	}
	return vol, invol
}

// parseSwitches takes the voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches lines of a status file.
func parseSwitches(b []byte) (vol, invol uint64) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if n, ok := fieldValue(line, "voluntary_ctxt_switches:"); ok {
			vol = uint64(n)
		} else if n, ok := fieldValue(line, "nonvoluntary_ctxt_switches:"); ok {
			invol = uint64(n)
		}
	}
	return vol, invol
}

// descendants returns pid and every live process below it.
func descendants(pid int) []int {
	kids := map[int][]int{}
	for _, p := range pidList() {
		if st, ok := readStat(p); ok && st.state != 'Z' {
			kids[st.ppid] = append(kids[st.ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// procSet is the set of processes that cpu and mem measure: the pids
// given, with -tree also everything below them, kept only if they run -exe
// when that is set.
type procSet struct {
	tree *bool
	exe  *string
}

func newProcSet(fs *flag.FlagSet) procSet {
	return procSet{
		tree: fs.Bool("tree", false, "add every descendant of the pids"),
		exe:  fs.String("exe", "", "count only processes running this program"),
	}
}

// pids resolves the set from the pid arguments; each process once.
func (s procSet) pids(name string, args []string) []int {
	seen := map[int]bool{}
	var out []int
	for _, a := range args {
		p, err := strconv.Atoi(a)
		if err != nil || p <= 0 {
			die("%s: bad pid %q", name, a)
		}
		set := []int{p}
		if *s.tree {
			set = descendants(p)
		}
		for _, q := range set {
			if seen[q] || (*s.exe != "" && exeOf(q) != *s.exe) {
				continue
			}
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}

func joinPids(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// cmdCPU prints the CPU time used so far by a set of processes (see
// procSet), and their threads' context switches, voluntary (vcsw) and not
// (ivcsw).
func cmdCPU(args []string) {
	fs := flag.NewFlagSet("cpu", flag.ExitOnError)
	set := newProcSet(fs)
	hz := fs.Int("hz", 100, "clock ticks per second (getconf CLK_TCK)")
	fs.Parse(args)
	var ticks, vol, invol uint64
	var pids []int
	for _, q := range set.pids("cpu", fs.Args()) {
		if t, ok := cpuTicks(q); ok {
			ticks += t
			pids = append(pids, q)
			v, n := switches(q)
			vol += v
			invol += n
		}
	}
	if len(pids) == 0 {
		emit(kv{"cpu_us", "none"}, kv{"vcsw", "none"}, kv{"ivcsw", "none"}, kv{"pids", ""})
		os.Exit(1)
	}
	emit(kv{"cpu_us", ticks * 1_000_000 / uint64(max(*hz, 1))}, kv{"vcsw", vol}, kv{"ivcsw", invol}, kv{"pids", joinPids(pids)})
}

// cmdMem prints the resident memory (VmRSS, in kB) and the open file
// descriptors of a set of processes (see procSet), summed.
func cmdMem(args []string) {
	fs := flag.NewFlagSet("mem", flag.ExitOnError)
	set := newProcSet(fs)
	fs.Parse(args)
	rss, fds := 0, 0
	var pids []int
	for _, q := range set.pids("mem", fs.Args()) {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(q) + "/fd")
		if err != nil {
			continue
		}
		kb := statusKB(q, "VmRSS")
		rss += kb
		fds += len(ents)
		pids = append(pids, q)
	}
	if len(pids) == 0 {
		emit(kv{"rss_kb", "none"}, kv{"fds", "none"}, kv{"pids", ""})
		os.Exit(1)
	}
	emit(kv{"rss_kb", rss}, kv{"fds", fds}, kv{"pids", joinPids(pids)})
}

// wrkResult is what bench/http.sh takes from wrk's output.
type wrkResult struct {
	requests  int64
	secs      float64
	rps       float64
	p50, p99  float64 // ms
	connect   int64
	read      int64
	write     int64
	timeout   int64
	non2xx    int64 // "Non-2xx or 3xx responses"
	haveLat   bool
	haveTotal bool
}

var (
	reTotal  = regexp.MustCompile(`^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)\b`)
	reRPS    = regexp.MustCompile(`^Requests/sec:\s+([0-9.]+)`)
	rePct    = regexp.MustCompile(`^\s*(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	reSock   = regexp.MustCompile(`^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx = regexp.MustCompile(`^\s*Non-2xx or 3xx responses: (\d+)`)
)

// unitMS converts a wrk duration (value and unit) to milliseconds.
func unitMS(v float64, unit string) float64 {
	switch unit {
	case "us":
		return v / 1000
	case "ms":
		return v
	case "s":
		return v * 1000
	case "m":
		return v * 60_000
	case "h":
		return v * 3_600_000
	}
	return v
}

func parseWrk(r io.Reader) (wrkResult, error) {
	var w wrkResult
	haveRPS := false
	inDist := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Latency Distribution") {
			inDist = true
			continue
		}
		if m := reTotal.FindStringSubmatch(line); m != nil {
			w.requests, _ = strconv.ParseInt(m[1], 10, 64)
			v, _ := strconv.ParseFloat(m[2], 64)
			w.secs = unitMS(v, m[3]) / 1000
			w.haveTotal = true
			inDist = false
			continue
		}
		if inDist {
			if m := rePct.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseFloat(m[2], 64)
				if m[1] == "50" {
					w.p50 = unitMS(v, m[3])
				} else {
					w.p99 = unitMS(v, m[3])
					w.haveLat = true
				}
			}
			continue
		}
		if m := reRPS.FindStringSubmatch(line); m != nil {
			w.rps, _ = strconv.ParseFloat(m[1], 64)
			haveRPS = true
		} else if m := reSock.FindStringSubmatch(line); m != nil {
			w.connect, _ = strconv.ParseInt(m[1], 10, 64)
			w.read, _ = strconv.ParseInt(m[2], 10, 64)
			w.write, _ = strconv.ParseInt(m[3], 10, 64)
			w.timeout, _ = strconv.ParseInt(m[4], 10, 64)
		} else if m := reNon2xx.FindStringSubmatch(line); m != nil {
			w.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return w, err
	}
	if !haveRPS || !w.haveTotal {
		return w, errors.New("no Requests/sec or request total in wrk's output")
	}
	return w, nil
}

// cmdWrk parses a file holding wrk's output (run with --latency).
func cmdWrk(args []string) {
	if len(args) != 1 {
		die("usage: probe wrk FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		die("wrk: %v", err)
	}
	defer f.Close()
	w, err := parseWrk(f)
	if err != nil {
		emit(kv{"rps", "none"}, kv{"error", err.Error()})
		os.Exit(1)
	}
	p := func(v float64, ok bool) string {
		if !ok {
			return "none"
		}
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	emit(kv{"rps", fmt.Sprintf("%.0f", w.rps)}, kv{"requests", w.requests}, kv{"secs", fmt.Sprintf("%.2f", w.secs)},
		kv{"p50_ms", p(w.p50, w.haveLat)}, kv{"p99_ms", p(w.p99, w.haveLat)},
		kv{"sock_connect", w.connect}, kv{"sock_read", w.read}, kv{"sock_write", w.write}, kv{"sock_timeout", w.timeout},
		kv{"non2xx", w.non2xx}, kv{"errors", w.connect + w.read + w.write + w.timeout + w.non2xx})
}

// cmdLeft waits (bounded) until nothing of a server is left: no process in
// its session (-sid, the pid of a server started with setsid) and none
// carrying the tag. It prints what was still there at the end.
func cmdLeft(args []string) {
	fs := flag.NewFlagSet("left", flag.ExitOnError)
	tag := fs.String("tag", "", "processes whose "+tagKey+" starts with this")
	sid := fs.Int("sid", 0, "processes of this session")
	timeout := fs.Duration("timeout", 2*time.Second, "wait this long for them to go")
	fs.Parse(args)
	if *tag == "" && *sid <= 0 {
		die("left: -tag or -sid is required")
	}
	deadline := time.Now().Add(*timeout)
	for {
		ms := members(tagKey, *tag, *sid, "")
		if len(ms) == 0 || time.Now().After(deadline) {
			emit(kv{"left_n", len(ms)}, kv{"left", summarize(ms)})
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdCPUStat prints, for each CPU number given, the time it has spent busy
// (user, nice, system, irq, softirq), idle (idle, iowait) and stolen by the
// hypervisor (steal) since boot, in µs, from /proc/stat: "cpuN_busy_us=...".
func cmdCPUStat(args []string) {
	fs := flag.NewFlagSet("cpustat", flag.ExitOnError)
	hz := fs.Int("hz", 100, "clock ticks per second (getconf CLK_TCK)")
	fs.Parse(args)
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		die("cpustat: %v", err)
	}
	all := parseProcStat(b)
	var out []kv
	for _, a := range fs.Args() {
		t, ok := all["cpu"+a]
		if !ok {
			die("cpustat: no cpu%s in /proc/stat", a)
		}
		us := func(v uint64) uint64 { return v * 1_000_000 / uint64(max(*hz, 1)) }
		out = append(out, kv{"cpu" + a + "_busy_us", us(t.busy)}, kv{"cpu" + a + "_idle_us", us(t.idle)},
			kv{"cpu" + a + "_steal_us", us(t.steal)})
	}
	emit(out...)
}

type cpuTimes struct{ busy, idle, steal uint64 }

// parseProcStat reads the "cpuN user nice system idle iowait irq softirq
// steal ..." lines (ticks). guest time is already inside user and nice.
func parseProcStat(b []byte) map[string]cpuTimes {
	out := map[string]cpuTimes{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var v [8]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		}
		out[f[0]] = cpuTimes{busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7]}
	}
	return out
}
