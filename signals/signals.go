package signals

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

// Target is what signals act on. Its methods must not block for long:
// Run calls them from its own goroutine and a second INT must still be
// handled while a graceful stop runs.
type Target interface {
	// Stop stops gsup. graceful (TERM, INT) drains the front first; quick
	// (QUIT) does not; force (a second INT or QUIT) kills every process now.
	Stop(mode StopMode)
	Reload()         // HUP
	Reopen()         // USR1
	ScaleServed(int) // TTIN +1, TTOU -1
	Reap()           // CHLD
	Upgrade()        // USR2: re-execute gsup's binary in place
}

// StopMode is how Stop stops.
type StopMode int

// The stop modes.
const (
	StopGraceful StopMode = iota
	StopQuick
	StopForce
)

// Handled lists every signal Run acts on.
var Handled = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCHLD,
}

// Notify starts delivery of the Handled signals to a new buffered
// channel and ignores SIGPIPE (a closed stdout is reported by whoever
// writes, and never kills gsup). stop ends delivery.
func Notify() (<-chan os.Signal, func()) {
	signal.Ignore(syscall.SIGPIPE)
	ch := make(chan os.Signal, 32)
	signal.Notify(ch, Handled...)
	return ch, func() { signal.Stop(ch) }
}

// Run acts on signals from sigs until ctx ends.
func Run(ctx context.Context, sigs <-chan os.Signal, t Target, log *logrus.Logger) {
	stopping := false
	for {
		var sig os.Signal
		select {
		case <-ctx.Done():
			return
		case sig = <-sigs:
		}
		s, _ := sig.(syscall.Signal)
		if s != syscall.SIGCHLD {
			log.Infof("handling signal %s", name(s))
		}
		switch s {
		case syscall.SIGTERM:
			if stopping {
				log.Info("already stopping; send INT or QUIT to kill every process now")
				continue
			}
			stopping = true
			t.Stop(StopGraceful)
		case syscall.SIGINT, syscall.SIGQUIT:
			switch {
			case stopping:
				log.Warn("stopping now: killing every process")
				t.Stop(StopForce)
			case s == syscall.SIGINT:
				stopping = true
				t.Stop(StopGraceful)
			default:
				stopping = true
				t.Stop(StopQuick)
			}
		case syscall.SIGHUP:
			if !stopping {
				t.Reload()
			}
		case syscall.SIGUSR1:
			t.Reopen()
		case syscall.SIGTTIN:
			if !stopping {
				t.ScaleServed(1)
			}
		case syscall.SIGTTOU:
			if !stopping {
				t.ScaleServed(-1)
			}
		case syscall.SIGCHLD:
			t.Reap()
		case syscall.SIGUSR2:
			if !stopping {
				t.Upgrade()
			}
		default:
			log.Infof("signal %s ignored", name(s))
		}
	}
}

func name(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGQUIT:
		return "QUIT"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGUSR1:
		return "USR1"
	case syscall.SIGUSR2:
		return "USR2"
	case syscall.SIGWINCH:
		return "WINCH"
	case syscall.SIGTTIN:
		return "TTIN"
	case syscall.SIGTTOU:
		return "TTOU"
	case syscall.SIGCHLD:
		return "CHLD"
	}
	return s.String()
}

// InterruptContext is ctx, canceled at INT or TERM: for client verbs
// that run until interrupted (`gsup logs -f`).
func InterruptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
