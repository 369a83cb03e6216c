package arbiter

import (
	"slices"
	"testing"

	"gsup/procfile"
	"gsup/supervisor"
)

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
