package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"gsup/arbiter"
	"gsup/procfile"
	"gsup/signals"
)

// specFlags are the flags that decide the Spec: start's and check's.
func specFlags() []cli.Flag {
	env := func(name string) []string { return []string{"GSUP_" + name} }
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML `FILE` (default: gsup.toml if present)", EnvVars: env("CONFIG")},
		&cli.StringFlag{Name: "procfile", Aliases: []string{"f"}, Usage: "Procfile `FILE` (default: Procfile)", EnvVars: env("PROCFILE")},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "env `FILE`, repeatable (default: .env if present)", EnvVars: env("ENV")},
		&cli.StringFlag{Name: "formation", Aliases: []string{"m"}, Usage: "instances per type, `web=2,worker=1` (default: all=1)", EnvVars: env("FORMATION")},
		&cli.IntFlag{Name: "port", Usage: "base `PORT` of the children (default: PORT from .env, else 5000)", EnvVars: env("PORT")},
		&cli.StringSliceFlag{Name: "bind", Aliases: []string{"b"}, Usage: "serve on `ADDR` (host:port, [::1]:port, unix:/path, fd://N), repeatable", EnvVars: env("BIND")},
		&cli.BoolFlag{Name: "no-serve", Usage: "do not serve HTTP", EnvVars: env("NO_SERVE")},
		&cli.StringFlag{Name: "upstream", Usage: "process `TYPE` to serve (default: web)", EnvVars: env("UPSTREAM")},
		&cli.StringFlag{Name: "forwarded-allow-ips", Usage: "`LIST` of addresses/CIDRs whose X-Forwarded-* are trusted, or *", EnvVars: []string{"GSUP_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"}},
		&cli.StringFlag{Name: "proxy-protocol", Usage: "PROXY protocol: `off|auto|v1|v2|required`", EnvVars: env("PROXY_PROTOCOL")},
		&cli.StringFlag{Name: "proxy-allow-from", Usage: "`LIST` of addresses/CIDRs allowed to send PROXY headers, or *", EnvVars: env("PROXY_ALLOW_FROM")},
		&cli.StringFlag{Name: "access-logfile", Usage: "access log `FILE` (- = stdout; default: none)", EnvVars: env("ACCESS_LOGFILE")},
		&cli.StringFlag{Name: "access-logformat", Usage: "access log `FORMAT` (Gunicorn's atoms)", EnvVars: env("ACCESS_LOGFORMAT")},
		&cli.StringFlag{Name: "error-logfile", Usage: "gsup's own log `FILE` (- = stderr)", EnvVars: env("ERROR_LOGFILE")},
		&cli.StringFlag{Name: "log-level", Usage: "`LEVEL`: debug, info, warning, error, critical", EnvVars: env("LOG_LEVEL")},
		&cli.StringFlag{Name: "log-format", Usage: "`FORMAT` of gsup's own log: text or json", EnvVars: env("LOG_FORMAT")},
		&cli.StringFlag{Name: "pid", Usage: "write gsup's pid to `FILE`", EnvVars: env("PID")},
		&cli.StringFlag{Name: "control", Usage: "control socket `PATH` (default: ./.gsup.sock)", EnvVars: env("CONTROL")},
		&cli.DurationFlag{Name: "graceful-timeout", Usage: "how long in-flight requests may take at stop and reload (default: 30s)", EnvVars: env("GRACEFUL_TIMEOUT")},
		&cli.DurationFlag{Name: "timeout", Usage: "how long to wait for the app's response headers (default: 30s)", EnvVars: env("TIMEOUT")},
		&cli.BoolFlag{Name: "subreaper", Usage: "become the child subreaper: reap orphans of the children (automatic as PID 1)", EnvVars: env("SUBREAPER")},
	}
}

// options builds procfile.Options from the flags that were given (on the
// command line or through GSUP_* variables).
func options(cliContext *cli.Context) procfile.Options {
	str := func(name string) *string {
		if !cliContext.IsSet(name) {
			return nil
		}
		v := cliContext.String(name)
		return &v
	}
	dur := func(name string) *time.Duration {
		if !cliContext.IsSet(name) {
			return nil
		}
		v := cliContext.Duration(name)
		return &v
	}
	wd, _ := procfile.LogicalWd()
	o := procfile.Options{
		Wd:        wd,
		Config:    cliContext.String("config"),
		Procfile:  cliContext.String("procfile"),
		EnvFiles:  cliContext.StringSlice("env"),
		Formation: cliContext.String("formation"),
		Types:     cliContext.Args().Slice(),
		Environ:   os.Environ(),
	}
	o.Over = procfile.Overrides{
		Bind:              cliContext.StringSlice("bind"),
		NoServe:           cliContext.Bool("no-serve"),
		Upstream:          str("upstream"),
		ForwardedAllowIPs: str("forwarded-allow-ips"),
		ProxyProtocol:     str("proxy-protocol"),
		ProxyAllowFrom:    str("proxy-allow-from"),
		AccessLogfile:     str("access-logfile"),
		AccessLogformat:   str("access-logformat"),
		ErrorLogfile:      str("error-logfile"),
		LogLevel:          str("log-level"),
		LogFormat:         str("log-format"),
		Pid:               str("pid"),
		Control:           str("control"),
		GracefulTimeout:   dur("graceful-timeout"),
		Timeout:           dur("timeout"),
	}
	if cliContext.IsSet("port") {
		p := cliContext.Int("port")
		o.Over.Port = &p
	}
	if cliContext.IsSet("subreaper") {
		b := cliContext.Bool("subreaper")
		o.Over.Subreaper = &b
	}
	return o
}

func loadSpec(cliContext *cli.Context) (procfile.Options, *procfile.Spec, error) {
	if err := noFlagsAfterArgs(cliContext); err != nil {
		return procfile.Options{}, nil, err
	}
	opts := options(cliContext)
	spec, err := procfile.Load(opts)
	if err != nil {
		return opts, nil, configErr(err)
	}
	return opts, spec, nil
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate the config, Procfile and .env; print the resolved plan",
		ArgsUsage: "[TYPE...]",
		Flags:     specFlags(),
		Action: func(cliContext *cli.Context) error {
			_, spec, err := loadSpec(cliContext)
			if err != nil {
				return err
			}
			spec.WritePlan(cliContext.App.Writer)
			return nil
		},
	}
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "run the processes in the foreground (only the named types, if given)",
		ArgsUsage: "[TYPE...]",
		Flags:     specFlags(),
		Action: func(cliContext *cli.Context) error {
			opts, spec, err := loadSpec(cliContext)
			if err != nil {
				return err
			}
			return startGsup(cliContext, opts, spec)
		},
	}
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
	err = arbiter.Run(cliContext.Context, arbiter.Config{
		Options: opts,
		Spec:    spec,
		Signals: sigs,
		Stdout:  cliContext.App.Writer,
		Stderr:  cliContext.App.ErrWriter,
		Self:    self,
		Environ: os.Environ(),
	})
	if err != nil {
		return failed(err)
	}
	return nil
}
