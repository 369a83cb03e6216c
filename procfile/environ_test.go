package procfile

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEnviron(t *testing.T) {
	got := Environ(
		[]string{"B=gsup", "A=gsup", "A=later", "NOTIFY_SOCKET=/run/n", "LISTEN_FDS=1", "LISTEN_PID=9", "LISTEN_FDNAMES=x", "WATCHDOG_USEC=1", "WATCHDOG_PID=9", "bad"},
		map[string]string{"B": "dotenv", "C": "dotenv"},
		nil,
		map[string]string{"C": "process", "NOTIFY_SOCKET": "/own"},
	)
	want := []string{"A=later", "B=dotenv", "C=process", "NOTIFY_SOCKET=/own"}
	if !slices.Equal(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}

// RunEnv: gsup's own < .env < TOML env < the process's env, PORT and
// GSUP_APP; the .env files alone without a Procfile or TOML file.
func TestRunEnv(t *testing.T) {
	toml := "port = 7000\n[env]\nB = \"toml\"\n[process.web]\ncommand = \"x\"\n[process.worker]\ncommand = \"y\"\nenv = { C = \"worker\" }\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string
		process string
		environ []string
		want    []string // KEY=VALUE that must be there; KEY= must be absent
		err     string
	}{
		{name: ".env alone", files: map[string]string{".env": "A=dotenv\nPORT=6100\n"},
			environ: []string{"A=gsup", "Z=gsup", "NOTIFY_SOCKET=/n"},
			want:    []string{"A=dotenv", "Z=gsup", "PORT=6100", "GSUP_APP=app", "NOTIFY_SOCKET="}},
		{name: "nothing at all", files: map[string]string{},
			environ: []string{"PORT=8123"}, want: []string{"PORT=8123"}},
		{name: "a bad PORT in .env", files: map[string]string{".env": "PORT=x\n"},
			err: `.env:1: PORT: "x" is not a port (1-65535)`},
		{name: "TOML env over .env", files: map[string]string{"gsup.toml": toml, ".env": "A=dotenv\nB=dotenv\nC=dotenv\n"},
			environ: []string{"A=gsup"}, want: []string{"A=dotenv", "B=toml", "C=dotenv", "PORT=7000"}},
		{name: "the process's env over TOML env", files: map[string]string{"gsup.toml": toml, ".env": "C=dotenv\n"},
			process: "worker", want: []string{"B=toml", "C=worker", "PORT=7100", "PS="}},
		{name: "an unknown process", files: map[string]string{"gsup.toml": toml},
			process: "nope", err: `--process: no process type "nope" (types: web, worker)`},
		{name: "a process without a Procfile", files: map[string]string{}, process: "web",
			err: `--process: no process type "web" (no Procfile or TOML file)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// In a folder named app: the app is named after it.
			files := map[string]string{"app/.keep": ""}
			for name, content := range tc.files {
				files["app/"+name] = content
			}
			dir := filepath.Join(writeDir(t, files), "app")
			env, err := RunEnv(Options{Dir: dir, Environ: tc.environ}, tc.process)
			if tc.err != "" {
				if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), dir+"/", ""), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range tc.want {
				k, v, _ := strings.Cut(kv, "=")
				i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
				switch {
				case v == "" && i >= 0:
					t.Errorf("%s is set: %q", k, env[i])
				case v != "" && (i < 0 || env[i] != kv):
					t.Errorf("want %s in %q", kv, env)
				}
			}
		})
	}
}
