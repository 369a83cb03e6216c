package supervisor

import (
	"strings"
	"testing"
	"time"

	"gsup/procfile"
)

// overGuard: RSS at once, CPU only once guard_window is covered by
// samples, age at the drawn limit.
func TestOverGuard(t *testing.T) {
	t0 := time.Now()
	mk := func(g procfile.Guards, rss int64, cpu ...float64) *instance {
		inst := &instance{def: &def{p: procfile.Process{Guards: g}}, started: t0, maxAge: ageLimit(g)}
		inst.usage.rss = rss
		for i, c := range cpu {
			inst.usage.hist = append(inst.usage.hist, cpuSample{at: t0.Add(time.Duration(i) * time.Second), cpu: c})
		}
		return inst
	}
	cpuGuard := procfile.Guards{MaxCPU: 90, Window: 3 * time.Second}
	for _, tc := range []struct {
		name   string
		inst   *instance
		now    time.Time
		reason Reason
		detail string
	}{
		{"rss under", mk(procfile.Guards{MaxRSS: 100 << 20}, 99<<20), t0, "", ""},
		{"rss over", mk(procfile.Guards{MaxRSS: 100 << 20}, 101<<20), t0, ReasonMaxRSS, "resident memory 101MiB over max_rss 100MiB"},
		{"cpu busy, window not covered", mk(cpuGuard, 0, 0, 1, 2), t0, "", ""},
		{"cpu busy for the window", mk(cpuGuard, 0, 0, 1, 2, 3), t0, ReasonMaxCPU, "CPU 100% over max_cpu 90% for 3s"},
		{"cpu at 50%", mk(cpuGuard, 0, 0, 0.5, 1, 1.5), t0, "", ""},
		{"young", mk(procfile.Guards{MaxAge: time.Hour}, 0), t0.Add(59 * time.Minute), "", ""},
		{"old", mk(procfile.Guards{MaxAge: time.Hour}, 0), t0.Add(time.Hour), ReasonMaxAge, "up for 1h0m0s, max_age 1h0m0s"},
	} {
		reason, detail := tc.inst.overGuard(tc.now)
		if reason != tc.reason || !strings.Contains(detail, tc.detail) {
			t.Errorf("%s: %q %q, want %q %q", tc.name, reason, detail, tc.reason, tc.detail)
		}
	}
	for range 100 {
		if d := ageLimit(procfile.Guards{MaxAge: time.Hour, AgeJitter: time.Minute}); d < time.Hour || d > time.Hour+time.Minute {
			t.Fatalf("ageLimit with jitter: %v", d)
		}
	}
}
