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
		Action: func(cliContext *cli.Context) error {
			if _, err := args(cliContext, 0, 0, ""); err != nil {
				return err
			}
			resp, now, err := newClient(cliContext).Upgrade(cliContext.Context)
			if err != nil {
				return clientErr(err)
			}
			return reply(cliContext, struct {
				control.UpgradeResponse
				Started any `json:"started"`
			}{resp, now.Started}, "upgraded gsup (pid %d) from %s to %s", now.Pid, resp.From, now.Version)
		},
	}
}
