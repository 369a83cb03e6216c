//go:build unix

package upstream

import (
	"net"
	"syscall"

	"gsup/internal/rawio"
)

// stale reports whether a pooled connection was closed by the app, or has
// unexpected bytes waiting, while it sat idle. It costs one non-blocking
// recv(2) and is used only before requests that cannot be replayed.
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
	err = rc.Read(func(fd uintptr) bool {
		// No error is EOF (n == 0) or bytes nobody asked for (n > 0);
		// EAGAIN is the healthy case.
		_, e := rawio.Peek(fd)
		dead = e != syscall.EAGAIN && e != syscall.EINTR
		return true
	})
	return dead || err != nil
}
