package procfile

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestKeyLines(t *testing.T) {
	src := `# comment
port = 5000 # trailing
"quoted key" = 1
'lit' = 2
a.b . c = 3
s = """
fake = 1
"""
l = '''
[fake]
'''
arr = [
  1, # comment ]
  "x]", { y = 1 },
]
dt = 1979-05-27 07:32:00Z
env = { A = "1", B = { C = 2 } }

[ serve ]
bind = [
  "127.0.0.1:8000",
  { address = "unix:/x", scheme = "https" },
]
[process."web.1"]
command = "a \" b"
[[arr2]]
x = 1
[[arr2]]
x = 2
y = 3
`
	want := map[string]int{
		"port": 2, `"quoted key"`: 3, "lit": 4, "a": 5, "a.b": 5, "a.b.c": 5, "s": 6, "l": 9,
		"arr": 12, "arr.y": 14, "dt": 16, "env": 17, "env.A": 17, "env.B": 17, "env.B.C": 17,
		"serve": 19, "serve.bind": 20, "serve.bind.address": 22, "serve.bind.scheme": 22,
		"process": 24, `process."web.1"`: 24, `process."web.1".command`: 25,
		"arr2": 26, "arr2.x": 27, "arr2.y": 30,
	}
	got := keyLines([]byte(src))
	for k, line := range want {
		if got[k] != line {
			t.Errorf("line of %s = %d, want %d", k, got[k], line)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(want), got)
	}
	// Every key toml reports has a line.
	var v map[string]any
	md, err := toml.Decode(src, &v)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range md.Keys() {
		if _, ok := got[k.String()]; !ok {
			t.Errorf("no line for %s", k)
		}
	}
}

func FuzzKeyLines(f *testing.F) {
	f.Add([]byte("port = 1\n[serve]\nbind = [\"x\", { address = \"y\" }]\n[process.web]\ncommand = '''a\nb'''\n"))
	f.Add([]byte("a.\"b.c\".d = { e = [1, {f = 2}] }\n[[t]]\nx = 1979-05-27T07:32:00\n"))
	f.Add([]byte("s = \"\"\"\\\n  x\"\"\"\"\"\nt = '''''x'''''\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := keyLines(data) // must not panic, whatever the input
		var v map[string]any
		md, err := toml.Decode(string(data), &v)
		if err != nil {
			return
		}
		for _, k := range md.Keys() {
			if lines[k.String()] < 1 {
				t.Fatalf("no line for key %s", k)
			}
		}
	})
}
