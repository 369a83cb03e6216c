package listen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

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
	// Close; "" for TCP, fd:// and inherited sockets.
	Path string

	sock net.Listener // the socket itself, for File
	file fs.FileInfo  // Path as bound, to remove only our own file
}

// Close closes the socket and removes the socket file it created, unless
// that path now holds another file.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	if l.Path != "" && l.file != nil {
		if fi, serr := os.Lstat(l.Path); serr == nil && os.SameFile(fi, l.file) {
			if rerr := os.Remove(l.Path); rerr != nil && err == nil {
				err = rerr
			}
		}
	}
	return err
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
	mode       os.FileMode
	uid, gid   int // -1 = unchanged
	proxy      string
	proxyAllow *forward.AllowList
	timeout    time.Duration
	log        *logrus.Logger
}

var defaultProxyAllow, _ = forward.ParseAllowList([]string{"127.0.0.1", "::1"})

func (o Options) resolve() (*options, error) {
	r := &options{mode: o.UnixMode.Perm(), uid: -1, gid: -1, proxy: o.ProxyProtocol,
		proxyAllow: o.ProxyAllow, timeout: o.HeaderTimeout, log: o.Log}
	if o.UnixMode == 0 {
		r.mode = DefaultUnixMode
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
	var err error
	if o.UnixOwner != "" {
		if r.uid, err = lookupID(o.UnixOwner, "user"); err != nil {
			return nil, err
		}
	}
	if o.UnixGroup != "" {
		if r.gid, err = lookupID(o.UnixGroup, "group"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// lookupID resolves a user or group name, or takes a numeric id as it is.
func lookupID(name, kind string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	var id string
	if kind == "user" {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, fmt.Errorf("unix socket owner: %w", err)
		}
		id = u.Uid
	} else {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, fmt.Errorf("unix socket group: %w", err)
		}
		id = g.Gid
	}
	return strconv.Atoi(id)
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
		l.sock, l.Path, l.file, err = o.listenUnix(path)
	case strings.HasPrefix(addr, "fd://"):
		l.sock, err = listenFD(strings.TrimPrefix(addr, "fd://"))
	default:
		l.sock, err = listenTCP(strings.TrimPrefix(addr, "tcp://"))
	}
	if err != nil {
		return nil, err
	}
	l.Listener = o.wrap(l.sock, b.Address, scheme == "https")
	return l, nil
}

func listenTCP(hostport string) (net.Listener, error) {
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
	return net.Listen(network, hostport)
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

// testHookAfterBind, when set, runs right after a UNIX socket is bound,
// before anything else touches its file.
var testHookAfterBind func(path string)

// listenUnix binds a UNIX socket whose file has mode o.mode from the first
// instant: fchmod on the unbound socket sets it (the kernel masks it with
// the umask at bind, which can only narrow it), and a chmod after bind
// restores what the umask removed.
func (o *options) listenUnix(path string) (net.Listener, string, fs.FileInfo, error) {
	if path == "" {
		return nil, "", nil, errors.New("empty socket path")
	}
	if path[0] == '@' {
		// Linux's abstract sockets have no file, so no mode: anyone may connect.
		return nil, "", nil, errors.New("abstract sockets (@name) are not supported: they have no file mode to restrict who connects")
	}
	if limit := len(syscall.RawSockaddrUnix{}.Path) - 1; len(path) > limit {
		return nil, "", nil, fmt.Errorf("socket path is %d bytes long; the system allows %d", len(path), limit)
	}
	// The socket is bound and probed by path as written (a relative path
	// may fit where its absolute form would not); abs is for Close.
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, "", nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = syscall.Fchmod(int(fd), uint32(o.mode)) }); err != nil {
			return err
		}
		if ferr != nil {
			return fmt.Errorf("fchmod: %w", ferr)
		}
		return nil
	}}
	l, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, "", nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // Listener.Close removes it, only if it is still ours
	fail := func(err error) (net.Listener, string, fs.FileInfo, error) {
		_ = ul.Close()
		_ = os.Remove(abs)
		return nil, "", nil, err
	}
	if testHookAfterBind != nil {
		testHookAfterBind(abs)
	}
	if o.uid >= 0 || o.gid >= 0 {
		if err := os.Lchown(abs, o.uid, o.gid); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fail(err)
	}
	if fi.Mode().Perm() != o.mode {
		if err := os.Chmod(abs, o.mode); err != nil {
			return fail(err)
		}
		if fi, err = os.Lstat(abs); err != nil {
			return fail(err)
		}
	}
	return ul, abs, fi, nil
}

// removeStale removes a socket file that nobody listens on. A live socket,
// or a path that is not a socket, is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		_ = c.Close()
		return fmt.Errorf("%s is in use: another process listens on it", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the stale socket: %w", err)
		}
		return nil
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("%s is in use: another process listens on it (backlog full)", path)
	default:
		return fmt.Errorf("checking the existing socket: %w", err)
	}
}
