package testprog

import (
	"syscall"
	"testing"
)

// ListenBacklog0 is a TCP listener on 127.0.0.1 that never accepts and
// whose queue holds one connection: the kernel drops the SYNs of the
// connects after it, which then stay in progress until they time out. It
// returns the listening descriptor (closed at the test's end) and its port.
func ListenBacklog0(t testing.TB) (fd, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port
}
