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
	"strings"

	"github.com/urfave/cli/v2"

	"gsup/supervisor"
)

// Exit codes (README "Exit codes").
const (
	exitOK         = 0
	exitFailed     = 1 // gsup had to stop because something failed; a client request was refused
	exitUsage      = 2 // usage or config error
	exitNoInstance = 3 // no running instance at the control socket
)

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
		}
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
// exit code. Only run prints fatal errors.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	var ce cli.ExitCoder
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &ce):
		code = ce.ExitCode()
	case isUsage(err):
		code = exitUsage
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "gsup: %s\n", msg)
	}
	return code
}

// isUsage recognises urfave/cli's own parse errors.
func isUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"flag provided but not defined", "flag needs an argument", "invalid value", "invalid boolean", "No help topic", "Required flag"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "gsup",
		Usage:                "run a Procfile's processes in the foreground, keep them running, serve HTTP in front of them",
		HideVersion:          true,
		EnableBashCompletion: false,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError: func(cliContext *cli.Context, err error, _ bool) error {
			return usageErr("%v", err)
		},
		Commands: append([]*cli.Command{startCommand(), checkCommand(), exportCommand()}, controlCommands()...),
	}
	return app
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
