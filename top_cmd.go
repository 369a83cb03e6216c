package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"gsup/control"
	"gsup/metrics"
	"gsup/metrics/top"
)

// topCommand is `gsup top`: metrics/top on GET /v1/status.
func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "every instance, the front's requests/s and p99, and recent events, redrawn every second (q quits)",
		Flags: []cli.Flag{controlFlag(),
			&cli.BoolFlag{Name: "once", Usage: "print one frame and exit (what it does when stdout is not a terminal)"}},
		Action: clientAction(0, 0, "[--once]", func(cliContext *cli.Context, c *control.Client, _ []string) error {
			fetch := func(ctx context.Context) (s metrics.Snapshot, err error) { return s, c.Get(ctx, "/v1/status", &s) }
			return top.Run(cliContext.Context, fetch, cliContext.App.Reader, cliContext.App.Writer, cliContext.Bool("once"))
		}),
	}
}
