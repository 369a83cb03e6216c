package listen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
	"github.com/sirupsen/logrus"

	"gsup/internal/rawio"
	"gsup/internal/rawsock"
	"gsup/internal/unixsock"
	"gsup/serve/forward"
)

// badRequest is what a refused connection receives.
const badRequest = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 12\r\n" +
	"\r\n" +
	"Bad Request\n"

// Bounds of the goodbye to a refused connection: time to write the 400,
// then to read (and drop) what the client still sends before it sees it,
// so that closing does not reset the connection under the response.
const (
	refuseWriteTimeout = 2 * time.Second
	refuseLinger       = 500 * time.Millisecond
	refuseLingerBytes  = 256 << 10
)

// acceptor wraps every accepted connection in a *conn. Its Listener is
// the socket's rawsock.Listener when rawsock is preferred and it could be
// made (connections accepted, read, written and closed by their
// descriptors), else the socket itself.
type acceptor struct {
	net.Listener
	cfg *connConfig
}

// SetDeadline bounds Accept, on what it waits on: the rawsock.Listener's
// descriptor, or the socket.
func (a *acceptor) SetDeadline(t time.Time) error {
	d, ok := a.Listener.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return errors.New("no deadline on this socket")
	}
	return d.SetDeadline(t)
}

func (a *acceptor) Accept() (net.Conn, error) {
	c, err := a.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return a.cfg.newConn(c), nil
}

// connConfig is what a listener's connections share.
type connConfig struct {
	name    string // the bind, for log lines
	https   bool   // the bind says scheme = "https"
	unix    bool   // a UNIX socket
	proxy   string // Proxy* mode
	allow   *forward.AllowList
	timeout time.Duration
	log     *logrus.Logger
	refused func(ci forward.ClientInfo, status, bytes int) // nil: not told
}

func (o *options) wrap(sock net.Listener, name string, https bool) *acceptor {
	a := &acceptor{Listener: sock}
	if rawsock.Preferred() {
		if raw, err := rawsock.NewListener(sock); err == nil {
			a.Listener = raw
		}
	}
	a.cfg = &connConfig{
		name:    name,
		https:   https,
		unix:    sock.Addr().Network() == "unix",
		proxy:   o.proxy,
		allow:   o.proxyAllow,
		timeout: o.timeout,
		log:     o.log,
		refused: o.refused,
	}
	return a
}

// conn is an accepted connection. With the PROXY protocol on, reads go
// through a *proxyproto.Conn, whose header is read (once) by handshake.
type conn struct {
	net.Conn // pc when the PROXY protocol is on, else sock: deadlines go here
	sock     net.Conn
	cfg      *connConfig
	pc       *proxyproto.Conn  // nil with the PROXY protocol off
	rec      *recorder         // between pc and sock
	policy   proxyproto.Policy // what the peer may do
	once     sync.Once
	info     forward.ClientInfo
	remote   net.Addr    // the PROXY client, for RemoteAddr; nil = the peer
	refused  error       // returned by every Read and Write once refused
	raw      *rawio.Conn // sock's descriptor, for reads (without PROXY) and small writes
}

func (cfg *connConfig) newConn(sock net.Conn) *conn {
	c := &conn{Conn: sock, sock: sock, cfg: cfg}
	if r, ok := sock.(interface{ RawIO() *rawio.Conn }); ok {
		c.raw = r.RawIO() // rawsock's own: shared, not one more on its SyscallConn
	} else if sc, ok := sock.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rawio.New(rc)
		}
	}
	if cfg.proxy == ProxyOff {
		return c
	}
	switch {
	case !cfg.unix && !cfg.allow.Allows(addrOf(sock.RemoteAddr()).Addr()):
		c.policy = proxyproto.REJECT
	case cfg.proxy == ProxyRequired:
		c.policy = proxyproto.REQUIRE
	default:
		c.policy = proxyproto.USE
	}
	c.rec = &recorder{Conn: sock}
	c.pc = proxyproto.NewConn(c.rec,
		proxyproto.WithPolicy(c.policy),
		proxyproto.ValidateHeader(cfg.validate),
		proxyproto.SetReadHeaderTimeout(cfg.timeout))
	c.Conn = c.pc
	return c
}

// addrOf returns a TCP address as an unmapped netip.AddrPort; zero for
// anything else.
func addrOf(a net.Addr) netip.AddrPort {
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil {
		return netip.AddrPort{}
	}
	ap := t.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// refusal is a header the listener does not accept, with the reason given
// in the log.
type refusal struct{ reason string }

func (r *refusal) Error() string { return "refused: " + r.reason }

// validate runs on every header a peer was allowed to send.
func (cfg *connConfig) validate(h *proxyproto.Header) error {
	switch {
	case cfg.proxy == ProxyV1 && h.Version != 1:
		return &refusal{"PROXY v2 header on a bind that accepts v1 only"}
	case cfg.proxy == ProxyV2 && h.Version != 2:
		return &refusal{"PROXY v1 header on a bind that accepts v2 only"}
	}
	if h.Version == 2 {
		if _, err := h.TLVs(); err != nil {
			return &refusal{"malformed PROXY v2 header: " + strings.TrimPrefix(err.Error(), "proxyproto: ")}
		}
	}
	return nil
}

func (c *conn) Read(b []byte) (int, error) {
	if c.pc == nil {
		if c.raw != nil {
			return c.raw.Read(b)
		}
		return c.sock.Read(b)
	}
	if c.handshake(); c.refused != nil {
		return 0, c.refused
	}
	return c.pc.Read(b)
}

func (c *conn) Write(b []byte) (int, error) {
	if c.pc != nil {
		if c.handshake(); c.refused != nil {
			return 0, c.refused
		}
	}
	if c.raw != nil && len(b) <= rawio.MaxWrite {
		return c.raw.Write(b)
	}
	return c.sock.Write(b)
}

// ReadFrom passes the copy to the socket, so net/http's responses can use
// sendfile and splice.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if c.pc != nil {
		if c.handshake(); c.refused != nil {
			return 0, c.refused
		}
	}
	if rf, ok := c.sock.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.sock}, r)
}

// CloseWrite shuts the socket's writing side, as net/http does before it
// closes a connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.sock.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Close() error { return c.sock.Close() }

// errNotRaw: reads must go through the PROXY layer.
var errNotRaw = errors.New("the PROXY protocol layer reads this connection")

// SyscallConn gives the socket's descriptor to a reader that reads it
// directly (the HTTP/1.1 layer, to wait for a request without a buffer):
// only with the PROXY protocol off, where Read is the socket's own.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.sock.(syscall.Conn)
	if c.pc != nil || !ok {
		return nil, errNotRaw
	}
	return sc.SyscallConn()
}

// RawIO is the socket's descriptor for reads and writes by rawio (nil
// with the PROXY protocol on, whose header reader stands between), for a
// connection layer to share.
func (c *conn) RawIO() *rawio.Conn {
	if c.pc != nil {
		return nil
	}
	return c.raw
}

// SetLinger sets SO_LINGER on a TCP connection (0: Close resets it).
func (c *conn) SetLinger(sec int) error {
	if tc, ok := c.sock.(interface{ SetLinger(int) error }); ok && !c.cfg.unix {
		return tc.SetLinger(sec)
	}
	return nil
}

// LocalAddr is the socket's own address (never a PROXY destination).
func (c *conn) LocalAddr() net.Addr { return c.sock.LocalAddr() }

// RemoteAddr is the client a PROXY header named, else the socket peer. With
// the PROXY protocol on, it waits for the header.
func (c *conn) RemoteAddr() net.Addr {
	if c.pc != nil {
		if c.handshake(); c.remote != nil {
			return c.remote
		}
	}
	return c.sock.RemoteAddr()
}

// RemoteAddrText is RemoteAddr as text, made once for the connection
// (its ClientInfo's), or "" on a UNIX socket with no PROXY client.
func (c *conn) RemoteAddrText() string {
	c.handshake()
	return c.info.AddrText()
}

// handshake reads the PROXY header, decides, and fills c.info, once. It
// blocks for HeaderTimeout at most (plus the short goodbye of a refusal).
func (c *conn) handshake() {
	c.once.Do(func() {
		defer c.info.Fix()
		c.info = forward.ClientInfo{Unix: c.cfg.unix, HTTPS: c.cfg.https}
		if !c.cfg.unix {
			c.info.Peer = addrOf(c.sock.RemoteAddr())
			c.info.Addr = c.info.Peer
		}
		if c.pc == nil {
			return
		}
		defer c.rec.done.Store(true)
		// A zero-length Read reads the header and returns its error, if any.
		if _, err := c.pc.Read(nil); err != nil {
			c.refuse(c.reasonFor(err))
			return
		}
		h := c.pc.ProxyHeader()
		if h == nil {
			if c.cfg.proxy == ProxyRequired { // a peer not allowed, without header
				c.refuse(c.reasonFor(proxyproto.ErrNoProxyProtocol))
			}
			return
		}
		c.info.Proxied = true
		if h.Command != proxyproto.PROXY {
			return // LOCAL, or v1 UNKNOWN: the peer is the client
		}
		if src, _, ok := h.TCPAddrs(); ok {
			if ap := addrOf(src); ap.IsValid() {
				c.info.Addr = ap
				c.remote = net.TCPAddrFromAddrPort(ap)
			}
		}
		if tlvs, err := h.TLVs(); err == nil {
			for _, t := range tlvs {
				if tlvparse.IsSSL(t) && t.Value[0]&tlvparse.PP2_BITFIELD_CLIENT_SSL != 0 {
					c.info.HTTPS = true
				}
			}
		}
	})
}

// reasonFor explains a header error; quiet is set when the peer is gone
// (closed without a byte, reset) and there is nobody to answer.
func (c *conn) reasonFor(err error) (reason string, quiet bool) {
	var r *refusal
	recErr := c.rec.err
	var ne net.Error
	timedOut := errors.As(recErr, &ne) && ne.Timeout()
	switch {
	case errors.As(err, &r):
		return r.reason, false
	case errors.Is(err, net.ErrClosed):
		return "connection closed", true
	case recErr != nil && !timedOut && !errors.Is(recErr, io.EOF):
		return "read: " + recErr.Error(), true
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if c.rec.n == 0 && errors.Is(recErr, io.EOF) {
			return "closed without sending anything", true
		}
		if timedOut {
			return fmt.Sprintf("no PROXY header within %s (proxy_protocol = required)", c.cfg.timeout), false
		}
		return "no PROXY header (proxy_protocol = required)", false
	case c.policy == proxyproto.REJECT:
		return "PROXY header from a peer not in proxy_allow_from", false
	case errors.Is(err, proxyproto.ErrVersion1HeaderTooLong):
		return "PROXY v1 header longer than 107 bytes", false
	default:
		return "malformed PROXY header: " + strings.TrimPrefix(err.Error(), "proxyproto: "), false
	}
}

// refuse answers 400 (unless quiet), closes the socket and logs.
func (c *conn) refuse(reason string, quiet bool) {
	c.refused = &net.OpError{Op: "read", Net: c.sock.LocalAddr().Network(),
		Source: c.sock.LocalAddr(), Addr: c.sock.RemoteAddr(), Err: &refusal{reason}}
	peer := c.peer()
	if quiet {
		c.cfg.log.WithField("bind", c.cfg.name).Debugf("%s: connection from %s closed before a request: %s", c.cfg.name, peer, reason)
		_ = c.sock.Close()
		return
	}
	c.cfg.log.WithField("bind", c.cfg.name).Warnf("%s: refused a connection from %s: %s", c.cfg.name, peer, reason)
	_ = c.sock.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	if c.cfg.refused != nil {
		c.cfg.refused(c.info, http.StatusBadRequest, len(badRequest)-strings.Index(badRequest, "\r\n\r\n")-4)
	}
	if _, err := io.WriteString(c.sock, badRequest); err == nil {
		_ = c.CloseWrite()
		_ = c.sock.SetReadDeadline(time.Now().Add(refuseLinger))
		_, _ = io.CopyN(io.Discard, c.sock, refuseLingerBytes)
	}
	_ = c.sock.Close()
}

// peer names the socket peer for log lines.
func (c *conn) peer() string {
	if c.cfg.unix {
		cred, err := unixsock.PeerCred(c.sock)
		if err != nil {
			return "a UNIX-socket peer"
		}
		return fmt.Sprintf("a UNIX-socket peer (pid %d, uid %d)", cred.PID, cred.UID)
	}
	if ap := addrOf(c.sock.RemoteAddr()); ap.IsValid() {
		return ap.String()
	}
	return c.sock.RemoteAddr().String()
}

// recorder counts the bytes read from the socket and keeps the first read
// error until the header is decided, so a refusal can tell a peer that
// closed without a byte from one that timed out or sent something else.
type recorder struct {
	net.Conn
	done atomic.Bool
	n    int64
	err  error
}

// v2Signature opens every PROXY protocol v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	if !r.done.Load() {
		// The spec says a receiver must accept a v2 PROXY command with the
		// UNSPEC family and use the real connection endpoints: that is
		// what LOCAL means, so present it as LOCAL to the parser (which
		// refuses PROXY+UNSPEC). Only when the header's first 14 bytes
		// arrive in one read, as senders write them.
		if r.n == 0 && n >= 14 && bytes.Equal(b[:12], v2Signature) && b[12] == 0x21 && b[13] == 0x00 {
			b[12] = 0x20
		}
		r.n += int64(n)
		if err != nil && r.err == nil {
			r.err = err
		}
	}
	return n, err
}
