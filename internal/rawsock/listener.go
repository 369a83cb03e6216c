package rawsock

import (
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// Listener accepts the connections of a listening socket of net's by a
// duplicate of its descriptor, waited for in the poller (net gives no
// waits on a listener's descriptor). Close closes both; SetDeadline
// bounds Accept as net's.
type Listener struct {
	net.Listener
	c *Conn
}

// NewListener returns the Listener of l, a *net.TCPListener or
// *net.UnixListener (or a type around one, with their SyscallConn).
func NewListener(l net.Listener) (*Listener, error) {
	sc, ok := l.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil, errNotSupported
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	var errno syscall.Errno
	if err := rc.Control(func(lfd uintptr) {
		fd, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, lfd, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, os.NewSyscallError("fcntl", errno)
	}
	// The duplicate shares the socket's O_NONBLOCK, which net set.
	c, err := newConn(int(fd), l.Addr().Network(), l.Addr(), nil, nil)
	if err != nil {
		return nil, err
	}
	return &Listener{Listener: l, c: c}, nil
}

// Close stops accepting: an Accept in progress returns net.ErrClosed.
func (l *Listener) Close() error {
	l.c.Close()
	return l.Listener.Close()
}

// SetDeadline bounds Accept (a zero time: no bound), as net's.
func (l *Listener) SetDeadline(t time.Time) error {
	l.c.rd.setDeadline(t)
	return nil
}

// Accept implements net.Listener with AcceptConn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptConn()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptConn takes the next connection, waiting for one within the
// deadline. An error carries accept4's errno (EMFILE...) as net's does.
func (l *Listener) AcceptConn() (*Conn, error) {
	laddr := l.Addr()
	var rsa syscall.RawSockaddrAny
	var fd int
	var errno syscall.Errno
	l.c.rd.mu.Lock()
	err := l.c.rawWait(&l.c.rd, func(lfd uintptr) bool {
		for {
			n := uint32(syscall.SizeofSockaddrAny)
			r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
				syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
			switch e {
			case 0:
				fd = int(r)
				return true
			case syscall.EINTR, syscall.ECONNABORTED:
				// ECONNABORTED: the client left while queued; the next one.
				continue
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
	}, nil)
	l.c.rd.mu.Unlock()
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: laddr.Network(), Addr: laddr, Err: err}
	}
	if errno != 0 {
		return nil, &net.OpError{Op: "accept", Net: laddr.Network(), Addr: laddr, Err: os.NewSyscallError("accept4", errno)}
	}
	network := "tcp"
	if rsa.Addr.Family == syscall.AF_UNIX {
		network = "unix"
	} else if t, ok := laddr.(*net.TCPAddr); !ok || t.IP.IsUnspecified() {
		// The listener's address is the connection's, unless it is a
		// wildcard: LocalAddr then asks the kernel.
		laddr = nil
	}
	return newConn(fd, network, laddr, nil, &rsa)
}

// setPeer sets c's remote address from the socket address the kernel
// wrote: an IPv4 or IPv6 one without a zone in c's own fields, others
// as sockaddrAddr makes them.
func (c *Conn) setPeer(rsa *syscall.RawSockaddrAny) {
	var port *[2]byte
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		s := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port = (*[2]byte)(unsafe.Pointer(&s.Port))
		c.peer.IP = c.peerIP[:copy(c.peerIP[:], s.Addr[:]):4]
	case syscall.AF_INET6:
		s := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		if s.Scope_id != 0 {
			c.raddr = sockaddrAddr(rsa)
			return
		}
		port = (*[2]byte)(unsafe.Pointer(&s.Port))
		c.peer.IP = c.peerIP[:copy(c.peerIP[:], s.Addr[:]):16]
	default:
		c.raddr = sockaddrAddr(rsa)
		return
	}
	c.peer.Port = int(port[0])<<8 | int(port[1])
	c.raddr = &c.peer
}

// sockaddrAddr is the net.Addr of a socket address the kernel wrote.
func sockaddrAddr(rsa *syscall.RawSockaddrAny) net.Addr {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		s := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&s.Port))
		ip := make(net.IP, 4)
		copy(ip, s.Addr[:])
		return &net.TCPAddr{IP: ip, Port: int(p[0])<<8 | int(p[1])}
	case syscall.AF_INET6:
		s := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&s.Port))
		ip := make(net.IP, 16)
		copy(ip, s.Addr[:])
		a := &net.TCPAddr{IP: ip, Port: int(p[0])<<8 | int(p[1])}
		if s.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(s.Scope_id)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	case syscall.AF_UNIX:
		// As net: a leading NUL (an abstract name, or none) reads '@',
		// and the name ends at the first NUL.
		s := (*syscall.RawSockaddrUnix)(unsafe.Pointer(rsa))
		b := make([]byte, 0, 16)
		for i := 0; i < len(s.Path) && (i == 0 || s.Path[i] != 0); i++ {
			c := byte(s.Path[i])
			if i == 0 && c == 0 {
				c = '@'
			}
			b = append(b, c)
		}
		return &net.UnixAddr{Name: string(b), Net: "unix"}
	}
	return nil
}
