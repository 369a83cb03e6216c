package procfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeDir writes files (name -> content) into a new temporary folder.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// load loads files with opts (Dir set to their folder); error texts come
// back with the folder removed, as if gsup ran in it.
func load(t *testing.T, files map[string]string, opts Options) (*Spec, string) {
	t.Helper()
	dir := writeDir(t, files)
	opts.Dir = dir
	spec, err := Load(opts)
	if err != nil {
		if spec != nil {
			t.Errorf("Load returned a Spec with an error")
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("error %v is not an *Error", err)
		}
		return nil, strings.ReplaceAll(err.Error(), dir+"/", "")
	}
	return spec, ""
}

// loadCase is one Load of files with opts, which fails with err ("" for
// none). Errors read as load returns them.
type loadCase struct {
	name  string
	files map[string]string
	opts  Options
	err   string
}

// load loads the case and checks its error; it returns the Spec, nil when
// the case wants an error.
func (tc loadCase) load(t *testing.T) *Spec {
	t.Helper()
	spec, err := load(t, tc.files, tc.opts)
	if err != tc.err {
		t.Fatalf("error %q, want %q", err, tc.err)
	}
	return spec
}

// runLoadCases runs each case as a subtest that checks only its error.
func runLoadCases(t *testing.T, cases []loadCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.load(t) })
	}
}

func mustLoad(t *testing.T, files map[string]string, opts Options) *Spec {
	t.Helper()
	spec, err := load(t, files, opts)
	if err != "" {
		t.Fatalf("Load: %s", err)
	}
	return spec
}

func ptr[T any](v T) *T { return &v }

// lineOf returns the number of the first line of text that holds s.
func lineOf(text, s string) int {
	i := strings.Index(text, s)
	if i < 0 {
		return 0
	}
	return strings.Count(text[:i], "\n") + 1
}

func TestLoadProcfileOnly(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"Procfile": "web: puma -p $PORT\nworker: sidekiq\n",
		".env":     "A=1\nB=2\n",
	}, Options{})
	if spec.App != filepath.Base(spec.Dir) || !filepath.IsAbs(spec.Dir) || spec.ConfigDir != spec.Dir {
		t.Errorf("App %q, Dir %q, ConfigDir %q", spec.App, spec.Dir, spec.ConfigDir)
	}
	want := []string{filepath.Join(spec.Dir, "Procfile"), filepath.Join(spec.Dir, ".env")}
	if !slices.Equal(spec.Files, want) || !slices.Equal(spec.EnvFiles, want[1:]) || spec.Config != "" {
		t.Errorf("Files %q, EnvFiles %q, Config %q", spec.Files, spec.EnvFiles, spec.Config)
	}
	if len(spec.Processes) != 2 {
		t.Fatalf("processes: %+v", spec.Processes)
	}
	web, worker := spec.Processes[0], spec.Processes[1]
	wantWeb := Process{
		Name: "web", Command: "puma -p $PORT", Scale: 1, Cwd: spec.Dir, Umask: -1,
		Restart: RestartAlways, StopSignal: syscall.SIGTERM, StopTimeout: 10 * time.Second,
		Ready: "port", ReadyTimeout: 30 * time.Second, Listen: "port",
		Index: 0, BasePort: 5000, Line: 1, File: filepath.Join(spec.Dir, "Procfile"),
	}
	if !equalProcess(web, wantWeb) {
		t.Errorf("web = %+v\nwant  %+v", web, wantWeb)
	}
	if worker.Ready != "none" || worker.BasePort != 5100 || worker.Index != 1 || worker.Scale != 1 {
		t.Errorf("worker = %+v", worker)
	}
	if spec.Env["A"] != "1" || spec.Env["B"] != "2" || len(spec.Env) != 2 {
		t.Errorf("Env = %v", spec.Env)
	}
	sv := spec.Serve
	if !sv.Enabled || sv.Upstream != "web" || len(sv.Bind) != 0 || sv.ProxyProtocol != "off" ||
		!slices.Equal(sv.ForwardedAllowIPs, []string{"127.0.0.1", "::1"}) ||
		!slices.Equal(sv.ProxyAllowFrom, []string{"127.0.0.1", "::1"}) ||
		sv.Timeout != 30*time.Second || sv.GracefulTimeout != 30*time.Second || !sv.TrustUnixPeers ||
		sv.UnixMode != 0o660 || sv.BufferBody != 1<<20 || sv.BufferResponse != 1<<20 || sv.MaxBody != 0 ||
		sv.LimitRequestLine != 4094 || sv.LimitRequestFields != 100 || sv.LimitRequestFieldSize != 8190 {
		t.Errorf("Serve = %+v", sv)
	}
	if spec.Control != "./.gsup.sock" || spec.ControlMode != 0o600 || spec.LogLevel != "info" ||
		spec.LogFormat != "text" || spec.BasePort != 5000 || spec.Pid != "" || spec.Subreaper {
		t.Errorf("Spec = %+v", spec)
	}
}

func equalProcess(a, b Process) bool {
	return a.Name == b.Name && a.Command == b.Command && a.Scale == b.Scale && a.Cwd == b.Cwd &&
		a.User == b.User && a.Group == b.Group && a.Umask == b.Umask && a.Restart == b.Restart &&
		a.StopSignal == b.StopSignal && a.StopTimeout == b.StopTimeout && a.ReopenSignal == b.ReopenSignal &&
		a.Critical == b.Critical && a.LogFile == b.LogFile && a.Ready == b.Ready &&
		a.ReadyTimeout == b.ReadyTimeout && a.Listen == b.Listen && slices.Equal(a.Sockets, b.Sockets) &&
		slices.Equal(a.After, b.After) && a.Index == b.Index && a.BasePort == b.BasePort &&
		a.Line == b.Line && a.File == b.File && len(a.Env) == len(b.Env)
}

const fullTOML = `# a complete config
procfile = "Procfile"
env_file = ["base.env", "local.env"]
pid = "run/gsup.pid"
control = "/tmp/x/gsup.sock"
control_mode = "0660"
control_allow = ["0", "@0", "1001"]
error_logfile = "log/gsup.log"
log_level = "debug"
log_format = "json"
port = 7000
subreaper = true

[env]
FROM_TOML = "t"
SHARED = "toml"
NUM = 3

[serve]
bind = ["127.0.0.1:8080", "[::1]:8080", "unix:run/front.sock", { address = "0.0.0.0:8443", scheme = "https" }, "fd://3", "localhost"]
upstream = "web"
forwarded_allow_ips = "10.0.0.0/8, 127.0.0.1"
proxy_protocol = "v2"
proxy_allow_from = ["192.168.0.0/16", "*"]
access_logfile = "-"
access_logformat = "%(h)s %(r)s"
timeout = "1m"
graceful_timeout = "5s"
trust_unix_peers = false
unix_mode = "0600"
unix_owner = "www"
unix_group = "www-data"
health_path = "/_health"
buffer_body = "512KiB"
buffer_response = 2048
max_body = "10MB"
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 0
max_requests = 1000
max_requests_jitter = 50
ignore_client_abort = true

[process.web]
scale = 2
ready = "http:/up"
listen = "unix"
env = { ONLY_WEB = "1", SHARED = "web" }
sockets = ["app"]

[process.worker]
cwd = "sub"
user = "nobody"
group = "nogroup"
umask = "027"
restart = "on-failure"
stop_signal = "SIGINT"
stop_timeout = "1m"
reopen_signal = "USR1"
critical = true
tty = true
log_file = "log/worker.log"
ready_timeout = "5s"
after = ["web"]

[process.clock]
command = "bin/clock"
restart = "never"

[socket.app]
bind = "unix:run/app.sock"
mode = "0666"

[socket.admin]
bind = "127.0.0.1:9000"
`

func TestLoadFullTOML(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"gsup.toml": fullTOML,
		"Procfile":  "web: puma\nworker: sidekiq\n",
		"base.env":  "FROM_ENV=e\nSHARED=base\nPORT=6000\n",
		"local.env": "SHARED=local\n",
		".env":      "IGNORED=1\n",
	}, Options{})
	d := spec.Dir
	if !slices.Equal(spec.Files, []string{d + "/gsup.toml", d + "/Procfile", d + "/base.env", d + "/local.env"}) || spec.Config != d+"/gsup.toml" {
		t.Errorf("Files = %q, Config = %q", spec.Files, spec.Config)
	}
	wantEnv := map[string]string{"FROM_ENV": "e", "SHARED": "toml", "PORT": "6000", "FROM_TOML": "t", "NUM": "3"}
	if len(spec.Env) != len(wantEnv) {
		t.Errorf("Env = %v, want %v", spec.Env, wantEnv)
	}
	for k, v := range wantEnv {
		if spec.Env[k] != v {
			t.Errorf("Env[%s] = %q, want %q", k, spec.Env[k], v)
		}
	}
	if want := []ControlPeer{{Name: "0", ID: 0}, {Name: "@0", ID: 0, Group: true}, {Name: "1001", ID: 1001}}; !slices.Equal(spec.ControlAllow, want) {
		t.Errorf("ControlAllow = %v, want %v", spec.ControlAllow, want)
	}
	var plan strings.Builder
	spec.WritePlan(&plan)
	if !strings.Contains(plan.String(), "/tmp/x/gsup.sock mode=0660 allow=0,@0,1001\n") {
		t.Errorf("plan without control_allow:\n%s", plan.String())
	}
	if spec.Pid != d+"/run/gsup.pid" || spec.Control != "/tmp/x/gsup.sock" || spec.ControlMode != 0o660 ||
		spec.ErrorLogfile != d+"/log/gsup.log" || spec.LogLevel != "debug" || spec.LogFormat != "json" ||
		!spec.Subreaper {
		t.Errorf("top level: %+v", spec)
	}
	// PORT in a .env file beats the TOML port.
	if spec.BasePort != 6000 {
		t.Errorf("BasePort = %d, want 6000", spec.BasePort)
	}
	sv := spec.Serve
	wantBinds := []Bind{
		{Address: "127.0.0.1:8080", Scheme: "http"}, {Address: "[::1]:8080", Scheme: "http"}, {Address: "unix:" + d + "/run/front.sock", Scheme: "http"},
		{Address: "0.0.0.0:8443", Scheme: "https"}, {Address: "fd://3", Scheme: "http"}, {Address: "localhost:8000", Scheme: "http"},
	}
	if !slices.Equal(sv.Bind, wantBinds) {
		t.Errorf("Bind = %v", sv.Bind)
	}
	if !sv.Enabled || sv.Upstream != "web" ||
		!slices.Equal(sv.ForwardedAllowIPs, []string{"10.0.0.0/8", "127.0.0.1"}) ||
		!slices.Equal(sv.ProxyAllowFrom, []string{"192.168.0.0/16", "*"}) || sv.ProxyProtocol != "v2" ||
		sv.AccessLogfile != "-" || sv.AccessLogformat != "%(h)s %(r)s" || sv.Timeout != time.Minute ||
		sv.GracefulTimeout != 5*time.Second || sv.TrustUnixPeers || sv.UnixMode != 0o600 ||
		sv.UnixOwner != "www" || sv.UnixGroup != "www-data" || sv.HealthPath != "/_health" ||
		sv.BufferBody != 512<<10 || sv.BufferResponse != 2048 || sv.MaxBody != 10_000_000 ||
		sv.LimitRequestLine != 8190 || sv.LimitRequestFields != 50 || sv.LimitRequestFieldSize != 0 ||
		sv.MaxRequests != 1000 || sv.MaxRequestsJitter != 50 || !sv.IgnoreClientAbort {
		t.Errorf("Serve = %+v", sv)
	}
	if len(spec.Processes) != 3 {
		t.Fatalf("Processes = %+v", spec.Processes)
	}
	web, worker, clock := spec.Processes[0], spec.Processes[1], spec.Processes[2]
	if web.Command != "puma" || web.Scale != 2 || web.Ready != "http:/up" || web.Listen != "unix" ||
		web.Env["ONLY_WEB"] != "1" || web.Env["SHARED"] != "web" || len(web.Env) != 2 ||
		!slices.Equal(web.Sockets, []string{"app"}) || web.BasePort != 6000 || web.File != d+"/Procfile" {
		t.Errorf("web = %+v", web)
	}
	wantWorker := Process{
		Name: "worker", Command: "sidekiq", Scale: 1, Cwd: d + "/sub", User: "nobody", Group: "nogroup",
		Umask: 0o27, Restart: RestartOnFailure, StopSignal: syscall.SIGINT, StopTimeout: time.Minute,
		ReopenSignal: syscall.SIGUSR1, Critical: true, TTY: true, LogFile: d + "/log/worker.log", Ready: "none",
		ReadyTimeout: 5 * time.Second, Listen: "port", After: []string{"web"}, Index: 1, BasePort: 6100,
		Line: 2, File: d + "/Procfile",
	}
	if !equalProcess(worker, wantWorker) {
		t.Errorf("worker = %+v\nwant     %+v", worker, wantWorker)
	}
	if clock.Command != "bin/clock" || clock.Restart != RestartNever || clock.Index != 2 ||
		clock.BasePort != 6200 || clock.File != d+"/gsup.toml" || clock.Line != lineOf(fullTOML, `command = "bin/clock"`) {
		t.Errorf("clock = %+v", clock)
	}
	wantSockets := []Socket{{"admin", "127.0.0.1:9000", 0o660}, {"app", "unix:" + d + "/run/app.sock", 0o666}}
	if !slices.Equal(spec.Sockets, wantSockets) {
		t.Errorf("Sockets = %+v", spec.Sockets)
	}
}

func TestLoadTOMLOnly(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"gsup.toml": "[process.zeta]\ncommand = \"z\"\n[process.alpha]\ncommand = \"a\"\nscale = 0\n[process.web]\ncommand = \"w\"\n",
	}, Options{})
	var names []string
	for _, p := range spec.Processes {
		names = append(names, p.Name)
	}
	// File order, not alphabetical.
	if !slices.Equal(names, []string{"zeta", "alpha", "web"}) {
		t.Errorf("order = %v", names)
	}
	if spec.Processes[1].Scale != 0 || spec.Processes[0].Scale != 1 || spec.Processes[2].BasePort != 5200 {
		t.Errorf("processes = %+v", spec.Processes)
	}
	if spec.Processes[0].File != filepath.Join(spec.Dir, "gsup.toml") || spec.Processes[0].Line != 2 {
		t.Errorf("zeta defined at %s:%d", spec.Processes[0].File, spec.Processes[0].Line)
	}
}

// TestLoadTOMLErrors checks that every bad value is reported with file,
// line and key.
func TestLoadTOMLErrors(t *testing.T) {
	tests := []struct {
		toml string
		err  string // the whole error text
	}{
		// Syntax.
		{"port = \n", "gsup.toml:1: expected value but found '\\n' instead"},
		{"a = 1\na = 2\n", "gsup.toml:2: Key 'a' has already been defined."},
		{"[serve]\nbind = [\"x\"\n", "gsup.toml:2: expected a comma (',') or array terminator (']'), but got end of file"},
		// Unknown keys.
		{"prot = 5000\n", "gsup.toml:1: prot: unknown key"},
		{"\n[serve]\nbinds = []\n", "gsup.toml:3: serve.binds: unknown key"},
		{"[process.web]\ncommand = \"x\"\nrestarts = \"always\"\n", "gsup.toml:3: process.web.restarts: unknown key"},
		{"[process.web]\ncommand = \"x\"\n[process.web.extra]\nq = 1\n", "gsup.toml:3: process.web.extra: unknown key"},
		{"[socket.a]\nbind = \"unix:/a\"\nmod = \"0600\"\n", "gsup.toml:3: socket.a.mod: unknown key"},
		{"Port = 1\n", "gsup.toml:1: Port: unknown key"},
		{"[serve]\nbind = [{ address = \"x\", schema = \"https\" }]\n", "gsup.toml:2: serve.bind.schema: unknown key (a bind table has address, scheme, tls and redirect)"},
		{"process.web.command = \"x\"\nprocess.web.oops = 1\n", "gsup.toml:2: process.web.oops: unknown key"},
		// Types.
		{"port = \"5000\"\n", "gsup.toml:1: port: must be an integer, not a string"},
		{"subreaper = \"yes\"\n", "gsup.toml:1: subreaper: must be true or false, not a string"},
		{"serve = 1\n", "gsup.toml:1: serve: must be a table, not an integer"},
		{"env_file = 3\n", "gsup.toml:1: env_file: must be a string or an array of strings, not an integer"},
		{"env_file = [\"a\", 3]\n", "gsup.toml:1: env_file: entry 2 must be a string, not an integer"},
		{"[env]\nA = [1]\n", "gsup.toml:2: env.A: must be a string, not an array"},
		{"[env]\n\"1A\" = \"x\"\n", "gsup.toml:2: env.1A: invalid variable name \"1A\""},
		{"[env]\nPORT = \"6000\"\n", "gsup.toml:2: env.PORT: PORT is set by gsup for each instance (the top-level port key sets the children's base port)"},
		{"[process.web]\ncommand = \"x\"\nenv.PS = \"w\"\n", "gsup.toml:3: process.web.env.PS: PS is set by gsup for each instance"},
		{"[process.web]\ncommand = 3\n", "gsup.toml:2: process.web.command: must be a string, not an integer"},
		{"[process.web]\ncommand = \"  \"\n", "gsup.toml:2: process.web.command: must not be empty"},
		{"[[process]]\nweb = 1\n", "gsup.toml:1: process: must be a table, not an array"},
		{"[process]\nweb = \"x\"\n", "gsup.toml:2: process.web: must be a table, not a string"},
		// Values.
		{"port = 0\n", "gsup.toml:1: port: 0 is out of range (1-65535)"},
		{"port = 70000\n", "gsup.toml:1: port: 70000 is out of range (1-65535)"},
		{"log_level = \"loud\"\n", `gsup.toml:1: log_level: "loud" is not one of debug, info, warning, error, critical`},
		{"log_format = \"xml\"\n", `gsup.toml:1: log_format: "xml" is not one of text, json`},
		{"control_mode = \"0666\"\n", `gsup.toml:1: control_mode: "0666" lets any local user connect to the control socket: use "0600" or "0660", and name who may use it in control_allow`},
		{"\ncontrol_mode = \"0602\"\n", `gsup.toml:2: control_mode: "0602" lets any local user connect to the control socket: use "0600" or "0660", and name who may use it in control_allow`},
		{"control_allow = [\"no-such-user-gsup\"]\n", `gsup.toml:1: control_allow: unknown user "no-such-user-gsup"`},
		{"control_allow = [\"root\", \"@no-such-group-gsup\"]\n", `gsup.toml:1: control_allow: unknown group "no-such-group-gsup"`},
		{"control_allow = [\"@\"]\n", `gsup.toml:1: control_allow: entry 1 is empty: want a user name or uid, or @ and a group name or gid`},
		{"control_allow = 3\n", "gsup.toml:1: control_allow: must be a string or an array of strings, not an integer"},
		{"control_mode = \"999\"\n", `gsup.toml:1: control_mode: invalid mode "999" (want octal digits, at most 0777, such as "0660")`},
		{"control_mode = \"01777\"\n", `gsup.toml:1: control_mode: invalid mode "01777" (want octal digits, at most 0777, such as "0660")`},
		{"control_mode = 0o600\n", `gsup.toml:1: control_mode: must be an octal string such as "0660", not an integer`},
		{"control = \"\"\n", "gsup.toml:1: control: must not be empty"},
		{"[process.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n", `gsup.toml:3: process.web.restart: "sometimes" is not one of always, on-failure, never`},
		{"[process.web]\ncommand = \"x\"\nstop_timeout = \"10 parsecs\"\n", `gsup.toml:3: process.web.stop_timeout: invalid duration "10 parsecs" (want a number with a unit: "500ms", "10s", "1m30s")`},
		{"[process.web]\ncommand = \"x\"\nstop_timeout = 10\n", `gsup.toml:3: process.web.stop_timeout: must be a duration string such as "10s", not an integer`},
		{"[process.web]\ncommand = \"x\"\nstop_timeout = \"-1s\"\n", `gsup.toml:3: process.web.stop_timeout: duration "-1s" is negative`},
		{"[process.web]\ncommand = \"x\"\nready_timeout = \"0s\"\n", `gsup.toml:3: process.web.ready_timeout: must be more than 0`},
		{"[process.web]\ncommand = \"x\"\nscale = -1\n", "gsup.toml:3: process.web.scale: -1 is out of range (0-100)"},
		{"[process.web]\ncommand = \"x\"\nscale = 101\n", "gsup.toml:3: process.web.scale: 101 is out of range (0-100)"},
		{"[process.web]\ncommand = \"x\"\nscale = 1.5\n", "gsup.toml:3: process.web.scale: must be an integer, not a float"},
		{"[process.web]\ncommand = \"x\"\nstop_signal = \"SIGFOO\"\n", `gsup.toml:3: process.web.stop_signal: unknown signal "SIGFOO"`},
		{"[process.web]\ncommand = \"x\"\nreopen_signal = 99\n", `gsup.toml:3: process.web.reopen_signal: invalid signal number "99" (1-64)`},
		{"[process.web]\ncommand = \"x\"\numask = \"088\"\n", `gsup.toml:3: process.web.umask: invalid mode "088" (want octal digits, at most 0777, such as "0660")`},
		{"[process.web]\ncommand = \"x\"\nready = \"tcp\"\n", `gsup.toml:3: process.web.ready: "tcp" is not one of port, http:/PATH, notify, none`},
		{"[process.web]\ncommand = \"x\"\nready = \"http:health\"\n", `gsup.toml:3: process.web.ready: "http:health": the path after http: must start with '/', as in http:/health`},
		{"[process.web]\ncommand = \"x\"\nlisten = \"tcp\"\n", `gsup.toml:3: process.web.listen: "tcp" is not one of port, unix`},
		{"[process.web]\ncommand = \"x\"\ncritical = 1\n", "gsup.toml:3: process.web.critical: must be true or false, not an integer"},
		{"[process.web]\ncommand = \"x\"\ncwd = \"\"\n", "gsup.toml:3: process.web.cwd: must not be empty"},
		{"[process.\"web.1\"]\ncommand = \"x\"\n", `gsup.toml:1: process."web.1": invalid process name "web.1": use letters, digits, '_' and '-'`},
		{"[process.all]\ncommand = \"x\"\n", `gsup.toml:1: process.all: process name "all" is reserved (a formation's all=N means every type)`},
		{"[process.web]\nscale = 2\n", `gsup.toml:1: process.web: no command (set command here, or define "web" in any Procfile)`},
		{"[serve]\nproxy_protocol = \"on\"\n", `gsup.toml:2: serve.proxy_protocol: "on" is not one of off, auto, v1, v2, required`},
		{"[serve]\nforwarded_allow_ips = \"192.168.1.1/24\"\n", `gsup.toml:2: serve.forwarded_allow_ips: "192.168.1.1/24" has host bits set (did you mean 192.168.1.0/24?)`},
		{"[serve]\nforwarded_allow_ips = [\"10.0.0.1\", \"example.com\"]\n", `gsup.toml:2: serve.forwarded_allow_ips: "example.com" is not an IP address or network`},
		{"[serve]\nproxy_allow_from = \"::1, fe80::/129\"\n", `gsup.toml:2: serve.proxy_allow_from: "fe80::/129" is not an IP address or network`},
		{"[serve]\nbuffer_body = \"1 parsec\"\n", `gsup.toml:2: serve.buffer_body: invalid size "1 parsec" (want a number of bytes or a size such as "512KiB", "1MiB", "10MB")`},
		{"[serve]\nmax_body = -1\n", "gsup.toml:2: serve.max_body: size -1 is negative"},
		{"[serve]\nmax_body = true\n", `gsup.toml:2: serve.max_body: must be a size such as "1MiB" or a number of bytes, not a boolean`},
		{"[serve]\nlimit_request_fields = 100000\n", "gsup.toml:2: serve.limit_request_fields: 100000 is out of range (0-32768)"},
		{"[serve]\nhealth_path = \"health\"\n", `gsup.toml:2: serve.health_path: "health" must be a URL path starting with '/'`},
		{"[serve]\ntimeout = \"forever\"\n", `gsup.toml:2: serve.timeout: invalid duration "forever" (want a number with a unit: "500ms", "10s", "1m30s")`},
		{"[process.web]\ncommand = \"x\"\n[serve]\nupstream = \"api\"\n", `gsup.toml:4: serve.upstream: no process type "api"`},
		{"[serve]\nbind = \"127.0.0.1:99999\"\n", `gsup.toml:2: serve.bind: "127.0.0.1:99999": invalid port "99999"`},
		{"[serve]\nbind = [\n  \"127.0.0.1:8000\",\n  \"::1:8000\",\n]\n", `gsup.toml:2: serve.bind: "::1:8000": write IPv6 addresses in brackets, as [::1]:8000`},
		{"[serve]\nbind = [\"fd://1\"]\n", `gsup.toml:2: serve.bind: "fd://1": want fd://N with N a file descriptor number of 3 or more`},
		{"[serve]\nbind = [\"http://x:1\"]\n", `gsup.toml:2: serve.bind: "http://x:1": unknown scheme (use host:port, unix:/path or fd://N)`},
		{"[serve]\nbind = [\"unix:\"]\n", `gsup.toml:2: serve.bind: "unix:": empty socket path`},
		{"[serve]\nbind = [\"bad host!:80\"]\n", `gsup.toml:2: serve.bind: "bad host!:80": invalid host "bad host!"`},
		{"[serve]\nbind = [\"[::1\"]\n", `gsup.toml:2: serve.bind: "[::1": missing ']'`},
		{"[serve]\nbind = [\"[1.2.3.4]:80\"]\n", `gsup.toml:2: serve.bind: "[1.2.3.4]:80": "1.2.3.4" is not an IPv6 address`},
		{"[serve]\nbind = [{ scheme = \"https\" }]\n", "gsup.toml:2: serve.bind: entry 1 has no address"},
		{"[serve]\nbind = [{ address = \"x\", scheme = \"ftp\" }]\n", `gsup.toml:2: serve.bind.scheme: "ftp" is not one of http, https`},
		{"[serve]\nbind = [1]\n", "gsup.toml:2: serve.bind: entry 1 must be an address or a table, not an integer"},
		{"[[serve.bind]]\naddress = \"x\"\n", "gsup.toml:1: serve.bind: must be an array of addresses, not a [[serve.bind]] array of tables"},
		{"[socket.a]\nbind = \"unix:/a\"\nmode = \"999\"\n", `gsup.toml:3: socket.a.mode: invalid mode "999" (want octal digits, at most 0777, such as "0660")`},
		{"[socket.\"a:b\"]\nbind = \"unix:/a\"\n", `gsup.toml:1: socket."a:b": invalid socket name "a:b": use letters, digits, '_' and '-'`},
		{"[socket.a]\nbind = \"nope://x\"\n", `gsup.toml:2: socket.a.bind: "nope://x": unknown scheme (use host:port, unix:/path or fd://N)`},
		// References between types.
		{"[process.web]\ncommand = \"x\"\nsockets = [\"db\"]\n", "gsup.toml:3: process.web.sockets: no [socket.db]"},
		{"[process.web]\ncommand = \"x\"\nafter = [\"db\"]\n", `gsup.toml:3: process.web.after: no process type "db"`},
		{"[process.web]\ncommand = \"x\"\nafter = \"web\"\n", `gsup.toml:3: process.web.after: "web" cannot wait for itself`},
		{"[process.a]\ncommand = \"x\"\nafter = [\"b\"]\n[process.b]\ncommand = \"x\"\nafter = [\"c\"]\n[process.c]\ncommand = \"x\"\nafter = [\"a\"]\n",
			"gsup.toml:9: process.c.after: dependency cycle: a -> b -> c -> a"},
		// Files it names.
		{"procfile = \"nope/Procfile\"\n", "gsup.toml:1: procfile: nope/Procfile: cannot read: no such file or directory"},
		{"env_file = \"prod.env\"\n[process.web]\ncommand = \"x\"\n", "gsup.toml:1: env_file: prod.env: cannot read: no such file or directory"},
		// Several errors at once.
		{"port = \"x\"\n[serve]\ntimeout = 3\n", "gsup.toml:1: port: must be an integer, not a string\ngsup.toml:3: serve.timeout: must be a duration string such as \"10s\", not an integer"},
	}
	for _, tt := range tests {
		_, err := load(t, map[string]string{"gsup.toml": tt.toml}, Options{})
		if err != tt.err {
			t.Errorf("config:\n%s\ngot error:  %s\nwant error: %s", tt.toml, err, tt.err)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	runLoadCases(t, []loadCase{
		{name: "nothing", files: map[string]string{}, err: "Procfile: not found (and no gsup.toml either)"},
		{name: "config named but missing", files: map[string]string{"Procfile": "web: x"},
			opts: Options{Config: "other.toml"}, err: "other.toml: cannot read: no such file or directory"},
		{name: "procfile named but missing", files: map[string]string{"gsup.toml": ""},
			opts: Options{Procfile: "Procfile.dev"}, err: "Procfile.dev: cannot read: no such file or directory"},
		{name: "env named but missing", files: map[string]string{"Procfile": "web: x"},
			opts: Options{EnvFiles: []string{"a.env"}}, err: "a.env: cannot read: no such file or directory"},
		{name: "empty Procfile", files: map[string]string{"Procfile": "# nothing\n"}, err: "Procfile: no process types defined"},
		{name: "empty TOML", files: map[string]string{"gsup.toml": "# nothing\n"}, err: "gsup.toml: no process types defined"},
		{name: "bad Procfile and .env together", files: map[string]string{"Procfile": "web: x\nweb: y\n", ".env": "A\n"},
			err: "Procfile:2: duplicate process name \"web\"\n.env:1: expected KEY=VALUE, got \"A\""},
		{name: "procfile key resolves from the config's folder", files: map[string]string{
			"conf/gsup.toml": "procfile = \"Procfile\"\n", "conf/Procfile": "web: x\nweb: x\n"},
			opts: Options{Config: "conf/gsup.toml"}, err: "conf/Procfile:2: duplicate process name \"web\""},
		{name: "bad .env PORT", files: map[string]string{"Procfile": "web: x", ".env": "\nPORT=abc\n"},
			err: `.env:2: PORT: "abc" is not a port (1-65535)`},
	})

	// A missing file is fs.ErrNotExist underneath.
	_, err := Load(Options{Dir: t.TempDir()})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", err)
	}
}

func TestLoadFiles(t *testing.T) {
	// With a TOML file, a Procfile beside it is imported when present.
	spec := mustLoad(t, map[string]string{
		"gsup.toml": "[process.web]\nscale = 3\n",
		"Procfile":  "web: app\n",
	}, Options{})
	if p := spec.Lookup("web"); p == nil || p.Command != "app" || p.Scale != 3 {
		t.Errorf("web = %+v", p)
	}

	// -f and -e start at Dir; the TOML's env_file is replaced by -e.
	spec = mustLoad(t, map[string]string{
		"gsup.toml":   "env_file = \"nope.env\"\n",
		"Procfile.x":  "other: x\n",
		"one.env":     "A=1\nB=1\n",
		"sub/two.env": "B=2\n",
	}, Options{Procfile: "Procfile.x", EnvFiles: []string{"one.env", "sub/two.env"}})
	if spec.Processes[0].Name != "other" || spec.Env["A"] != "1" || spec.Env["B"] != "2" {
		t.Errorf("Processes %+v, Env %v", spec.Processes, spec.Env)
	}
	// An empty -e list is no -e: .env is read.
	spec = mustLoad(t, map[string]string{"Procfile": "web: x", ".env": "A=1"}, Options{EnvFiles: []string{}, Types: []string{}})
	if spec.Env["A"] != "1" || spec.Processes[0].Scale != 1 {
		t.Errorf("Env %v, Processes %+v", spec.Env, spec.Processes)
	}
	// procfile = "" and env_file = "": none, even beside a Procfile and a .env.
	spec = mustLoad(t, map[string]string{
		"gsup.toml": "procfile = \"\"\nenv_file = \"\"\npid = \"\"\n[process.api]\ncommand = \"a\"\n",
		"Procfile":  "web: x", ".env": "A=1",
	}, Options{})
	if len(spec.Processes) != 1 || len(spec.Env) != 0 || len(spec.Files) != 1 || spec.Pid != "" {
		t.Errorf("Processes %+v, Env %v, Files %v", spec.Processes, spec.Env, spec.Files)
	}
	// A TOML command overrides the Procfile's, and is then the definition.
	spec = mustLoad(t, map[string]string{
		"gsup.toml": "[process.web]\n\ncommand = \"new\"\n",
		"Procfile":  "worker: w\nweb: old\n",
	}, Options{})
	if web := spec.Lookup("web"); web.Command != "new" || web.File != filepath.Join(spec.Dir, "gsup.toml") || web.Line != 3 || web.Index != 1 {
		t.Errorf("web = %+v", web)
	}
	// A config in another folder: its folder is the app's.
	spec = mustLoad(t, map[string]string{
		"deploy/myapp/gsup.toml": "procfile = \"../../Procfile\"\ncontrol = \"gsup.sock\"\n[process.web]\ncwd = \"..\"\n",
		"Procfile":               "web: x\n",
	}, Options{Config: "deploy/myapp/gsup.toml"})
	root := filepath.Dir(filepath.Dir(spec.Dir))
	if spec.App != "myapp" || filepath.Base(spec.Dir) != "myapp" || spec.Control != spec.Dir+"/gsup.sock" ||
		spec.Processes[0].Cwd != filepath.Dir(spec.Dir) || spec.Files[1] != root+"/Procfile" {
		t.Errorf("App %q, Dir %q, Control %q, Cwd %q, Files %q", spec.App, spec.Dir, spec.Control, spec.Processes[0].Cwd, spec.Files)
	}
	// --app wins.
	spec = mustLoad(t, map[string]string{"Procfile": "web: x"}, Options{App: "billing"})
	if spec.App != "billing" {
		t.Errorf("App = %q", spec.App)
	}
	if _, err := load(t, map[string]string{"Procfile": "web: x"}, Options{App: "a/b"}); err != `--app: invalid app name "a/b": no '/' or spaces` {
		t.Errorf("error = %q", err)
	}
}

func TestLoadFormation(t *testing.T) {
	files := map[string]string{
		"Procfile":  "web: w\nworker: k\nclock: c\n",
		"gsup.toml": "[process.worker]\nscale = 3\n",
	}
	tests := []struct {
		formation string
		types     []string
		want      map[string]int
		err       string
	}{
		{want: map[string]int{"web": 1, "worker": 3, "clock": 1}},
		{formation: "web=2", want: map[string]int{"web": 2, "worker": 0, "clock": 0}},
		{formation: "all=2", want: map[string]int{"web": 2, "worker": 2, "clock": 2}},
		{formation: "all=2,clock=0", want: map[string]int{"web": 2, "worker": 2, "clock": 0}},
		{formation: "web=1 worker=5", want: map[string]int{"web": 1, "worker": 5, "clock": 0}},
		{types: []string{"worker"}, want: map[string]int{"web": 0, "worker": 3, "clock": 0}},
		{formation: "all=2", types: []string{"web", "clock"}, want: map[string]int{"web": 2, "worker": 0, "clock": 2}},
		{formation: "wbe=1", err: `formation: unknown process type "wbe" (types: web, worker, clock)`},
		{formation: "web=101", err: "formation: web=101: at most 100 instances a type (its port block)"},
		{formation: "web", err: `formation: invalid formation entry "web": want TYPE=N`},
		{types: []string{"web", "nope"}, err: `unknown process type "nope" (types: web, worker, clock)`},
	}
	for _, tt := range tests {
		spec, err := load(t, files, Options{Formation: tt.formation, Types: tt.types})
		if err != tt.err {
			t.Errorf("-m %q %v: error %q, want %q", tt.formation, tt.types, err, tt.err)
			continue
		}
		if spec == nil {
			continue
		}
		for name, n := range tt.want {
			if got := spec.Lookup(name).Scale; got != n {
				t.Errorf("-m %q %v: %s scale %d, want %d", tt.formation, tt.types, name, got, n)
			}
		}
		// Port blocks stay where they are whatever runs.
		if spec.Lookup("clock").BasePort != 5200 {
			t.Errorf("clock base port %d", spec.Lookup("clock").BasePort)
		}
	}
}

func TestLoadPorts(t *testing.T) {
	tests := []struct {
		loadCase
		base    int
		serving bool
	}{
		{loadCase: loadCase{name: "default", files: map[string]string{"Procfile": "web: x"}}, base: 5000, serving: true},
		{loadCase: loadCase{name: "toml", files: map[string]string{"Procfile": "web: x", "gsup.toml": "port = 7000"}}, base: 7000, serving: true},
		{loadCase: loadCase{name: "env PORT ignored while serving (it is the bind)", files: map[string]string{"Procfile": "web: x", "gsup.toml": "port = 7000"},
			opts: Options{Environ: []string{"PORT=9000"}}}, base: 7000, serving: true},
		{loadCase: loadCase{name: "env PORT when not serving", files: map[string]string{"Procfile": "worker: x", "gsup.toml": "port = 7000"},
			opts: Options{Environ: []string{"PORT=9000"}}}, base: 9000},
		{loadCase: loadCase{name: "env PORT with --no-serve", files: map[string]string{"Procfile": "web: x"},
			opts: Options{Environ: []string{"PORT=9000"}, Over: Overrides{"no-serve": {"true"}}}}, base: 9000},
		{loadCase: loadCase{name: "env PORT when web is not in the formation", files: map[string]string{"Procfile": "web: x\nworker: y"},
			opts: Options{Environ: []string{"PORT=9000"}, Formation: "worker=1"}}, base: 9000},
		{loadCase: loadCase{name: ".env PORT beats env and toml", files: map[string]string{"Procfile": "worker: x", ".env": "PORT=6000", "gsup.toml": "port = 7000"},
			opts: Options{Environ: []string{"PORT=9000"}}}, base: 6000},
		{loadCase: loadCase{name: "--port beats all", files: map[string]string{"Procfile": "worker: x", ".env": "PORT=6000", "gsup.toml": "port = 7000"},
			opts: Options{Environ: []string{"PORT=9000"}, Over: Overrides{"port": {"4000"}}}}, base: 4000},
		{loadCase: loadCase{name: "later .env wins", files: map[string]string{"Procfile": "worker: x", "a.env": "PORT=6000", "b.env": "PORT=6100"},
			opts: Options{EnvFiles: []string{"a.env", "b.env"}}}, base: 6100},
		{loadCase: loadCase{name: "bad --port", files: map[string]string{"Procfile": "web: x"}, opts: Options{Over: Overrides{"port": {"0"}}},
			err: "--port: 0 is out of range (1-65535)"}},
		{loadCase: loadCase{name: "bad env PORT", files: map[string]string{"Procfile": "worker: x"}, opts: Options{Environ: []string{"PORT=http"}},
			err: `PORT: in the environment: "http" is not a port (1-65535)`}},
		{loadCase: loadCase{name: "bad env PORT for the default bind", files: map[string]string{"Procfile": "web: x"}, opts: Options{Environ: []string{"PORT=http"}},
			err: `PORT: in the environment: invalid port "http"`}},
		{loadCase: loadCase{name: "port block past 65535", files: map[string]string{"Procfile": "web: x\nworker: y"}, opts: Options{Over: Overrides{"port": {"65400"}}},
			err: `Procfile:2: the port block of "worker" (65500-65599) goes past 65535: lower the base port (65400)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.load(t)
			if spec == nil {
				return
			}
			if spec.BasePort != tt.base || spec.Serve.Enabled != tt.serving {
				t.Errorf("BasePort %d, serving %v; want %d, %v", spec.BasePort, spec.Serve.Enabled, tt.base, tt.serving)
			}
			for _, p := range spec.Processes {
				if p.BasePort != tt.base+100*p.Index {
					t.Errorf("%s: BasePort %d", p.Name, p.BasePort)
				}
			}
		})
	}
}

func TestLoadEnvPrecedence(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"gsup.toml": "env_file = [\"a.env\", \"b.env\"]\n[env]\nX = \"toml\"\nY = \"toml\"\n[process.web]\ncommand = \"w\"\nenv = { Y = \"web\" }\n",
		"a.env":     "X=a\nY=a\nZ=a\nW=a\n",
		"b.env":     "Z=b\n",
	}, Options{Environ: []string{"X=environ", "W=environ"}})
	want := map[string]string{"X": "toml", "Y": "toml", "Z": "b", "W": "a"}
	for k, v := range want {
		if spec.Env[k] != v {
			t.Errorf("Env[%s] = %q, want %q", k, spec.Env[k], v)
		}
	}
	if web := spec.Lookup("web"); len(web.Env) != 1 || web.Env["Y"] != "web" {
		t.Errorf("web.Env = %v", web.Env)
	}
}

func TestLoadServe(t *testing.T) {
	tests := []struct {
		loadCase
		enabled  bool
		upstream string
		binds    []Bind
	}{
		{loadCase: loadCase{name: "no web", files: map[string]string{"Procfile": "worker: x"}}, upstream: "web"},
		{loadCase: loadCase{name: "--no-serve", files: map[string]string{"Procfile": "web: x"}, opts: Options{Over: Overrides{"no-serve": {"true"}}}}, upstream: "web"},
		{loadCase: loadCase{name: "web scaled to 0", files: map[string]string{"Procfile": "web: x", "gsup.toml": "[process.web]\nscale = 0\n"}}, upstream: "web"},
		{loadCase: loadCase{name: "upstream from toml", files: map[string]string{"Procfile": "api: x", "gsup.toml": "[serve]\nupstream = \"api\"\n"}}, enabled: true, upstream: "api"},
		{loadCase: loadCase{name: "--upstream wins", files: map[string]string{"Procfile": "api: x\nweb: y", "gsup.toml": "[serve]\nupstream = \"api\"\n"},
			opts: Options{Over: Overrides{"upstream": {"web"}}}}, enabled: true, upstream: "web"},
		{loadCase: loadCase{name: "--upstream unknown", files: map[string]string{"Procfile": "web: x"}, opts: Options{Over: Overrides{"upstream": {"api"}}},
			err: `--upstream: no process type "api"`}},
		{loadCase: loadCase{name: "--bind wins", files: map[string]string{"Procfile": "web: x", "gsup.toml": "[serve]\nbind = \"127.0.0.1:9000\"\n"},
			opts: Options{Over: Overrides{"bind": {"unix:rel.sock", "tcp://LocalHost:81", "[::]:80", ":8080"}}}}, enabled: true, upstream: "web",
			binds: []Bind{{Address: "unix:rel.sock", Scheme: "http"}, {Address: "localhost:81", Scheme: "http"}, {Address: "[::]:80", Scheme: "http"}, {Address: ":8080", Scheme: "http"}}},
		{loadCase: loadCase{name: "bad --bind", files: map[string]string{"Procfile": "web: x"}, opts: Options{Over: Overrides{"bind": {"x:y"}}},
			err: `--bind: "x:y": invalid port "y"`}},
		{loadCase: loadCase{name: "bound twice", files: map[string]string{"Procfile": "web: x"}, opts: Options{Over: Overrides{"bind": {"127.0.0.1:80", "127.0.0.1:80"}}},
			err: `--bind: 127.0.0.1:80 is bound twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.load(t)
			if spec == nil {
				return
			}
			sv := spec.Serve
			if sv.Enabled != tt.enabled || sv.Upstream != tt.upstream || !slices.Equal(sv.Bind, tt.binds) {
				t.Errorf("Serve: enabled %v upstream %q binds %v", sv.Enabled, sv.Upstream, sv.Bind)
			}
			if sv.NoServe != (tt.opts.Over["no-serve"] != nil) {
				t.Errorf("NoServe %v", sv.NoServe)
			}
			if up := spec.Lookup(sv.Upstream); up != nil && up.Ready != "port" {
				t.Errorf("served type ready = %q", up.Ready)
			}
		})
	}
}

func TestLoadOverrides(t *testing.T) {
	toml := "pid = \"a.pid\"\ncontrol = \"c.sock\"\nerror_logfile = \"e.log\"\nlog_level = \"error\"\nlog_format = \"json\"\nsubreaper = true\n" +
		"[serve]\naccess_logfile = \"a.log\"\naccess_logformat = \"x\"\nproxy_protocol = \"v1\"\nforwarded_allow_ips = \"*\"\nproxy_allow_from = \"*\"\ntimeout = \"1s\"\ngraceful_timeout = \"2s\"\n"
	spec := mustLoad(t, map[string]string{"Procfile": "web: x", "gsup.toml": toml}, Options{Over: Overrides{
		"pid": {"run/p.pid"}, "control": {"/tmp/c.sock"}, "error-logfile": {"-"}, "log-level": {"WARNING"},
		"log-format": {"text"}, "subreaper": {"false"}, "access-logfile": {"-"}, "access-logformat": {"%(h)s"},
		"proxy-protocol": {"required"}, "forwarded-allow-ips": {"10.1.0.0/16, ::1"}, "proxy-allow-from": {""},
		"timeout": {"3s"}, "graceful-timeout": {"4s"},
	}})
	sv := spec.Serve
	if spec.Pid != "run/p.pid" || spec.Control != "/tmp/c.sock" || spec.ErrorLogfile != "-" || spec.LogLevel != "warning" ||
		spec.LogFormat != "text" || spec.Subreaper || sv.AccessLogfile != "-" || sv.AccessLogformat != "%(h)s" ||
		sv.ProxyProtocol != "required" || !slices.Equal(sv.ForwardedAllowIPs, []string{"10.1.0.0/16", "::1"}) ||
		len(sv.ProxyAllowFrom) != 0 || sv.ProxyAllowFrom == nil || sv.Timeout != 3*time.Second || sv.GracefulTimeout != 4*time.Second {
		t.Errorf("Spec %+v", spec)
	}

	bad := []struct {
		over Overrides
		err  string
	}{
		{Overrides{"log-level": {"loud"}}, `--log-level: "loud" is not one of debug, info, warning, error, critical`},
		{Overrides{"log-format": {"xml"}}, `--log-format: "xml" is not one of text, json`},
		{Overrides{"proxy-protocol": {"v3"}}, `--proxy-protocol: "v3" is not one of off, auto, v1, v2, required`},
		{Overrides{"forwarded-allow-ips": {"1.2.3.4/8"}}, `--forwarded-allow-ips: "1.2.3.4/8" has host bits set (did you mean 1.0.0.0/8?)`},
		{Overrides{"proxy-allow-from": {"nope"}}, `--proxy-allow-from: "nope" is not an IP address or network`},
		{Overrides{"timeout": {"-1s"}}, `--timeout: duration -1s is negative`},
		{Overrides{"control": {""}}, `--control: empty path`},
		{Overrides{"upstream": {"a.b"}}, `--upstream: invalid process name "a.b": use letters, digits, '_' and '-'`},
	}
	for _, tt := range bad {
		if _, err := load(t, map[string]string{"Procfile": "web: x"}, Options{Over: tt.over}); err != tt.err {
			t.Errorf("error %q, want %q", err, tt.err)
		}
	}
}

func TestLoadCollisions(t *testing.T) {
	runLoadCases(t, []loadCase{
		{name: "explicit bind on a child's port",
			files: map[string]string{"Procfile": "web: x\nworker: y", "gsup.toml": "[serve]\nbind = [\"127.0.0.1:8000\", \"0.0.0.0:5100\"]\n"},
			err:   "gsup.toml:2: serve.bind: bind 0.0.0.0:5100 collides with the port of worker.1 (5100)"},
		{name: "--bind on the second instance",
			files: map[string]string{"Procfile": "web: x"}, opts: Options{Formation: "web=3", Over: Overrides{"bind": {"127.0.0.1:5002"}}},
			err: "--bind: bind 127.0.0.1:5002 collides with the port of web.3 (5002)"},
		{name: "--bind beyond the instances is fine",
			files: map[string]string{"Procfile": "web: x"}, opts: Options{Formation: "web=3", Over: Overrides{"bind": {"127.0.0.1:5003"}}}},
		{name: "default bind",
			files: map[string]string{"Procfile": "web: x\nworker: y"}, opts: Options{Over: Overrides{"port": {"7900"}}},
			err: "bind 127.0.0.1:8000 (the default bind) collides with the port of worker.1 (8000)"},
		{name: "default bind from PORT",
			files: map[string]string{"Procfile": "web: x"}, opts: Options{Environ: []string{"PORT=5000"}},
			err: "bind 0.0.0.0:5000 (the default bind, from PORT in the environment) collides with the port of web.1 (5000)"},
		{name: "PORT from the environment moved by --port",
			files: map[string]string{"Procfile": "web: x"}, opts: Options{Environ: []string{"PORT=5000"}, Over: Overrides{"port": {"6000"}}}},
		{name: "systemd sockets: no default bind to check",
			files: map[string]string{"Procfile": "web: x"}, opts: Options{Environ: []string{"PORT=5000", "LISTEN_FDS=1"}}},
		{name: "not serving: no bind",
			files: map[string]string{"Procfile": "web: x\nworker: y"}, opts: Options{Over: Overrides{"port": {"7900"}, "no-serve": {"true"}}}},
		{name: "unix listeners have no port",
			files: map[string]string{"Procfile": "web: x", "gsup.toml": "[process.web]\nlisten = \"unix\"\n"}, opts: Options{Over: Overrides{"port": {"8000"}}}},
		{name: "scaled-down types have no port in use",
			files: map[string]string{"Procfile": "web: x\nworker: y"}, opts: Options{Formation: "web=1", Over: Overrides{"port": {"7900"}}}},
		{name: "socket on a child's port",
			files: map[string]string{"Procfile": "web: x", "gsup.toml": "\n[socket.s]\nbind = \"127.0.0.1:5000\"\n"},
			err:   "gsup.toml:3: socket.s.bind: bind 127.0.0.1:5000 collides with the port of web.1 (5000)"},
		{name: "socket on the front's bind",
			files: map[string]string{"Procfile": "web: x", "gsup.toml": "[serve]\nbind = \"127.0.0.1:9000\"\n[socket.s]\nbind = \"127.0.0.1:9000\"\n"},
			err:   "gsup.toml:4: socket.s.bind: 127.0.0.1:9000 is bound twice"},
	})
}

func TestWritePlan(t *testing.T) {
	spec := mustLoad(t, map[string]string{
		"Procfile": "web: bundle exec puma -p $PORT\nworker: bin/worker\nclock: bin/clock\n",
		".env":     "SECRET=hunter2\nA=1\n",
		"gsup.toml": "pid = \"gsup.pid\"\n[serve]\nbind = [\"127.0.0.1:8000\", { address = \"unix:front.sock\", scheme = \"https\" }]\n" +
			"[process.worker]\nscale = 2\nafter = [\"web\"]\nsockets = [\"jobs\"]\nstop_signal = \"INT\"\nenv = { Q = \"1\" }\n" +
			"[process.clock]\nscale = 0\n[socket.jobs]\nbind = \"unix:jobs.sock\"\n",
	}, Options{})
	var b bytes.Buffer
	spec.WritePlan(&b)
	got := strings.ReplaceAll(b.String(), spec.Dir, "/app")
	want := `app      ` + spec.App + ` (/app)
files    gsup.toml Procfile .env
env      A SECRET
ports    base 5000, +100 a type
web      x1  port 5000        ready=port  restart=always  stop=TERM/10s                                  bundle exec puma -p $PORT
worker   x2  ports 5100-5101  ready=none  restart=always  stop=INT/10s   after=web  sockets=jobs  env=Q  bin/worker
clock    x0  -                ready=none  restart=always  stop=TERM/10s                                  bin/clock
socket   jobs unix:/app/jobs.sock mode=0660
serve    127.0.0.1:8000, unix:/app/front.sock (https) -> web
front    forwarded-allow-ips=127.0.0.1,::1 proxy-protocol=off proxy-allow-from=127.0.0.1,::1 timeout=30s graceful-timeout=30s
clients  body-timeout=1m0s send-timeout=1m0s max-connections=auto (open files limit - 256)
access   off
pid      gsup.pid
control  ./.gsup.sock mode=0600
log      stderr level=info format=text
`
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "hunter2") {
		t.Error("the plan shows an env value")
	}

	spec = mustLoad(t, map[string]string{"Procfile": "web: x"}, Options{Over: Overrides{"no-serve": {"true"}}})
	b.Reset()
	spec.WritePlan(&b)
	if !strings.Contains(b.String(), "\nserve    off (--no-serve)\n") {
		t.Errorf("plan:\n%s", b.String())
	}
	spec = mustLoad(t, map[string]string{"Procfile": "web: x"}, Options{Environ: []string{"PORT=9000"}})
	b.Reset()
	spec.WritePlan(&b)
	if !strings.Contains(b.String(), "\nserve    0.0.0.0:9000 (default) -> web\n") {
		t.Errorf("plan:\n%s", b.String())
	}
}
