package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gsup/procfile"
)

// guardInterval is how often the instances' resources are measured and
// the resource guards checked.
const guardInterval = time.Second

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat.
const clockTicks = 100

// usage is what one instance uses, as last measured.
type usage struct {
	at   time.Time
	rss  int64   // resident bytes of all its processes
	cpu  float64 // CPU seconds: its cgroup's, else the sum over its live processes
	hist []cpuSample
}

type cpuSample struct {
	at  time.Time
	cpu float64
}

// watchUsage measures every running instance and applies the resource
// guards each guardInterval until the loop ends.
func (s *Supervisor) watchUsage() { s.every(guardInterval, s.guardLocked) }

// guardLocked measures the running instances and replaces those past a
// guard.
func (s *Supervisor) guardLocked() {
	procs, scan := s.procsLocked()
	now := time.Now()
	page := int64(os.Getpagesize())
	for _, inst := range s.insts {
		pids, ok := procs[inst]
		if !ok || inst.proc == nil {
			continue
		}
		u := &inst.usage
		u.at, u.rss = now, 0
		cpu := 0.0
		for _, pid := range pids {
			p, ok := scan[pid]
			if !ok {
				p, ok = readStat(pid)
			}
			if ok {
				u.rss += p.rssPages * page
				cpu += float64(p.cpuTicks) / clockTicks
			}
		}
		if inst.cg != nil {
			if c, err := inst.cg.cpuSeconds(); err == nil {
				cpu = c
			}
		}
		u.cpu = cpu
		g := inst.def.p.Guards
		u.hist = append(u.hist, cpuSample{at: now, cpu: cpu})
		for len(u.hist) > 1 && now.Sub(u.hist[1].at) >= g.Window {
			u.hist = u.hist[1:]
		}
		if inst.state == StateRunning && inst.recycling == "" {
			if reason, detail := inst.overGuard(now); reason != "" {
				s.recycleLocked(inst, reason, detail)
			}
		}
	}
}

// overGuard returns the guard inst is past, if any, and how.
func (inst *instance) overGuard(now time.Time) (Reason, string) {
	g, u := inst.def.p.Guards, &inst.usage
	if g.MaxRSS > 0 && u.rss > g.MaxRSS {
		return ReasonMaxRSS, fmt.Sprintf("resident memory %s over max_rss %s", procfile.FormatSize(u.rss), procfile.FormatSize(g.MaxRSS))
	}
	if g.MaxCPU > 0 && len(u.hist) > 1 {
		first, last := u.hist[0], u.hist[len(u.hist)-1]
		if span := last.at.Sub(first.at); span >= g.Window-guardInterval/2 {
			pct := (last.cpu - first.cpu) / span.Seconds() * 100
			if pct > g.MaxCPU {
				return ReasonMaxCPU, fmt.Sprintf("CPU %.0f%% over max_cpu %g%% for %v", pct, g.MaxCPU, g.Window)
			}
		}
	}
	if inst.maxAge > 0 && now.Sub(inst.started) >= inst.maxAge {
		return ReasonMaxAge, fmt.Sprintf("up for %v, max_age %v", inst.maxAge.Round(time.Second), g.MaxAge)
	}
	return "", ""
}

// exited reports whether pid has exited and not been reaped yet.
func exited(pid int) bool {
	p, ok := readStat(pid)
	return !ok || p.state == 'Z'
}

// ageLimit draws the age at which a start of a type with guards g is
// replaced: max_age plus up to max_age_jitter; 0 = never.
func ageLimit(g procfile.Guards) time.Duration {
	if g.MaxAge <= 0 {
		return 0
	}
	if g.AgeJitter <= 0 {
		return g.MaxAge
	}
	return g.MaxAge + rand.N(g.AgeJitter+1)
}

// cpuSeconds reads usage_usec of the cgroup's cpu.stat (present in every
// cgroup v2, with or without the cpu controller).
func (g *cgroup) cpuSeconds() (float64, error) {
	f, err := os.Open(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return float64(n) / 1e6, err
		}
	}
	return 0, errors.New("cpu.stat has no usage_usec")
}

// setMemoryMax writes memory.max of the cgroup. It fails with
// errNoMemoryController when the memory controller is not enabled there.
func (g *cgroup) setMemoryMax(n int64) error {
	err := writeCgroupFile(filepath.Join(g.dir, "memory.max"), strconv.FormatInt(n, 10))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return errNoMemoryController
	}
	return err
}

var errNoMemoryController = errors.New("the cgroup v2 memory controller is not available to gsup's cgroup")

// enableMemory asks for the memory controller in the instances' cgroups
// (it works when gsup's parent cgroup delegates it).
func (c *cgroups) enableMemory() {
	_ = writeCgroupFile(filepath.Join(c.base, "cgroup.subtree_control"), "+memory")
}

// memoryMaxLocked applies memory_max to inst's new cgroup, or says once
// per type why it cannot.
func (s *Supervisor) memoryMaxLocked(inst *instance) {
	n := inst.def.p.Guards.MemoryMax
	if n <= 0 {
		return
	}
	var err error
	switch {
	case s.cgroups == nil:
		err = errors.New("instances run without cgroups")
	case inst.cg != nil:
		err = inst.cg.setMemoryMax(n)
	}
	if inst.t.memoryTold {
		return
	}
	inst.t.memoryTold = true
	if err != nil {
		s.log.Warnf("memory_max of %s is not applied: %v; max_rss still replaces an instance past its limit", inst.t.spec.Name, err)
		return
	}
	s.log.Infof("memory_max of %s applied: memory.max = %s in each instance's cgroup", inst.t.spec.Name, procfile.FormatSize(n))
}
