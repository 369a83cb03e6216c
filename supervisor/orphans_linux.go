package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MarkerEnv is set in every instance's environment to a value unique to
// that start of it ("web.1#7"). Without cgroups it is how gsup, as the
// child subreaper, tells which instance an orphan it adopted (a daemon
// that called setsid and double-forked) came from: descendants inherit
// it.
const MarkerEnv = "GSUP_INSTANCE"

// sweepInterval is how often adopted orphans are checked without
// cgroups: an orphan is adopted without a signal to gsup.
const sweepInterval = time.Second

// procInfo is what /proc/PID/stat says of a process.
type procInfo struct {
	ppid, pgid int
	state      byte
	cpuTicks   int64 // utime + stime, in clock ticks
	rssPages   int64
}

// scanProcs reads every process's parent, group and state.
func scanProcs() map[int]procInfo {
	out := map[int]procInfo{}
	dir, err := os.Open("/proc")
	if err != nil {
		return out
	}
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			out[pid] = p
		}
	}
	return out
}

// readStat parses /proc/PID/stat: "pid (comm) S ppid pgrp ...", where
// comm may hold spaces and parentheses.
func readStat(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procInfo{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 3 {
		return procInfo{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procInfo{}, false
	}
	p := procInfo{ppid: ppid, pgid: pgid, state: f[0][0]}
	if len(f) > 21 {
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		p.cpuTicks = ut + st
		p.rssPages, _ = strconv.ParseInt(f[21], 10, 64)
	}
	return p, true
}

// procMarker returns MarkerEnv from pid's environment, or "".
func procMarker(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(MarkerEnv+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// descendants returns every live descendant of root in procs.
func descendants(procs map[int]procInfo, root int) []int {
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// adopted returns the live children of this process it did not start:
// orphans of its descendants it adopted as the child subreaper.
func (s *osStarter) adopted(procs map[int]procInfo) []int {
	self := os.Getpid()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for pid, p := range procs {
		if p.ppid == self && !s.known[pid] && p.state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// tracksOrphans reports whether adopted orphans are found by marker:
// real processes without cgroups, gsup being the child subreaper.
func (s *Supervisor) tracksOrphans() bool {
	return s.os != nil && s.cgroups == nil && s.cfg.Subreaper
}

// signalOrphansLocked sends sig to the adopted orphans (and their
// descendants) whose marker is not one of a running start, or, with all,
// to every adopted orphan. It returns how many orphans it found.
func (s *Supervisor) signalOrphansLocked(sig syscall.Signal, all bool) int {
	if !s.tracksOrphans() {
		return 0
	}
	live := map[string]bool{}
	for _, inst := range s.insts {
		if inst.proc != nil {
			live[inst.marker] = true
		}
	}
	return s.signalAdopted(sig, func(m string) bool { return all || m != "" && !live[m] })
}

// signalAdopted sends sig to the adopted orphans whose marker matches,
// and to their descendants.
func (s *Supervisor) signalAdopted(sig syscall.Signal, match func(marker string) bool) int {
	procs := scanProcs()
	n := 0
	for _, pid := range s.os.adopted(procs) {
		if !match(procMarker(pid)) {
			continue
		}
		n++
		for _, d := range append(descendants(procs, pid), pid) {
			_ = syscall.Kill(d, sig)
		}
	}
	return n
}

// killOrphans kills every adopted orphan and reaps them, until none is
// left or 5 s passed (gsup's last step without cgroups).
func (s *Supervisor) killOrphans() {
	if !s.tracksOrphans() {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.signalAdopted(syscall.SIGKILL, func(string) bool { return true }) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		s.os.reapOrphans()
	}
	s.os.reapOrphans()
}

// sweepOrphans kills, every sweepInterval until the loop ends, the
// adopted orphans of starts that have ended.
func (s *Supervisor) sweepOrphans() {
	s.every(sweepInterval, func() { s.signalOrphansLocked(syscall.SIGKILL, false) })
}

// every posts f to the loop each interval until the loop ends.
func (s *Supervisor) every(interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.post(f)
		}
	}
}

// procsLocked returns the processes of each running instance: its
// cgroup's members, or without cgroups its descendants, its process
// group and the adopted orphans carrying its marker. procs is the scan
// of /proc it used (nil with cgroups).
func (s *Supervisor) procsLocked() (out map[*instance][]int, procs map[int]procInfo) {
	out = map[*instance][]int{}
	if s.os == nil {
		return out, nil
	}
	if s.cgroups != nil {
		for _, inst := range s.insts {
			if inst.cg != nil {
				out[inst] = inst.cg.pids()
			}
		}
		return out, nil
	}
	byPid, byMarker := map[int]*instance{}, map[string]*instance{}
	for _, inst := range s.insts {
		if inst.proc != nil {
			byPid[inst.pid] = inst
			byMarker[inst.marker] = inst
		}
	}
	self := os.Getpid()
	procs = scanProcs()
	for pid, p := range procs {
		if p.state == 'Z' {
			continue
		}
		if inst := byPid[p.pgid]; inst != nil {
			out[inst] = append(out[inst], pid)
			continue
		}
		// Climb to an instance's main process, or to gsup (an orphan it
		// adopted: its marker says whose).
		for q, depth := pid, 0; q > 1 && depth < 64; depth++ {
			if inst := byPid[q]; inst != nil {
				out[inst] = append(out[inst], pid)
				break
			}
			parent := procs[q].ppid
			if parent == self {
				if inst := byMarker[procMarker(q)]; inst != nil {
					out[inst] = append(out[inst], pid)
				}
				break
			}
			q = parent
		}
	}
	return out, procs
}
