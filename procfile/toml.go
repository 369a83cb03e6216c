package procfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
)

// tomlDoc is a decoded TOML file and what its error messages need.
type tomlDoc struct {
	name  string         // file as shown in messages
	dir   string         // absolute folder: relative paths in the file start here
	raw   map[string]any // decoded document
	keys  []toml.Key     // every key, in file order
	lines map[string]int // key -> line
	errs  *errList
}

// fileRef is a file named by a TOML key.
type fileRef struct {
	path  string // to open
	shown string // for messages: relative to the config's folder as the user sees it
	key   string // the TOML key naming it; "" = not named by the TOML file
	line  int    // line of that key
}

// tomlProc is one [process.NAME] table, applied once the Procfile is read.
type tomlProc struct {
	name  string
	key   toml.Key
	table map[string]any
}

// tomlConfig holds what the TOML file sets that Load must weigh against
// other sources; everything else is written straight into the Spec.
type tomlConfig struct {
	procfile    fileRef // path "" = none named
	procfileSet bool    // procfile = "" imports no Procfile at all
	envFiles    []fileRef
	envFilesSet bool
	env         []EnvVar // the top-level env table, Line = its line
	port        int      // 0 = not set
	portLine    int
	upstreamSet bool
	upstream    toml.Key
	bindSet     bool
	bind        toml.Key
	procs       []tomlProc
}

// parseTOML decodes data. A syntax error is returned as an *Error at once:
// nothing after it can be trusted.
func parseTOML(name, dir string, data []byte, errs *errList) (*tomlDoc, error) {
	d := &tomlDoc{name: name, dir: dir, errs: errs}
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&d.raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Msg: pe.Message, Err: err}
		}
		return nil, &Error{File: name, Msg: err.Error(), Err: err}
	}
	d.keys = md.Keys()
	d.lines = keyLines(data)
	return d, nil
}

// line returns the line of k, or of its closest parent that has one.
func (d *tomlDoc) line(k toml.Key) int {
	for i := len(k); i > 0; i-- {
		if l, ok := d.lines[k[:i].String()]; ok {
			return l
		}
	}
	return 0
}

func (d *tomlDoc) fail(k toml.Key, format string, args ...any) {
	d.errs.add(d.name, d.line(k), k.String(), format, args...)
}

func sub(k toml.Key, name string) toml.Key {
	return append(k[:len(k):len(k)], name)
}

// children returns the keys of table m (found at k) in file order.
func (d *tomlDoc) children(k toml.Key, m map[string]any) []string {
	var names []string
	for _, key := range d.keys {
		if len(key) <= len(k) || !slices.Equal(key[:len(k)], k) {
			continue
		}
		if name := key[len(k)]; !slices.Contains(names, name) {
			if _, ok := m[name]; ok {
				names = append(names, name)
			}
		}
	}
	// Keys of tables inside arrays do not follow this path; take any
	// left, sorted, so that nothing is missed.
	var rest []string
	for name := range m {
		if !slices.Contains(names, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// typeName describes a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

func (d *tomlDoc) str(k toml.Key, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.fail(k, "must be a string, not %s", typeName(v))
		return "", false
	}
	if strings.IndexByte(s, 0) >= 0 {
		d.fail(k, "contains a NUL byte")
		return "", false
	}
	return s, true
}

func (d *tomlDoc) nonEmpty(k toml.Key, v any) (string, bool) {
	s, ok := d.str(k, v)
	if ok && strings.TrimSpace(s) == "" {
		d.fail(k, "must not be empty")
		return "", false
	}
	return s, ok
}

func (d *tomlDoc) boolean(k toml.Key, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		d.fail(k, "must be true or false, not %s", typeName(v))
	}
	return b, ok
}

// integer accepts a TOML integer from lo to hi.
func (d *tomlDoc) integer(k toml.Key, v any, lo, hi int64) (int, bool) {
	n, ok := v.(int64)
	if !ok {
		d.fail(k, "must be an integer, not %s", typeName(v))
		return 0, false
	}
	if n < lo || n > hi {
		d.fail(k, "%d is out of range (%d-%d)", n, lo, hi)
		return 0, false
	}
	return int(n), true
}

// duration accepts a Go duration string, not negative ("10s", "1m30s").
func (d *tomlDoc) duration(k toml.Key, v any) (time.Duration, bool) {
	return parsed(d, k, v, `a duration string such as "10s"`, parseDuration)
}

// parsed checks that v is a string and parses it; want says what the
// key takes, for the error when v is of another type.
func parsed[T any](d *tomlDoc, k toml.Key, v any, want string, parse func(string) (T, error)) (T, bool) {
	var zero T
	s, ok := v.(string)
	if !ok {
		d.fail(k, "must be %s, not %s", want, typeName(v))
		return zero, false
	}
	x, err := parse(s)
	if err != nil {
		d.fail(k, "%v", err)
		return zero, false
	}
	return x, true
}

func parseDuration(s string) (time.Duration, error) {
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a number with a unit: \"500ms\", \"10s\", \"1m30s\")", s)
	}
	if dur < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return dur, nil
}

// size accepts a size string ("1MiB") or an integer number of bytes.
func (d *tomlDoc) size(k toml.Key, v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			d.fail(k, "size %d is negative", x)
			return 0, false
		}
		return x, true
	case string:
		n, err := parseSize(x)
		if err != nil {
			d.fail(k, "%v", err)
			return 0, false
		}
		return n, true
	}
	d.fail(k, "must be a size such as \"1MiB\" or a number of bytes, not %s", typeName(v))
	return 0, false
}

// mode accepts an octal string ("0660"). Integers are refused: 660 and
// 0o660 would read differently.
func (d *tomlDoc) mode(k toml.Key, v any) (os.FileMode, bool) {
	return parsed(d, k, v, `an octal string such as "0660"`, parseMode)
}

func (d *tomlDoc) enum(k toml.Key, v any, choices ...string) (string, bool) {
	s, ok := d.str(k, v)
	if !ok {
		return "", false
	}
	if !slices.Contains(choices, s) {
		d.fail(k, "%q is not one of %s", s, strings.Join(choices, ", "))
		return "", false
	}
	return s, true
}

func (d *tomlDoc) signal(k toml.Key, v any) (syscall.Signal, bool) {
	if n, ok := v.(int64); ok {
		v = strconv.FormatInt(n, 10)
	}
	return parsed(d, k, v, `a signal name such as "TERM"`, ParseSignal)
}

// strList accepts a string or an array of strings; with comma set, a
// string is a comma-separated list.
func (d *tomlDoc) strList(k toml.Key, v any, comma bool) ([]string, bool) {
	switch x := v.(type) {
	case string:
		if comma {
			return splitList(x), true
		}
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				d.fail(k, "entry %d must be a string, not %s", i+1, typeName(e))
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	d.fail(k, "must be a string or an array of strings, not %s", typeName(v))
	return nil, false
}

func (d *tomlDoc) table(k toml.Key, v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(k, "must be a table, not %s", typeName(v))
	}
	return m, ok
}

// path accepts a file path; a relative one starts at the config's folder.
// With optional set, "" (none) and "-" (stdout or stderr) are kept as
// they are.
func (d *tomlDoc) path(k toml.Key, v any, optional bool) (string, bool) {
	s, ok := d.str(k, v)
	if !ok {
		return "", false
	}
	if optional && (s == "" || s == "-") {
		return s, true
	}
	if strings.TrimSpace(s) == "" {
		d.fail(k, "must not be empty")
		return "", false
	}
	return d.abs(s), true
}

func (d *tomlDoc) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

// fileRef names a file the TOML file refers to.
func (d *tomlDoc) fileRef(k toml.Key, p string) fileRef {
	shown := p
	if !filepath.IsAbs(p) {
		shown = filepath.Join(filepath.Dir(d.name), p)
	}
	return fileRef{path: d.abs(p), shown: shown, key: k.String(), line: d.line(k)}
}

// reservedEnv are set by gsup for every instance: an env table cannot set them.
var reservedEnv = []string{"PORT", "PS", "GSUP_APP"}

// env reads an env table: KEY = "value" (integers, floats and booleans are
// written out as strings).
func (d *tomlDoc) env(k toml.Key, v any) []EnvVar {
	m, ok := d.table(k, v)
	if !ok {
		return nil
	}
	var vars []EnvVar
	for _, name := range d.children(k, m) {
		vk := sub(k, name)
		if !validEnvKey(name) {
			d.fail(vk, "invalid variable name %q", name)
			continue
		}
		if slices.Contains(reservedEnv, name) {
			hint := ""
			if name == "PORT" {
				hint = " (the top-level port key sets the children's base port)"
			}
			d.fail(vk, "%s is set by gsup for each instance%s", name, hint)
			continue
		}
		var s string
		switch x := m[name].(type) {
		case string:
			s = x
		case int64:
			s = strconv.FormatInt(x, 10)
		case float64:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		case bool:
			s = strconv.FormatBool(x)
		default:
			d.fail(vk, "must be a string, not %s", typeName(x))
			continue
		}
		if strings.IndexByte(s, 0) >= 0 {
			d.fail(vk, "contains a NUL byte")
			continue
		}
		vars = append(vars, EnvVar{Key: name, Value: s, Line: d.line(vk)})
	}
	return vars
}

// top walks the top-level keys.
func (d *tomlDoc) top(spec *Spec, c *tomlConfig) {
	for _, name := range d.children(nil, d.raw) {
		k, v := toml.Key{name}, d.raw[name]
		switch name {
		case "procfile":
			if s, ok := d.str(k, v); ok {
				c.procfileSet = true
				if s != "" {
					c.procfile = d.fileRef(k, s)
				}
			}
		case "env_file":
			if v == "" {
				c.envFilesSet = true
				break
			}
			if list, ok := d.strList(k, v, false); ok {
				c.envFilesSet = true
				for _, f := range list {
					if strings.TrimSpace(f) == "" {
						d.fail(k, "empty file name")
						continue
					}
					c.envFiles = append(c.envFiles, d.fileRef(k, f))
				}
			}
		case "env":
			c.env = d.env(k, v)
		case "pid":
			set(&spec.Pid)(d.path(k, v, true))
		case "control":
			set(&spec.Control)(d.path(k, v, false))
		case "control_mode":
			set(&spec.ControlMode)(d.mode(k, v))
		case "error_logfile":
			set(&spec.ErrorLogfile)(d.path(k, v, true))
		case "log_level":
			set(&spec.LogLevel)(d.enum(k, v, logLevels...))
		case "log_format":
			set(&spec.LogFormat)(d.enum(k, v, logFormats...))
		case "port":
			if n, ok := d.integer(k, v, 1, 65535); ok {
				c.port, c.portLine = n, d.line(k)
			}
		case "subreaper":
			set(&spec.Subreaper)(d.boolean(k, v))
		case "serve":
			if m, ok := d.table(k, v); ok {
				d.serve(k, m, &spec.Serve, c)
			}
		case "process":
			if m, ok := d.table(k, v); ok {
				for _, pname := range d.children(k, m) {
					pk := sub(k, pname)
					if err := checkName(pname); err != nil {
						d.fail(pk, "%v", err)
						continue
					}
					if t, ok := d.table(pk, m[pname]); ok {
						c.procs = append(c.procs, tomlProc{name: pname, key: pk, table: t})
					}
				}
			}
		case "socket":
			if m, ok := d.table(k, v); ok {
				for _, sname := range d.children(k, m) {
					if s, ok := d.socket(sub(k, sname), m[sname]); ok {
						spec.Sockets = append(spec.Sockets, s)
					}
				}
				slices.SortFunc(spec.Sockets, func(a, b Socket) int { return strings.Compare(a.Name, b.Name) })
			}
		default:
			d.fail(k, "unknown key")
		}
	}
}

var (
	logLevels      = []string{"debug", "info", "warning", "error", "critical"}
	logFormats     = []string{"text", "json"}
	proxyProtocols = []string{"off", "auto", "v1", "v2", "required"}
	restarts       = []string{string(RestartAlways), string(RestartOnFailure), string(RestartNever)}
	listens        = []string{"port", "unix"}
)

func (d *tomlDoc) serve(k toml.Key, m map[string]any, s *Serve, c *tomlConfig) {
	for _, name := range d.children(k, m) {
		sk, v := sub(k, name), m[name]
		switch name {
		case "bind":
			if binds, ok := d.binds(sk, v); ok {
				s.Bind, c.bindSet, c.bind = binds, true, sk
			}
		case "upstream":
			if u, ok := d.str(sk, v); ok {
				if err := checkName(u); err != nil {
					d.fail(sk, "%v", err)
					break
				}
				s.Upstream, c.upstreamSet, c.upstream = u, true, sk
			}
		case "forwarded_allow_ips", "proxy_allow_from":
			list, ok := d.strList(sk, v, true)
			if !ok {
				break
			}
			ips, err := parseIPList(list)
			if err != nil {
				d.fail(sk, "%v", err)
				break
			}
			if name == "forwarded_allow_ips" {
				s.ForwardedAllowIPs = ips
			} else {
				s.ProxyAllowFrom = ips
			}
		case "proxy_protocol":
			set(&s.ProxyProtocol)(d.enum(sk, v, proxyProtocols...))
		case "access_logfile":
			set(&s.AccessLogfile)(d.path(sk, v, true))
		case "access_logformat":
			set(&s.AccessLogformat)(d.str(sk, v))
		case "timeout":
			set(&s.Timeout)(d.duration(sk, v))
		case "graceful_timeout":
			set(&s.GracefulTimeout)(d.duration(sk, v))
		case "trust_unix_peers":
			set(&s.TrustUnixPeers)(d.boolean(sk, v))
		case "unix_mode":
			set(&s.UnixMode)(d.mode(sk, v))
		case "unix_owner":
			set(&s.UnixOwner)(d.str(sk, v))
		case "unix_group":
			set(&s.UnixGroup)(d.str(sk, v))
		case "health_path":
			if p, ok := d.str(sk, v); ok {
				if p != "" && !validURLPath(p) {
					d.fail(sk, "%q must be a URL path starting with '/'", p)
					break
				}
				s.HealthPath = p
			}
		case "buffer_body":
			set(&s.BufferBody)(d.size(sk, v))
		case "buffer_response":
			set(&s.BufferResponse)(d.size(sk, v))
		case "max_body":
			set(&s.MaxBody)(d.size(sk, v))
		case "limit_request_line":
			set(&s.LimitRequestLine)(d.integer(sk, v, 0, 1<<20))
		case "limit_request_fields":
			set(&s.LimitRequestFields)(d.integer(sk, v, 0, 1<<15))
		case "limit_request_field_size":
			set(&s.LimitRequestFieldSize)(d.integer(sk, v, 0, 1<<20))
		case "max_requests":
			set(&s.MaxRequests)(d.integer(sk, v, 0, 1<<31-1))
		case "max_requests_jitter":
			set(&s.MaxRequestsJitter)(d.integer(sk, v, 0, 1<<31-1))
		case "ignore_client_abort":
			set(&s.IgnoreClientAbort)(d.boolean(sk, v))
		case "body_timeout", "send_timeout":
			if dur, ok := d.duration(sk, v); ok {
				if dur <= 0 {
					d.fail(sk, "must be more than 0")
				} else if name == "body_timeout" {
					s.BodyTimeout = dur
				} else {
					s.SendTimeout = dur
				}
			}
		case "max_connections":
			set(&s.MaxConnections)(d.integer(sk, v, 0, 1<<31-1))
		default:
			d.fail(sk, "unknown key")
		}
	}
}

// binds reads [serve] bind: an address or an array of addresses and
// { address = "...", scheme = "https" } tables.
func (d *tomlDoc) binds(k toml.Key, v any) ([]Bind, bool) {
	var entries []any
	switch x := v.(type) {
	case string:
		entries = []any{x}
	case []any:
		entries = x
	case []map[string]any:
		d.fail(k, "must be an array of addresses, not a [[serve.bind]] array of tables")
		return nil, false
	default:
		d.fail(k, "must be an address or an array of addresses, not %s", typeName(v))
		return nil, false
	}
	binds := []Bind{}
	ok := true
	for i, e := range entries {
		b := Bind{Scheme: "http"}
		switch x := e.(type) {
		case string:
			b.Address = x
		case map[string]any:
			before := len(*d.errs)
			for _, name := range d.children(k, x) {
				bk := sub(k, name)
				switch name {
				case "address":
					b.Address, _ = d.str(bk, x[name])
				case "scheme":
					b.Scheme, _ = d.enum(bk, x[name], "http", "https")
				default:
					d.fail(bk, "unknown key (a bind table has address and scheme)")
				}
			}
			if _, has := x["address"]; !has {
				d.fail(k, "entry %d has no address", i+1)
			}
			if len(*d.errs) > before {
				ok = false
				continue
			}
		default:
			d.fail(k, "entry %d must be an address or a table, not %s", i+1, typeName(e))
			ok = false
			continue
		}
		addr, err := parseAddress(b.Address, d.dir)
		if err != nil {
			d.fail(k, "%v", err)
			ok = false
			continue
		}
		b.Address = addr
		binds = append(binds, b)
	}
	return binds, ok
}

func (d *tomlDoc) socket(k toml.Key, v any) (Socket, bool) {
	s := Socket{Name: k[len(k)-1], Mode: DefaultUnixMode}
	if err := checkSocketName(s.Name); err != nil {
		d.fail(k, "%v", err)
		return s, false
	}
	m, ok := d.table(k, v)
	if !ok {
		return s, false
	}
	before := len(*d.errs)
	for _, name := range d.children(k, m) {
		sk, v := sub(k, name), m[name]
		switch name {
		case "bind":
			a, ok := d.str(sk, v)
			if !ok {
				break
			}
			addr, err := parseAddress(a, d.dir)
			if err != nil {
				d.fail(sk, "%v", err)
				break
			}
			s.Bind = addr
		case "mode":
			set(&s.Mode)(d.mode(sk, v))
		default:
			d.fail(sk, "unknown key")
		}
	}
	return s, len(*d.errs) == before
}

// checkSocketName validates a socket name, passed to children in
// LISTEN_FDNAMES (which separates names with ':').
func checkSocketName(name string) error {
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("invalid socket name %q: use letters, digits, '_' and '-'", name)
		}
	}
	if name == "" {
		return fmt.Errorf("empty socket name")
	}
	return nil
}

// procFlags records which settings a [process.NAME] table gave, where the
// default depends on things decided later.
type procFlags struct {
	scale bool
	ready bool
}

// process applies a [process.NAME] table to p.
func (d *tomlDoc) process(tp tomlProc, p *Process, fl *procFlags) {
	for _, name := range d.children(tp.key, tp.table) {
		k, v := sub(tp.key, name), tp.table[name]
		switch name {
		case "command":
			if s, ok := d.nonEmpty(k, v); ok {
				p.Command = strings.TrimSpace(s)
				p.File, p.Line = d.name, d.line(k)
			}
		case "scale":
			if n, ok := d.integer(k, v, 0, PortsPerType); ok {
				p.Scale, fl.scale = n, true
			}
		case "env":
			p.Env = map[string]string{}
			for _, e := range d.env(k, v) {
				p.Env[e.Key] = e.Value
			}
		case "cwd":
			set(&p.Cwd)(d.path(k, v, false))
		case "user":
			set(&p.User)(d.str(k, v))
		case "group":
			set(&p.Group)(d.str(k, v))
		case "umask":
			if v == "" {
				p.Umask = -1
			} else if m, ok := d.mode(k, v); ok {
				p.Umask = int(m)
			}
		case "restart":
			if s, ok := d.enum(k, v, restarts...); ok {
				p.Restart = Restart(s)
			}
		case "stop_signal":
			set(&p.StopSignal)(d.signal(k, v))
		case "stop_timeout":
			set(&p.StopTimeout)(d.duration(k, v))
		case "reopen_signal":
			if v == "" {
				p.ReopenSignal = 0
			} else if n, ok := d.signal(k, v); ok {
				p.ReopenSignal = n
			}
		case "critical":
			set(&p.Critical)(d.boolean(k, v))
		case "log_file":
			if s, ok := d.path(k, v, true); ok {
				if s == "-" {
					s = ""
				}
				p.LogFile = s
			}
		case "ready":
			if s, ok := d.str(k, v); ok {
				if err := checkReady(s); err != nil {
					d.fail(k, "%v", err)
					break
				}
				p.Ready, fl.ready = s, true
			}
		case "ready_timeout":
			if t, ok := d.duration(k, v); ok {
				if t == 0 {
					d.fail(k, "must be more than 0")
					break
				}
				p.ReadyTimeout = t
			}
		case "listen":
			set(&p.Listen)(d.enum(k, v, listens...))
		case "sockets":
			set(&p.Sockets)(d.strList(k, v, false))
		case "after":
			set(&p.After)(d.strList(k, v, false))
		default:
			d.fail(k, "unknown key")
		}
	}
}

// checkReady validates a ready value: port, notify, none or http:/path.
func checkReady(s string) error {
	switch s {
	case "port", "notify", "none":
		return nil
	}
	if path, ok := strings.CutPrefix(s, "http:"); ok {
		if !validURLPath(path) {
			return fmt.Errorf("%q: the path after http: must start with '/', as in http:/health", s)
		}
		return nil
	}
	return fmt.Errorf("%q is not one of port, http:/PATH, notify, none", s)
}

// validURLPath accepts a path starting with '/' without spaces or control
// characters.
func validURLPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return false
		}
	}
	return true
}

// set returns a function that stores a decoded value in dst when the
// decoding succeeded: set(&spec.Pid)(d.path(k, v, true)).
func set[T any](dst *T) func(T, bool) {
	return func(v T, ok bool) {
		if ok {
			*dst = v
		}
	}
}
