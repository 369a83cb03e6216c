package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"gsup/control"
	"gsup/oneoff"
	"gsup/procfile"
	"gsup/signals"
	"gsup/supervisor"
)

// controlCommands are the client verbs of a running instance, and `run`.
func controlCommands() []*cli.Command {
	return []*cli.Command{
		loadCommand(),
		unloadCommand(),
		psCommand(),
		scaleCommand(),
		restartCommand(),
		stopCommand(),
		signalCommand(),
		reloadCommand(),
		upgradeCommand(),
		logsCommand(),
		topCommand(),
		runCommand(),
	}
}

// controlFlag is start's --control, for the verbs that find the socket
// through the config file too (controlPath).
func controlFlag() cli.Flag {
	f := procfile.FlagNamed("control")
	f.Default = "control in " + procfile.DefaultConfig + ", else " + procfile.DefaultControl
	return cliFlag(f)
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the answer as JSON"}
}

// controlPath is the socket a verb talks to: --control (GSUP_CONTROL),
// else the control key of the config file (GSUP_CONFIG, else gsup.toml
// when present), else ./.gsup.sock.
func controlPath(cliContext *cli.Context) string {
	if cliContext.IsSet("control") && cliContext.String("control") != "" {
		return cliContext.String("control")
	}
	config := os.Getenv("GSUP_CONFIG")
	if config == "" {
		config = procfile.DefaultConfig
	}
	var doc struct {
		Control string `toml:"control"`
	}
	if data, err := os.ReadFile(config); err == nil {
		// Only the control key matters here; `gsup check` reports the rest.
		if _, err := toml.Decode(string(data), &doc); err == nil && doc.Control != "" {
			if filepath.IsAbs(doc.Control) {
				return doc.Control
			}
			return filepath.Join(filepath.Dir(config), doc.Control)
		}
	}
	return procfile.DefaultControl
}

// newClient is a client of controlPath; when no file is there, it looks
// for the socket gsup registered for that path, taken from the logical
// working directory (control.Client.Registry).
func newClient(cliContext *cli.Context) *control.Client {
	path := controlPath(cliContext)
	logical := path
	if wd, err := procfile.LogicalWd(); err == nil && !filepath.IsAbs(path) {
		logical = filepath.Join(wd, path)
	}
	return control.NewClient(path).Registry(logical, control.RuntimeDirs(os.Getenv))
}

// clientErr gives a client error its exit code: 3 when no instance runs,
// 2 for a request the server found bad (a bad config file, say), else 1.
// An error that has its exit code already keeps it.
func clientErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	var ae *control.APIError
	switch {
	case errors.As(err, &ee):
		return err
	case errors.Is(err, control.ErrNoInstance):
		return &exitError{code: exitNoInstance, err: err}
	case errors.As(err, &ae) && (ae.Status == 400 || ae.Status == 413):
		return &exitError{code: exitUsage, err: err}
	}
	return failed(err)
}

// args checks the positional arguments' count (min, and max unless -1)
// and that no flag follows them.
func args(cliContext *cli.Context, min, max int, usage string) ([]string, error) {
	if err := noFlagsAfterArgs(cliContext); err != nil {
		return nil, err
	}
	a := cliContext.Args().Slice()
	if len(a) < min || max >= 0 && len(a) > max {
		return nil, usageErr("usage: gsup %s %s", cliContext.Command.Name, usage)
	}
	return a, nil
}

// clientAction is the Action of a verb of the running instance: it checks
// the positional arguments as args does (min, max, usage), then runs act
// with them and a client of controlPath; act's error gets its exit code
// from clientErr.
func clientAction(min, max int, usage string, act func(cliContext *cli.Context, c *control.Client, a []string) error) cli.ActionFunc {
	return func(cliContext *cli.Context) error {
		a, err := args(cliContext, min, max, usage)
		if err != nil {
			return err
		}
		return clientErr(act(cliContext, newClient(cliContext), a))
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// reply prints a verb's answer: v with --json, else the line.
func reply(cliContext *cli.Context, v any, format string, a ...any) error {
	if cliContext.Bool("json") {
		return printJSON(cliContext.App.Writer, v)
	}
	fmt.Fprintf(cliContext.App.Writer, format+"\n", a...)
	return nil
}

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:      "load",
		Usage:     "add (or replace) an app in the running instance from a Procfile or TOML file",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "app", Usage: "app `NAME` (default: the file's folder name)"},
			controlFlag(), jsonFlag(),
		},
		Action: clientAction(1, 1, "[--app NAME] FILE", func(cliContext *cli.Context, c *control.Client, a []string) error {
			file, app := a[0], cliContext.String("app")
			// Validated here first, with the messages of `gsup check`.
			spec, err := procfile.Load(procfile.FileOptions(file, app, os.Environ()))
			if err != nil {
				return configErr(err)
			}
			abs, err := filepath.Abs(file)
			if err != nil {
				return failed(err)
			}
			name, err := c.Load(cliContext.Context, abs, app)
			if err != nil {
				return err
			}
			var types []string
			for _, p := range spec.Processes {
				if p.Scale > 0 {
					types = append(types, fmt.Sprintf("%s=%d", p.Name, p.Scale))
				}
			}
			return reply(cliContext, control.AppRequest{App: name}, "loaded %s (%s)", name, strings.Join(types, " "))
		}),
	}
}

func unloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "unload",
		Usage:     "stop an app's processes and remove it from the running instance",
		ArgsUsage: "APP",
		Flags:     []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(1, 1, "APP", func(cliContext *cli.Context, c *control.Client, a []string) error {
			if err := c.Unload(cliContext.Context, a[0]); err != nil {
				return err
			}
			return reply(cliContext, control.AppRequest{App: a[0]}, "unloaded %s", a[0])
		}),
	}
}

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list every instance: app, name, pid, state, uptime, restarts, CPU, RSS, readiness, port, health",
		Flags: []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(0, 0, "[--json]", func(cliContext *cli.Context, c *control.Client, _ []string) error {
			ps, err := c.Status(cliContext.Context)
			if err != nil {
				return err
			}
			if cliContext.Bool("json") {
				if ps == nil {
					ps = []control.Process{}
				}
				return printJSON(cliContext.App.Writer, ps)
			}
			control.WriteTable(cliContext.App.Writer, ps)
			return nil
		}),
	}
}

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "set instance counts: web=4 worker=0 (APP/TYPE=N for a loaded app)",
		ArgsUsage: "TYPE=N...",
		Flags:     []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(1, -1, "TYPE=N... (or APP/TYPE=N)", func(cliContext *cli.Context, c *control.Client, a []string) error {
			counts, apps, err := control.ParseScale(a)
			if err != nil {
				return usageErr("%v", err)
			}
			var done []control.ScaleRequest
			var words []string
			for _, app := range apps {
				set, err := c.Scale(cliContext.Context, app, counts[app])
				if err != nil {
					if len(words) > 0 {
						fmt.Fprintf(cliContext.App.Writer, "scaled %s\n", strings.Join(words, " "))
					}
					return err
				}
				done = append(done, control.ScaleRequest{App: app, Counts: set})
				names := make([]string, 0, len(set))
				for name := range set {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, name := range names {
					prefix := ""
					if app != "" {
						prefix = app + "/"
					}
					words = append(words, fmt.Sprintf("%s%s=%d", prefix, name, set[name]))
				}
			}
			return reply(cliContext, done, "scaled %s", strings.Join(words, " "))
		}),
	}
}

// targetsCommand is restart or stop.
func targetsCommand(name, usage, done string, act func(*control.Client, context.Context, []string) ([]string, error)) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "TARGET...",
		Flags:     []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(1, -1, "TARGET... (web, web.2, APP, APP/web)", func(cliContext *cli.Context, c *control.Client, a []string) error {
			names, err := act(c, cliContext.Context, a)
			if err != nil {
				return err
			}
			resp := control.NamesResponse{Names: nonNilNames(names)}
			if len(names) == 0 {
				return reply(cliContext, resp, "%s nothing (no instance of %s)", done, strings.Join(a, " "))
			}
			return reply(cliContext, resp, "%s %s", done, strings.Join(names, " "))
		}),
	}
}

func nonNilNames(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func restartCommand() *cli.Command {
	return targetsCommand("restart", "restart instances (starting stopped ones): web, web.2, APP, APP/web", "restarted", (*control.Client).Restart)
}

func stopCommand() *cli.Command {
	return targetsCommand("stop", "stop instances; they stay stopped until restarted", "stopped", (*control.Client).Stop)
}

func signalCommand() *cli.Command {
	return &cli.Command{
		Name:      "signal",
		Usage:     "send a signal to the main process of instances",
		ArgsUsage: "SIG TARGET...",
		Flags:     []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(2, -1, "SIG TARGET...", func(cliContext *cli.Context, c *control.Client, a []string) error {
			if _, err := procfile.ParseSignal(a[0]); err != nil {
				return usageErr("signal: %v", err)
			}
			sig, names, err := c.Signal(cliContext.Context, a[0], a[1:])
			if err != nil {
				return err
			}
			resp := control.NamesResponse{Signal: sig, Names: nonNilNames(names)}
			if len(names) == 0 {
				return reply(cliContext, resp, "sent %s to nothing (no running instance of %s)", sig, strings.Join(a[1:], " "))
			}
			return reply(cliContext, resp, "sent %s to %s", sig, strings.Join(names, " "))
		}),
	}
}

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "re-read the config and replace every instance, one at a time (as SIGHUP)",
		Flags: []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(0, 0, "", func(cliContext *cli.Context, c *control.Client, _ []string) error {
			if err := c.Reload(cliContext.Context); err != nil {
				return err
			}
			return reply(cliContext, control.OKResponse{OK: true}, "reloaded")
		}),
	}
}

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the recent output of instances (all, or the targets), then follow with -f",
		ArgsUsage: "[TARGET...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until interrupted"},
			controlFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object a line"},
		},
		Action: clientAction(0, -1, "[-f] [TARGET...]", func(cliContext *cli.Context, c *control.Client, a []string) error {
			follow := cliContext.Bool("follow")
			ctx := cliContext.Context
			if follow {
				// INT and TERM end a follow; that is its normal end.
				var stop context.CancelFunc
				ctx, stop = signals.InterruptContext(ctx)
				defer stop()
			}
			w := cliContext.App.Writer
			enc := json.NewEncoder(w)
			width := 0
			var held []supervisor.Line
			show := func(l supervisor.Line) error {
				if cliContext.Bool("json") {
					return enc.Encode(l)
				}
				width = max(width, len(l.Instance))
				_, err := fmt.Fprintf(w, "%s %-*s | %s\n", l.Time.Local().Format("15:04:05"), width, l.Instance, l.Text)
				return err
			}
			each := show
			if !follow {
				// All at once: the names line up.
				each = func(l supervisor.Line) error {
					held = append(held, l)
					width = max(width, len(l.Instance))
					return nil
				}
			}
			err := c.Logs(ctx, a, follow, each)
			for _, l := range held {
				show(l)
			}
			if err != nil && ctx.Err() != nil && cliContext.Context.Err() == nil {
				return nil // interrupted
			}
			return err
		}),
	}
}

// runFlags are start's -c, -f and -e.
func runFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range specFlags() {
		if slices.ContainsFunc(f.Names(), func(n string) bool { return n == "config" || n == "procfile" || n == "env" }) {
			out = append(out, f)
		}
	}
	return out
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off command with the app's environment (.env, TOML env, PORT); needs no running instance",
		ArgsUsage: "[--] COMMAND [ARGS...]",
		// `gsup run help` runs a program named help.
		HideHelpCommand: true,
		Flags: append(runFlags(), &cli.StringFlag{
			Name: "process", Usage: "also the env of process `TYPE` (TOML [process.TYPE] env), and its PORT",
		}),
		// Everything from the command's first word on is the command's,
		// flags included: run is the one verb without noFlagsAfterArgs.
		Action: func(cliContext *cli.Context) error {
			a := cliContext.Args().Slice()
			if len(a) == 0 {
				return usageErr("usage: gsup run [-c FILE] [-f FILE] [-e FILE]... [--process TYPE] [--] COMMAND [ARGS...]")
			}
			cmd, err := oneoff.New(procfile.Options{
				Config:   cliContext.String("config"),
				Procfile: cliContext.String("procfile"),
				EnvFiles: cliContext.StringSlice("env"),
				Environ:  os.Environ(),
			}, cliContext.String("process"), a)
			if err != nil {
				return configErr(err)
			}
			err = cmd.Exec() // returns only when the command cannot run
			code := exitCannotRun
			if errors.Is(err, oneoff.ErrNotFound) {
				code = exitNotFound
			}
			return &exitError{code: code, err: fmt.Errorf("run: %w", err)}
		},
	}
}

// Exit codes of `gsup run` when the command cannot run, as a shell's.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)
