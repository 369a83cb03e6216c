package listen

import (
	"fmt"
	"net"
	"syscall"
)

// unixPeer names a UNIX-socket peer by its credentials (SO_PEERCRED).
func unixPeer(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return "a UNIX-socket peer"
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return "a UNIX-socket peer"
	}
	var cred *syscall.Ucred
	cerr := rc.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil || err != nil {
		return "a UNIX-socket peer"
	}
	return fmt.Sprintf("a UNIX-socket peer (pid %d, uid %d)", cred.Pid, cred.Uid)
}
