package procfile

import (
	"crypto/tls"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

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
	if f.kind.flag == nil {
		return fmt.Errorf("takes no value from the command line")
	}
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

func acme[T any](k kind[T], dst func(*ACME) *T) binding { return field[ACME, T]{kind: k, dst: dst} }

func release[T any](k kind[T], dst func(*Release) *T) binding {
	return field[Release, T]{kind: k, dst: dst}
}

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
	case []CertPair:
		return slices.Equal(x, any(b).([]CertPair))
	case []tls.CurveID:
		return slices.Equal(x, any(b).([]tls.CurveID))
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
	case []StaticDir, map[int]string:
		return reflect.DeepEqual(a, b)
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
