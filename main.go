// Command gsup runs the processes of a Procfile or TOML file in the
// foreground, keeps them running, and serves HTTP in front of the web
// processes. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"gsup/arbiter"
	"gsup/internal/handoff"
	"gsup/supervisor"
)

// Exit codes (README "Exit codes").
const (
	exitOK         = 0
	exitFailed     = 1 // gsup had to stop because something failed; a client request was refused
	exitUsage      = 2 // usage or config error
	exitNoInstance = 3 // no running instance at the control socket
)

// version is this binary's version, set at build time:
// go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// The main goroutine keeps the main thread: gsup start forks its
// children there (see supervisor.ServeMainThread).
func init() { runtime.LockOSThread() }

func main() { os.Exit(gsupMain()) }

// gsupMain is gsup as a process: the guard and child helper modes, or the
// command line.
func gsupMain() int {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case supervisor.GuardArg:
			return supervisor.GuardMain(os.Stdin)
		case supervisor.ChildArg:
			return supervisor.ChildMain(os.Args[2:])
		case arbiter.CheckArg:
			return arbiter.CheckMain(os.Stdin, os.Stdout, os.Stderr, version)
		}
	}
	if handoff.Present() {
		return resumeGsup(os.Stdout, os.Stderr)
	}
	return run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr)
}

// selfPath is the path gsup re-executes for its guard and child helper:
// the file it was started as when that is named gsup (so a gsup reached
// through a symlink or a test harness stays itself), else the running
// executable.
func selfPath() (string, error) {
	arg0 := os.Args[0]
	if filepath.Base(arg0) == "gsup" {
		if !strings.Contains(arg0, "/") {
			if p, err := exec.LookPath(arg0); err == nil {
				arg0 = p
			}
		}
		if p, err := filepath.Abs(arg0); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return os.Executable()
}

// exitError carries an exit code up to run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func configErr(err error) error { return &exitError{code: exitUsage, err: err} }

func failed(err error) error { return &exitError{code: exitFailed, err: err} }

// run is gsup with its command line and standard streams; it returns the
// exit code. Only run prints fatal errors, and only run decides exit codes:
// an *exitError carries its own (every usage error is one, made by the
// hooks of newApp or by the verbs), anything else is a failure.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	// `gsup help frob`: urfave/cli calls CommandNotFound and then returns
	// no error, so it is kept here.
	var notFound error
	app.CommandNotFound = func(_ *cli.Context, name string) { notFound = unknownCommand(name) }
	err := app.RunContext(ctx, args)
	if err == nil {
		err = notFound
	}
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "gsup: %s\n", msg)
	}
	return code
}

func unknownCommand(name string) error {
	return usageErr("unknown command %q (gsup help lists them)", name)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	// A flag urfave/cli cannot parse (unknown, missing its value, a bad
	// GSUP_* boolean) is a usage error, for gsup and for every verb.
	onUsageError := func(_ *cli.Context, err error, _ bool) error { return usageErr("%v", err) }
	commands := append([]*cli.Command{startCommand(), checkCommand(), exportCommand()}, controlCommands()...)
	for _, c := range commands {
		c.OnUsageError = onUsageError
	}
	return &cli.App{
		Name:                 "gsup",
		Usage:                "run a Procfile's processes in the foreground, keep them running, serve HTTP in front of them",
		HideVersion:          true,
		EnableBashCompletion: false,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError:         onUsageError,
		Commands:             commands,
		// Without a verb, help; with one that is not a command, a usage error.
		Action: func(cliContext *cli.Context) error {
			if cliContext.Args().Present() {
				return unknownCommand(cliContext.Args().First())
			}
			return cli.ShowAppHelp(cliContext)
		},
	}
}

// noFlagsAfterArgs refuses a flag-like word after a positional argument:
// urfave/cli stops parsing flags at the first positional argument, and
// such a word must never be taken as a process type.
func noFlagsAfterArgs(cliContext *cli.Context) error {
	for _, a := range cliContext.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			return usageErr("%s: flag %q after an argument (flags come first: gsup %s [flags] ARGS)", cliContext.Command.Name, a, cliContext.Command.Name)
		}
	}
	return nil
}
