package listen

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gsup/procfile"
)

func TestOpenTCP(t *testing.T) {
	binds := []procfile.Bind{
		{Address: "127.0.0.1:0"},
		{Address: "tcp://127.0.0.1:0", Scheme: "http"},
		{Address: "localhost:0"},
		{Address: "127.0.0.1:0", Scheme: "https"},
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		binds = append(binds, procfile.Bind{Address: "[::1]:0"})
	} else {
		t.Logf("no IPv6 loopback: %v", err)
	}
	ls, err := Open(binds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		t.Cleanup(func() { l.Close() })
		if l.Name != binds[i].Address || l.Path != "" {
			t.Errorf("listener %d: Name %q Path %q", i, l.Name, l.Path)
		}
		wantScheme := binds[i].Scheme
		if wantScheme == "" {
			wantScheme = "http"
		}
		if l.Scheme != wantScheme {
			t.Errorf("%s: Scheme %q", l.Name, l.Scheme)
		}
		serveHTTP(t, l)
		c, got := get(t, l, nil, 2)
		local := c.LocalAddr().String()
		for _, s := range got {
			if s.Addr != local || s.Peer != local || s.Remote != local || s.Proxied || s.Unix || s.HTTPS != (wantScheme == "https") {
				t.Errorf("%s: server saw %+v, client is %s", l.Name, s, local)
			}
		}
	}
}

func TestOpenIPv4LiteralIsIPv4Only(t *testing.T) {
	l := openOne(t, procfile.Bind{Address: "0.0.0.0:0"}, Options{})
	if a := l.Addr().(*net.TCPAddr); a.IP.To4() == nil {
		t.Errorf("0.0.0.0 listens on %v", a)
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		port := l.Addr().(*net.TCPAddr).Port
		if c, err := net.Dial("tcp6", fmt.Sprintf("[::1]:%d", port)); err == nil {
			c.Close()
			t.Errorf("0.0.0.0:%d accepts IPv6 connections", port)
		}
	}
}

func TestOpenDualStackUnmapsPeers(t *testing.T) {
	l, err := Open([]procfile.Bind{{Address: "[::]:0"}}, Options{ProxyProtocol: ProxyAuto})
	if err != nil {
		t.Skipf("no dual-stack listener: %v", err)
	}
	defer l[0].Close()
	serveHTTP(t, l[0])
	port := l[0].Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("no IPv4 on [::]: %v", err)
	}
	defer c.Close()
	// A v4 client of a [::] socket is ::ffff:127.0.0.1 to the kernel; the
	// PROXY allow list (127.0.0.1) must still match, and Info unmaps it.
	_, got := getConn(t, c, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n"), 1)
	if got[0].Addr != "192.0.2.1:1000" || !strings.HasPrefix(got[0].Peer, "127.0.0.1:") {
		t.Errorf("server saw %+v", got[0])
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(regular)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		bind procfile.Bind
		o    Options
		want string
	}{
		{procfile.Bind{Address: "127.0.0.1:99999"}, Options{}, `bind "127.0.0.1:99999": `},
		{procfile.Bind{Address: "127.0.0.1"}, Options{}, `bind "127.0.0.1": address 127.0.0.1: missing port`},
		{procfile.Bind{Address: "http://127.0.0.1:80"}, Options{}, `bind "http://127.0.0.1:80": unknown scheme`},
		{procfile.Bind{Address: "unix:"}, Options{}, `bind "unix:": empty socket path`},
		{procfile.Bind{Address: "unix:" + regular}, Options{}, `exists and is not a socket`},
		{procfile.Bind{Address: "unix:" + filepath.Join(dir, "missing", "s.sock")}, Options{}, `no such file or directory`},
		{procfile.Bind{Address: "unix:/" + strings.Repeat("x", 108)}, Options{}, `socket path is 109 bytes long; the system allows 107`},
		{procfile.Bind{Address: "unix:@gsup"}, Options{}, `abstract sockets (@name) are not supported`},
		{procfile.Bind{Address: "fd://2"}, Options{}, `bind "fd://2": want fd://N with N a file descriptor number of 3 or more`},
		{procfile.Bind{Address: "fd://x"}, Options{}, `want fd://N`},
		{procfile.Bind{Address: "fd://9999"}, Options{}, `bind "fd://9999": file descriptor 9999: bad file descriptor`},
		{procfile.Bind{Address: "fd://" + strconv.Itoa(int(f.Fd()))}, Options{}, `socket operation on non-socket`},
		{procfile.Bind{Address: "127.0.0.1:0", Scheme: "ftp"}, Options{}, `bind "127.0.0.1:0": scheme "ftp": want http or https`},
		{procfile.Bind{Address: "127.0.0.1:0"}, Options{ProxyProtocol: "yes"}, `proxy protocol "yes": want off, auto, v1, v2 or required`},
		{procfile.Bind{Address: "127.0.0.1:0"}, Options{UnixOwner: "no-such-user-gsup"}, `unix socket owner: user: unknown user no-such-user-gsup`},
		{procfile.Bind{Address: "127.0.0.1:0"}, Options{UnixGroup: "no-such-group-gsup"}, `unix socket group: group: unknown group no-such-group-gsup`},
	}
	for _, tt := range tests {
		ls, err := Open([]procfile.Bind{tt.bind}, tt.o)
		if err == nil {
			closeAll(ls)
			t.Errorf("%s: no error", tt.bind.Address)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want %q", tt.bind.Address, err, tt.want)
		}
	}
}

func TestOpenFailureClosesEarlierBinds(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	_, err := Open([]procfile.Bind{{Address: "unix:" + sock}, {Address: "127.0.0.1:99999"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `bind "127.0.0.1:99999"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the first socket was left behind: %v", err)
	}
}

func TestUnixServe(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l := openOne(t, procfile.Bind{Address: "unix:" + sock}, Options{})
	if l.Path != sock || l.Name != "unix:"+sock || l.Scheme != "http" {
		t.Errorf("Listener %+v", l)
	}
	serveHTTP(t, l)
	_, got := get(t, l, nil, 2)
	for _, s := range got {
		if s.Addr != "" || s.Peer != "" || !s.Unix || s.Proxied || s.HTTPS {
			t.Errorf("server saw %+v", s)
		}
	}
	// unix:// and relative paths are accepted too.
	t.Chdir(filepath.Dir(sock))
	l2 := openOne(t, procfile.Bind{Address: "unix://rel.sock"}, Options{})
	if l2.Path != filepath.Join(filepath.Dir(sock), "rel.sock") {
		t.Errorf("Path %q", l2.Path)
	}
}

func TestUnixMode(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		mode  os.FileMode
		umask int
		want  os.FileMode
	}{
		{0, 0o022, 0o660},
		{0, 0o077, 0o660},
		{0, 0, 0o660},
		{0o600, 0o022, 0o600},
		{0o666, 0o022, 0o666},
		{0o777, 0o027, 0o777},
	}
	for i, tt := range tests {
		sock := filepath.Join(dir, fmt.Sprintf("%d.sock", i))
		var ls []*Listener
		var err error
		withUmask(tt.umask, func() { ls, err = Open([]procfile.Bind{{Address: "unix:" + sock}}, Options{UnixMode: tt.mode}) })
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tt.want {
			t.Errorf("mode %o umask %03o: socket is %v, want %v", tt.mode, tt.umask, fi.Mode(), tt.want)
		}
		closeAll(ls)
	}
}

func TestUnixStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	old, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close() // as a killed process leaves it
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal(err)
	}
	l := openOne(t, procfile.Bind{Address: "unix:" + sock}, Options{})
	serveHTTP(t, l)
	if _, got := get(t, l, nil, 1); !got[0].Unix {
		t.Errorf("server saw %+v", got[0])
	}
}

func TestUnixLiveSocketRefused(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	live, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() { // the live owner accepts (and drops) the probe
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = Open([]procfile.Bind{{Address: "unix:" + sock}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `bind "unix:`+sock+`": `+sock+` is in use`) {
		t.Fatalf("err = %v", err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the live socket was broken: %v", err)
	}
	c.Close()
}

func TestUnixCloseRemovesOnlyItsOwnFile(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	ls, err := Open([]procfile.Bind{{Address: "unix:" + sock}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ls[0].Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}

	// Another instance took the path over: Close must leave its socket.
	ls, err = Open([]procfile.Bind{{Address: "unix:" + sock}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ls[0].Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("Close removed another listener's socket: %v", err)
	}
}

func TestFD(t *testing.T) {
	tcp := testListen(t, "tcp4", "127.0.0.1:0")
	f, err := tcp.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	// A descriptor no *os.File owns, as a parent process would pass it.
	fd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	l := openOne(t, procfile.Bind{Address: "fd://" + strconv.Itoa(fd), Scheme: "https"}, Options{ProxyProtocol: ProxyV1})
	if l.Name != "fd://"+strconv.Itoa(fd) || l.Path != "" || l.Addr().String() != tcp.Addr().String() {
		t.Errorf("Listener %q path %q addr %v", l.Name, l.Path, l.Addr())
	}
	// Closed; or its number is a descriptor of gsup's own now (the
	// acceptor's duplicate, close-on-exec), which the passed one is not.
	if flags, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); e != syscall.EBADF && flags&syscall.FD_CLOEXEC == 0 {
		t.Errorf("fd %d still open after Open took it over: %v", fd, e)
	}
	tcp.Close() // the listener's own copy keeps the socket
	serveHTTP(t, l)
	_, got := get(t, l, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n"), 1)
	if got[0].Addr != "192.0.2.1:1000" || !got[0].HTTPS || !got[0].Proxied {
		t.Errorf("server saw %+v", got[0])
	}
	// File hands out a duplicate, for children.
	dup, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	dup.Close()
}

func TestFDNotListening(t *testing.T) {
	_, c := tcpPair(t)
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Open([]procfile.Bind{{Address: "fd://" + strconv.Itoa(int(f.Fd()))}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not a listening socket") {
		t.Errorf("err = %v", err)
	}
}

// A client that connects and sends nothing is not handed to gsup (no fd, no
// goroutine); it is as soon as it sends its first byte.
func TestTCPBindDefersIdleConnections(t *testing.T) {
	ls, err := Open([]procfile.Bind{{Address: "127.0.0.1:0"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := ls[0]
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-accepted:
		s.Close()
		t.Fatal("an idle connection was accepted")
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := c.Write([]byte("G")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-accepted:
		s.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection that sent a byte was not accepted within 5s")
	}
}

// A TCP bind (the front's, and metrics_bind's: both go by TCP) is a plain
// TCP socket, as nginx's and haproxy's are, not the Multipath TCP one Go's
// net makes by default where the kernel has MPTCP (net.mptcp.enabled, on
// in Debian's kernels): each connection accepted through an MPTCP
// listener costs the kernel more (the accept and the handshake go through
// MPTCP's code) for a client that almost never speaks it.
func TestTCPBindIsPlainTCP(t *testing.T) {
	l := openOne(t, procfile.Bind{Address: "127.0.0.1:0"}, Options{})
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	proto, err := syscall.GetsockoptInt(int(f.Fd()), syscall.SOL_SOCKET, syscall.SO_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	if proto != syscall.IPPROTO_TCP {
		t.Errorf("the listening socket's protocol is %d; want %d (TCP; 262 is MPTCP)", proto, syscall.IPPROTO_TCP)
	}
}
