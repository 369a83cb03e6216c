package control

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gsup/metrics"
	"gsup/procfile"
)

// WriteTable prints the table of `gsup ps`.
func WriteTable(w io.Writer, ps []Process) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tNAME\tPID\tSTATE\tUPTIME\tRESTARTS\tCPU%\tRSS\tPROCS\tREADY\tPORT\tHEALTH")
	for _, p := range ps {
		pid, uptime, cpu, rss, procs := "-", "-", "-", "-", "-"
		if p.Pid != 0 {
			pid, procs = strconv.Itoa(p.Pid), strconv.Itoa(p.Procs)
			uptime = metrics.FormatUptime(time.Duration(p.UptimeSeconds * float64(time.Second)))
			cpu = fmt.Sprintf("%.1f", p.CPUPercent)
			rss = metrics.FormatBytes(int64(p.RSSBytes))
		}
		ready := "no"
		if p.Ready {
			ready = "yes"
		}
		port := "-"
		switch {
		case p.Socket != "":
			port = "unix"
		case p.Port != 0:
			port = strconv.Itoa(p.Port)
		}
		health := p.Health
		switch {
		case p.Replacing != "":
			health = "replaced: " + string(p.Replacing)
		case health == "":
			health = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.App, p.Name, pid, p.State, uptime, p.Restarts, cpu, rss, procs, ready, port, health)
	}
	tw.Flush()
}

// ParseScale reads `gsup scale` arguments: TYPE=N or APP/TYPE=N, several
// an argument when separated by commas. It returns the counts per app
// ("" = the first app) and the apps in the order given.
func ParseScale(a []string) (map[string]map[string]int, []string, error) {
	entries := map[string][]string{}
	var apps []string
	for _, arg := range a {
		for _, field := range strings.Split(arg, ",") {
			if field == "" {
				continue
			}
			app := ""
			if name, _, _ := strings.Cut(field, "="); strings.Contains(name, "/") {
				app, field, _ = strings.Cut(field, "/")
				if app == "" {
					return nil, nil, fmt.Errorf("invalid scale entry %q: empty app name", arg)
				}
			}
			if _, ok := entries[app]; !ok {
				apps = append(apps, app)
			}
			entries[app] = append(entries[app], field)
		}
	}
	out := map[string]map[string]int{}
	for _, app := range apps {
		f, err := procfile.ParseFormation(strings.Join(entries[app], ","))
		if err != nil {
			return nil, nil, err
		}
		if _, ok := f["all"]; ok {
			return nil, nil, errors.New("scale: all=N is for start's formation; name the types")
		}
		out[app] = f
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no TYPE=N given")
	}
	return out, apps, nil
}
