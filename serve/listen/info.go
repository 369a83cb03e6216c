package listen

import (
	"context"
	"crypto/tls"
	"net"

	"gsup/serve/forward"
)

// Info returns what connection c says about its client. On a connection
// accepted by a Listener with the PROXY protocol on, the first call waits
// for the header (HeaderTimeout at most) in the caller's goroutine: call it
// from the connection's goroutine (an http.Handler), not from
// http.Server.ConnContext, which runs in the accept loop. Later calls, and
// calls after the first Read, return at once. A *tls.Conn is looked
// through and marks the client HTTPS. Any other net.Conn is described by
// its RemoteAddr (a TCP peer, or a UNIX socket).
func Info(c net.Conn) forward.ClientInfo {
	switch x := c.(type) {
	case *conn:
		x.handshake()
		return x.info
	case *tls.Conn:
		ci := Info(x.NetConn())
		ci.HTTPS = true
		return ci
	}
	var ci forward.ClientInfo
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ci.Peer = addrOf(a)
		ci.Addr = ci.Peer
	case *net.UnixAddr:
		ci.Unix = true
	}
	return ci
}

type connKey struct{}

// ConnContext has the signature of http.Server.ConnContext: it keeps the
// connection in the context (without waiting for anything), for
// FromContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// FromContext returns Info of the connection ConnContext kept in ctx (a
// request's context); ok is false when there is none.
func FromContext(ctx context.Context) (ci forward.ClientInfo, ok bool) {
	c, ok := ctx.Value(connKey{}).(net.Conn)
	if !ok {
		return forward.ClientInfo{}, false
	}
	return Info(c), true
}
