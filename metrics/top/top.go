// Package top is `gsup top`: the status page's instances, front rates
// and recent events, redrawn in the terminal every second, like htop.
package top

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"gsup/metrics"
	"gsup/supervisor"
)

// Fetch returns what to show (GET /v1/status on the control socket).
type Fetch func(ctx context.Context) (metrics.Snapshot, error)

// Every is how often Run redraws.
const Every = time.Second

// Run shows frames of fetch's snapshots on out, redrawn every Every, until
// ctx ends (nil), the user types q or Ctrl-C on in (nil), or the first
// fetch fails (its error). It puts the terminal in raw mode on the
// alternate screen and restores it before it returns. With once, or when
// out or in is not a terminal, it prints one frame and returns. A fetch
// that fails after the first is shown in the frame, and retried.
func Run(ctx context.Context, fetch Fetch, in io.Reader, out io.Writer, once bool) error {
	s, err := fetch(ctx)
	if err != nil {
		return err
	}
	inFile, inOK := in.(*os.File)
	outFile, outOK := out.(*os.File)
	if once || !inOK || !outOK || !term.IsTerminal(int(inFile.Fd())) || !term.IsTerminal(int(outFile.Fd())) {
		var b bytes.Buffer
		Render(&b, s, nil, 0, 0, false)
		_, err := out.Write(b.Bytes())
		return err
	}
	old, err := term.MakeRaw(int(inFile.Fd()))
	if err != nil {
		return fmt.Errorf("top: %w", err)
	}
	defer term.Restore(int(inFile.Fd()), old)
	// The alternate screen, the cursor hidden; both undone on return.
	if _, err := io.WriteString(out, "\x1b[?1049h\x1b[?25l"); err != nil {
		return err
	}
	defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel()
		readKeys(inFile)
	}()
	tick := time.NewTicker(Every)
	defer tick.Stop()
	var fetchErr error
	for {
		w, h, err := term.GetSize(int(outFile.Fd()))
		if err != nil {
			w, h = 80, 24
		}
		var b bytes.Buffer
		b.WriteString("\x1b[H")
		Render(&b, s, fetchErr, w, h, true)
		b.WriteString("\x1b[J")
		if _, err := out.Write(b.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		next, err := fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fetchErr = err; err == nil {
			s = next
		}
	}
}

// readKeys returns when in ends or the user types q, Q or Ctrl-C (raw
// mode sends it as a byte, not SIGINT).
func readKeys(in io.Reader) {
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		if bytes.ContainsAny(buf[:n], "qQ\x03") || err != nil {
			return
		}
	}
}

// ANSI colours of the live frame.
const (
	reverse = "\x1b[7m"
	bold    = "\x1b[1m"
	red     = "\x1b[31m"
	yellow  = "\x1b[33m"
	dim     = "\x1b[2m"
	reset   = "\x1b[0m"
)

// Render writes one frame of s: a summary line, a table of the
// instances, the recent events. fetchErr, when set, is said on the
// summary line (s is then the last snapshot that came). width and height
// cut the frame to the terminal (0 = no limit); live colours it and ends
// its lines with "\x1b[K\r\n" (clear to the end of the line; raw mode
// does not turn "\n" into "\r\n"), else "\n".
func Render(w io.Writer, s metrics.Snapshot, fetchErr error, width, height int, live bool) {
	type line struct{ text, color string }
	var lines []line
	summary := fmt.Sprintf("gsup top  %s  %.1f requests/s  p99 %.1f ms  %d instances",
		s.Time.Format("15:04:05"), s.RequestsPerSecond, s.P99Seconds*1000, len(s.Instances))
	if live {
		summary += "  (q quits)"
	}
	lines = append(lines, line{summary, bold})
	if fetchErr != nil {
		lines = append(lines, line{"gsup: " + fetchErr.Error(), red})
	}
	lines = append(lines, line{})

	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tTYPE\tINSTANCE\tPID\tSTATE\tREADY\tHEALTH\tRESTARTS\tRSS\tCPU%\tUPTIME\t")
	for _, in := range s.Instances {
		pid, rss, cpu, up := "-", "-", "-", "-"
		if in.Pid != 0 {
			pid = strconv.Itoa(in.Pid)
			cpu = fmt.Sprintf("%.1f", in.CPUPercent)
			up = metrics.FormatUptime(time.Duration(in.UptimeSeconds * float64(time.Second)))
		}
		if in.RSSBytes > 0 { // measured
			rss = metrics.FormatBytes(in.RSSBytes)
		}
		ready := "no"
		if in.Ready {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n",
			in.App, in.Type, in.Name, pid, in.State, ready, in.Health, in.Restarts, rss, cpu, up)
	}
	tw.Flush()
	rows := strings.Split(strings.TrimSuffix(tb.String(), "\n"), "\n")
	lines = append(lines, line{rows[0], reverse})
	for i, r := range rows[1:] {
		lines = append(lines, line{r, stateColor(s.Instances[i])})
	}
	if len(s.Instances) == 0 {
		lines = append(lines, line{"no instances", dim})
	}

	lines = append(lines, line{}, line{"RECENT EVENTS", reverse})
	for _, ev := range s.Events {
		who := ev.Instance
		if who == "" {
			who = ev.App
		}
		detail := ev.Message
		if detail == "" {
			detail = ev.Status
		}
		lines = append(lines, line{fmt.Sprintf("%s  %-10s  %-16s  %s", ev.Time.Format("15:04:05"), ev.Kind, who, detail), eventColor(ev.Kind)})
	}
	if len(s.Events) == 0 {
		lines = append(lines, line{"none since gsup started", dim})
	}

	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	eol := "\n"
	if live {
		eol = "\x1b[K\r\n"
	}
	for i, l := range lines {
		text := strings.TrimRight(l.text, " ")
		if width > 0 {
			text = cut(text, width)
			if live && l.color == reverse {
				text += strings.Repeat(" ", width-utf8.RuneCountInString(text)) // a bar across
			}
		}
		if live && l.color != "" {
			text = l.color + text + reset
		}
		if live && i == len(lines)-1 && height > 0 && len(lines) == height {
			// No newline after the last row: it would scroll the screen.
			io.WriteString(w, text+"\x1b[K")
			break
		}
		io.WriteString(w, text+eol)
	}
}

// cut shortens s to n runes.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func stateColor(in metrics.Instance) string {
	switch {
	case in.State == supervisor.StateFatal || in.State == supervisor.StateExited || in.State == supervisor.StateBackoff:
		return red
	case in.Health != "ok" && in.Health != "-":
		return red
	case in.State != supervisor.StateRunning:
		return yellow
	}
	return ""
}

func eventColor(k supervisor.EventKind) string {
	switch k {
	case supervisor.EventSick, supervisor.EventFatal, supervisor.EventExited:
		return red
	case supervisor.EventRecycling, supervisor.EventRestarting:
		return yellow
	}
	return ""
}
