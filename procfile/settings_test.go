package procfile

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestFlagDefaults checks that the default help shows for a flag is the
// real one: given on the command line, it changes nothing.
func TestFlagDefaults(t *testing.T) {
	files := map[string]string{"Procfile": "web: app\n"}
	plain := mustLoad(t, files, Options{})
	for _, f := range Flags() {
		r := lookupFlag(f.Name)
		if r.def == "" || r.shown != "" {
			continue // no default, or one help explains in words
		}
		value := flagDefault(r.defValue)
		if !f.Bool && f.Default != value {
			t.Errorf("--%s: help shows %q, the default is %q", f.Name, f.Default, value)
		}
		spec := mustLoad(t, files, Options{Over: Overrides{f.Name: {value}}})
		spec.Dir, spec.ConfigDir, spec.App, spec.Files = plain.Dir, plain.ConfigDir, plain.App, plain.Files
		for i := range spec.Processes {
			spec.Processes[i].Cwd, spec.Processes[i].File = plain.Processes[i].Cwd, plain.Processes[i].File
		}
		if !reflect.DeepEqual(spec, plain) {
			t.Errorf("--%s %s (its default) changes the Spec:\n got %+v\nwant %+v", f.Name, value, spec, plain)
		}
	}
}

func lookupFlag(name string) *setting {
	for i := range settings {
		if settings[i].flag == name {
			return &settings[i]
		}
	}
	return nil
}

// TestFlagsFromTable checks the flags' names, variables and shapes.
func TestFlagsFromTable(t *testing.T) {
	byName := map[string]Flag{}
	for _, f := range Flags() {
		if _, dup := byName[f.Name]; dup {
			t.Errorf("flag --%s twice", f.Name)
		}
		byName[f.Name] = f
		if strings.Contains(f.Usage, "default") {
			t.Errorf("--%s: the usage %q speaks of the default; the table's default is shown by help", f.Name, f.Usage)
		}
	}
	for name, want := range map[string]Flag{
		"bind":                {Name: "bind", Aliases: []string{"b"}, EnvVars: []string{"GSUP_BIND"}, Repeat: true},
		"no-serve":            {Name: "no-serve", EnvVars: []string{"GSUP_NO_SERVE"}, Bool: true},
		"forwarded-allow-ips": {Name: "forwarded-allow-ips", EnvVars: []string{"GSUP_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"}, Default: "127.0.0.1,::1"},
		"graceful-timeout":    {Name: "graceful-timeout", EnvVars: []string{"GSUP_GRACEFUL_TIMEOUT"}, Default: "30s"},
		"config":              {Name: "config", Aliases: []string{"c"}, EnvVars: []string{"GSUP_CONFIG"}, Default: "gsup.toml if present"},
	} {
		got := byName[name]
		got.Usage = ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("flag %s = %+v, want %+v", name, got, want)
		}
	}
}

// TestWritePlanFromTable checks that settings with a name in the plan show
// there when they are not at their default.
func TestWritePlanFromTable(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"Procfile":  "web: app\n",
		"gsup.toml": "[serve]\nmax_requests = 1000\ntrust_unix_peers = false\n[process.web]\nready_timeout = \"5s\"\ncritical = true\numask = \"027\"\n",
	}, Options{})
	var b bytes.Buffer
	spec.WritePlan(&b)
	for _, want := range []string{
		"graceful-timeout=30s trust-unix-peers=false max-requests=1000\n",
		"stop=TERM/10s  ready-timeout=5s  critical  umask=0027  app\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, b.String())
		}
	}
}
