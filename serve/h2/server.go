// Package h2 is gsup's HTTP/2 connection layer: it serves connections
// whose TLS handshake chose h2 by ALPN and hands their requests to an
// http.Handler (serve's handling layer), in place of net/http's HTTP/2
// server. Frames are read and written with golang.org/x/net/http2's
// Framer and HPACK coder; the connection's state is this package's.
//
// One goroutine per connection reads its frames and answers the frames
// that concern the connection (SETTINGS, PING, WINDOW_UPDATE, GOAWAY);
// each request runs its handler in a goroutine of its own. There is no
// writer goroutine: the handler writes its own frames into the
// connection's buffer under a lock, and the buffer goes out when no
// other writer waits for the lock, so that answers finished together
// leave in one write (one TLS record where they fit) and an answer that
// fits its buffer costs no hand-off between goroutines.
//
// What it keeps of net/http's server: the http.Handler contract (Flush,
// SetReadDeadline and EnableFullDuplex through http.ResponseController;
// no Hijack), trailers both ways (http.TrailerPrefix and the Trailer
// field), 100 Continue on the first read of a body, Content-Length for a
// body written whole, Date, the request's context cancelled when its
// client resets the stream or the connection ends, MAX_HEADER_LIST_SIZE
// answered with 431, and a graceful Shutdown (GOAWAY, then the streams
// in flight finish). Beyond it: connection-specific fields and a TE
// other than "trailers" are stream errors (RFC 9113, 8.2.2), a stream
// whose flow-control window stays shut longer than SendTimeout is reset,
// and a client that opens streams faster than its handlers end is told
// to calm down.
package h2

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Server serves HTTP/2 connections given to ServeConn. Set its fields
// before the first ServeConn.
type Server struct {
	Handler http.Handler
	// MaxHeaderBytes is the SETTINGS_MAX_HEADER_LIST_SIZE announced; a
	// request whose fields are larger gets 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the wait for the client's preface;
	// IdleTimeout the wait for a stream on a connection that has none
	// open (then GOAWAY). SendTimeout bounds a stream's wait for the
	// client to open its flow-control window.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	SendTimeout       time.Duration
	// ConnContext, if set, derives each connection's context (the parent
	// of its requests' contexts) from the base one.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// Refused, if set, is called with the connection and the status of
	// a request answered by this layer before it reached the handler (431:
	// its fields were over MaxHeaderBytes).
	Refused func(c net.Conn, status, bytes int)
	Log     *logrus.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutting bool
	gone     chan struct{} // made by Shutdown, closed once no connection is left
}

// The settings this server announces, and its receive windows.
const (
	maxStreams     = 250     // SETTINGS_MAX_CONCURRENT_STREAMS
	streamWindow   = 1 << 20 // SETTINGS_INITIAL_WINDOW_SIZE: what a stream may send before its handler reads
	connWindow     = 1 << 20 // the connection's receive window
	maxHandlers    = 4 * maxStreams
	defaultHeaders = 1 << 20
)

// ServeConn serves c, a connection whose client speaks HTTP/2 (its
// preface not read yet), until it ends. After Shutdown or Close it
// closes c at once.
func (s *Server) ServeConn(c net.Conn) {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		c.Close()
		return
	}
	sc := newConn(s, c)
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	defer s.forget(sc)
	sc.serve()
}

func (s *Server) forget(sc *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, sc)
	if len(s.conns) == 0 && s.gone != nil {
		close(s.gone)
		s.gone = nil
	}
}

// Shutdown sends GOAWAY to every connection: the streams it names
// finish, and each connection closes once it has none left (one idle
// closes at once). It returns when no connection is left, or with ctx's
// error when ctx ends first (the connections left stay open: Close ends
// them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting = true
	var gone chan struct{}
	if len(s.conns) > 0 {
		if s.gone == nil {
			s.gone = make(chan struct{})
		}
		gone = s.gone
	}
	list := s.list()
	s.mu.Unlock()
	for _, sc := range list {
		sc.goAway()
	}
	if gone == nil {
		return nil
	}
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes every connection at once; their requests' contexts are
// cancelled.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutting = true
	list := s.list()
	s.mu.Unlock()
	for _, sc := range list {
		sc.close()
	}
	return nil
}

// list returns the connections (under s.mu).
func (s *Server) list() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for sc := range s.conns {
		out = append(out, sc)
	}
	return out
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes > 0 {
		return uint32(min(s.MaxHeaderBytes, 1<<30))
	}
	return defaultHeaders
}
