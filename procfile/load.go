package procfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Default file names, looked up in Options.Dir.
const (
	DefaultConfig   = "gsup.toml"
	DefaultProcfile = "Procfile"
	DefaultEnvFile  = ".env"
)

// Options select the files Load reads and carry the command-line and
// environment overrides. Precedence: defaults < config file < environment
// < command line; main merges GSUP_* variables and flags into Over before
// calling Load, so a non-nil override always wins.
//
// Relative Config, Procfile and EnvFiles start at Dir. Paths in the TOML
// file start at the TOML file's folder.
//
// Load resolves every path afresh each time: with Wd set to the logical
// working directory (a `current` symlink kept as such), a reload after the
// symlink moved reads the new release's files.
type Options struct {
	Dir       string   // folder default files are looked up in and relative paths start from; "" = "."
	Wd        string   // absolute folder a relative Dir starts at (and the control socket path); "" = the process's working directory
	Config    string   // TOML file (-c); "" = gsup.toml in Dir when it exists
	Procfile  string   // -f; "" = the TOML's procfile key, else Procfile in Dir (required without a TOML file, optional with one)
	EnvFiles  []string // -e; none = the TOML's env_file, else .env in Dir when it exists; a named file that is missing is an error
	Formation string   // -m "web=2,worker=1" or "all=2": types it does not name get 0 (unless all=N); "" = each type's TOML scale, else 1
	Types     []string // `gsup start web`: only these types run, the others stay in Spec.Processes with Scale 0; none = all
	App       string   // app name; "" = base name of the config's folder
	Environ   []string // gsup's own environment, KEY=VALUE (os.Environ()): PORT, LISTEN_FDS
	Over      Overrides
}

// FileOptions are the Options of `gsup load FILE`: file's folder is the
// app's, a .toml file is a config, anything else a Procfile; app "" names
// the app after the folder.
func FileOptions(file, app string, environ []string) Options {
	opts := Options{Dir: filepath.Dir(file), App: app, Environ: environ}
	if strings.EqualFold(filepath.Ext(file), ".toml") {
		opts.Config = filepath.Base(file)
	} else {
		opts.Procfile = filepath.Base(file)
	}
	return opts
}

// Overrides are the values of flags given on the command line or through
// their GSUP_* variables, by flag name ("port", "bind", "no-serve"), as
// written there ("true" for a flag without a value); a repeatable flag has
// every value given. Load checks them as the TOML file's values are
// checked, and names the flag in its errors ("--port: ..."). Relative
// paths in them are kept as they are: they start at gsup's working
// directory, not at the config's folder. Flags() lists the names.
type Overrides map[string][]string

// Load reads the TOML file, Procfile and .env files that opts select,
// applies opts' overrides, and validates the lot. It reads files and does
// nothing else.
//
// On error the Spec is nil and the error is an *Error or several joined
// (errors.As finds the first); each names its file, line and key. Load
// reports every error of the files it could parse; errors found while
// putting them together (formation, ports, references between types) are
// only looked for once the files are good.
//
// Children's base port (Spec.BasePort), first that is set:
//
//  1. Over.Port (--port, GSUP_PORT);
//  2. PORT in the .env files (foreman's rule);
//  3. PORT in Options.Environ, only when serving is off (when it is on,
//     PORT is the front's bind, the platform convention);
//  4. the TOML file's top-level port;
//  5. 5000.
//
// The TOML port comes after the environment, as config files come after
// the environment everywhere else; the .env files come before it because
// foreman reads PORT there and a .env is the app's, closer to it than
// gsup's config.
//
// Spec.Dir (and ConfigDir) is the absolute folder of the TOML file, or of
// the Procfile without one; Spec.Files and Spec.EnvFiles hold absolute
// paths; Process.File holds the file as shown in messages.
func Load(opts Options) (*Spec, error) {
	l := &loader{opts: opts, dir: opts.Dir}
	if l.dir == "" {
		l.dir = "."
	}
	if opts.Wd != "" && !filepath.IsAbs(l.dir) {
		l.dir = filepath.Join(opts.Wd, l.dir)
	}
	return l.load()
}

// LogicalWd returns the working directory as the user named it: $PWD
// when it names the same folder as the real working directory (a path
// through a `current -> releases/N` symlink stays as it is), else the
// real one (Unicorn's rule, which os.Getwd follows).
func LogicalWd() (string, error) { return os.Getwd() }

type loader struct {
	opts  Options
	dir   string
	errs  errList
	spec  *Spec
	doc   *tomlDoc // nil without a TOML file
	cfg   tomlConfig
	given map[string]origin // setting (TOML key) -> where its value came from, when not the default

	envPort     string // PORT from the .env files
	envPortFile string
	envPortLine int
}

// name returns the path to open for a name given on the command line or
// by default, and the name to show in messages.
func (l *loader) name(p string) (path, shown string) {
	if filepath.IsAbs(p) {
		return p, p
	}
	return filepath.Join(l.dir, p), filepath.Join(l.opts.Dir, p)
}

// readFile reads a file; the error names it as shown.
func readFile(path, shown string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(shown, err)
	}
	return data, nil
}

// readError describes a file that cannot be read.
func readError(shown string, err error) *Error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &Error{File: shown, Msg: "cannot read: " + msg, Err: err}
}

// fromKey moves a read error onto the TOML key that named the file.
func (l *loader) fromKey(e *Error, key string, line int) *Error {
	return &Error{File: l.doc.name, Line: line, Key: key, Msg: e.File + ": " + e.Msg, Err: e.Err}
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

func (l *loader) load() (*Spec, error) {
	spec := &Spec{}
	l.spec = spec
	l.given = map[string]origin{}
	applyDefaults(spec, "", &l.errs)
	l.applyFlags(&l.opts)

	// The TOML file.
	var cfgPath, cfgShown string
	var cfgData []byte
	if l.opts.Config != "" {
		cfgPath, cfgShown = l.name(l.opts.Config)
		data, err := readFile(cfgPath, cfgShown)
		if err != nil {
			return nil, err
		}
		cfgData = data
	} else {
		path, shown := l.name(DefaultConfig)
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			cfgPath, cfgShown, cfgData = path, shown, data
		case !errors.Is(err, fs.ErrNotExist):
			return nil, readError(shown, err)
		}
	}
	if cfgPath != "" {
		abs := absPath(cfgPath)
		spec.Dir = filepath.Dir(abs)
		spec.Files = append(spec.Files, abs)
		spec.Config = abs
		doc, err := parseTOML(cfgShown, spec.Dir, cfgData, &l.errs)
		if err != nil {
			return nil, err
		}
		l.doc = doc
		doc.cfg, doc.given = &l.cfg, l.given
		doc.walk(nil, "", doc.raw, spec)
	}

	// The Procfile.
	var entries []Entry
	procfileOK := true
	pfPath, pfShown := l.name(DefaultProcfile)
	required := l.doc == nil
	switch {
	case l.opts.Procfile != "":
		pfPath, pfShown = l.name(l.opts.Procfile)
		required = true
	case l.cfg.procfile.path != "":
		pfPath, pfShown = l.cfg.procfile.path, l.cfg.procfile.shown
		required = true
	case l.cfg.procfileSet:
		pfPath = "" // procfile = "": none
	}
	var data []byte
	err := fs.ErrNotExist
	if pfPath != "" {
		data, err = os.ReadFile(pfPath)
	}
	switch {
	case pfPath == "":
	case err == nil:
		spec.Files = append(spec.Files, absPath(pfPath))
		entries, err = ParseProcfile(pfShown, data)
		if err != nil {
			l.errs = append(l.errs, err)
			procfileOK = false
		}
	case errors.Is(err, fs.ErrNotExist) && !required:
		pfPath = ""
	case errors.Is(err, fs.ErrNotExist) && l.opts.Procfile == "" && l.cfg.procfile.path == "":
		return nil, &Error{File: pfShown, Msg: fmt.Sprintf("not found (and no %s either)", filepath.Join(l.opts.Dir, DefaultConfig)), Err: err}
	default:
		e := readError(pfShown, err)
		if l.opts.Procfile == "" {
			e = l.fromKey(e, l.cfg.procfile.key, l.cfg.procfile.line)
		}
		l.errs = append(l.errs, e)
		procfileOK = false
	}
	if l.doc == nil {
		spec.Dir = filepath.Dir(absPath(pfPath))
	}
	spec.ConfigDir = spec.Dir

	// The .env files.
	l.readEnvFiles()

	// Process types: the Procfile's, completed or overridden by the TOML
	// file's, then the TOML file's own.
	for _, e := range entries {
		if e.Name == "release" {
			// Heroku's release phase: run once, not a process type.
			if spec.Release != nil {
				l.doc.fail(toml.Key{"release"}, "defined twice: by [release] and by %s:%d", pfShown, e.Line)
				continue
			}
			spec.Release = &Release{Command: e.Command, Timeout: DefaultReleaseTimeout, File: pfShown, Line: e.Line}
			continue
		}
		spec.Processes = append(spec.Processes, l.newProcess(e.Name, e.Command, pfShown, e.Line))
	}
	for _, tp := range l.cfg.procs {
		p := spec.Lookup(tp.name)
		if p == nil {
			spec.Processes = append(spec.Processes, l.newProcess(tp.name, "", l.doc.name, l.doc.line(tp.key)))
			p = &spec.Processes[len(spec.Processes)-1]
		}
		l.doc.walk(tp.key, "process.*", tp.table, p)
		if _, has := tp.table["command"]; !has && p.Command == "" && procfileOK {
			where := "the Procfile"
			if pfPath == "" {
				where = "any Procfile"
			}
			l.doc.fail(tp.key, "no command (set command here, or define %q in %s)", tp.name, where)
		}
	}
	if len(spec.Processes) == 0 && procfileOK && len(l.errs) == 0 {
		file := pfShown
		if l.doc != nil {
			file = l.doc.name
		}
		l.errs.add(file, 0, "", "no process types defined")
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}

	for i := range spec.Processes {
		spec.Processes[i].Index = i
	}
	l.app()
	l.overrides()
	l.formation()
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	l.serving()
	l.checkTLS()
	l.ports()
	l.references()
	if len(l.errs) == 0 {
		l.collisions()
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return spec, nil
}

func (l *loader) newProcess(name, command, file string, line int) Process {
	p := Process{Name: name, Command: command, File: file, Line: line}
	applyDefaults(&p, l.spec.Dir, &l.errs)
	return p
}

// readEnvFiles reads the .env files and sets Spec.Env: the .env values
// (a later file wins) overlaid with the TOML env table.
func (l *loader) readEnvFiles() {
	var refs []fileRef
	required := true
	switch {
	case len(l.opts.EnvFiles) > 0:
		for _, f := range l.opts.EnvFiles {
			path, shown := l.name(f)
			refs = append(refs, fileRef{path: path, shown: shown})
		}
	case l.cfg.envFilesSet:
		refs = l.cfg.envFiles
	default:
		path, shown := l.name(DefaultEnvFile)
		refs = []fileRef{{path: path, shown: shown}}
		required = false
	}
	env := map[string]string{}
	for _, ref := range refs {
		data, err := os.ReadFile(ref.path)
		if err != nil {
			if !required && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			e := readError(ref.shown, err)
			if ref.key != "" {
				e = l.fromKey(e, ref.key, ref.line)
			}
			l.errs = append(l.errs, e)
			continue
		}
		abs := absPath(ref.path)
		l.spec.Files = append(l.spec.Files, abs)
		l.spec.EnvFiles = append(l.spec.EnvFiles, abs)
		vars, err := ParseEnv(ref.shown, data)
		if err != nil {
			l.errs = append(l.errs, err)
			continue
		}
		for _, v := range vars {
			env[v.Key] = v.Value
			if v.Key == "PORT" {
				l.envPort, l.envPortFile, l.envPortLine = v.Value, ref.shown, v.Line
			}
		}
	}
	for _, v := range l.cfg.env {
		env[v.Key] = v.Value
	}
	l.spec.Env = env
}

// app sets the app's name.
func (l *loader) app() {
	s := l.spec
	if l.opts.App != "" {
		if strings.ContainsAny(l.opts.App, "/ \t\n") {
			l.errs.add("", 0, "--app", "invalid app name %q: no '/' or spaces", l.opts.App)
		}
		s.App = l.opts.App
		return
	}
	s.App = filepath.Base(s.Dir)
	if s.App == "/" || s.App == "." {
		s.App = "app"
	}
}

// overrides applies the command line (and GSUP_* variables), then checks
// the served type, which must exist when it was named.
func (l *loader) overrides() {
	l.applyFlags(l.spec)
	s := l.spec
	if l.opts.Wd != "" && !filepath.IsAbs(s.Control) {
		// Fixed at start, and named from the logical folder.
		s.Control = filepath.Join(l.opts.Wd, s.Control)
	}
	if o, ok := l.given["serve.upstream"]; ok && s.Lookup(s.Serve.Upstream) == nil {
		o.fail(&l.errs, "no process type %q", s.Serve.Upstream)
	}
}

// formation sets every type's Scale and default readiness.
func (l *loader) formation() {
	s := l.spec
	if l.opts.Formation != "" {
		f, err := ParseFormation(l.opts.Formation)
		if err != nil {
			l.errs.add("", 0, "formation", "%v", err)
			return
		}
		for name, n := range f {
			if name != "all" && s.Lookup(name) == nil {
				l.errs.add("", 0, "formation", "unknown process type %q (types: %s)", name, l.typeNames())
			}
			if n > PortsPerType {
				l.errs.add("", 0, "formation", "%s=%d: at most %d instances a type (its port block)", name, n, PortsPerType)
			}
		}
		all, hasAll := f["all"]
		for i := range s.Processes {
			p := &s.Processes[i]
			switch n, ok := f[p.Name]; {
			case ok:
				p.Scale = n
			case hasAll:
				p.Scale = all
			default:
				p.Scale = 0
			}
		}
	}
	if len(l.opts.Types) > 0 {
		for _, t := range l.opts.Types {
			if s.Lookup(t) == nil {
				l.errs.add("", 0, "", "unknown process type %q (types: %s)", t, l.typeNames())
			}
		}
		for i := range s.Processes {
			if p := &s.Processes[i]; !slices.Contains(l.opts.Types, p.Name) {
				p.Scale = 0
			}
		}
	}
	for i := range s.Processes {
		p := &s.Processes[i]
		if _, given := l.given[toml.Key{"process", p.Name, "ready"}.String()]; !given {
			// The served type is ready when its $PORT accepts, unless it
			// serves on sockets gsup passes it: it never binds $PORT then.
			p.Ready = "none"
			if p.Name == s.Serve.Upstream && len(p.Sockets) == 0 {
				p.Ready = "port"
			}
		}
	}
}

func (l *loader) typeNames() string {
	var names []string
	for _, p := range l.spec.Processes {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// environ looks a variable up in gsup's own environment.
func (l *loader) environ(key string) (string, bool) {
	for i := len(l.opts.Environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(l.opts.Environ[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// serving decides whether the front serves, and the bind it will use by
// default.
func (l *loader) serving() {
	s := &l.spec.Serve
	up := l.spec.Lookup(s.Upstream)
	s.Enabled = !s.NoServe && up != nil && up.Scale > 0
	if !s.Enabled || len(s.Bind) > 0 {
		return
	}
	if _, ok := l.environ("LISTEN_FDS"); ok {
		l.spec.defaultBind = "sockets from systemd (LISTEN_FDS)"
		return
	}
	if p, ok := l.environ("PORT"); ok {
		if _, err := parsePort(p); err != nil {
			l.errs.add("", 0, "PORT", "in the environment: %v", err)
			return
		}
		l.spec.defaultBind = "0.0.0.0:" + p
		return
	}
	l.spec.defaultBind = DefaultBind
}

// ports sets the base port (see Load) and every type's port block.
func (l *loader) ports() {
	s := l.spec
	base := s.BasePort // the default, the TOML file's or the command line's
	envPort, envOK := l.environ("PORT")
	switch {
	case l.given["port"].file == "" && l.given["port"].key != "":
	case l.envPort != "":
		n, err := parsePort(l.envPort)
		if err != nil || n == 0 {
			l.errs.add(l.envPortFile, l.envPortLine, "PORT", "%q is not a port (1-65535)", l.envPort)
			return
		}
		base = n
	case envOK && !s.Serve.Enabled:
		n, err := parsePort(envPort)
		if err != nil || n == 0 {
			l.errs.add("", 0, "PORT", "in the environment: %q is not a port (1-65535)", envPort)
			return
		}
		base = n
	}
	s.BasePort = base
	for i := range s.Processes {
		p := &s.Processes[i]
		p.BasePort = base + PortsPerType*p.Index
		if last := p.BasePort + PortsPerType - 1; last > 65535 {
			l.errs.add(p.File, p.Line, "", "the port block of %q (%d-%d) goes past 65535: lower the base port (%d)", p.Name, p.BasePort, last, base)
		}
	}
}

// references checks sockets and after.
func (l *loader) references() {
	s := l.spec
	for i := range s.Processes {
		p := &s.Processes[i]
		key := toml.Key{"process", p.Name}
		for _, name := range p.Sockets {
			if !slices.ContainsFunc(s.Sockets, func(so Socket) bool { return so.Name == name }) {
				l.doc.fail(sub(key, "sockets"), "no [socket.%s]", name)
			}
		}
		for _, name := range p.After {
			switch {
			case name == p.Name:
				l.doc.fail(sub(key, "after"), "%q cannot wait for itself", name)
			case s.Lookup(name) == nil:
				l.doc.fail(sub(key, "after"), "no process type %q", name)
			}
		}
	}
	// Cycles: depth-first, reporting each cycle once from its first type.
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		p := s.Lookup(name)
		for _, dep := range p.After {
			if dep == name || s.Lookup(dep) == nil {
				continue
			}
			switch state[dep] {
			case unseen:
				visit(dep)
			case active:
				cycle := append(slices.Clone(stack[slices.Index(stack, dep):]), dep)
				l.doc.fail(toml.Key{"process", name, "after"}, "dependency cycle: %s", strings.Join(cycle, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, p := range s.Processes {
		if state[p.Name] == unseen {
			visit(p.Name)
		}
	}
}

// collisions checks that no address gsup binds is a child's port.
func (l *loader) collisions() {
	s := l.spec
	type bindRef struct {
		addr       string
		file, key  string
		line       int
		annotation string
	}
	var binds []bindRef
	if s.Serve.Enabled {
		switch {
		case len(s.Serve.Bind) > 0:
			o := l.given["serve.bind"]
			for _, b := range s.Serve.Bind {
				binds = append(binds, bindRef{addr: b.Address, file: o.file, key: o.key, line: o.line})
			}
		case strings.HasPrefix(s.defaultBind, "0.0.0.0:"):
			binds = append(binds, bindRef{addr: s.defaultBind, annotation: " (the default bind, from PORT in the environment)"})
		case s.defaultBind == DefaultBind:
			binds = append(binds, bindRef{addr: s.defaultBind, annotation: " (the default bind)"})
		}
	}
	for _, so := range s.Sockets {
		k := toml.Key{"socket", so.Name, "bind"}
		binds = append(binds, bindRef{addr: so.Bind, file: l.doc.name, key: k.String(), line: l.doc.line(k)})
	}
	seen := map[string]bool{}
	for _, b := range binds {
		if b.addr == "" {
			continue // a socket that only comes from systemd
		}
		if seen[b.addr] {
			l.errs.add(b.file, b.line, b.key, "%s is bound twice", b.addr)
		}
		seen[b.addr] = true
		port := addrPort(b.addr)
		if port <= 0 {
			continue
		}
		for _, p := range s.Processes {
			if p.Listen == "unix" || port < p.BasePort || port >= p.BasePort+p.Scale {
				continue
			}
			n := port - p.BasePort + 1
			l.errs.add(b.file, b.line, b.key, "bind %s%s collides with the port of %s.%d (%d)", b.addr, b.annotation, p.Name, n, port)
		}
	}
}
