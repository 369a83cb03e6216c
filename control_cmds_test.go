package main

import (
	"maps"
	"slices"
	"testing"
	"time"

	"gsup/procfile"
	"gsup/supervisor"
)

func TestParseScale(t *testing.T) {
	counts, apps, err := parseScale([]string{"web=4", "worker=0,billing/web=2", "billing/jobs=1"})
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
		if _, _, err := parseScale(bad); err == nil {
			t.Errorf("parseScale(%q) accepted", bad)
		}
	}
}

func specWith(app string, base int, types ...string) *procfile.Spec {
	s := &procfile.Spec{App: app, BasePort: base}
	for i, name := range types {
		s.Processes = append(s.Processes, procfile.Process{Name: name, Index: i, BasePort: base + 100*i})
	}
	return s
}

func TestPlacePorts(t *testing.T) {
	first := supervisor.AppInfo{Name: "shop", First: true, Spec: specWith("shop", 5000, "web", "worker")}
	for _, tc := range []struct {
		name string
		apps []supervisor.AppInfo
		spec *procfile.Spec
		want []int
	}{
		{"new app after the first", []supervisor.AppInfo{first}, specWith("billing", 5000, "web", "jobs"), []int{5200, 5300}},
		{"after every app", []supervisor.AppInfo{first, {Name: "billing", Spec: specWith("billing", 5200, "web")}},
			specWith("mail", 5000, "smtp"), []int{5300}},
		{"a replaced app keeps its blocks", []supervisor.AppInfo{first, {Name: "billing", Spec: specWith("billing", 5200, "web")},
			{Name: "mail", Spec: specWith("mail", 5300, "smtp")}}, specWith("billing", 5000, "api"), []int{5200}},
		{"a replaced app that grew moves", []supervisor.AppInfo{first, {Name: "billing", Spec: specWith("billing", 5200, "web")},
			{Name: "mail", Spec: specWith("mail", 5300, "smtp")}}, specWith("billing", 5000, "web", "jobs"), []int{5400, 5500}},
		{"a base port above the default", []supervisor.AppInfo{{Name: "shop", First: true, Spec: specWith("shop", 9000, "web")}},
			specWith("billing", 9000, "web"), []int{9100}},
	} {
		if err := placePorts(tc.spec, tc.apps); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []int
		for _, p := range tc.spec.Processes {
			got = append(got, p.BasePort)
		}
		if !slices.Equal(got, tc.want) || tc.spec.BasePort != tc.want[0] {
			t.Errorf("%s: ports %v (base %d), want %v", tc.name, got, tc.spec.BasePort, tc.want)
		}
	}
	full := []supervisor.AppInfo{{Name: "shop", First: true, Spec: specWith("shop", 65400, "web")}}
	if err := placePorts(specWith("billing", 5000, "web", "jobs"), full); err == nil {
		t.Error("port blocks past 65535 accepted")
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
