// Package rawio reads and writes a non-blocking socket by its
// descriptor, without entering the scheduler's system-call path: a read
// or write of a non-blocking socket never blocks, and RawSyscall keeps
// the processor where the system-call path may hand it to another thread
// (the runtime's monitor takes it from a call that spans one of its
// ticks, and a thread switch follows). The waiting is the network
// poller's, with the connection's deadlines, as net's own. Read waits for
// data without holding a buffer.
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

// MaxWrite is the longest write that should go through Write: the copy
// of a larger buffer holds the processor for longer, and is better given
// to net's own Write, whose system call lets the processor go.
const MaxWrite = 64 << 10

// Write writes p whole to the socket, waiting for room (within the
// connection's write deadline) as net's own Write does, and returns how
// many bytes were written, also when it fails.
func Write(rc syscall.RawConn, p []byte) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	var errno syscall.Errno
	werr := rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return n, werr
	}
	if errno != 0 {
		return n, opError("write", errno)
	}
	return n, nil
}

// opError is what net's own calls return for errno.
func opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}
