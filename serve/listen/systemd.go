package listen

import (
	"fmt"
	"net"
	"slices"

	"github.com/coreos/go-systemd/v22/activation"
)

// Inherited takes the sockets passed by systemd socket activation
// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) and unsets those variables,
// so children do not see them; it can therefore be called only once.
//
// serve holds the sockets for the HTTP front, with o's PROXY protocol
// settings applied; held holds, unwrapped, the sockets whose name is in
// exclude (those of [socket.NAME] entries, passed on to children with
// Listener.File). Both keep systemd's order and are named by
// LISTEN_FDNAMES (or LISTEN_FD_N without names); Path is empty: systemd
// owns the socket files. Without socket activation (or when LISTEN_PID is
// not this process) both are empty. A descriptor that is not a listening
// stream socket is an error naming it; everything already taken is then
// closed.
func Inherited(o Options, exclude []string) (serve, held []*Listener, err error) {
	cfg, err := o.resolve()
	if err != nil {
		return nil, nil, err
	}
	// activation.ListenersWithNames would lose systemd's order (a map) and
	// silently drop a descriptor that is not a listener; Files keeps both.
	files := activation.Files(true)
	fail := func(err error) ([]*Listener, []*Listener, error) {
		closeAll(serve)
		closeAll(held)
		for _, f := range files {
			_ = f.Close()
		}
		return nil, nil, err
	}
	for i, f := range files {
		sock, err := net.FileListener(f)
		if err != nil {
			return fail(fmt.Errorf("socket %q from systemd (fd %d): %w", f.Name(), f.Fd(), err))
		}
		_ = f.Close()
		files[i] = nil
		l := &Listener{Name: f.Name(), Scheme: "http", sock: sock}
		if slices.Contains(exclude, l.Name) {
			l.Listener = sock
			held = append(held, l)
			continue
		}
		l.Listener = cfg.wrap(sock, l.Name, false)
		serve = append(serve, l)
	}
	return serve, held, nil
}
