package signals

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Notifier speaks systemd's readiness protocol to whatever runs gsup
// (Type=notify, Type=notify-reload): READY=1, RELOADING=1 with
// MONOTONIC_USEC, STOPPING=1, STATUS=, MAINPID= and WATCHDOG=1. Without
// NOTIFY_SOCKET every method does nothing. Safe for concurrent use.
type Notifier struct {
	socket string
	log    *logrus.Logger
	mu     sync.Mutex
	ready  bool
	status string
}

// NewNotifier reads NOTIFY_SOCKET from environ (gsup's environment at
// start; children never inherit it).
func NewNotifier(environ []string, log *logrus.Logger) *Notifier {
	n := &Notifier{log: log}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			n.socket = v
		}
	}
	return n
}

// Enabled reports whether a notify socket was given.
func (n *Notifier) Enabled() bool { return n.socket != "" }

func (n *Notifier) send(lines ...string) {
	if n.socket == "" {
		return
	}
	// daemon.SdNotify reads the socket from the environment; gsup removes
	// NOTIFY_SOCKET from what its children get, not from its own env.
	os.Setenv("NOTIFY_SOCKET", n.socket)
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		n.log.Warnf("notifying the service manager: %v", err)
	}
}

// Ready sends READY=1 with gsup's pid and a status line: once at start
// when every process that must be ready is, and at the end of each
// reload (also a rejected one).
func (n *Notifier) Ready(status string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ready = true
	n.status = status
	n.send("READY=1", fmt.Sprintf("MAINPID=%d", os.Getpid()), "STATUS="+status)
}

// Reloading sends RELOADING=1 and the monotonic time, as
// Type=notify-reload (systemd 253 and later) expects.
func (n *Notifier) Reloading() {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	n.send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", usec), "STATUS=reloading")
}

// Stopping sends STOPPING=1.
func (n *Notifier) Stopping() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.send("STOPPING=1", "STATUS=stopping")
}

// Status sends a new STATUS= line when it changed.
func (n *Notifier) Status(status string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if status == n.status {
		return
	}
	n.status = status
	n.send("STATUS=" + status)
}

// WatchdogInterval is half of WATCHDOG_USEC when the watchdog is on for
// gsup (WATCHDOG_PID unset or gsup's pid), else 0.
func WatchdogInterval(environ []string) time.Duration {
	var usec, pid string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "WATCHDOG_USEC="); ok {
			usec = v
		}
		if v, ok := strings.CutPrefix(kv, "WATCHDOG_PID="); ok {
			pid = v
		}
	}
	if usec == "" || (pid != "" && pid != fmt.Sprint(os.Getpid())) {
		return 0
	}
	var us int64
	if _, err := fmt.Sscan(usec, &us); err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}

// Watchdog sends WATCHDOG=1 every interval while healthy() answers true
// (the supervisor loop responds), until stop is closed.
func (n *Notifier) Watchdog(interval time.Duration, healthy func() bool, stop <-chan struct{}) {
	if n.socket == "" || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if healthy() {
				n.mu.Lock()
				n.send("WATCHDOG=1")
				n.mu.Unlock()
			} else {
				n.log.Error("supervisor loop not answering; withholding the watchdog ping")
			}
		}
	}
}
