package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"gsup/arbiter"
	"gsup/procfile"
	"gsup/signals"
	"gsup/supervisor"
)

// specFlags are the flags that decide the Spec, start's and check's: one
// a row of procfile's table of settings.
func specFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range procfile.Flags() {
		out = append(out, cliFlag(f))
	}
	return out
}

// cliFlag makes f an urfave/cli flag. Every flag is read as text (procfile
// checks the values, as it checks the TOML file's), and help shows f's
// default once.
func cliFlag(f procfile.Flag) cli.Flag {
	switch {
	case f.Bool:
		return &cli.BoolFlag{Name: f.Name, Aliases: f.Aliases, Usage: f.Usage, EnvVars: f.EnvVars, DisableDefaultText: true}
	case f.Repeat:
		return &cli.StringSliceFlag{Name: f.Name, Aliases: f.Aliases, Usage: f.Usage, EnvVars: f.EnvVars, DefaultText: f.Default}
	}
	return &cli.StringFlag{Name: f.Name, Aliases: f.Aliases, Usage: f.Usage, EnvVars: f.EnvVars, DefaultText: f.Default}
}

// options builds procfile.Options from the flags that were given (on the
// command line or through their variables).
func options(cliContext *cli.Context) procfile.Options {
	over := procfile.Overrides{}
	for _, f := range procfile.Flags() {
		switch {
		case !cliContext.IsSet(f.Name):
		case f.Bool:
			over[f.Name] = []string{strconv.FormatBool(cliContext.Bool(f.Name))}
		case f.Repeat:
			over[f.Name] = cliContext.StringSlice(f.Name)
		default:
			over[f.Name] = []string{cliContext.String(f.Name)}
		}
	}
	wd, _ := procfile.LogicalWd()
	return procfile.Options{Wd: wd, Types: cliContext.Args().Slice(), Environ: os.Environ(), Over: over}
}

// specCommand is a verb that takes start's flags and process types, loads
// the Spec they select, and acts on it.
func specCommand(name, usage string, act func(*cli.Context, procfile.Options, *procfile.Spec) error) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "[TYPE...]",
		Flags:     specFlags(),
		Action: func(cliContext *cli.Context) error {
			if err := noFlagsAfterArgs(cliContext); err != nil {
				return err
			}
			opts := options(cliContext)
			spec, err := procfile.Load(opts)
			if err != nil {
				return configErr(err)
			}
			return act(cliContext, opts, spec)
		},
	}
}

func checkCommand() *cli.Command {
	return specCommand("check", "validate the config, Procfile and .env; print the resolved plan",
		func(cliContext *cli.Context, _ procfile.Options, spec *procfile.Spec) error {
			spec.WritePlan(cliContext.App.Writer)
			return nil
		})
}

func startCommand() *cli.Command {
	return specCommand("start", "run the processes in the foreground (only the named types, if given)", startGsup)
}

// startGsup runs gsup until it stops. Signals are caught from the first
// instant: a TERM during start-up is acted on once the supervisor runs,
// never the default (death).
func startGsup(cliContext *cli.Context, opts procfile.Options, spec *procfile.Spec) error {
	sigs, stopSignals := signals.Notify()
	defer stopSignals()
	self, err := selfPath()
	if err != nil {
		return failed(fmt.Errorf("finding gsup's executable: %w", err))
	}
	supervisor.ServeMainThread(func() int {
		err = arbiter.Run(cliContext.Context, arbiter.Config{
			Options: opts,
			Spec:    spec,
			Signals: sigs,
			Stdout:  cliContext.App.Writer,
			Stderr:  cliContext.App.ErrWriter,
			Self:    self,
			Environ: os.Environ(),
			Args:    os.Args,
			Version: version,
		})
		return 0
	})
	if err != nil {
		return failed(err)
	}
	return nil
}

// resumeGsup is gsup start in the process of the gsup it replaced by an
// in-place upgrade: the state handed over replaces the command line.
func resumeGsup(stdout, stderr io.Writer) int {
	sigs, stopSignals := signals.Notify()
	defer stopSignals()
	h, err := arbiter.TakeHandoff()
	if err == nil {
		var self string
		if self, err = selfPath(); err == nil {
			supervisor.ServeMainThread(func() int {
				err = arbiter.Run(context.Background(), arbiter.Config{
					Signals: sigs, Stdout: stdout, Stderr: stderr, Self: self, Version: version, Handoff: h,
				})
				return 0
			})
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "gsup: in-place upgrade: %v\n", err)
		return exitFailed
	}
	return exitOK
}
