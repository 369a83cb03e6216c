package listen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/unixsock"
	"gsup/procfile"
	"gsup/serve/forward"
)

// Defaults of Options.
const (
	DefaultUnixMode      = os.FileMode(0o660)
	DefaultHeaderTimeout = 5 * time.Second
)

// The PROXY protocol modes of Options.ProxyProtocol.
const (
	ProxyOff      = "off"      // no PROXY protocol
	ProxyAuto     = "auto"     // v1 or v2, optional
	ProxyV1       = "v1"       // v1 only, optional
	ProxyV2       = "v2"       // v2 only, optional
	ProxyRequired = "required" // v1 or v2, mandatory: a connection without a header is refused
)

// Options are the socket settings shared by every listener of the front.
type Options struct {
	// UnixMode is the permission of UNIX socket files; 0 means 0660.
	UnixMode os.FileMode
	// UnixOwner and UnixGroup, when set, are given to UNIX socket files
	// after bind (names or numeric ids).
	UnixOwner, UnixGroup string
	// ProxyProtocol is off (or ""), auto, v1, v2 or required.
	ProxyProtocol string
	// ProxyAllow lists the peers that may send PROXY headers; nil means
	// 127.0.0.1 and ::1. UNIX-socket peers are always allowed.
	ProxyAllow *forward.AllowList
	// HeaderTimeout bounds the wait for a PROXY header; 0 or less means 5s.
	// A read deadline already set on the connection, if earlier, is kept.
	// http.Server reads the header at its first RemoteAddr call, before it
	// sets ReadHeaderTimeout: HeaderTimeout is then the bound.
	HeaderTimeout time.Duration
	// Log receives one warning per refused connection; nil discards.
	Log *logrus.Logger
	// Refused, when set, is told of each 400 gsup answered because of the
	// PROXY header (bytes: the answer's size), for the access log.
	Refused func(ci forward.ClientInfo, status, bytes int)
}

// Listener is one socket of the HTTP front. Its Accept returns connections
// that Info understands; it is safe for concurrent use, as net.Listener.
type Listener struct {
	net.Listener
	// Name is the bind as the user wrote it, or the systemd FD name.
	Name string
	// Scheme is "http", or "https" for a bind behind a TLS terminator.
	Scheme string
	// Path is the UNIX socket file this listener created and removes at
	// Close, unless the path then holds another file; "" for TCP, fd://
	// and inherited sockets.
	Path string

	sock net.Listener // the socket itself, for File
}

// File returns a duplicate of the listening socket's file descriptor, to
// pass it to a child process. Closing it does not close the listener.
func (l *Listener) File() (*os.File, error) {
	if f, ok := l.sock.(interface{ File() (*os.File, error) }); ok {
		return f.File()
	}
	return nil, fmt.Errorf("listener %q: no file descriptor", l.Name)
}

// Open binds every address of binds, in order. Accepted addresses:
// host:port and tcp://host:port (an IPv4 literal host listens on IPv4
// only; a name, "[::]" or an empty host use Go's default, dual-stack on
// Linux), [v6]:port, unix:/path (also unix:///path) and fd://N (an
// already-listening socket on descriptor N >= 3, which Open takes over and
// closes). Every error names the bind; on error the sockets already opened
// are closed.
func Open(binds []procfile.Bind, o Options) ([]*Listener, error) {
	cfg, err := o.resolve()
	if err != nil {
		return nil, err
	}
	var ls []*Listener
	for _, b := range binds {
		l, err := cfg.open(b)
		if err != nil {
			closeAll(ls)
			return nil, fmt.Errorf("bind %q: %w", b.Address, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func closeAll(ls []*Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// options are Options checked and with their defaults filled in.
type options struct {
	unix       unixsock.Options
	proxy      string
	proxyAllow *forward.AllowList
	timeout    time.Duration
	log        *logrus.Logger
	refused    func(ci forward.ClientInfo, status, bytes int)
}

var defaultProxyAllow, _ = forward.ParseAllowList([]string{"127.0.0.1", "::1"})

func (o Options) resolve() (*options, error) {
	r := &options{unix: unixsock.Options{Mode: o.UnixMode.Perm(), Owner: o.UnixOwner, Group: o.UnixGroup},
		proxy: o.ProxyProtocol, proxyAllow: o.ProxyAllow, timeout: o.HeaderTimeout, log: o.Log, refused: o.Refused}
	if o.UnixMode == 0 {
		r.unix.Mode = DefaultUnixMode
	}
	switch r.proxy {
	case "":
		r.proxy = ProxyOff
	case ProxyOff, ProxyAuto, ProxyV1, ProxyV2, ProxyRequired:
	default:
		return nil, fmt.Errorf("proxy protocol %q: want off, auto, v1, v2 or required", o.ProxyProtocol)
	}
	if r.proxyAllow == nil {
		r.proxyAllow = defaultProxyAllow
	}
	if r.timeout <= 0 {
		r.timeout = DefaultHeaderTimeout
	}
	if r.log == nil {
		r.log = logrus.New()
		r.log.SetOutput(io.Discard)
	}
	// Owner and group are checked before any socket is bound.
	if _, _, err := unixsock.LookupOwner(o.UnixOwner, o.UnixGroup); err != nil {
		return nil, err
	}
	return r, nil
}

func (o *options) open(b procfile.Bind) (*Listener, error) {
	scheme := b.Scheme
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("scheme %q: want http or https", b.Scheme)
	}
	l := &Listener{Name: b.Address, Scheme: scheme}
	var err error
	switch addr := b.Address; {
	case strings.HasPrefix(addr, "unix:"):
		path := strings.TrimPrefix(strings.TrimPrefix(addr, "unix:"), "//")
		var u *unixsock.Listener
		if u, err = unixsock.Listen(path, o.unix); err == nil {
			l.sock, l.Path = u, absPath(path)
		}
	case strings.HasPrefix(addr, "fd://"):
		l.sock, err = listenFD(strings.TrimPrefix(addr, "fd://"))
	default:
		l.sock, err = TCP(strings.TrimPrefix(addr, "tcp://"))
	}
	if err != nil {
		return nil, err
	}
	l.Listener = o.wrap(l.sock, b.Address, scheme == "https")
	return l, nil
}

// TCP listens on hostport the way every TCP socket gsup binds does: the
// front's binds and [serve] metrics_bind.
func TCP(hostport string) (net.Listener, error) {
	if strings.Contains(hostport, "://") {
		return nil, errors.New("unknown scheme (use host:port, unix:/path or fd://N)")
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	network := "tcp"
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		network = "tcp4"
	}
	// No TCP keep-alive probes on clients' connections (as nginx): the
	// front's own idle timeout ends an idle one, and each accepted
	// connection is spared four setsockopt calls.
	lc := net.ListenConfig{Control: deferAccept, KeepAlive: -1}
	// Plain TCP, as nginx and haproxy listen: net makes a Multipath TCP
	// socket where the kernel has MPTCP, and every connection accepted
	// through one goes through MPTCP's handshake and accept code, for
	// clients that almost never speak it.
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), network, hostport)
}

// DeferAccept is TCP_DEFER_ACCEPT on TCP binds (nginx's "deferred"): the
// kernel completes a connection but hands it to gsup only once the client
// has sent a byte, or after about this long (rounded up to the SYN-ACK
// retransmissions that cover it: 15 s). It is the front's bound on a request
// head, so a client that connects and sends nothing costs gsup no fd, no
// goroutine and no buffer for as long as it would be allowed to wait.
const DeferAccept = 10 * time.Second

func deferAccept(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, int(DeferAccept/time.Second))
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt TCP_DEFER_ACCEPT: %w", serr)
	}
	return nil
}

// listenFD takes over descriptor n, which must be a listening socket.
func listenFD(s string) (net.Listener, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 3 {
		return nil, errors.New("want fd://N with N a file descriptor number of 3 or more")
	}
	acc, err := syscall.GetsockoptInt(n, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	if err != nil {
		return nil, fmt.Errorf("file descriptor %d: %w", n, err)
	}
	if acc == 0 {
		return nil, fmt.Errorf("file descriptor %d is not a listening socket", n)
	}
	f := os.NewFile(uintptr(n), "fd://"+s)
	l, err := net.FileListener(f) // a duplicate: f is closed below either way
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("file descriptor %d: %w", n, err)
	}
	return l, nil
}

// absPath is path made absolute, for Listener.Path; path itself when the
// working directory is unknown.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
