package control

import (
	"sync"

	"github.com/shirou/gopsutil/v4/process"
)

// stats samples the instances' main processes for GET /v1/ps.
type stats struct {
	mu    sync.Mutex
	procs map[sampleKey]*sample
}

// sampleKey tells a process from a later one that reuses its pid.
type sampleKey struct {
	pid     int32
	started int64
}

type sample struct{ p *process.Process }

// fill sets CPUPercent and RSSBytes of the running processes in ps: CPU
// since the previous fill for a process seen before, else since it
// started. Processes that are gone are forgotten.
func (st *stats) fill(ps []Process) {
	st.mu.Lock()
	defer st.mu.Unlock()
	seen := make(map[sampleKey]bool, len(ps))
	for i := range ps {
		p := &ps[i]
		if p.Pid <= 0 {
			continue
		}
		key := sampleKey{pid: int32(p.Pid), started: p.Started.UnixNano()}
		seen[key] = true
		smp := st.procs[key]
		if smp == nil {
			proc, err := process.NewProcess(key.pid)
			if err != nil {
				continue
			}
			smp = &sample{p: proc}
			st.procs[key] = smp
			if cpu, err := proc.CPUPercent(); err == nil {
				p.CPUPercent = cpu
			}
			proc.Percent(0) // the base of the next sample
		} else if cpu, err := smp.p.Percent(0); err == nil {
			p.CPUPercent = cpu
		}
		if mem, err := smp.p.MemoryInfo(); err == nil {
			p.RSSBytes = mem.RSS
		}
	}
	for key := range st.procs {
		if !seen[key] {
			delete(st.procs, key)
		}
	}
}
