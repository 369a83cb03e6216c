package rawsock

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// errAddrNotSupported is Dial's answer for an address it leaves to net.
var errAddrNotSupported = errors.New("rawsock: address not supported")

// ErrNotSupported reports whether err is Dial's refusal of an address it
// does not take (a host name, an IPv6 zone, a network other than tcp and
// unix): the caller then dials with net.
func ErrNotSupported(err error) bool { return errors.Is(err, errAddrNotSupported) }

// Addr is an address Dial takes, made once by ResolveAddr: the socket
// address for connect, with its family and the net.Addr a connection
// reports as its peer.
type Addr struct {
	network string // "tcp" or "unix"
	family  int
	sa      unsafe.Pointer // a *syscall.RawSockaddr{Inet4,Inet6,Unix}
	salen   uintptr
	raddr   net.Addr
}

// ResolveAddr makes the Addr of address on network (tcp, tcp4, tcp6: an
// IP literal and a port; unix: a socket path). Any other address is
// refused with an error ErrNotSupported recognises, for net to dial.
func ResolveAddr(network, address string) (*Addr, error) {
	a := &Addr{network: network}
	switch network {
	case "tcp", "tcp4", "tcp6":
		ap, err := netip.ParseAddrPort(address)
		if err != nil || ap.Addr().Zone() != "" {
			return nil, errAddrNotSupported
		}
		ip := ap.Addr()
		switch {
		case ip.Is4() && network != "tcp6":
			s := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ip.As4()}
			putPort(&s.Port, ap.Port())
			a.sa, a.salen, a.family = unsafe.Pointer(s), syscall.SizeofSockaddrInet4, syscall.AF_INET
		case ip.Is6() && !ip.Is4In6() && network != "tcp4":
			s := &syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ip.As16()}
			putPort(&s.Port, ap.Port())
			a.sa, a.salen, a.family = unsafe.Pointer(s), syscall.SizeofSockaddrInet6, syscall.AF_INET6
		default:
			return nil, errAddrNotSupported
		}
		a.raddr = net.TCPAddrFromAddrPort(ap)
		a.network = "tcp"
	case "unix":
		s := &syscall.RawSockaddrUnix{Family: syscall.AF_UNIX}
		if len(address) == 0 || len(address) >= len(s.Path) {
			return nil, errAddrNotSupported
		}
		for i := 0; i < len(address); i++ {
			s.Path[i] = int8(address[i])
		}
		a.sa, a.salen, a.family = unsafe.Pointer(s), uintptr(2+len(address)+1), syscall.AF_UNIX
		if address[0] == '@' {
			s.Path[0] = 0 // abstract
			a.salen--
		}
		a.raddr = &net.UnixAddr{Name: address, Net: "unix"}
	default:
		return nil, errAddrNotSupported
	}
	return a, nil
}

// Dial connects to address on network, as ResolveAddr takes them, within
// timeout.
func Dial(network, address string, timeout time.Duration) (*Conn, error) {
	a, err := ResolveAddr(network, address)
	if err != nil {
		return nil, err
	}
	return a.Dial(timeout)
}

// Dial connects to a within timeout.
func (a *Addr) Dial(timeout time.Duration) (*Conn, error) {
	network, raddr, family := a.network, a.raddr, a.family
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
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(a.sa), a.salen)
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
	c, err := newConn(fd, network, nil, raddr, nil)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	if e == 0 || e == syscall.EISCONN {
		return c, nil
	}
	// A connect in progress lets the goroutines ready to run go first, as
	// an event loop handles the rest of its ready events before it writes
	// to a socket it is connecting: an app's worker on the same CPU, woken
	// by the connect, takes the CPU, accepts, and waits for the request;
	// a request written at once woke it a second time, and the app's
	// workers took the connections one at a time, sleeping between them
	// (bench/README.md, Gunicorn on TCP). Then the connect is looked at
	// before any wait: to a peer on this machine it has most often ended
	// by now, and a wait would arm the deadline's timer, stop it, and go
	// through the poller.
	runtime.Gosched()
	deadline := false
	for {
		ended, e := connectEnded(fd)
		switch {
		case e != 0:
			c.Close()
			return nil, fail("connect", e)
		case ended:
			if deadline {
				c.wr.setDeadline(time.Time{})
			}
			return c, nil
		}
		if !deadline && timeout > 0 {
			c.wr.setDeadline(time.Now().Add(timeout))
			deadline = true
		}
		if err := c.wait(&c.wr); err != nil {
			c.Close()
			return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
		}
	}
}

// TCP states (include/net/tcp_states.h), the first byte of TCP_INFO.
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	tcpCloseWait   = 8
)

// connectEnded reports whether the connect in progress on fd has ended
// with the socket connected, or the error it failed with. A TCP socket's
// state says it in one call: connected (the peer may have closed its side
// already), or still connecting. Otherwise, and for other sockets, SO_ERROR
// says whether it failed, and a peer address that it is connected (as
// net's: a writable socket need not mean the connect ended).
func connectEnded(fd int) (bool, syscall.Errno) {
	var state [1]byte
	sl := uint32(len(state))
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&state[0])), uintptr(unsafe.Pointer(&sl)), 0)
	if e == 0 && sl == 1 {
		switch state[0] {
		case tcpEstablished, tcpCloseWait:
			return true, 0
		case tcpSynSent, tcpSynRecv:
			return false, 0
		}
	}
	var soerr int32
	n := uint32(4)
	_, _, e = syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR,
		uintptr(unsafe.Pointer(&soerr)), uintptr(unsafe.Pointer(&n)), 0)
	if e == 0 {
		e = syscall.Errno(soerr)
	}
	switch e {
	case 0, syscall.EISCONN:
		var rsa syscall.RawSockaddrAny
		n := uint32(syscall.SizeofSockaddrAny)
		_, _, pe := syscall.RawSyscall(syscall.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
		return pe != syscall.ENOTCONN, 0
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		return false, 0
	}
	return false, e
}

// putPort stores port in network order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}
