package export

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"gsup/procfile"
)

// Formats are the formats Write knows, as `gsup export` names them.
var Formats = []string{"systemd", "runit", "supervisord", "upstart"}

// Margins added to the computed timeouts: time for gsup's own start-up and
// exit, and for a machine under load.
const (
	stopMargin  = 20 * time.Second
	startMargin = 30 * time.Second
	minStart    = 90 * time.Second // systemd's own default TimeoutStartSec
)

// Config says what to write and where.
type Config struct {
	Format string   // one of Formats
	Dir    string   // folder the files are written to (made if missing)
	App    string   // names the files and units; "" = the app's name
	User   string   // user gsup runs as; "" = the current user
	Run    string   // folder of the pid file and control socket; "" = /run/APP
	Log    string   // folder of log files, where a format needs one; "" = /var/log/APP
	Self   string   // absolute path of gsup's executable
	Path   string   // PATH for gsup and its processes; "" = /usr/local/bin:/usr/bin:/bin
	Flags  []string // further `gsup start` flags, as StartFlag makes them
}

// File is one file written.
type File struct {
	Path string // as written: Config.Dir joined with its name
	What string // one line on what it is
}

//go:embed templates/*.tmpl
var templates embed.FS

// files lists, per format, each template with the path it is written to
// (relative to Config.Dir, with APP for the app's name), its mode and what
// it is; a template that renders to nothing is not written.
var files = map[string][]struct {
	tmpl, path string
	mode       os.FileMode
	what       func(d *data) string
}{
	"systemd": {
		{"systemd.service.tmpl", "APP.service", 0o644, func(d *data) string {
			return "the systemd service (Type=notify, TimeoutStopSec=" + seconds(d.StopTimeout) + ")"
		}},
		{"systemd.socket.tmpl", "APP.socket", 0o644, func(d *data) string { return "the systemd socket unit of " + strings.Join(d.Sockets, ", ") }},
	},
	"runit": {
		{"runit.run.tmpl", "APP/run", 0o755, func(d *data) string {
			return "runit's run script (stop with sv -w " + seconds(d.StopTimeout) + " stop)"
		}},
		{"runit.log.run.tmpl", "APP/log/run", 0o755, func(d *data) string { return "runit's logger (svlogd into " + d.Log + ")" }},
	},
	"supervisord": {
		{"supervisord.conf.tmpl", "APP.conf", 0o644, func(d *data) string { return "the supervisord program (stopwaitsecs=" + seconds(d.StopTimeout) + ")" }},
	},
	"upstart": {
		{"upstart.conf.tmpl", "APP.conf", 0o644, func(d *data) string { return "the upstart job (kill timeout " + seconds(d.StopTimeout) + ")" }},
	},
}

// Write writes the files of cfg.Format for spec into cfg.Dir and returns
// them in order.
func Write(spec *procfile.Spec, cfg Config) ([]File, error) {
	list, ok := files[cfg.Format]
	if !ok {
		return nil, fmt.Errorf("unknown format %q (want one of %s)", cfg.Format, strings.Join(Formats, ", "))
	}
	d, err := newData(spec, cfg)
	if err != nil {
		return nil, err
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templates, "templates/*.tmpl")
	if err != nil {
		return nil, err
	}
	var out []File
	for _, f := range list {
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, f.tmpl, d); err != nil {
			return out, fmt.Errorf("%s: %w", f.tmpl, err)
		}
		if strings.TrimSpace(b.String()) == "" {
			continue
		}
		path := filepath.Join(cfg.Dir, strings.ReplaceAll(f.path, "APP", d.App))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return out, err
		}
		if err := os.WriteFile(path, b.Bytes(), f.mode); err != nil {
			return out, err
		}
		// WriteFile keeps an existing file's mode.
		if err := os.Chmod(path, f.mode); err != nil {
			return out, err
		}
		out = append(out, File{Path: path, What: f.what(d)})
	}
	return out, nil
}

// data is what the templates see.
type data struct {
	App, User, Group, Home string
	Dir                    string // the app's folder: the working directory
	Run, Log               string
	RuntimeDirectory       string // Run relative to /run, for systemd; "" when it is elsewhere
	Path                   string
	Argv                   []string // gsup start ...
	Pid                    string   // the pid file
	Sockets                []string // unix bind paths, for a systemd socket unit
	SocketsInRun           bool     // one of them is inside Run
	UnixUser, UnixGroup    string   // owner and group of those sockets
	UnixMode               string
	Graceful, MaxStop      time.Duration
	StopTimeout            time.Duration // Graceful + MaxStop + stopMargin
	ReadyChain             time.Duration // longest chain of ready_timeouts through after
	StartTimeout           time.Duration
}

func newData(spec *procfile.Spec, cfg Config) (*data, error) {
	d := &data{App: cfg.App, User: cfg.User, Run: cfg.Run, Log: cfg.Log, Path: cfg.Path, Dir: spec.Dir}
	if d.App == "" {
		d.App = spec.App
	}
	if d.User == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("finding the current user: %w", err)
		}
		d.User = u.Username
	}
	// The user may not exist on this machine: then its group is taken to
	// be its namesake and its home the app's folder.
	d.Group, d.Home = d.User, spec.Dir
	if u, err := user.Lookup(d.User); err == nil {
		d.Home = u.HomeDir
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			d.Group = g.Name
		}
	}
	if d.Run == "" {
		d.Run = "/run/" + d.App
	}
	if d.Log == "" {
		d.Log = "/var/log/" + d.App
	}
	if d.Path == "" {
		d.Path = "/usr/local/bin:/usr/bin:/bin"
	}
	for _, p := range []*string{&d.Run, &d.Log} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if rel, ok := strings.CutPrefix(d.Run, "/run/"); ok {
		d.RuntimeDirectory = rel
	}

	d.Argv = []string{cfg.Self, "start"}
	if spec.Config != "" {
		d.Argv = append(d.Argv, "-c", spec.Config)
	}
	for _, f := range spec.Files {
		if f != spec.Config && !slices.Contains(spec.EnvFiles, f) {
			d.Argv = append(d.Argv, "-f", f)
		}
	}
	for _, f := range spec.EnvFiles {
		d.Argv = append(d.Argv, "-e", f)
	}
	d.Argv = append(d.Argv, cfg.Flags...)
	d.Pid = spec.Pid
	if d.Pid == "" {
		d.Pid = filepath.Join(d.Run, d.App+".pid")
		d.Argv = append(d.Argv, "--pid", d.Pid)
	}
	// The default control socket (./.gsup.sock, made absolute against the
	// folder gsup was started from) would land in the app's folder: the
	// run folder is the place for it, as for the pid file.
	wd, _ := os.Getwd()
	if spec.Control == procfile.DefaultControl || spec.Control == filepath.Join(wd, procfile.DefaultControl) {
		d.Argv = append(d.Argv, "--control", filepath.Join(d.Run, "control.sock"))
	}

	for _, b := range spec.Serve.Bind {
		if path, ok := strings.CutPrefix(b.Address, "unix:"); ok && spec.Serve.Enabled {
			path, err := filepath.Abs(strings.TrimPrefix(path, "//"))
			if err != nil {
				return nil, err
			}
			d.Sockets = append(d.Sockets, path)
			d.SocketsInRun = d.SocketsInRun || strings.HasPrefix(path, d.Run+"/")
		}
	}
	d.UnixUser, d.UnixGroup = spec.Serve.UnixOwner, spec.Serve.UnixGroup
	if d.UnixUser == "" {
		d.UnixUser = d.User
	}
	if d.UnixGroup == "" {
		d.UnixGroup = d.Group
	}
	d.UnixMode = fmt.Sprintf("%04o", spec.Serve.UnixMode)

	d.Graceful = spec.Serve.GracefulTimeout
	for _, p := range spec.Processes {
		if p.Scale > 0 {
			d.MaxStop = max(d.MaxStop, p.StopTimeout)
		}
	}
	d.StopTimeout = d.Graceful + d.MaxStop + stopMargin
	d.ReadyChain = readyChain(spec)
	if spec.Release != nil {
		// The release command runs to its end before anything starts.
		d.ReadyChain += spec.Release.Timeout
	}
	d.StartTimeout = max(d.ReadyChain+startMargin, minStart)
	return d, nil
}

// readyChain is the longest wait for readiness at start: types start
// together, except that a type with after = [...] waits until those are
// ready, so the waits add up along each chain of after.
func readyChain(spec *procfile.Spec) time.Duration {
	memo := map[string]time.Duration{}
	var chain func(p *procfile.Process, depth int) time.Duration
	chain = func(p *procfile.Process, depth int) time.Duration {
		if v, ok := memo[p.Name]; ok || depth > len(spec.Processes) {
			return v
		}
		var before time.Duration
		for _, name := range p.After {
			if q := spec.Lookup(name); q != nil {
				before = max(before, chain(q, depth+1))
			}
		}
		own := p.ReadyTimeout
		if p.Ready == "none" {
			own = 0
		}
		memo[p.Name] = before + own
		return before + own
	}
	var longest time.Duration
	for i := range spec.Processes {
		if spec.Processes[i].Scale > 0 {
			longest = max(longest, chain(&spec.Processes[i], 0))
		}
	}
	return longest
}
