// Package handoff carries a running gsup across the execve of an in-place
// upgrade: its state as JSON in a memfd named by an environment variable,
// and the descriptors it keeps (listeners, pipes, sockets) made to
// survive the exec by clearing their close-on-exec flag.
package handoff

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// EnvVar names the memfd holding the state: "GSUP_HANDOFF=FD". It is set
// only for the exec of an upgrade and removed at once by Take.
const EnvVar = "GSUP_HANDOFF"

// Write puts v as JSON in a new memfd, read from its start, and returns
// its descriptor (close-on-exec until Inherit clears it; Discard closes
// it).
func Write(v any) (int, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return -1, fmt.Errorf("encoding the upgrade state: %w", err)
	}
	fd, err := unix.MemfdCreate("gsup-handoff", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd for the upgrade state: %w", err)
	}
	f := os.NewFile(uintptr(fd), "gsup-handoff")
	if _, err = f.Write(data); err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return -1, fmt.Errorf("writing the upgrade state: %w", err)
	}
	// The File must not close fd when it is collected: take it back.
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	f.Close()
	if err != nil {
		return -1, err
	}
	return nfd, nil
}

// Discard closes a descriptor Write returned.
func Discard(fd int) { _ = syscall.Close(fd) }

// Present reports whether this process was started by an upgrade (EnvVar
// is set).
func Present() bool { return os.Getenv(EnvVar) != "" }

// Take decodes the state EnvVar names into v, closes the memfd and unsets
// EnvVar (children must never see it). ok is false when EnvVar is not set.
func Take(v any) (ok bool, err error) {
	s := os.Getenv(EnvVar)
	if s == "" {
		return false, nil
	}
	os.Unsetenv(EnvVar)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return true, fmt.Errorf("%s=%q: not a file descriptor", EnvVar, s)
	}
	f := os.NewFile(uintptr(fd), "gsup-handoff")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return true, fmt.Errorf("reading the upgrade state: %w", err)
	}
	if err := json.NewDecoder(f).Decode(v); err != nil {
		return true, fmt.Errorf("decoding the upgrade state: %w", err)
	}
	return true, nil
}

// Decode decodes a state from r (the check mode reads it from stdin).
func Decode(r io.Reader, v any) error {
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("decoding the upgrade state: %w", err)
	}
	return nil
}

// FD returns the descriptor number of c (a listener, a connection or a
// pipe) without changing its blocking mode, as os.File.Fd would. The
// descriptor stays owned by c.
func FD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// Inherit clears (keep) or sets (!keep) close-on-exec on every fd.
func Inherit(fds []int, keep bool) error {
	var errs []error
	for _, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil {
			if keep {
				flags &^= unix.FD_CLOEXEC
			} else {
				flags |= unix.FD_CLOEXEC
			}
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("fd %d: %w", fd, err))
		}
	}
	return errors.Join(errs...)
}

// File makes an *os.File of an inherited descriptor and sets its
// close-on-exec flag again (a later exec of a child must not leak it).
func File(fd int, name string) (*os.File, error) {
	if fd < 3 {
		return nil, fmt.Errorf("%s: bad inherited file descriptor %d", name, fd)
	}
	if err := Inherit([]int{fd}, false); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Environ returns environ without EnvVar, then with EnvVar=fd.
func Environ(environ []string, fd int) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, EnvVar+"=") {
			out = append(out, kv)
		}
	}
	return append(out, EnvVar+"="+strconv.Itoa(fd))
}
