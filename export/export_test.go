package export

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gsup/procfile"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the output")

// testSpec is examples/deploy/gsup.toml as Load gives it, with a unix bind
// and an after chain: web (ready=port, 30 s) after db (ready=notify, 45 s).
func testSpec() *procfile.Spec {
	proc := func(name string, stop time.Duration, ready string, after ...string) procfile.Process {
		return procfile.Process{Name: name, Command: "x", Scale: 1, Restart: procfile.RestartAlways, StopSignal: syscall.SIGTERM,
			StopTimeout: stop, Ready: ready, ReadyTimeout: 30 * time.Second, After: after, Umask: -1}
	}
	db := proc("db", 5*time.Second, "notify")
	db.ReadyTimeout = 45 * time.Second
	idle := proc("idle", time.Hour, "none") // not in the formation: its stop_timeout does not count
	idle.Scale = 0
	sp := &procfile.Spec{
		App: "shop", Dir: "/srv/shop", Config: "/srv/shop/gsup.toml",
		Files:    []string{"/srv/shop/gsup.toml", "/srv/shop/Procfile", "/srv/shop/.env"},
		EnvFiles: []string{"/srv/shop/.env"},
		Processes: []procfile.Process{
			proc("web", 10*time.Second, "port", "db"), proc("worker", 20*time.Second, "none"), db, idle,
		},
		Control: procfile.DefaultControl,
	}
	sp.Serve = procfile.Serve{Enabled: true, Upstream: "web", GracefulTimeout: 30 * time.Second, UnixMode: 0o660, UnixGroup: "www-data",
		Bind: []procfile.Bind{{Address: "unix:/run/shop.sock"}, {Address: "127.0.0.1:8000"}}}
	return sp
}

// The rendered files, against testdata/golden/FORMAT/ (go test -update
// rewrites them): graceful_timeout 30 s + the largest stop_timeout of the
// formation 20 s + 20 s = 70 s to stop; db's 45 s + web's 30 s + 30 s =
// 105 s to start.
func TestGolden(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			files, err := Write(testSpec(), Config{Format: format, Dir: dir, User: "gsup-export-nobody",
				Self: "/usr/local/bin/gsup", Flags: []string{"--formation=web=2"}})
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", format)
			for _, f := range files {
				rel, _ := filepath.Rel(dir, f.Path)
				got, err := os.ReadFile(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				want := filepath.Join(golden, rel)
				if *update {
					os.MkdirAll(filepath.Dir(want), 0o755)
					if err := os.WriteFile(want, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				w, err := os.ReadFile(want)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(w) {
					t.Errorf("%s differs from %s:\n%s", rel, want, got)
				}
			}
		})
	}
}

// The values the README warns about, in each format.
func TestComputedValues(t *testing.T) {
	want := map[string][]string{
		"shop.service": {"Type=notify", "NotifyAccess=main", "KillMode=mixed", "TimeoutStopSec=70", "TimeoutStartSec=105",
			"ExecReload=/bin/kill -HUP $MAINPID", "Delegate=yes", "User=gsup-export-nobody", "Group=gsup-export-nobody",
			"RuntimeDirectory=shop", "Requires=shop.socket",
			"ExecStart=/usr/local/bin/gsup start -c /srv/shop/gsup.toml -f /srv/shop/Procfile -e /srv/shop/.env --pid /run/shop/shop.pid --control /run/shop/control.sock"},
		"shop.socket":  {"ListenStream=/run/shop.sock", "SocketUser=gsup-export-nobody", "SocketGroup=www-data", "SocketMode=0660"},
		"shop/run":     {"exec chpst -u gsup-export-nobody:gsup-export-nobody /usr/local/bin/gsup start -c /srv/shop/gsup.toml -f /srv/shop/Procfile -e /srv/shop/.env --pid /run/shop/shop.pid --control /run/shop/control.sock", "#     sv -w 70 stop shop  # TERM: drain, stop everything, exit 0"},
		"shop/log/run": {"exec svlogd -tt /var/log/shop"},
		"shop.conf":    {"stopwaitsecs=70", "user=gsup-export-nobody", "stdout_logfile=/var/log/shop/shop.log", "directory=/srv/shop", "stopasgroup=false"},
	}
	upstart := []string{"kill timeout 70", "setuid gsup-export-nobody", "chdir /srv/shop"}
	for _, format := range Formats {
		dir := t.TempDir()
		files, err := Write(testSpec(), Config{Format: format, Dir: dir, User: "gsup-export-nobody", Self: "/usr/local/bin/gsup"})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(dir, f.Path)
			lines := want[rel]
			if format == "upstart" {
				lines = upstart
			}
			b, _ := os.ReadFile(f.Path)
			for _, l := range lines {
				if !strings.Contains("\n"+string(b), "\n"+l+"\n") {
					t.Errorf("%s %s: no line %q", format, rel, l)
				}
			}
		}
	}
}

func TestNoSocketUnitWithoutUnixBinds(t *testing.T) {
	sp := testSpec()
	sp.Serve.Bind = []procfile.Bind{{Address: "127.0.0.1:8000"}}
	sp.Pid, sp.Control = "/var/run/shop.pid", "/srv/shop/ctl.sock"
	dir := t.TempDir()
	files, err := Write(sp, Config{Format: "systemd", Dir: dir, User: "gsup-export-nobody", Self: "/g", Run: "/srv/shop/run"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("wrote %v, want the service alone", files)
	}
	b, _ := os.ReadFile(files[0].Path)
	for _, bad := range []string{"shop.socket", "RuntimeDirectory=", "--pid", "--control"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("service has %q:\n%s", bad, b)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := Write(testSpec(), Config{Format: "launchd", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), `unknown format "launchd"`) {
		t.Errorf("err = %v", err)
	}
}

func TestQuoting(t *testing.T) {
	argv := []string{"/opt/my app/gsup", "-e", "it's.env", "--bind=unix:/run/a%b$c.sock"}
	if got, want := shArgs(argv...), `'/opt/my app/gsup' -e 'it'\''s.env' '--bind=unix:/run/a%b$c.sock'`; got != want {
		t.Errorf("sh: %s\nwant %s", got, want)
	}
	if got, want := svArgs(argv...), `'/opt/my app/gsup' -e 'it'\''s.env' '--bind=unix:/run/a%%b$c.sock'`; got != want {
		t.Errorf("sv: %s\nwant %s", got, want)
	}
	if got, want := sdArgs(argv...), `"/opt/my app/gsup" -e "it's.env" --bind=unix:/run/a%%b$$c.sock`; got != want {
		t.Errorf("sd: %s\nwant %s", got, want)
	}
}

func TestStartFlag(t *testing.T) {
	wd, _ := os.Getwd()
	for _, c := range [][3]string{
		{"pid", "run/g.pid", "--pid=" + wd + "/run/g.pid"},
		{"bind", "unix:g.sock", "--bind=unix:" + wd + "/g.sock"},
		{"bind", "unix:/g.sock", "--bind=unix:/g.sock"},
		{"bind", "127.0.0.1:80", "--bind=127.0.0.1:80"},
		{"access-logfile", "-", "--access-logfile=-"},
		{"formation", "web=2", "--formation=web=2"},
	} {
		if got := StartFlag(c[0], c[1]); got != c[2] {
			t.Errorf("StartFlag(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

// The release command runs to its end before any instance starts: its
// timeout is part of the time systemd must give the start.
func TestStartTimeoutCountsTheRelease(t *testing.T) {
	spec := testSpec()
	spec.Release = &procfile.Release{Command: "bin/migrate", Timeout: 10 * time.Minute}
	dir := t.TempDir()
	if _, err := Write(spec, Config{Format: "systemd", Dir: dir, User: "gsup-export-nobody", Self: "/usr/local/bin/gsup"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "shop.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nTimeoutStartSec=705\n") {
		t.Errorf("want TimeoutStartSec=705 (105 + the release's 600):\n%s", b)
	}
}
