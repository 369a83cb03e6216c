package control

import (
	"maps"
	"slices"
	"testing"
	"time"
)

func TestParseScale(t *testing.T) {
	counts, apps, err := ParseScale([]string{"web=4", "worker=0,billing/web=2", "billing/jobs=1"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(apps, []string{"", "billing"}) {
		t.Errorf("apps %q", apps)
	}
	if !maps.Equal(counts[""], map[string]int{"web": 4, "worker": 0}) || !maps.Equal(counts["billing"], map[string]int{"web": 2, "jobs": 1}) {
		t.Errorf("counts %v", counts)
	}
	for _, bad := range [][]string{{"web"}, {"web=x"}, {"web=1", "web=2"}, {"all=2"}, {"/web=1"}, {","}, {"a b=1"}} {
		if _, _, err := ParseScale(bad); err == nil {
			t.Errorf("ParseScale(%q) accepted", bad)
		}
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 42 * time.Second: "42s", 5*time.Minute + 3*time.Second: "5m03s",
		2*time.Hour + 5*time.Minute: "2h05m", 76 * time.Hour: "3d04h",
	} {
		if got := formatUptime(d); got != want {
			t.Errorf("formatUptime(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{1: "1K", 812 << 10: "812K", 12<<20 + 300<<10: "12.3M", 3 << 30: "3.0G"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
