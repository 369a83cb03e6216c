package top

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"gsup/internal/testprog"
	"gsup/metrics"
	"gsup/supervisor"
)

func snapshot() metrics.Snapshot {
	return metrics.Snapshot{
		Time: time.Date(2026, 11, 24, 11, 30, 47, 0, time.UTC), RequestsPerSecond: 12.5, P99Seconds: 0.0213,
		Instances: []metrics.Instance{
			{App: "shop", Type: "web", Name: "web.1", Pid: 4410, State: supervisor.StateRunning, Ready: true, Health: "ok",
				RSSBytes: 30 << 20, CPUPercent: 12.5, UptimeSeconds: 330},
			{App: "shop", Type: "worker", Name: "worker.1", State: supervisor.StateBackoff, Health: "-", Restarts: 4},
		},
		Events: []supervisor.Event{{Time: time.Date(2026, 11, 24, 11, 30, 40, 0, time.UTC), Kind: supervisor.EventExited,
			Instance: "worker.1", Status: "status 1"}},
	}
}

// One frame without a terminal: plain text, every instance with its
// state, the rates, the events.
func TestRenderPlain(t *testing.T) {
	var b bytes.Buffer
	Render(&b, snapshot(), nil, 0, 0, false)
	want := `gsup top  11:30:47  12.5 requests/s  p99 21.3 ms  2 instances

APP   TYPE    INSTANCE  PID   STATE    READY  HEALTH  RESTARTS  RSS    CPU%  UPTIME
shop  web     web.1     4410  running  yes    ok      0         30.0M  12.5  5m30s
shop  worker  worker.1  -     backoff  no     -       4         -      -     -

RECENT EVENTS
11:30:40  exited      worker.1          status 1
`
	if b.String() != want {
		t.Errorf("frame:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A live frame fits the terminal: lines cut to its width, rows to its
// height, the last without a newline.
func TestRenderFits(t *testing.T) {
	var b bytes.Buffer
	Render(&b, snapshot(), errors.New("control socket gsup.sock: connection refused"), 30, 5, true)
	lines := strings.Split(b.String(), "\r\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5: %q", len(lines), b.String())
	}
	if !strings.Contains(lines[1], "gsup: control socket gsup.so") {
		t.Errorf("the fetch error is not said: %q", lines[1])
	}
	for _, l := range lines {
		plain := l
		for _, esc := range []string{reverse, bold, red, yellow, dim, reset, "\x1b[K"} {
			plain = strings.ReplaceAll(plain, esc, "")
		}
		if len(plain) > 30 {
			t.Errorf("line wider than 30: %q", plain)
		}
	}
}

// In a terminal, Run redraws until q (or Ctrl-C), and leaves the
// terminal as it found it.
func TestRunTerminal(t *testing.T) {
	for _, key := range []string{"q", "\x03"} {
		ptm, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		if err := pty.Setsize(ptm, &pty.Winsize{Rows: 20, Cols: 100}); err != nil {
			t.Fatal(err)
		}
		before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		var out testprog.Buffer
		go func() { _, _ = io.Copy(&out, ptm) }()
		var fetches atomic.Int32
		fetch := func(context.Context) (metrics.Snapshot, error) {
			fetches.Add(1)
			return snapshot(), nil
		}
		done := make(chan error, 1)
		go func() { done <- Run(context.Background(), fetch, tty, tty, false) }()
		testprog.Eventually(t, "a second frame", 10*time.Second, func() (bool, string) {
			return fetches.Load() >= 2 && strings.Count(out.String(), "worker.1") >= 2, out.String()
		})
		if _, err := ptm.Write([]byte(key)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q did not quit", key)
		}
		after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if *after != *before {
			t.Errorf("terminal not restored after %q: %+v, was %+v", key, after, before)
		}
		s := out.String()
		if !strings.Contains(s, "\x1b[?1049h") {
			t.Errorf("no alternate screen: %q", s)
		}
		testprog.Eventually(t, "the screen restored", 10*time.Second, func() (bool, string) {
			return strings.HasSuffix(out.String(), "\x1b[?25h\x1b[?1049l"), out.String()
		})
		tty.Close()
		ptm.Close()
	}
}
