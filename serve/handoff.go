package serve

import (
	"context"
	"time"

	"gsup/serve/listen"
)

// Pause prepares an in-place upgrade: it stops accepting (the listeners
// stay open, so new connections wait in their backlog for the next
// gsup), answers every request from then on with Connection: close,
// waits settle so that busy keep-alive connections end after their next
// answer, then closes the connections still idle and waits until the
// requests in flight are done or ctx ends (the error says so; those are
// cut off). Resume undoes it when the upgrade does not happen.
func (s *Server) Pause(ctx context.Context, settle time.Duration) error {
	s.pausing.Store(true)
	s.lnMu.Lock()
	for _, f := range s.fronts {
		f.p.Pause()
	}
	s.lnMu.Unlock()
	t := time.NewTimer(settle)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	err := s.shutdownLayers(ctx) // the paused listeners ignore its Close
	s.wg.Wait()
	return err
}

// Resume serves the listeners again after Pause.
func (s *Server) Resume() {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for l, f := range s.fronts {
		f.p.Resume()
		delete(s.fronts, l)
	}
	s.h2 = newH2Layer(s, s.log)
	s.pausing.Store(false)
	for _, l := range s.lns {
		s.serveLocked(l)
	}
}

// Listeners returns the listeners the front serves.
func (s *Server) Listeners() []*listen.Listener {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return append([]*listen.Listener(nil), s.lns...)
}

// Adopt makes the server serve listeners inherited from the previous gsup
// (instead of Listen).
func (s *Server) Adopt(lns []*listen.Listener) {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	s.lns = append(s.lns, lns...)
}

// AdoptFD serves, instead of what Listen would open, a listener inherited
// from the previous gsup on descriptor fd, as it had it (name, scheme,
// the UNIX socket file it removes at exit).
func (s *Server) AdoptFD(fd int, name, scheme, path string) error {
	l, err := listen.FromFD(fd, name, scheme, path, s.listenOptions(), true)
	if err != nil {
		return err
	}
	s.Adopt([]*listen.Listener{l})
	return nil
}
