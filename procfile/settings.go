package procfile

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
)

// settings is the one table of gsup's settings: each row gives a TOML key,
// the flag (and GSUP_* variable) that overrides it, its default, the words
// of `gsup start -h` and `gsup check`, and the Spec field it fills. Load,
// the command line (Flags), the plan and the test of config.toml.example
// all read it.
//
// Keys are spelled from the top of the file; "process.*" and "socket.*"
// stand for any [process.NAME] or [socket.NAME]. Rows of a table follow
// its own row. A row without a key is a flag only; one without a flag is a
// TOML key only.
var settings = []setting{
	// Which files are read (Options).
	{flag: "config", alias: "c", usage: "TOML `FILE`", shown: DefaultConfig + " if present",
		to: opt(text, func(o *Options) *string { return &o.Config })},
	{key: "procfile", flag: "procfile", alias: "f", usage: "Procfile `FILE`", shown: DefaultProcfile,
		to: hook(procfileKey), flagTo: opt(text, func(o *Options) *string { return &o.Procfile })},
	{key: "env_file", flag: "env", alias: "e", usage: "env `FILE`, repeatable", shown: DefaultEnvFile + " if present",
		to: hook(envFileKey), flagTo: opt(list, func(o *Options) *[]string { return &o.EnvFiles })},
	{flag: "formation", alias: "m", usage: "instances per type, `web=2,worker=1`", shown: "all=1",
		to: opt(text, func(o *Options) *string { return &o.Formation })},
	{key: "env", to: hook(envKey)},

	// gsup itself.
	{key: "port", flag: "port", def: strconv.Itoa(DefaultBasePort), usage: "base `PORT` of the children", shown: "PORT from .env, else 5000",
		to: spec(integer(1, 65535), func(s *Spec) *int { return &s.BasePort })},
	{key: "pid", flag: "pid", def: `""`, usage: "write gsup's pid to `FILE`", shown: "none",
		to: spec(path(true), func(s *Spec) *string { return &s.Pid })},
	{key: "control", flag: "control", def: strconv.Quote(DefaultControl), usage: "control socket `PATH`",
		to: spec(path(false), func(s *Spec) *string { return &s.Control })},
	{key: "control_mode", def: quoteMode(DefaultControlMode),
		to: spec(mode, func(s *Spec) *os.FileMode { return &s.ControlMode })},
	{key: "error_logfile", flag: "error-logfile", def: `"-"`, usage: "gsup's own log `FILE` (- = stderr)", shown: "stderr",
		to: spec(path(true), func(s *Spec) *string { return &s.ErrorLogfile })},
	{key: "log_level", flag: "log-level", def: `"info"`, usage: "`LEVEL`: " + strings.Join(logLevels, ", "),
		to: spec(enum(logLevels...), func(s *Spec) *string { return &s.LogLevel })},
	{key: "log_format", flag: "log-format", def: `"text"`, usage: "`FORMAT` of gsup's own log: " + strings.Join(logFormats, " or "),
		to: spec(enum(logFormats...), func(s *Spec) *string { return &s.LogFormat })},
	{key: "subreaper", flag: "subreaper", def: "false", usage: "become the child subreaper: reap orphans of the children (automatic as PID 1)",
		to: spec(boolean, func(s *Spec) *bool { return &s.Subreaper })},

	// The HTTP front.
	{key: "serve", to: hook(serveKey)},
	{key: "serve.bind", flag: "bind", alias: "b", usage: "serve on `ADDR` (host:port, [::1]:port, unix:/path, fd://N), repeatable",
		to: spec(binds, func(s *Spec) *[]Bind { return &s.Serve.Bind })},
	{flag: "no-serve", usage: "do not serve HTTP",
		to: spec(boolean, func(s *Spec) *bool { return &s.Serve.NoServe })},
	{key: "serve.upstream", flag: "upstream", def: strconv.Quote(DefaultUpstream), usage: "process `TYPE` to serve",
		to: spec(processName, func(s *Spec) *string { return &s.Serve.Upstream })},
	{key: "serve.forwarded_allow_ips", flag: "forwarded-allow-ips", env: "FORWARDED_ALLOW_IPS", def: `["127.0.0.1", "::1"]`,
		usage: "`LIST` of addresses/CIDRs whose X-Forwarded-* are trusted, or *",
		to:    spec(ipList, func(s *Spec) *[]string { return &s.Serve.ForwardedAllowIPs })},
	{key: "serve.proxy_protocol", flag: "proxy-protocol", def: `"off"`, usage: "PROXY protocol: `off|auto|v1|v2|required`",
		to: spec(enum(proxyProtocols...), func(s *Spec) *string { return &s.Serve.ProxyProtocol })},
	{key: "serve.proxy_allow_from", flag: "proxy-allow-from", def: `["127.0.0.1", "::1"]`,
		usage: "`LIST` of addresses/CIDRs allowed to send PROXY headers, or *",
		to:    spec(ipList, func(s *Spec) *[]string { return &s.Serve.ProxyAllowFrom })},
	{key: "serve.access_logfile", flag: "access-logfile", def: `""`, usage: "access log `FILE` (- = stdout)", shown: "none",
		to: spec(path(true), func(s *Spec) *string { return &s.Serve.AccessLogfile })},
	{key: "serve.access_logformat", flag: "access-logformat", def: `""`, usage: "access log `FORMAT` (Gunicorn's atoms)", shown: "Gunicorn's",
		to: spec(text, func(s *Spec) *string { return &s.Serve.AccessLogformat })},
	{key: "serve.timeout", flag: "timeout", def: strconv.Quote(DefaultTimeout.String()), usage: "longest `DURATION` to wait for the app's response headers",
		to: spec(duration, func(s *Spec) *time.Duration { return &s.Serve.Timeout })},
	{key: "serve.graceful_timeout", flag: "graceful-timeout", def: strconv.Quote(DefaultGracefulTimeout.String()),
		usage: "longest `DURATION` in-flight requests may take at stop and reload",
		to:    spec(duration, func(s *Spec) *time.Duration { return &s.Serve.GracefulTimeout })},
	{key: "serve.trust_unix_peers", def: "true", plan: "trust-unix-peers",
		to: spec(boolean, func(s *Spec) *bool { return &s.Serve.TrustUnixPeers })},
	{key: "serve.unix_mode", def: quoteMode(DefaultUnixMode), plan: "unix-mode",
		to: spec(mode, func(s *Spec) *os.FileMode { return &s.Serve.UnixMode })},
	{key: "serve.unix_owner", def: `""`, plan: "unix-owner", to: spec(text, func(s *Spec) *string { return &s.Serve.UnixOwner })},
	{key: "serve.unix_group", def: `""`, plan: "unix-group", to: spec(text, func(s *Spec) *string { return &s.Serve.UnixGroup })},
	{key: "serve.health_path", def: `""`, plan: "health-path", to: spec(urlPath, func(s *Spec) *string { return &s.Serve.HealthPath })},
	{key: "serve.buffer_body", def: `"1MiB"`, plan: "buffer-body", to: spec(size, func(s *Spec) *int64 { return &s.Serve.BufferBody })},
	{key: "serve.buffer_response", def: `"1MiB"`, plan: "buffer-response", to: spec(size, func(s *Spec) *int64 { return &s.Serve.BufferResponse })},
	{key: "serve.max_body", def: "0", plan: "max-body", to: spec(size, func(s *Spec) *int64 { return &s.Serve.MaxBody })},
	{key: "serve.limit_request_line", def: "4094", plan: "limit-request-line",
		to: spec(integer(0, 1<<20), func(s *Spec) *int { return &s.Serve.LimitRequestLine })},
	{key: "serve.limit_request_fields", def: "100", plan: "limit-request-fields",
		to: spec(integer(0, 1<<15), func(s *Spec) *int { return &s.Serve.LimitRequestFields })},
	{key: "serve.limit_request_field_size", def: "8190", plan: "limit-request-field-size",
		to: spec(integer(0, 1<<20), func(s *Spec) *int { return &s.Serve.LimitRequestFieldSize })},
	{key: "serve.max_requests", def: "0", plan: "max-requests",
		to: spec(integer(0, 1<<31-1), func(s *Spec) *int { return &s.Serve.MaxRequests })},
	{key: "serve.max_requests_jitter", def: "0", plan: "max-requests-jitter",
		to: spec(integer(0, 1<<31-1), func(s *Spec) *int { return &s.Serve.MaxRequestsJitter })},
	{key: "serve.ignore_client_abort", def: "false", plan: "ignore-client-abort",
		to: spec(boolean, func(s *Spec) *bool { return &s.Serve.IgnoreClientAbort })},

	// Process types. The plan shows scale, ready, restart and stop_* in
	// columns of their own, the rows with a plan name when not at default.
	{key: "process", to: hook(processKey)},
	{key: "process.*.command", to: hook(commandKey)},
	{key: "process.*.scale", def: "1", to: proc(integer(0, PortsPerType), func(p *Process) *int { return &p.Scale })},
	{key: "process.*.restart", def: strconv.Quote(string(RestartAlways)), to: proc(restartPolicy, func(p *Process) *Restart { return &p.Restart })},
	{key: "process.*.stop_signal", def: `"TERM"`, to: proc(signal, func(p *Process) *syscall.Signal { return &p.StopSignal })},
	{key: "process.*.stop_timeout", def: strconv.Quote(DefaultStopTimeout.String()), to: proc(duration, func(p *Process) *time.Duration { return &p.StopTimeout })},
	{key: "process.*.ready", to: proc(readiness, func(p *Process) *string { return &p.Ready })},
	{key: "process.*.ready_timeout", def: strconv.Quote(DefaultReadyTimeout.String()), plan: "ready-timeout",
		to: proc(positive(duration), func(p *Process) *time.Duration { return &p.ReadyTimeout })},
	{key: "process.*.listen", def: `"port"`, plan: "listen", to: proc(enum(listens...), func(p *Process) *string { return &p.Listen })},
	{key: "process.*.after", plan: "after", to: proc(list, func(p *Process) *[]string { return &p.After })},
	{key: "process.*.sockets", plan: "sockets", to: proc(list, func(p *Process) *[]string { return &p.Sockets })},
	{key: "process.*.critical", def: "false", plan: "critical", to: proc(boolean, func(p *Process) *bool { return &p.Critical })},
	{key: "process.*.cwd", def: `"."`, plan: "cwd", to: proc(path(false), func(p *Process) *string { return &p.Cwd })},
	{key: "process.*.user", def: `""`, plan: "user", to: proc(text, func(p *Process) *string { return &p.User })},
	{key: "process.*.group", def: `""`, plan: "group", to: proc(text, func(p *Process) *string { return &p.Group })},
	{key: "process.*.umask", def: `""`, plan: "umask", to: proc(umask, func(p *Process) *int { return &p.Umask })},
	{key: "process.*.reopen_signal", def: `""`, plan: "reopen", to: proc(optional(signal), func(p *Process) *syscall.Signal { return &p.ReopenSignal })},
	{key: "process.*.log_file", def: `""`, plan: "log", to: proc(logFile, func(p *Process) *string { return &p.LogFile })},
	{key: "process.*.env", plan: "env", to: proc(envTable, func(p *Process) *map[string]string { return &p.Env })},

	// Sockets passed to children.
	{key: "socket", to: hook(socketKey)},
	{key: "socket.*.bind", to: sock(address, func(s *Socket) *string { return &s.Bind })},
	{key: "socket.*.mode", def: quoteMode(DefaultUnixMode), to: sock(mode, func(s *Socket) *os.FileMode { return &s.Mode })},
}

// A setting is one row of the table.
type setting struct {
	key   string // TOML key from the top; "" = a flag only
	flag  string // flag name (also GSUP_<FLAG>); "" = a TOML key only
	alias string // one-letter flag alias
	env   string // another variable the flag reads after GSUP_<FLAG>
	usage string // flag usage, with the `PLACEHOLDER` urfave/cli shows
	def   string // default, as a TOML value; "" = none, or decided by Load
	shown string // default as `gsup start -h` says it, when def does not
	plan  string // name in `gsup check`'s plan when not at its default; "" = not there, or shown by WritePlan itself

	to     binding // where the value goes
	flagTo binding // where the flag's value goes, when not to

	defValue any // def, decoded
}

// A binding reads a value from TOML or from the command line and stores it.
type binding interface {
	// decode stores the TOML value v of key k in t; false when it was
	// reported as bad.
	decode(d *tomlDoc, k toml.Key, v any, t any) bool
	// parse stores the values of a flag in l's Options or Spec.
	parse(l *loader, vals []string) error
	// of says whether the binding stores into t's type.
	of(t any) bool
	// show formats the value in t for the plan, and says whether it
	// differs from the one in def (t's defaults).
	show(s *Spec, t, def any) (string, bool)
	// shape is the shape of the row's flag.
	shape() flagShape
}

type flagShape int

const (
	valueFlag flagShape = iota
	boolFlag
	repeatedFlag
)

// A kind is a type of value: how it is read from TOML and from a flag, and
// shown in the plan.
type kind[T any] struct {
	toml  func(d *tomlDoc, k toml.Key, v any) (T, bool)
	flag  func(vals []string) (T, error) // nil = no flag can take it
	show  func(s *Spec, v T) string      // nil = fmt's %v
	shape flagShape
}

// field stores a kind's values in a field of a D (Spec, Process, Socket,
// Options); from finds the D a flag's value goes to.
type field[D, T any] struct {
	kind kind[T]
	dst  func(*D) *T
	from func(l *loader) *D
}

func (f field[D, T]) decode(d *tomlDoc, k toml.Key, v, t any) bool {
	x, ok := f.kind.toml(d, k, v)
	if ok {
		*f.dst(t.(*D)) = x
	}
	return ok
}

func (f field[D, T]) parse(l *loader, vals []string) error {
	x, err := f.kind.flag(vals)
	if err == nil {
		*f.dst(f.from(l)) = x
	}
	return err
}

func (f field[D, T]) of(t any) bool { _, ok := t.(*D); return ok }

func (f field[D, T]) show(s *Spec, t, def any) (string, bool) {
	v := *f.dst(t.(*D))
	if same(v, *f.dst(def.(*D))) {
		return "", false
	}
	if f.kind.show != nil {
		return f.kind.show(s, v), true
	}
	return fmt.Sprint(v), true
}

func (f field[D, T]) shape() flagShape { return f.kind.shape }

func spec[T any](k kind[T], dst func(*Spec) *T) binding {
	return field[Spec, T]{k, dst, func(l *loader) *Spec { return l.spec }}
}

func opt[T any](k kind[T], dst func(*Options) *T) binding {
	return field[Options, T]{k, dst, func(l *loader) *Options { return &l.opts }}
}

func proc[T any](k kind[T], dst func(*Process) *T) binding {
	return field[Process, T]{kind: k, dst: dst}
}

func sock[T any](k kind[T], dst func(*Socket) *T) binding { return field[Socket, T]{kind: k, dst: dst} }

// hook is a row that reads its TOML value itself: a table, or a value the
// loader weighs against other sources.
type hook func(d *tomlDoc, k toml.Key, v, t any) bool

func (h hook) decode(d *tomlDoc, k toml.Key, v, t any) bool { return h(d, k, v, t) }
func (h hook) parse(*loader, []string) error                { return fmt.Errorf("not a flag") }
func (h hook) of(any) bool                                  { return false }
func (h hook) show(*Spec, any, any) (string, bool)          { return "", false }
func (h hook) shape() flagShape                             { return valueFlag }

// same compares two values of a setting; empty lists and maps are equal
// whether nil or not.
func same[T any](a, b T) bool {
	switch x := any(a).(type) {
	case []string:
		return slices.Equal(x, any(b).([]string))
	case []Bind:
		return slices.Equal(x, any(b).([]Bind))
	case map[string]string:
		y := any(b).(map[string]string)
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	return any(a) == any(b)
}

// byKey and withDefault index the table (filled by init: the rows that
// read tables refer to them, so the table itself cannot).
var (
	byKey       = map[string]*setting{}
	withDefault []*setting
)

// lookupSetting returns the row of key, or nil.
func lookupSetting(key string) *setting { return byKey[key] }

// flagBinding is where the row's flag value goes.
func (r *setting) flagBinding() binding {
	if r.flagTo != nil {
		return r.flagTo
	}
	return r.to
}

func init() {
	for i := range settings {
		r := &settings[i]
		if r.key != "" {
			byKey[r.key] = r
		}
		if r.def == "" {
			continue
		}
		var m map[string]any
		if _, err := toml.Decode("v = "+r.def, &m); err != nil {
			panic(fmt.Sprintf("procfile: default of %s: %v", r.key, err))
		}
		r.defValue = m["v"]
		withDefault = append(withDefault, r)
	}
}

// applyDefaults sets every setting stored in t (a *Spec, *Process or
// *Socket) to its default; relative paths start at dir ("" = kept as they
// are, as on the command line).
func applyDefaults(t any, dir string, errs *errList) {
	d := &tomlDoc{name: "(defaults)", dir: dir, errs: errs}
	for _, r := range withDefault {
		if r.to.of(t) {
			r.to.decode(d, strings.Split(r.key, "."), r.defValue, t)
		}
	}
}

// origin is where a setting's value came from, for messages about it.
type origin struct {
	file string // "" = the command line or the environment
	line int
	key  string // TOML key, or the flag ("--bind")
}

func (o origin) fail(errs *errList, format string, args ...any) {
	errs.add(o.file, o.line, o.key, format, args...)
}

// applyFlags stores the command-line values of the rows whose flags go to
// t (l.spec or &l.opts), and records where they came from.
func (l *loader) applyFlags(t any) {
	for i := range settings {
		r := &settings[i]
		vals, ok := l.opts.Over[r.flag]
		if r.flag == "" || !ok || !r.flagBinding().of(t) {
			continue
		}
		if err := r.flagBinding().parse(l, vals); err != nil {
			for _, e := range unjoin(err) {
				l.errs.add("", 0, "--"+r.flag, "%v", e)
			}
			continue
		}
		if r.key != "" {
			l.given[r.key] = origin{key: "--" + r.flag}
		}
	}
}

// unjoin returns the errors joined in err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// A Flag is a command-line flag of `gsup start` and `gsup check`, from the
// table of settings.
type Flag struct {
	Name    string
	Aliases []string
	EnvVars []string // GSUP_<NAME> first
	Usage   string   // with the `PLACEHOLDER` of the value
	Default string   // as help shows it; "" = none to show
	Bool    bool     // takes no value
	Repeat  bool     // may be given several times
}

// Flags returns the flags of the table, in its order.
func Flags() []Flag {
	var out []Flag
	for i := range settings {
		r := &settings[i]
		if r.flag == "" {
			continue
		}
		f := Flag{
			Name:    r.flag,
			EnvVars: []string{"GSUP_" + strings.ToUpper(strings.ReplaceAll(r.flag, "-", "_"))},
			Usage:   r.usage,
			Default: r.shown,
			Bool:    r.flagBinding().shape() == boolFlag,
			Repeat:  r.flagBinding().shape() == repeatedFlag,
		}
		if r.alias != "" {
			f.Aliases = []string{r.alias}
		}
		if r.env != "" {
			f.EnvVars = append(f.EnvVars, r.env)
		}
		if f.Default == "" && !f.Bool {
			f.Default = flagDefault(r.defValue)
		}
		out = append(out, f)
	}
	return out
}

// FlagNamed returns the flag of Flags named name (the zero Flag if none is).
func FlagNamed(name string) Flag {
	for _, f := range Flags() {
		if f.Name == name {
			return f
		}
	}
	return Flag{}
}

// flagDefault writes a default as the flag would take it.
func flagDefault(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, fmt.Sprint(e))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// The kinds of values.

// single adapts a parser of one flag value; the last value given wins.
func single[T any](parse func(string) (T, error)) func([]string) (T, error) {
	return func(vals []string) (T, error) {
		var s string
		if len(vals) > 0 {
			s = vals[len(vals)-1]
		}
		return parse(s)
	}
}

var (
	text = kind[string]{
		toml: (*tomlDoc).str,
		flag: single(func(s string) (string, error) { return s, nil }),
	}
	boolean = kind[bool]{
		toml:  (*tomlDoc).boolean,
		flag:  single(strconv.ParseBool),
		shape: boolFlag,
		show: func(_ *Spec, b bool) string {
			if b {
				return "" // the plan shows the name alone
			}
			return "false"
		},
	}
	list = kind[[]string]{
		toml:  func(d *tomlDoc, k toml.Key, v any) ([]string, bool) { return d.strList(k, v, false) },
		flag:  func(vals []string) ([]string, error) { return vals, nil },
		show:  func(_ *Spec, v []string) string { return strings.Join(v, ",") },
		shape: repeatedFlag,
	}
	duration = kind[time.Duration]{
		toml: (*tomlDoc).duration,
		flag: single(func(s string) (time.Duration, error) {
			dur, err := time.ParseDuration(strings.TrimSpace(s))
			switch {
			case err != nil:
				return parseDuration(s)
			case dur < 0:
				return 0, fmt.Errorf("duration %s is negative", dur)
			}
			return dur, nil
		}),
	}
	size = kind[int64]{toml: (*tomlDoc).size}
	mode = kind[os.FileMode]{
		toml: (*tomlDoc).mode,
		show: func(_ *Spec, m os.FileMode) string { return fmt.Sprintf("%04o", m) },
	}
	signal = kind[syscall.Signal]{
		toml: (*tomlDoc).signal,
		show: func(_ *Spec, s syscall.Signal) string { return SignalName(s) },
	}
	ipList = kind[[]string]{
		toml: func(d *tomlDoc, k toml.Key, v any) ([]string, bool) {
			list, ok := d.strList(k, v, true)
			if !ok {
				return nil, false
			}
			return valid(d, k, list, parseIPList)
		},
		flag: single(func(s string) ([]string, error) { return parseIPList(splitList(s)) }),
		show: func(_ *Spec, v []string) string { return orNone(v) },
	}
	binds = kind[[]Bind]{
		toml: (*tomlDoc).binds,
		flag: func(vals []string) ([]Bind, error) {
			out := []Bind{}
			var errs []error
			for _, b := range vals {
				addr, err := parseAddress(b, "")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, Bind{Address: addr, Scheme: "http"})
			}
			return out, joinErrs(errs)
		},
		shape: repeatedFlag,
	}
	processName = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) { return checked(d, k, v, checkName) },
		flag: single(func(s string) (string, error) { return s, checkName(s) }),
	}
	urlPath = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) {
			return checked(d, k, v, func(p string) error {
				if p != "" && !validURLPath(p) {
					return fmt.Errorf("%q must be a URL path starting with '/'", p)
				}
				return nil
			})
		},
	}
	address = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) {
			s, ok := d.str(k, v)
			if !ok {
				return "", false
			}
			return valid(d, k, s, func(s string) (string, error) { return parseAddress(s, d.dir) })
		},
	}
	restartPolicy = kind[Restart]{
		toml: func(d *tomlDoc, k toml.Key, v any) (Restart, bool) {
			s, ok := d.enum(k, v, restarts...)
			return Restart(s), ok
		},
	}
	readiness = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) { return checked(d, k, v, checkReady) },
	}
	umask = kind[int]{
		toml: func(d *tomlDoc, k toml.Key, v any) (int, bool) {
			if v == "" {
				return -1, true
			}
			m, ok := d.mode(k, v)
			return int(m), ok
		},
		show: func(_ *Spec, m int) string { return fmt.Sprintf("%04o", m) },
	}
	logFile = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) {
			s, ok := d.path(k, v, true)
			if s == "-" {
				s = ""
			}
			return s, ok
		},
		show: func(s *Spec, p string) string { return s.rel(p) },
	}
	envTable = kind[map[string]string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (map[string]string, bool) {
			env := map[string]string{}
			for _, e := range d.env(k, v) {
				env[e.Key] = e.Value
			}
			return env, true
		},
		show: func(_ *Spec, env map[string]string) string { return strings.Join(sortedKeys(env), ",") },
	}
)

// integer accepts an integer from lo to hi.
func integer(lo, hi int) kind[int] {
	return kind[int]{
		toml: func(d *tomlDoc, k toml.Key, v any) (int, bool) { return d.integer(k, v, int64(lo), int64(hi)) },
		flag: single(func(s string) (int, error) {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			switch {
			case err != nil:
				return 0, fmt.Errorf("%q is not an integer", s)
			case n < lo || n > hi:
				return 0, fmt.Errorf("%d is out of range (%d-%d)", n, lo, hi)
			}
			return n, nil
		}),
	}
}

// enum accepts one of choices; a flag's value may be in any case.
func enum(choices ...string) kind[string] {
	return kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) { return d.enum(k, v, choices...) },
		flag: single(func(s string) (string, error) {
			x := strings.ToLower(s)
			if !slices.Contains(choices, x) {
				return "", fmt.Errorf("%q is not one of %s", s, strings.Join(choices, ", "))
			}
			return x, nil
		}),
	}
}

// path accepts a file path: see tomlDoc.path. On the command line it is
// kept as it is, relative to gsup's working directory; "" is refused
// unless optional.
func path(optional bool) kind[string] {
	return kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) { return d.path(k, v, optional) },
		flag: single(func(s string) (string, error) {
			if s == "" && !optional {
				return "", fmt.Errorf("empty path")
			}
			return s, nil
		}),
		show: func(s *Spec, p string) string { return s.rel(p) },
	}
}

// positive refuses a zero value of k.
func positive[T comparable](k kind[T]) kind[T] {
	inner := k.toml
	k.toml = func(d *tomlDoc, key toml.Key, v any) (T, bool) {
		var zero T
		x, ok := inner(d, key, v)
		if ok && x == zero {
			d.fail(key, "must be more than 0")
			return zero, false
		}
		return x, ok
	}
	return k
}

// optional lets "" stand for k's zero value (none).
func optional[T any](k kind[T]) kind[T] {
	inner := k.toml
	k.toml = func(d *tomlDoc, key toml.Key, v any) (T, bool) {
		if v == "" {
			var zero T
			return zero, true
		}
		return inner(d, key, v)
	}
	return k
}

// checked reads a string and validates it with check.
func checked(d *tomlDoc, k toml.Key, v any, check func(string) error) (string, bool) {
	s, ok := d.str(k, v)
	if !ok {
		return "", false
	}
	return valid(d, k, s, func(s string) (string, error) { return s, check(s) })
}

// valid converts x with conv, reporting its error at k.
func valid[S, T any](d *tomlDoc, k toml.Key, x S, conv func(S) (T, error)) (T, bool) {
	y, err := conv(x)
	if err != nil {
		d.fail(k, "%v", err)
		var zero T
		return zero, false
	}
	return y, true
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return joined(errs)
}

// joined is several errors from one flag, each reported on its own.
type joined []error

func (j joined) Error() string   { return fmt.Sprint([]error(j)) }
func (j joined) Unwrap() []error { return j }

func quoteMode(m os.FileMode) string { return fmt.Sprintf("%q", fmt.Sprintf("%04o", m)) }
