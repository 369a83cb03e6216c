package listen

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"gsup/internal/handoff"
	"gsup/internal/unixsock"
)

// FD returns the listening socket's descriptor number (owned by l), for
// an in-place upgrade that keeps it across exec.
func (l *Listener) FD() (int, error) {
	c, ok := l.sock.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("listener %q: no file descriptor", l.Name)
	}
	return handoff.FD(c)
}

// SetDeadline sets the deadline of Accept: on what Accept waits on (the
// acceptor's socket, or the socket itself when unwrapped).
func (l *Listener) SetDeadline(t time.Time) error {
	d, ok := l.Listener.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return fmt.Errorf("listener %q: no deadline", l.Name)
	}
	return d.SetDeadline(t)
}

// FromFD makes a Listener of a listening socket inherited across an
// in-place upgrade, as the previous gsup had it: name, scheme and the
// UNIX socket file it removes at Close (path; "" for none). With wrap,
// o's PROXY protocol settings apply (a front listener), else Accept
// returns the socket's own connections (a [socket.NAME] for children).
func FromFD(fd int, name, scheme, path string, o Options, wrap bool) (*Listener, error) {
	cfg, err := o.resolve()
	if err != nil {
		return nil, err
	}
	f, err := handoff.File(fd, name)
	if err != nil {
		return nil, err
	}
	sock, err := net.FileListener(f) // a duplicate
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("inherited socket %q (fd %d): %w", name, fd, err)
	}
	if ul, ok := sock.(*net.UnixListener); ok && path != "" {
		u, err := unixsock.Adopt(ul, path)
		if err != nil {
			sock.Close()
			return nil, fmt.Errorf("inherited socket %q (fd %d): %w", name, fd, err)
		}
		sock = u
	}
	l := &Listener{Name: name, Scheme: scheme, Path: path, sock: sock, Listener: sock}
	if wrap {
		l.Listener = cfg.wrap(sock, name, scheme == "https")
	}
	return l, nil
}
