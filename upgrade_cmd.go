package main

import (
	"github.com/urfave/cli/v2"

	"gsup/control"
)

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name:  "upgrade",
		Usage: "re-execute gsup's (new) binary in place, keeping its pid, sockets and processes (as SIGUSR2)",
		Flags: []cli.Flag{controlFlag(), jsonFlag()},
		Action: clientAction(0, 0, "", func(cliContext *cli.Context, c *control.Client, _ []string) error {
			resp, now, err := c.Upgrade(cliContext.Context)
			if err != nil {
				return err
			}
			return reply(cliContext, struct {
				control.UpgradeResponse
				Started any `json:"started"`
			}{resp, now.Started}, "upgraded gsup (pid %d) from %s to %s", now.Pid, resp.From, now.Version)
		}),
	}
}
