package control

import (
	"maps"
	"slices"
	"testing"
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
