package signals

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// recorder is a Target that records what it was asked, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) Stop(mode StopMode) {
	r.add([]string{"stop graceful", "stop quick", "stop force"}[mode])
}
func (r *recorder) Reload()           { r.add("reload") }
func (r *recorder) Reopen()           { r.add("reopen") }
func (r *recorder) Upgrade()          { r.add("upgrade") }
func (r *recorder) ScaleServed(d int) { r.add(fmt.Sprintf("scale %+d", d)) }
func (r *recorder) Reap()             { r.add("reap") }
func (r *recorder) got() []string     { r.mu.Lock(); defer r.mu.Unlock(); return slices.Clone(r.calls) }
func quietLog() *logrus.Logger        { l := logrus.New(); l.SetOutput(io.Discard); return l }
func sigs(s ...syscall.Signal) []os.Signal {
	out := make([]os.Signal, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func TestRun(t *testing.T) {
	const (
		TERM = syscall.SIGTERM
		INT  = syscall.SIGINT
		QUIT = syscall.SIGQUIT
		HUP  = syscall.SIGHUP
	)
	for _, tc := range []struct {
		name string
		in   []os.Signal
		want []string
	}{
		{"TERM stops gracefully", sigs(TERM), []string{"stop graceful"}},
		{"a second TERM is ignored", sigs(TERM, TERM), []string{"stop graceful"}},
		{"a second INT forces the stop", sigs(INT, INT), []string{"stop graceful", "stop force"}},
		{"INT after TERM forces", sigs(TERM, INT), []string{"stop graceful", "stop force"}},
		{"QUIT stops quickly", sigs(QUIT), []string{"stop quick"}},
		{"QUIT after QUIT forces", sigs(QUIT, QUIT), []string{"stop quick", "stop force"}},
		{"HUP reloads", sigs(HUP, HUP), []string{"reload", "reload"}},
		{"HUP is ignored while stopping", sigs(TERM, HUP), []string{"stop graceful"}},
		{"USR1 reopens, also while stopping", sigs(syscall.SIGUSR1, TERM, syscall.SIGUSR1), []string{"reopen", "stop graceful", "reopen"}},
		{"TTIN and TTOU scale the served type", sigs(syscall.SIGTTIN, syscall.SIGTTOU), []string{"scale +1", "scale -1"}},
		{"TTIN is ignored while stopping", sigs(INT, syscall.SIGTTIN), []string{"stop graceful"}},
		{"CHLD reaps", sigs(syscall.SIGCHLD), []string{"reap"}},
		{"WINCH is ignored, never fatal", sigs(syscall.SIGWINCH, HUP), []string{"reload"}},
		{"USR2 upgrades in place", sigs(syscall.SIGUSR2), []string{"upgrade"}},
		{"USR2 is ignored while stopping", sigs(TERM, syscall.SIGUSR2), []string{"stop graceful"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan struct{})
			r := &recorder{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			// Run takes a signal only once it has handled the one before:
			// when a last (ignored) WINCH is taken, every one is handled.
			ch := make(chan os.Signal)
			go func() { Run(ctx, ch, r, quietLog()); close(done) }()
			go func() {
				for _, s := range tc.in {
					ch <- s
				}
				ch <- syscall.SIGWINCH
				close(sent)
			}()
			<-sent
			cancel()
			<-done
			if got := r.got(); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// listenNotify makes a unixgram socket standing for systemd's notify
// socket and points NOTIFY_SOCKET at it.
func listenNotify(t *testing.T) func() string {
	t.Helper()
	path := t.TempDir() + "/notify"
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	conn, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifier(t *testing.T) {
	next := listenNotify(t)
	n := NewNotifier(quietLog())
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	n.Ready("2 of 2 ready")
	if got, want := next(), fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=2 of 2 ready", os.Getpid()); got != want {
		t.Errorf("Ready sent %q, want %q", got, want)
	}
	n.Status("2 of 2 ready") // unchanged: nothing sent
	n.Status("1 of 2 ready")
	if got := next(); got != "STATUS=1 of 2 ready" {
		t.Errorf("Status sent %q", got)
	}
	n.Reloading()
	got := next()
	lines := strings.Split(got, "\n")
	if len(lines) != 3 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") || lines[2] != "STATUS=reloading" {
		t.Errorf("Reloading sent %q", got)
	}
	var usec int64
	if _, err := fmt.Sscanf(lines[1], "MONOTONIC_USEC=%d", &usec); err != nil || usec <= 0 {
		t.Errorf("MONOTONIC_USEC not a positive number: %q", lines[1])
	}
	n.Stopping()
	if got := next(); got != "STOPPING=1\nSTATUS=stopping" {
		t.Errorf("Stopping sent %q", got)
	}
}

func TestNotifierWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier(quietLog())
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	n.Ready("ready") // must not fail or block
	n.Stopping()
}

func TestWatchdog(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"2000000", "", time.Second},
		{"2000000", fmt.Sprint(os.Getpid()), time.Second},
		{"2000000", fmt.Sprint(os.Getpid() + 1), 0},
		{"nonsense", "", 0},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		if got := WatchdogInterval(); got != tc.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: interval %v, want %v", tc.usec, tc.pid, got, tc.want)
		}
	}

	next := listenNotify(t)
	n := NewNotifier(quietLog())
	stop := make(chan struct{})
	healthy := make(chan bool, 1)
	healthy <- true
	done := make(chan struct{})
	go func() {
		n.Watchdog(time.Millisecond, func() bool { return <-healthy }, stop)
		close(done)
	}()
	if got := next(); got != "WATCHDOG=1" {
		t.Errorf("watchdog sent %q", got)
	}
	close(stop)
	healthy <- false
	<-done
}
