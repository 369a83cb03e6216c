package procfile

import (
	"gsup/internal/testcert"

	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// settingLine matches a commented-out setting of config.toml.example: '#'
// directly followed by a key or a [table]; explanations start with "# ".
var settingLine = regexp.MustCompile(`(?m)^#([^ #\n])`)

func readExample(t *testing.T) (asIs, uncommented string) {
	t.Helper()
	data, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	return string(data), settingLine.ReplaceAllString(string(data), "$1")
}

// TestExampleDefaults checks that config.toml.example loads, as it is and
// with every setting uncommented, and that the values it shows are the
// defaults.
func TestExampleDefaults(t *testing.T) {
	asIs, uncommented := readExample(t)
	files := map[string]string{"Procfile": "web: app\n", ".env": "A=1\n"}
	plain := mustLoad(t, files, Options{})

	files["gsup.toml"] = asIs
	commented := mustLoad(t, files, Options{})
	if !reflect.DeepEqual(commented.Serve, plain.Serve) || commented.Control != plain.Control ||
		!reflect.DeepEqual(commented.Processes[0].Ready, plain.Processes[0].Ready) {
		t.Errorf("the example as it is does not give the defaults:\n%+v\n%+v", commented, plain)
	}

	files["gsup.toml"] = uncommented
	files["certs/example.org.pem"], files["certs/example.org.key"] = testCertPEM(t, "example.org")
	spec := mustLoad(t, files, Options{})
	got, want := *spec, *plain
	// What the example sets on purpose, beyond the defaults.
	if got.Env["RAILS_ENV"] != "production" || len(got.Serve.Bind) != 4 || len(got.Sockets) != 1 ||
		got.Control != spec.Dir+"/.gsup.sock" || got.ErrorLogfile != "-" ||
		len(got.Serve.Certs) != 1 || got.Serve.ACME == nil || got.Serve.ACME.Directory != DefaultACMEDirectory {
		t.Errorf("uncommented example: %+v", got)
	}
	got.Serve.Bind, want.Serve.Bind = nil, nil
	got.Serve.Certs, got.Serve.ACME = nil, nil
	if !reflect.DeepEqual(got.Serve, want.Serve) {
		t.Errorf("[serve] in the example is not the defaults:\n got %+v\nwant %+v", got.Serve, want.Serve)
	}
	if got.Pid != want.Pid || got.ControlMode != want.ControlMode || got.LogLevel != want.LogLevel ||
		got.LogFormat != want.LogFormat || got.BasePort != want.BasePort || got.Subreaper != want.Subreaper {
		t.Errorf("top-level settings in the example are not the defaults:\n got %+v\nwant %+v", got, want)
	}
	gw, ww := got.Processes[0], want.Processes[0]
	if gw.Cwd != spec.Dir {
		t.Errorf("web cwd %q, want %q", gw.Cwd, spec.Dir)
	}
	if gw.Sockets == nil || len(gw.Sockets) > 0 || gw.After == nil || len(gw.After) > 0 {
		t.Errorf("web sockets %q, after %q: want empty lists", gw.Sockets, gw.After)
	}
	gw.Command, gw.File, gw.Line, gw.Env, gw.Cwd = ww.Command, ww.File, ww.Line, nil, ww.Cwd
	gw.Sockets, gw.After = nil, nil
	ww.Env = nil
	if !reflect.DeepEqual(gw, ww) {
		t.Errorf("[process.web] in the example is not the defaults:\n got %+v\nwant %+v", gw, ww)
	}
	if so := got.Sockets[0]; so.Mode != DefaultUnixMode {
		t.Errorf("socket mode %o", so.Mode)
	}
}

// TestExampleHasEveryKey checks that config.toml.example shows every key
// of the table of settings, with its default when it has one, and nothing
// else.
func TestExampleHasEveryKey(t *testing.T) {
	_, uncommented := readExample(t)
	var raw map[string]any
	if _, err := toml.Decode(uncommented, &raw); err != nil {
		t.Fatal(err)
	}
	// The example's values by the table's keys: [process.web] is process.*.
	inExample := map[string]any{}
	var visit func(prefix string, m map[string]any)
	visit = func(prefix string, m map[string]any) {
		names := slices.Sorted(maps.Keys(m))
		for _, name := range names {
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			inExample[key] = m[name]
			sub, isTable := m[name].(map[string]any)
			switch {
			case !isTable:
			case hasRowUnder(key + ".*."):
				for _, n := range slices.Sorted(maps.Keys(sub)) {
					visit(key+".*", sub[n].(map[string]any))
				}
				inExample[key+".*"] = true
			case hasRowUnder(key + "."):
				visit(key, sub)
			}
		}
	}
	visit("", raw)

	for _, r := range settings {
		if r.key == "" {
			continue
		}
		v, ok := inExample[r.key]
		switch {
		case !ok:
			t.Errorf("config.toml.example lacks %s", r.key)
		case r.def != "" && !reflect.DeepEqual(v, r.defValue):
			t.Errorf("config.toml.example shows %s = %#v, but its default is %s", r.key, v, r.def)
		}
	}
	for key := range inExample {
		if lookupSetting(key) == nil && !strings.HasSuffix(key, ".*") && !strings.HasPrefix(key, "env.") {
			t.Errorf("config.toml.example has %s, which gsup does not know", key)
		}
	}
}

func hasRowUnder(prefix string) bool {
	return slices.ContainsFunc(settings, func(r setting) bool { return strings.HasPrefix(r.key, prefix) })
}

// testCertPEM makes a certificate for name and its key, PEM.
func testCertPEM(t *testing.T, name string) (cert, key string) {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Leaf(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(c), string(k)
}
