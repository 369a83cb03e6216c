package procfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
)

// privateEnv are the variables of gsup's own service manager (readiness,
// socket activation, watchdog): they describe gsup, not the processes it
// starts, which never inherit them.
var privateEnv = []string{"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"}

// Environ is the environment of a process gsup starts, an instance or a
// one-off command: base (gsup's own, KEY=VALUE strings, a later duplicate
// wins) less the variables of gsup's own service manager, overlaid with
// layers in order (a later layer wins; nil layers are skipped). The result
// is sorted by key.
func Environ(base []string, layers ...map[string]string) []string {
	m := make(map[string]string, len(base)+16)
	for _, kv := range base {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		m[k] = v
	}
	for _, k := range privateEnv {
		delete(m, k)
	}
	for _, l := range layers {
		for k, v := range l {
			m[k] = v
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return out
}

// RunEnv is the environment of a one-off command (`gsup run`): gsup's own
// (opts.Environ) < .env files < TOML env < the env of the process type
// named by process ("" = none), with PORT (the type's base port, else the
// app's) and GSUP_APP, as Environ filters them for the supervisor's
// children.
//
// opts selects the files as for Load. Without a TOML file or a Procfile
// (neither named nor in opts.Dir) only the .env files are read, as
// foreman's run does; PORT then comes from them, else from opts.Environ,
// else DefaultBasePort. Errors are Load's; an unknown process type is an
// *Error for the --process flag.
func RunEnv(opts Options, process string) ([]string, error) {
	spec, err := loadRun(opts)
	if err != nil {
		return nil, err
	}
	own := map[string]string{"PORT": strconv.Itoa(spec.BasePort), "GSUP_APP": spec.App}
	var procEnv map[string]string
	if process != "" {
		p := spec.Lookup(process)
		if p == nil {
			types := "no Procfile or TOML file"
			if len(spec.Processes) > 0 {
				names := make([]string, len(spec.Processes))
				for i, p := range spec.Processes {
					names[i] = p.Name
				}
				types = "types: " + strings.Join(names, ", ")
			}
			return nil, &Error{Key: "--process", Msg: fmt.Sprintf("no process type %q (%s)", process, types)}
		}
		procEnv = p.Env
		own["PORT"] = strconv.Itoa(p.BasePort)
	}
	return Environ(opts.Environ, spec.Env, procEnv, own), nil
}

// loadRun is Load, or without a TOML file and a Procfile, a Spec with no
// process types made from the .env files alone.
func loadRun(opts Options) (*Spec, error) {
	l := &loader{opts: opts, dir: opts.Dir}
	if l.dir == "" {
		l.dir = "."
	}
	if opts.Config != "" || opts.Procfile != "" || l.exists(DefaultConfig) || l.exists(DefaultProcfile) {
		return l.load()
	}
	l.spec = &Spec{}
	l.given = map[string]origin{}
	applyDefaults(l.spec, "", &l.errs)
	l.applyFlags(&l.opts)
	l.spec.Dir = absPath(l.dir)
	l.spec.ConfigDir = l.spec.Dir
	l.readEnvFiles()
	l.app()
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	l.ports()
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return l.spec, nil
}

// exists reports whether the default file name is in the loader's folder
// (anything but "does not exist" counts, so Load reports the problem).
func (l *loader) exists(name string) bool {
	path, _ := l.name(name)
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
