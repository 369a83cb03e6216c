// Package fdlimit reads and raises gsup's own limit on open files
// (RLIMIT_NOFILE): every client connection of the front, every pipe to a
// child and every log file takes one.
package fdlimit

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/sirupsen/logrus"
)

// Raise sets gsup's soft limit on open files to its hard limit, less one
// (as Go's runtime does at start since Go 1.19: Raise makes sure of it),
// and returns the soft limit now in force. When that fails (it cannot,
// short of a seccomp filter), log gets a warning and the limit is
// unchanged.
//
// Children still start with the soft limit gsup was given: Go restores it
// in every process it starts as long as the soft limit is one below the
// hard one, and syscall.Setrlimit would turn that off, so Raise calls
// prlimit(2) itself. Programs that iterate over every possible fd, or use
// select(2), expect the usual 1024.
func Raise(log *logrus.Logger) uint64 {
	n, err := raise()
	if err != nil {
		log.Warn(err)
	}
	return n
}

func raise() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open files limit: %w", err)
	}
	if lim.Max == 0 || lim.Cur >= lim.Max-1 {
		return lim.Cur, nil
	}
	raised := syscall.Rlimit{Cur: lim.Max - 1, Max: lim.Max}
	_, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, syscall.RLIMIT_NOFILE,
		uintptr(unsafe.Pointer(&raised)), 0, 0, 0)
	if e != 0 {
		return lim.Cur, fmt.Errorf("raising the open files limit from %d to %d: %w", lim.Cur, raised.Cur, e)
	}
	return raised.Cur, nil
}

// Current returns gsup's soft limit on open files, or 0 when it cannot
// be read.
func Current() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}
