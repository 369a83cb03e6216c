package export

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
)

// funcs are the templates' functions; sh, sd and sv take a string or a
// []string (a command line).
var funcs = template.FuncMap{
	"sh":      func(v any) string { return shArgs(words(v)...) },
	"sd":      func(v any) string { return sdArgs(words(v)...) },
	"sv":      func(v any) string { return svArgs(words(v)...) },
	"seconds": seconds,
	"human":   human,
}

func words(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	return v.([]string)
}

// plain matches words that no shell, systemd or supervisord changes.
var plain = regexp.MustCompile(`^[A-Za-z0-9_@+=:,./-]+$`)

// shQuote quotes s for /bin/sh (and Python's shlex, which supervisord
// uses for command=).
func shQuote(s string) string {
	if plain.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shArgs joins words for /bin/sh.
func shArgs(words ...string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = shQuote(w)
	}
	return strings.Join(out, " ")
}

// svArgs joins words for supervisord's command=: as for sh, with % doubled
// (supervisord expands %(name)s).
func svArgs(words ...string) string {
	return strings.ReplaceAll(shArgs(words...), "%", "%%")
}

// sdArgs joins words for systemd's ExecStart=: double quotes where needed,
// $ and % doubled (systemd expands $VAR and %-specifiers).
func sdArgs(words ...string) string {
	out := make([]string, len(words))
	for i, w := range words {
		w = strings.NewReplacer("$", "$$", "%", "%%").Replace(w)
		if !plain.MatchString(strings.NewReplacer("$", "", "%", "").Replace(w)) {
			w = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

// seconds is d in whole seconds, rounded up.
func seconds(d time.Duration) string {
	return fmt.Sprint(int64(math.Ceil(d.Seconds())))
}

// human is d as the comments say it: "30 s", "1.5 s".
func human(d time.Duration) string {
	return fmt.Sprint(d.Seconds()) + " s"
}

// pathFlags are the flags of `gsup start` whose value is a path (or, for
// bind, may be unix:PATH).
var pathFlags = []string{"pid", "control", "error-logfile", "access-logfile", "bind"}

// StartFlag returns a flag of `gsup start` with its value as the exported
// command line gives it: a relative path made absolute (the monitor starts
// gsup in the app's folder, not in the folder export ran in).
func StartFlag(name, value string) string {
	if slices.Contains(pathFlags, name) && value != "-" {
		prefix := ""
		if name == "bind" {
			rest, ok := strings.CutPrefix(value, "unix:")
			if !ok || strings.HasPrefix(rest, "/") {
				return "--" + name + "=" + value
			}
			prefix, value = "unix:", rest
		}
		if abs, err := filepath.Abs(value); err == nil {
			value = prefix + abs
		}
	}
	return "--" + name + "=" + value
}
