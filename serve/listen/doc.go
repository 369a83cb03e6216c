// Package listen opens the HTTP front's sockets and says, for every
// connection they accept, who the client is.
//
// # Sockets
//
// Open binds TCP (host:port, [v6]:port, tcp://host:port), UNIX (unix:/path)
// and already-open (fd://N) sockets; Inherited takes the sockets systemd
// passes (LISTEN_FDS). UNIX sockets are bound by gsup/internal/unixsock:
// mode 0660 by default (UnixMode), never wider from bind on, chowned to
// UnixOwner/UnixGroup; a stale socket file is replaced, a live one, a
// symlink or any other file refused; abstract names are refused. Close
// removes the socket file, unless another one has taken its place.
//
// # PROXY protocol
//
// With ProxyProtocol other than "off", every accepted connection is wrapped
// with github.com/pires/go-proxyproto under an explicit per-connection
// policy (peers in ProxyAllow, and UNIX-socket peers, may send a header;
// anyone else may not). Accept never blocks on a header: it is read in the
// connection's own goroutine, at the first Read, Write, RemoteAddr or Info,
// within HeaderTimeout. A connection whose header is refused (from a peer
// not allowed, malformed, v1 over 107 bytes, the wrong version, or missing
// in "required" mode) receives a short 400 response, is closed, and
// produces one warning line naming the bind, the peer and the reason; its
// Read then fails with a *net.OpError (Op "read"), which http.Server closes
// quietly. A peer that connects and closes without sending a byte (a TCP
// health check) is closed without a warning.
//
// v1 UNKNOWN and v2 LOCAL headers are accepted and leave the socket peer as
// the client. TLVs are skipped, except that a v2 PP2_TYPE_SSL TLV with the
// client-SSL bit marks the connection HTTPS; a TLV vector that does not
// split is a malformed header. The client a header names holds for every
// request of the connection (keep-alive included).
//
// # Client information
//
// Info returns a connection's forward.ClientInfo; http.Server's ConnContext
// can be set to ConnContext so handlers get it with FromContext. The
// accepted connections also implement io.ReaderFrom and CloseWrite by
// passing them to the socket, so net/http keeps sendfile/splice and its
// graceful close.
package listen
