package supervisor

import (
	"errors"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// shortBackoffMax caps the retries of a start that failed for want of
// gsup's own resources: they usually come back within seconds, and the
// instance should run again as soon as they do.
const shortBackoffMax = time.Second

// spawnShortages are the errors of a spawn (opening /dev/null, pipe2,
// fork/exec) that say gsup itself ran out of something: file descriptors
// (its own or the system's), processes, memory.
var spawnShortages = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.ENOMEM}

// probeShortages are the errors of a readiness check that are gsup's: it
// could not open a socket. (EAGAIN from connect is a full listen backlog:
// the app's.)
var probeShortages = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOBUFS}

// shortage returns the errno in err when it is one of kinds.
func shortage(err error, kinds []syscall.Errno) (syscall.Errno, bool) {
	for _, e := range kinds {
		if errors.Is(err, e) {
			return e, true
		}
	}
	return 0, false
}

// shortLocked retries inst after gsup failed to start it (or to check its
// readiness) for want of its own resources. It is not the app's failure:
// nothing counts towards the restart policy or fatal, and the retries back
// off from backoffMin to shortBackoffMax only.
func (s *Supervisor) shortLocked(inst *instance, err error, errno syscall.Errno) {
	inst.short++
	delay := backoffMin
	for i := 1; i < inst.short && delay < shortBackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, shortBackoffMax)
	s.instLog(inst).WithFields(logrus.Fields{"errno": unix.ErrnoName(errno), "attempt": inst.short}).
		Warnf("gsup could not start %s: %v: gsup is short of resources (%s), not a failure of %s; retrying in %v",
			inst.name, err, unix.ErrnoName(errno), inst.name, delay)
	s.backoffLocked(inst, delay)
}
