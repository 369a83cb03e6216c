package procfile

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A `release:` Procfile line is the release phase, not a process type: it
// takes no port block and no formation count.
func TestReleaseFromProcfile(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"Procfile": "web: app\nrelease: ./migrate\nworker: w\n",
	}, Options{Formation: "all=2"})
	if spec.Release == nil || spec.Release.Command != "./migrate" || spec.Release.Timeout != DefaultReleaseTimeout {
		t.Fatalf("release %+v", spec.Release)
	}
	if spec.Lookup("release") != nil || len(spec.Processes) != 2 {
		t.Fatalf("release is a process type: %+v", spec.Processes)
	}
	if w := spec.Lookup("worker"); w.BasePort != 5100 || w.Scale != 2 {
		t.Errorf("worker after the release line: base port %d, scale %d", w.BasePort, w.Scale)
	}
	var plan bytes.Buffer
	spec.WritePlan(&plan)
	if !strings.Contains(plan.String(), "release  ./migrate (timeout 10m0s)\n") {
		t.Errorf("plan:\n%s", plan.String())
	}
	if _, err := load(t, map[string]string{"Procfile": "web: app\nrelease: m\n"}, Options{Formation: "release=1"}); !strings.Contains(err, `unknown process type "release"`) {
		t.Errorf("-m release=1: %s", err)
	}
}

func TestReleaseFromTOML(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"gsup.toml": "[process.web]\ncommand = \"app\"\n[release]\ncommand = \"./migrate\"\ntimeout = \"2m\"\n",
	}, Options{})
	if spec.Release == nil || spec.Release.Command != "./migrate" || spec.Release.Timeout != 2*time.Minute {
		t.Fatalf("release %+v", spec.Release)
	}
	for _, tc := range []struct {
		files map[string]string
		err   string
	}{
		{map[string]string{"gsup.toml": "procfile = \"Procfile\"\n[release]\ncommand = \"m\"\n", "Procfile": "web: a\nrelease: m\n"},
			`gsup.toml:2: release: defined twice: by [release] and by Procfile:2`},
		{map[string]string{"gsup.toml": "[process.web]\ncommand = \"a\"\n[release]\ntimeout = \"1m\"\n"},
			`gsup.toml:3: release: no command`},
		{map[string]string{"gsup.toml": "[process.web]\ncommand = \"a\"\n[release]\ncommand = \"m\"\nretries = 2\n"},
			`gsup.toml:5: release.retries: unknown key`},
		{map[string]string{"gsup.toml": "[process.release]\ncommand = \"a\"\n"},
			`gsup.toml:1: process.release: "release" is the release phase, not a process type: use a [release] table`},
	} {
		if _, err := load(t, tc.files, Options{}); !strings.Contains(err, tc.err) {
			t.Errorf("got %q, want %q", err, tc.err)
		}
	}
}
