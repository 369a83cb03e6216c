package handoff

import (
	"net"
	"sync/atomic"
	"time"
)

// Pausable is a listener an http.Server serves until Pause: from then on
// its Accept fails and its Close (called by http.Server.Shutdown) leaves
// the socket open, so connections that arrive wait in the backlog for
// the next gsup. Safe for concurrent use.
type Pausable struct {
	net.Listener
	// Socket is the listening socket under Listener, whose deadline
	// interrupts an Accept in progress.
	Socket interface{ SetDeadline(time.Time) error }
	paused atomic.Bool
}

// Pause stops Accept (one in progress returns at once) without closing
// the socket.
func (p *Pausable) Pause() {
	p.paused.Store(true)
	if p.Socket != nil {
		_ = p.Socket.SetDeadline(time.Now())
	}
}

// Resume clears the deadline Pause set; the listener can then be served
// again through a new Pausable.
func (p *Pausable) Resume() {
	if p.Socket != nil {
		_ = p.Socket.SetDeadline(time.Time{})
	}
}

// Paused reports whether Pause was called.
func (p *Pausable) Paused() bool { return p.paused.Load() }

// Accept implements net.Listener; after Pause it returns net.ErrClosed.
func (p *Pausable) Accept() (net.Conn, error) {
	if p.paused.Load() {
		return nil, net.ErrClosed
	}
	c, err := p.Listener.Accept()
	if err != nil && p.paused.Load() {
		return nil, net.ErrClosed
	}
	return c, err
}

// Close closes the listener, unless it is paused.
func (p *Pausable) Close() error {
	if p.paused.Load() {
		return nil
	}
	return p.Listener.Close()
}
