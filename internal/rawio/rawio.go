// Package rawio reads a non-blocking socket by its descriptor, waiting
// for data without holding a buffer, and without entering the
// scheduler's system-call path: a read of a non-blocking socket never
// blocks, and RawSyscall keeps the processor where the system-call path
// may hand it to another thread (the runtime's monitor takes it from a
// call that spans one of its ticks). The waiting is the network
// poller's, with the connection's read deadline, as net's own.
package rawio

import (
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Read reads into the buffer get returns (called when the socket has
// data, or may have: it can be called again after EAGAIN, once put has
// taken the first back), waiting for readability without one. It returns
// what read(2) returned; n is 0 and err nil at end of file.
func Read(rc syscall.RawConn, get func() []byte, put func()) (n int, err error) {
	var errno syscall.Errno
	werr := rc.Read(func(fd uintptr) bool {
		b := get()
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				put()
				return false
			case 0:
				n = int(r)
			default:
				errno = e
			}
			return true
		}
	})
	if werr != nil {
		return 0, werr
	}
	if errno != 0 {
		return 0, opError("read", errno)
	}
	return n, nil
}

// opError is what net's own calls return for errno.
func opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}
