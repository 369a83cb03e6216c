package rawsock

import (
	"net"
	"net/netip"
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
	c, err := newConn(int(fd), l.Addr().Network(), l.Addr(), nil)
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
	})
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
	return newConn(fd, network, laddr, sockaddrAddr(&rsa))
}

// Dial connects to address on network (tcp, tcp4, tcp6: an IP literal
// and a port; unix: a socket path), within timeout. Any other address is
// refused with an error ErrNotSupported recognises, for net to dial.
func Dial(network, address string, timeout time.Duration) (*Conn, error) {
	var sa unsafe.Pointer
	var salen uintptr
	var family int
	var raddr net.Addr
	switch network {
	case "tcp", "tcp4", "tcp6":
		ap, err := netip.ParseAddrPort(address)
		if err != nil || ap.Addr().Zone() != "" {
			return nil, errNotSupported
		}
		ip := ap.Addr()
		switch {
		case ip.Is4() && network != "tcp6":
			s := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ip.As4()}
			putPort(&s.Port, ap.Port())
			sa, salen, family = unsafe.Pointer(s), syscall.SizeofSockaddrInet4, syscall.AF_INET
		case ip.Is6() && !ip.Is4In6() && network != "tcp4":
			s := &syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ip.As16()}
			putPort(&s.Port, ap.Port())
			sa, salen, family = unsafe.Pointer(s), syscall.SizeofSockaddrInet6, syscall.AF_INET6
		default:
			return nil, errNotSupported
		}
		raddr = net.TCPAddrFromAddrPort(ap)
		network = "tcp"
	case "unix":
		s := &syscall.RawSockaddrUnix{Family: syscall.AF_UNIX}
		if len(address) == 0 || len(address) >= len(s.Path) {
			return nil, errNotSupported
		}
		for i := 0; i < len(address); i++ {
			s.Path[i] = int8(address[i])
		}
		sa, salen, family = unsafe.Pointer(s), uintptr(2+len(address)+1), syscall.AF_UNIX
		if address[0] == '@' {
			s.Path[0] = 0 // abstract
			salen--
		}
		raddr = &net.UnixAddr{Name: address, Net: "unix"}
	default:
		return nil, errNotSupported
	}
	fail := func(op string, e error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: os.NewSyscallError(op, e)}
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if e != 0 {
		return nil, fail("socket", e)
	}
	fd := int(r)
	if family != syscall.AF_UNIX {
		// As net's: the request head and a small body go in one write,
		// and a body written in parts is not held back by Nagle.
		one := int32(1)
		syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
	}
	for {
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(sa), salen)
		if e != syscall.EINTR {
			break // after EINTR, the connect goes on: EALREADY
		}
	}
	switch e {
	case 0, syscall.EISCONN, syscall.EINPROGRESS, syscall.EALREADY:
	default:
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
		return nil, fail("connect", e)
	}
	// Into the poller after connect: a socket added before it is
	// reported writable and hung up at once (it is not connected yet).
	// Added while connecting, it is reported when the connect ends, or at
	// once if it has ended already.
	c, err := newConn(fd, network, nil, raddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	if e == 0 || e == syscall.EISCONN {
		return c, nil
	}
	if timeout > 0 {
		c.wr.setDeadline(time.Now().Add(timeout))
	}
	for {
		if err := c.wait(&c.wr); err != nil {
			c.Close()
			return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
		}
		// Writable means connected, or failed: SO_ERROR says which, and
		// a peer address that it is connected (as net: a wake-up need not
		// mean the connect ended).
		var soerr int32
		n := uint32(4)
		_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR,
			uintptr(unsafe.Pointer(&soerr)), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 {
			e = syscall.Errno(soerr)
		}
		switch e {
		case 0, syscall.EISCONN:
			var rsa syscall.RawSockaddrAny
			n := uint32(syscall.SizeofSockaddrAny)
			_, _, pe := syscall.RawSyscall(syscall.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
			if pe == syscall.ENOTCONN {
				continue
			}
			c.wr.setDeadline(time.Time{})
			return c, nil
		case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		default:
			c.Close()
			return nil, fail("connect", e)
		}
	}
}

// putPort stores port in network order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
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
