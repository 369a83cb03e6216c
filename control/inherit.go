package control

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"gsup/internal/handoff"
	"gsup/internal/unixsock"
)

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ConnContext:       connContext,
		ReadHeaderTimeout: 10 * time.Second,
	}
}

// pausable returns the listener hs serves (mu held).
func (s *Server) pausable() *handoff.Pausable {
	if s.pl == nil {
		s.pl = &handoff.Pausable{Listener: s.ln, Socket: s.ln}
	}
	return s.pl
}

// File is the control socket's file, symlinks resolved as they were at
// bind.
func (s *Server) File() string { return s.ln.File() }

// FD returns the socket's descriptor number (owned by the Server), for an
// in-place upgrade that keeps it across exec.
func (s *Server) FD() (int, error) { return handoff.FD(s.ln) }

// Inherit makes a Server of the control socket at path (its file at file:
// File) inherited across an in-place upgrade on descriptor fd, with mode
// for the sockets it binds besides (Follow).
func Inherit(fd int, path, file string, mode os.FileMode) (*Server, error) {
	ln, err := inheritListener(fd, path, file)
	if err != nil {
		return nil, err
	}
	s := newServer(ln)
	s.mode = mode
	return s, nil
}

// inheritListener adopts the socket bound at path (its file at file, or
// path when "") on inherited descriptor fd.
func inheritListener(fd int, path, file string) (*unixsock.Listener, error) {
	f, err := handoff.File(fd, "control")
	if err != nil {
		return nil, err
	}
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket %s: inherited fd %d: %w", path, fd, err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("control socket %s: inherited fd %d is not a UNIX socket", path, fd)
	}
	if file == "" {
		file = path
	}
	ln, err := unixsock.AdoptFile(ul, path, file)
	if err != nil {
		ul.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Pause stops accepting (the socket stays open: new connections wait in
// its backlog), and waits until the requests in flight are answered or
// ctx ends; streams (logs -f, events) are then cut. Resume undoes it.
func (s *Server) Pause(ctx context.Context) {
	s.mu.Lock()
	hs, pl := s.hs, s.pausable()
	s.serving = false
	for _, a := range s.also {
		if a.pl != nil {
			a.pl.Pause()
		}
	}
	s.mu.Unlock()
	pl.Pause()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
}

// Resume serves again after Pause, with the same backend.
func (s *Server) Resume() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.pl != nil {
		s.pl.Resume()
	}
	s.pl = nil
	for _, a := range s.also {
		if a.pl != nil {
			a.pl.Resume()
		}
		a.pl = nil
	}
	s.hs = s.newHTTPServer()
	b, log := s.b, s.log
	s.mu.Unlock()
	go func() {
		if err := s.Serve(b, log); err != nil && log != nil {
			log.Errorf("control: %v", err)
		}
	}()
}
