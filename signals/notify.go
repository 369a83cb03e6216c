package signals

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
)

// Notifier speaks systemd's readiness protocol to whatever runs gsup
// (Type=notify, Type=notify-reload): READY=1, RELOADING=1 with
// MONOTONIC_USEC, STOPPING=1, STATUS=, MAINPID= and WATCHDOG=1, through
// go-systemd's daemon package, which reads NOTIFY_SOCKET from gsup's own
// environment (gsup keeps it there; its children never inherit it).
// Without NOTIFY_SOCKET every method does nothing. Safe for concurrent
// use.
type Notifier struct {
	log    *logrus.Logger
	mu     sync.Mutex
	status string // the last STATUS= sent
}

// NewNotifier returns a Notifier that logs failed notifications to log.
func NewNotifier(log *logrus.Logger) *Notifier { return &Notifier{log: log} }

// Enabled reports whether a notify socket was given.
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// sendLocked sends one notification of several lines; n.mu is held.
func (n *Notifier) sendLocked(lines ...string) {
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		n.log.WithError(err).Warn("notifying the service manager")
	}
}

// Ready sends READY=1 with gsup's pid and a status line: once at start
// when every process that must be ready is, and at the end of each
// reload (also a rejected one).
func (n *Notifier) Ready(status string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = status
	n.sendLocked(daemon.SdNotifyReady, fmt.Sprintf("MAINPID=%d", os.Getpid()), "STATUS="+status)
}

// Reloading sends RELOADING=1 and the monotonic time, as
// Type=notify-reload (systemd 253 and later) expects.
func (n *Notifier) Reloading() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = "reloading"
	n.sendLocked(daemon.SdNotifyReloading, strings.TrimSpace(daemon.SdNotifyMonotonicUsec()), "STATUS=reloading")
}

// Stopping sends STOPPING=1.
func (n *Notifier) Stopping() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = "stopping"
	n.sendLocked(daemon.SdNotifyStopping, "STATUS=stopping")
}

// Status sends a new STATUS= line when it changed.
func (n *Notifier) Status(status string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if status == n.status {
		return
	}
	n.status = status
	n.sendLocked("STATUS=" + status)
}

// WatchdogInterval is how often gsup pings the watchdog: half of
// WATCHDOG_USEC when the watchdog is on for gsup (WATCHDOG_PID unset or
// gsup's pid), else 0.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d / 2
}

// Watchdog sends WATCHDOG=1 every interval while healthy() answers true
// (the supervisor loop responds), until stop is closed.
func (n *Notifier) Watchdog(interval time.Duration, healthy func() bool, stop <-chan struct{}) {
	if !n.Enabled() || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !healthy() {
				n.log.Error("supervisor loop not answering; withholding the watchdog ping")
				continue
			}
			n.mu.Lock()
			n.sendLocked(daemon.SdNotifyWatchdog)
			n.mu.Unlock()
		}
	}
}
