package procfile

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"gsup/internal/unixsock"
)

// tomlDoc is a decoded TOML file and what its error messages need.
type tomlDoc struct {
	name  string         // file as shown in messages
	dir   string         // absolute folder: relative paths in the file start here
	raw   map[string]any // decoded document
	keys  []toml.Key     // every key, in file order
	lines map[string]int // key -> line
	errs  *errList
	cfg   *tomlConfig       // what Load weighs against other sources
	given map[string]origin // key -> where it was set, for every key read without error
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

// controlMode is a mode that does not let "others" connect: the mode
// decides who may connect, control_allow who is answered.
func (d *tomlDoc) controlMode(k toml.Key, v any) (os.FileMode, bool) {
	m, ok := d.mode(k, v)
	if ok && m&0o002 != 0 {
		d.fail(k, "\"%04o\" lets any local user connect to the control socket: use \"0600\" or \"0660\", and name who may use it in control_allow", m)
		return 0, false
	}
	return m, ok
}

// controlAllow resolves control_allow's users (name or uid) and @groups
// (name or gid).
func (d *tomlDoc) controlAllow(k toml.Key, list []string) []ControlPeer {
	var out []ControlPeer
	for i, name := range list {
		group, isGroup := strings.CutPrefix(name, "@")
		var id int
		var err error
		switch {
		case strings.TrimSpace(group) == "":
			d.fail(k, "entry %d is empty: want a user name or uid, or @ and a group name or gid", i+1)
			continue
		case isGroup:
			if id, err = unixsock.LookupGroup(group); err != nil {
				if errors.As(err, new(user.UnknownGroupError)) {
					err = fmt.Errorf("unknown group %q", group)
				}
				d.fail(k, "%v", err)
				continue
			}
		default:
			if id, err = unixsock.LookupUser(name); err != nil {
				if errors.As(err, new(user.UnknownUserError)) {
					err = fmt.Errorf("unknown user %q", name)
				}
				d.fail(k, "%v", err)
				continue
			}
		}
		out = append(out, ControlPeer{Name: name, ID: uint32(id), Group: isGroup})
	}
	return out
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
	switch {
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	case d.dir == "":
		return p // a default: relative to gsup's working directory, as a flag
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

// walk reads table m, found at k, into t through the rows of the table of
// settings whose keys are pattern.NAME; a key without a row is unknown.
func (d *tomlDoc) walk(k toml.Key, pattern string, m map[string]any, t any) {
	for _, name := range d.children(k, m) {
		ck, key := sub(k, name), name
		if pattern != "" {
			key = pattern + "." + name
		}
		r := lookupSetting(key)
		if r == nil {
			d.fail(ck, "unknown key")
			continue
		}
		if r.to.decode(d, ck, m[name], t) {
			d.given[ck.String()] = origin{file: d.name, line: d.line(ck), key: ck.String()}
		}
	}
}

// The rows that read their TOML values themselves.

func procfileKey(d *tomlDoc, k toml.Key, v, _ any) bool {
	s, ok := d.str(k, v)
	if ok {
		d.cfg.procfileSet = true
		if s != "" {
			d.cfg.procfile = d.fileRef(k, s)
		}
	}
	return ok
}

func envFileKey(d *tomlDoc, k toml.Key, v, _ any) bool {
	if v == "" {
		d.cfg.envFilesSet = true
		return true
	}
	list, ok := d.strList(k, v, false)
	if !ok {
		return false
	}
	d.cfg.envFilesSet = true
	for _, f := range list {
		if strings.TrimSpace(f) == "" {
			d.fail(k, "empty file name")
			continue
		}
		d.cfg.envFiles = append(d.cfg.envFiles, d.fileRef(k, f))
	}
	return true
}

func envKey(d *tomlDoc, k toml.Key, v, _ any) bool {
	d.cfg.env = d.env(k, v)
	return true
}

// section is a table ([serve]) whose keys are rows of their own
// ("serve.timeout"), stored in the same Spec.
func section(name string) hook {
	return func(d *tomlDoc, k toml.Key, v, t any) bool {
		m, ok := d.table(k, v)
		if ok {
			d.walk(k, name, m, t)
		}
		return ok
	}
}

// processKey collects the [process.NAME] tables, read once the Procfile is.
func processKey(d *tomlDoc, k toml.Key, v, _ any) bool {
	m, ok := d.table(k, v)
	if !ok {
		return false
	}
	for _, name := range d.children(k, m) {
		pk := sub(k, name)
		if err := checkName(name); err != nil {
			d.fail(pk, "%v", err)
			continue
		}
		if name == "release" {
			d.fail(pk, "%q is the release phase, not a process type: use a [release] table", name)
			continue
		}
		if t, ok := d.table(pk, m[name]); ok {
			d.cfg.procs = append(d.cfg.procs, tomlProc{name: name, key: pk, table: t})
		}
	}
	return true
}

// releaseKey reads the [release] table.
func releaseKey(d *tomlDoc, k toml.Key, v, t any) bool {
	m, ok := d.table(k, v)
	if !ok {
		return false
	}
	r := &Release{File: d.name, Line: d.line(k)}
	applyDefaults(r, d.dir, d.errs)
	d.walk(k, "release", m, r)
	if strings.TrimSpace(r.Command) == "" {
		d.fail(k, "no command")
	}
	r.Command = strings.TrimSpace(r.Command)
	t.(*Spec).Release = r
	return true
}

func commandKey(d *tomlDoc, k toml.Key, v, t any) bool {
	s, ok := d.nonEmpty(k, v)
	if ok {
		p := t.(*Process)
		p.Command = strings.TrimSpace(s)
		p.File, p.Line = d.name, d.line(k)
	}
	return ok
}

func socketKey(d *tomlDoc, k toml.Key, v, t any) bool {
	m, ok := d.table(k, v)
	if !ok {
		return false
	}
	spec := t.(*Spec)
	for _, name := range d.children(k, m) {
		if s, ok := d.socket(sub(k, name), m[name]); ok {
			spec.Sockets = append(spec.Sockets, s)
		}
	}
	slices.SortFunc(spec.Sockets, func(a, b Socket) int { return strings.Compare(a.Name, b.Name) })
	return true
}

var (
	logLevels      = []string{"debug", "info", "warning", "error", "critical"}
	logFormats     = []string{"text", "json"}
	proxyProtocols = []string{"off", "auto", "v1", "v2", "required"}
	restarts       = []string{string(RestartAlways), string(RestartOnFailure), string(RestartNever)}
	listens        = []string{"port", "unix"}
	killModes      = []string{"group", "mixed"}
)

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
				case "tls":
					b.TLS, _ = d.boolean(bk, x[name])
				case "redirect":
					b.Redirect, _ = d.enum(bk, x[name], "https")
				default:
					d.fail(bk, "unknown key (a bind table has address, scheme, tls and redirect)")
				}
			}
			if _, has := x["address"]; !has {
				d.fail(k, "entry %d has no address", i+1)
			}
			if b.TLS && b.Redirect != "" {
				d.fail(k, "entry %d: a bind either speaks TLS or redirects to https, not both", i+1)
			}
			if b.TLS {
				b.Scheme = "https"
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
	s := Socket{Name: k[len(k)-1]}
	if err := checkSocketName(s.Name); err != nil {
		d.fail(k, "%v", err)
		return s, false
	}
	m, ok := d.table(k, v)
	if !ok {
		return s, false
	}
	before := len(*d.errs)
	applyDefaults(&s, d.dir, d.errs)
	d.walk(k, "socket.*", m, &s)
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

// localHostPort reads a read-only listener's address (metrics_bind):
// host:port, or :port or a bare port, which mean 127.0.0.1 (it defaults
// to the local machine; another host is the user's explicit choice).
func localHostPort(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		s = ":" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// checkHealth accepts an active health check: port, http:/PATH or
// exec:CMD.
func checkHealth(s string) error {
	switch {
	case s == "" || s == "port":
		return nil
	case strings.HasPrefix(s, "http:"):
		return checkReady(s)
	case strings.HasPrefix(s, "exec:") && strings.TrimSpace(s[len("exec:"):]) != "":
		return nil
	}
	return fmt.Errorf("%q is not one of port, http:/PATH, exec:COMMAND", s)
}

// parsePercent reads "90%" (of one CPU; more than 100% for several).
func parsePercent(s string) (float64, error) {
	n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || !strings.HasSuffix(s, "%") || n <= 0 {
		return 0, fmt.Errorf("%q is not a percentage such as \"90%%\"", s)
	}
	return n, nil
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

// A kind is a type of value: how it is read from TOML and from a flag, and
// shown in the plan.
type kind[T any] struct {
	toml  func(d *tomlDoc, k toml.Key, v any) (T, bool)
	flag  func(vals []string) (T, error) // nil = no flag can take it
	show  func(s *Spec, v T) string      // nil = fmt's %v
	shape flagShape
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
	controlMode  = kind[os.FileMode]{toml: (*tomlDoc).controlMode, show: mode.show}
	controlPeers = kind[[]ControlPeer]{
		toml: func(d *tomlDoc, k toml.Key, v any) ([]ControlPeer, bool) {
			list, ok := d.strList(k, v, false)
			if !ok {
				return nil, false
			}
			return d.controlAllow(k, list), true
		},
	}
	signal = kind[syscall.Signal]{
		toml: (*tomlDoc).signal,
		show: func(_ *Spec, s syscall.Signal) string { return SignalName(s) },
	}
	ipList = kind[[]string]{
		toml: checkedList(true, parseIPList),
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
	healthCheck = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) { return checked(d, k, v, checkHealth) },
	}
	percent = kind[float64]{
		toml: func(d *tomlDoc, k toml.Key, v any) (float64, bool) {
			s, ok := d.str(k, v)
			if !ok || s == "" {
				return 0, ok
			}
			return valid(d, k, s, parsePercent)
		},
		show: func(_ *Spec, f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) + "%" },
	}
	hostPort = checkedText(localHostPort)
	umask    = kind[int]{
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
// checkedText is the kind of a string that check accepts (and may
// rewrite).
func checkedText(check func(string) (string, error)) kind[string] {
	return kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) {
			s, ok := d.str(k, v)
			if !ok {
				return "", false
			}
			return valid(d, k, s, check)
		},
		flag: single(check),
	}
}

func valid[S, T any](d *tomlDoc, k toml.Key, x S, conv func(S) (T, error)) (T, bool) {
	y, err := conv(x)
	if err != nil {
		d.fail(k, "%v", err)
		var zero T
		return zero, false
	}
	return y, true
}

// checkedList reads a list of strings as strList does (comma: a string
// may hold a comma-separated list) and fails the key with check's error.
func checkedList(comma bool, check func([]string) ([]string, error)) func(*tomlDoc, toml.Key, any) ([]string, bool) {
	return func(d *tomlDoc, k toml.Key, v any) ([]string, bool) {
		list, ok := d.strList(k, v, comma)
		if !ok {
			return nil, false
		}
		return valid(d, k, list, check)
	}
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
