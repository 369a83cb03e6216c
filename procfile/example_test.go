package procfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
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
	spec := mustLoad(t, files, Options{})
	got, want := *spec, *plain
	// What the example sets on purpose, beyond the defaults.
	if got.Env["RAILS_ENV"] != "production" || len(got.Serve.Bind) != 2 || len(got.Sockets) != 1 ||
		got.Control != spec.Dir+"/.gsup.sock" || got.ErrorLogfile != "-" {
		t.Errorf("uncommented example: %+v", got)
	}
	got.Serve.Bind, want.Serve.Bind = nil, nil
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

// TestExampleHasEveryKey checks that every key the TOML reader knows (the
// case labels of its switches) is in config.toml.example.
func TestExampleHasEveryKey(t *testing.T) {
	_, uncommented := readExample(t)
	d, err := parseTOML("config.toml.example", "/", []byte(uncommented), new(errList))
	if err != nil {
		t.Fatal(err)
	}
	inExample := map[string]bool{}
	for _, k := range d.keys {
		for i := range k {
			inExample[k[:i+1].String()] = true
		}
	}

	// The functions that read each table, and where the example has it.
	tables := map[string]string{
		"top":     "",
		"serve":   "serve.",
		"binds":   "serve.bind.",
		"process": "process.web.",
		"socket":  "socket.app.",
		"release": "release.",
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "toml.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var known []string
	for _, decl := range file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		prefix, ok := tables[fn.Name.Name]
		if !ok {
			continue
		}
		delete(tables, fn.Name.Name)
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					name, _ := strconv.Unquote(lit.Value)
					known = append(known, prefix+name)
				}
			}
			return true
		})
	}
	if len(tables) > 0 {
		t.Fatalf("functions not found in toml.go: %v", tables)
	}
	if len(known) < 50 {
		t.Fatalf("only %d keys found in toml.go: %v", len(known), known)
	}
	for _, k := range known {
		if !inExample[k] {
			t.Errorf("config.toml.example lacks %s", k)
		}
	}
	// And the example has nothing else (Load would refuse it anyway).
	for k := range inExample {
		if !slices.Contains(known, k) && k != "process.web" && k != "socket.app" && k != "env.RAILS_ENV" {
			t.Errorf("config.toml.example has %s, which gsup does not know", k)
		}
	}
}
