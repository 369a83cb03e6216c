//go:build unix

package upstream

import (
	"net"
	"syscall"

	"gsup/internal/rawio"
)

// stale reports whether a pooled connection was closed by the app, or has
// unexpected bytes waiting, while it sat idle. It costs one non-blocking
// recv(2) and is used only before requests that cannot be replayed. The
// look goes by Control, which never waits: a RawConn's Read may wait for
// an event before its first call (rawsock's, after a short read), and an
// idle connection has none to give.
func stale(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	dead := false
	err = rc.Control(func(fd uintptr) {
		// No error is EOF (n == 0) or bytes nobody asked for (n > 0);
		// EAGAIN is the healthy case.
		_, e := rawio.Peek(fd)
		dead = e != syscall.EAGAIN && e != syscall.EINTR
	})
	return dead || err != nil
}
