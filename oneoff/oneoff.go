package oneoff

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"

	"gsup/procfile"
	"gsup/supervisor"
)

// Errors of Exec, for errors.Is: ErrNotFound is a program that does not
// exist (a shell's status 127), ErrCannotRun one that exists and cannot be
// run (126: not executable, say).
var (
	ErrNotFound  = errors.New("command not found")
	ErrCannotRun = errors.New("cannot run the command")
)

// defaultPath is the search path when the environment has no PATH
// (dash's).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Command is a one-off command ready to run.
type Command struct {
	Argv []string // Argv[0] is looked up on Env's PATH unless it holds a '/'
	Env  []string // KEY=VALUE
}

// New prepares args to run with the environment procfile.RunEnv gives for
// opts and process. Several args are the program and its arguments, kept
// exactly as they are; one arg is a command line run by /bin/sh -c, as a
// Procfile line is (supervisor.ShellArgv: a single simple command is
// exec'd by the shell, so it keeps the pid). args must not be empty.
// Errors are procfile.RunEnv's.
func New(opts procfile.Options, process string, args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	env, err := procfile.RunEnv(opts, process)
	if err != nil {
		return nil, err
	}
	argv := args
	if len(args) == 1 {
		argv = supervisor.ShellArgv(args[0])
	}
	return &Command{Argv: argv, Env: env}, nil
}

// Exec replaces the calling process with the command, finding Argv[0] as
// a shell does: a name with a '/' is the file itself; any other name is
// tried in each folder of Env's PATH in turn, the first that can be run
// wins; a file with no #! line is run by /bin/sh. It returns only when
// the command cannot run, with an error that names Argv[0] and matches
// ErrNotFound or ErrCannotRun.
func (c *Command) Exec() error {
	name := c.Argv[0]
	if strings.Contains(name, "/") {
		return classify(name, c.execFile(name))
	}
	path := defaultPath
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		err := c.execFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		case errors.Is(err, syscall.EACCES):
			if denied == nil {
				denied = err
			}
		default:
			return classify(name, err)
		}
	}
	if denied != nil {
		return classify(name, denied)
	}
	return &execError{name: name, kind: ErrNotFound}
}

// execFile execs the file at path, or /bin/sh with it when it is not a
// binary the kernel runs (no #! line), as execvp and shells do. It returns
// the errno when it cannot.
func (c *Command) execFile(path string) error {
	err := syscall.Exec(path, c.Argv, c.Env)
	if errors.Is(err, syscall.ENOEXEC) {
		err = syscall.Exec("/bin/sh", append([]string{"/bin/sh", path}, c.Argv[1:]...), c.Env)
	}
	return err
}

// classify gives the errno of a failed exec of name its kind.
func classify(name string, errno error) error {
	kind := ErrCannotRun
	if errors.Is(errno, syscall.ENOENT) || errors.Is(errno, syscall.ENOTDIR) {
		kind = ErrNotFound
	}
	return &execError{name: name, kind: kind, err: errno}
}

// execError is a command that could not be run: "NAME: REASON".
type execError struct {
	name string
	kind error // ErrNotFound or ErrCannotRun
	err  error // the errno; nil for a name on no folder of PATH
}

func (e *execError) Error() string {
	if e.err == nil {
		return e.name + ": " + e.kind.Error()
	}
	return e.name + ": " + e.err.Error()
}

func (e *execError) Is(target error) bool { return target == e.kind }

func (e *execError) Unwrap() error { return e.err }
