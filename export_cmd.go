package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"gsup/export"
	"gsup/procfile"
)

// exportCommand is `gsup export FORMAT DIR`: the files that run this app's
// gsup under a process monitor (package export writes them).
func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the files that run this app under a process monitor (" + strings.Join(export.Formats, ", ") + ")",
		ArgsUsage: "FORMAT DIR",
		Flags: append(specFlags(),
			&cli.StringFlag{Name: "app", Aliases: []string{"a"}, Usage: "`NAME` of the unit and files (default: the app's name)"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "`USER` gsup runs as (default: the current user)"},
			&cli.StringFlag{Name: "run", Aliases: []string{"r"}, Usage: "`DIR` of the pid file and control socket (default: /run/APP)"},
			&cli.StringFlag{Name: "log", Aliases: []string{"l"}, Usage: "`DIR` of the log files, where the format needs them (default: /var/log/APP)"},
		),
		Action: func(cliContext *cli.Context) error {
			if err := noFlagsAfterArgs(cliContext); err != nil {
				return err
			}
			args := cliContext.Args()
			if args.Len() != 2 || !slices.Contains(export.Formats, args.Get(0)) {
				return usageErr("export: usage: gsup export [flags] FORMAT DIR, FORMAT one of %s", strings.Join(export.Formats, ", "))
			}
			opts := options(cliContext)
			opts.Types = nil
			spec, err := procfile.Load(opts)
			if err != nil {
				return configErr(err)
			}
			self, err := selfPath()
			if err != nil {
				return failed(fmt.Errorf("finding gsup's executable: %w", err))
			}
			cfg := export.Config{
				Format: args.Get(0),
				Dir:    args.Get(1),
				App:    cliContext.String("app"),
				User:   cliContext.String("user"),
				Run:    cliContext.String("run"),
				Log:    cliContext.String("log"),
				Self:   self,
				Path:   os.Getenv("PATH"),
			}
			// Every start flag given, but those of the files, which
			// export names itself from what was read.
			for _, f := range specFlags() {
				name := f.Names()[0]
				if !cliContext.IsSet(name) || name == "config" || name == "procfile" || name == "env" {
					continue
				}
				values := []string{cliContext.String(name)}
				if _, ok := f.(*cli.StringSliceFlag); ok {
					values = cliContext.StringSlice(name)
				}
				for _, v := range values {
					cfg.Flags = append(cfg.Flags, export.StartFlag(name, v))
				}
			}
			files, err := export.Write(spec, cfg)
			for _, f := range files {
				fmt.Fprintf(cliContext.App.Writer, "wrote %s: %s\n", f.Path, f.What)
			}
			if err != nil {
				return failed(fmt.Errorf("export: %w", err))
			}
			return nil
		},
	}
}
