package unixsock

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cred is who is at the other end of a UNIX socket connection, as the
// kernel recorded it when the peer connected.
type Cred struct {
	UID, GID uint32
	PID      int32
	Groups   []uint32 // supplementary groups; nil when the kernel does not say
}

// String is "uid U, gid G, pid P".
func (c Cred) String() string {
	return fmt.Sprintf("uid %d, gid %d, pid %d", c.UID, c.GID, c.PID)
}

// InGroup reports whether gid is the peer's group or one of its
// supplementary groups.
func (c Cred) InGroup(gid uint32) bool {
	if c.GID == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// PeerCred returns the credentials of c's peer; c must be a connection
// of a UNIX socket with a descriptor (a *net.UnixConn, or one of the
// front's own sockets).
func PeerCred(c net.Conn) (Cred, error) {
	sc, ok := c.(syscall.Conn)
	if _, isUnix := c.LocalAddr().(*net.UnixAddr); !ok || !isUnix {
		return Cred{}, errors.New("peer credentials: not a UNIX socket connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred Cred
	var uerr error
	if err := rc.Control(func(fd uintptr) {
		var u *unix.Ucred
		if u, uerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); uerr != nil {
			return
		}
		cred = Cred{UID: u.Uid, GID: u.Gid, PID: u.Pid, Groups: peerGroups(int(fd))}
	}); err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if uerr != nil {
		return Cred{}, fmt.Errorf("peer credentials: SO_PEERCRED: %w", uerr)
	}
	return cred, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13); nil when it fails.
func peerGroups(fd int) []uint32 {
	buf := make([]uint32, 32)
	for range 2 {
		size := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch e {
		case 0:
			return buf[:size/4]
		case unix.ERANGE:
			buf = make([]uint32, size/4+1)
			continue
		}
		return nil
	}
	return nil
}
