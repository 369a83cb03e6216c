package main

import (
	"bufio"
	"bytes"
	"os"
	"sort"
	"strconv"
	"strings"
)

// pidList reads the numeric entries of /proc.
func pidList() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]int, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if p, err := strconv.Atoi(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// exeOf is the target of /proc/PID/exe: the program the process has
// exec'd. It is empty for a zombie, a kernel thread or a vanished pid.
func exeOf(pid int) string {
	e, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return ""
	}
	return e
}

type procStat struct {
	comm  string
	state byte
	ppid  int
	pgrp  int
	sid   int
	start uint64 // clock ticks after boot
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return procStat{}, false
	}
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	st := procStat{comm: string(b[i+1 : j]), state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.sid, _ = strconv.Atoi(f[3])
	st.start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

// running reports whether pid exists and is neither a zombie nor dead.
func running(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// statusKB returns a "Key: N kB" field of /proc/PID/status (VmRSS, VmHWM), 0 if absent.
func statusKB(pid int, key string) int {
	return kbField("/proc/"+strconv.Itoa(pid)+"/status", key+":")
}

// pssKB is the proportional set size of pid: shared pages divided among
// the processes that map them, so a sum over processes is not inflated by
// libc counted once per process.
func pssKB(pid int) int {
	return kbField("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", "Pss:")
}

func kbField(path, prefix string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := fieldValue(sc.Text(), prefix); ok {
			return v
		}
	}
	return 0
}

// fieldValue is the number that follows prefix at the start of line, as
// in "VmRSS:    1234 kB" or "voluntary_ctxt_switches:\t5".
func fieldValue(line, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return 0, false
	}
	fs := strings.Fields(rest)
	if len(fs) == 0 {
		return 0, false
	}
	v, err := strconv.Atoi(fs[0])
	return v, err == nil
}

// tagOf returns the value of environment entry key=... of pid, and whether present.
func tagOf(pid int, key string) (string, bool) {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", false
	}
	want := []byte(key + "=")
	for _, e := range bytes.Split(env, []byte{0}) {
		if bytes.HasPrefix(e, want) {
			return string(e[len(want):]), true
		}
	}
	return "", false
}

// pidsRunning lists the live processes whose executable is exe.
func pidsRunning(exe string) []int {
	var out []int
	for _, p := range pidList() {
		if exeOf(p) == exe {
			out = append(out, p)
		}
	}
	return out
}

// exeCounter counts processes running exe across repeated scans. A pid
// once seen running exe is trusted for as long as it stays in /proc and is
// not a zombie, so a scan only readlinks pids it has not matched yet.
type exeCounter struct {
	exe  string
	seen map[int]bool
}

func newExeCounter(exe string) *exeCounter { return &exeCounter{exe: exe, seen: map[int]bool{}} }

func (c *exeCounter) count() int {
	pids := pidList()
	present := make(map[int]bool, len(pids))
	n := 0
	for _, p := range pids {
		present[p] = true
		if c.seen[p] {
			n++
			continue
		}
		if exeOf(p) == c.exe {
			c.seen[p] = true
			n++
		}
	}
	for p := range c.seen {
		if !present[p] {
			delete(c.seen, p)
		}
	}
	return n
}

// oldestOf returns the pid that started first among pids (ties: lowest pid).
func oldestOf(pids []int) (int, procStat) {
	type ps struct {
		pid int
		st  procStat
	}
	var all []ps
	for _, p := range pids {
		if st, ok := readStat(p); ok && st.state != 'Z' {
			all = append(all, ps{p, st})
		}
	}
	if len(all) == 0 {
		return 0, procStat{}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].st.start != all[j].st.start {
			return all[i].st.start < all[j].st.start
		}
		return all[i].pid < all[j].pid
	})
	return all[0].pid, all[0].st
}

// member is one process that belongs to a measured run.
type member struct {
	pid  int
	ppid int
	exe  string // base name of the executable (comm for a zombie)
	path string
}

// members lists the live processes that belong to a run: those whose
// environment carries tagKey=VALUE with VALUE starting with tagPrefix, those
// in session sid (when sid > 0), and those running a program under binDir
// (when set). The caller itself is never listed.
func members(tagKey, tagPrefix string, sid int, binDir string) []member {
	self := os.Getpid()
	var out []member
	for _, p := range pidList() {
		if p == self {
			continue
		}
		st, ok := readStat(p)
		if !ok || st.state == 'Z' || st.state == 'X' {
			continue
		}
		path := exeOf(p)
		match := sid > 0 && st.sid == sid
		if !match && binDir != "" && path != "" && strings.HasPrefix(path, binDir+"/") {
			match = true
		}
		if !match && tagPrefix != "" {
			if v, ok := tagOf(p, tagKey); ok && strings.HasPrefix(v, tagPrefix) {
				match = true
			}
		}
		if !match {
			continue
		}
		name := st.comm
		if path != "" {
			name = path[strings.LastIndexByte(path, '/')+1:]
		}
		out = append(out, member{pid: p, ppid: st.ppid, exe: name, path: path})
	}
	return out
}
