package unixsock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// bind is Listen, failing t on an error; the listener closes when the
// test ends.
func bind(t *testing.T, path string, o Options) *Listener {
	t.Helper()
	l, err := Listen(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// listen is bind with every connection accepted and closed.
func listen(t *testing.T, path string, o Options) *Listener {
	t.Helper()
	l := bind(t, path, o)
	go func() { // accept and drop, so the socket is live
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

func dial(t *testing.T, path string) error {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err == nil {
		c.Close()
	}
	return err
}

func withUmask(mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

// The file is never more open than asked, from bind on, whatever the
// umask; after Listen it has exactly the asked mode.
func TestMode(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range []struct {
		mode  os.FileMode
		umask int
		want  os.FileMode
	}{
		{0, 0o022, 0o600},
		{0o660, 0o022, 0o660},
		{0o660, 0o077, 0o660},
		{0o600, 0, 0o600},
		{0o666, 0o022, 0o666},
	} {
		path := filepath.Join(dir, fmt.Sprintf("%d.sock", i))
		var atBind os.FileMode
		testHookAfterBind = func(path string) {
			if fi, err := os.Lstat(path); err == nil {
				atBind = fi.Mode().Perm()
			}
		}
		var l *Listener
		var err error
		withUmask(tt.umask, func() { l, err = Listen(path, Options{Mode: tt.mode}) })
		testHookAfterBind = nil
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tt.want {
			t.Errorf("mode %o umask %03o: %v, want a socket with %v", tt.mode, tt.umask, fi.Mode(), tt.want)
		}
		if want := tt.want &^ os.FileMode(tt.umask); atBind != want {
			t.Errorf("mode %o umask %03o: %v at bind, want %v", tt.mode, tt.umask, atBind, want)
		}
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Close left %s behind (%v)", path, err)
		}
	}
}

func TestOwner(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	owner, group := strconv.Itoa(uid), strconv.Itoa(gid)
	if uid == 0 { // as root, hand the socket to another user for real
		if u, err := user.Lookup("nobody"); err == nil {
			owner = "nobody"
			uid, _ = strconv.Atoi(u.Uid)
		}
		if g, err := user.LookupGroup("nogroup"); err == nil {
			group = "nogroup"
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	path := filepath.Join(t.TempDir(), "s.sock")
	listen(t, path, Options{Owner: owner, Group: group})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("socket owned by %d:%d, want %d:%d (%s:%s)", st.Uid, st.Gid, uid, gid, owner, group)
	}
	for _, o := range []Options{{Owner: "no-such-user-gsup"}, {Group: "no-such-group-gsup"}} {
		if _, err := Listen(filepath.Join(t.TempDir(), "x.sock"), o); err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close() // as a killed process leaves it
	listen(t, path, Options{})
	if err := dial(t, path); err != nil {
		t.Error(err)
	}
}

func TestLiveSocketRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	listen(t, path, Options{})
	_, err := Listen(path, Options{})
	if !errors.Is(err, ErrInUse) || err.Error() != path+" is in use: another process listens on it" {
		t.Fatalf("second Listen: %v", err)
	}
	if err := dial(t, path); err != nil {
		t.Errorf("the live socket was broken: %v", err)
	}
}

// A symlink at the path is neither followed nor replaced, whatever it
// points to; nor is a regular file or a folder touched.
func TestNeverFollowsNorClobbers(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	listen(t, live, Options{})
	stale := filepath.Join(dir, "stale.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	for _, tc := range []struct{ name, target, want string }{
		{"to-regular.sock", regular, "is a symlink"},
		{"to-missing.sock", filepath.Join(dir, "missing"), "is a symlink"},
		{"to-live.sock", live, "is a symlink"},
		{"to-stale.sock", stale, "is a symlink"},
	} {
		link := filepath.Join(dir, tc.name)
		if err := os.Symlink(tc.target, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(link, Options{Mode: 0o666}); err == nil || !strings.Contains(err.Error(), link+" "+tc.want) {
			t.Errorf("Listen over a symlink to %s: %v, want %q", tc.target, err, tc.want)
		}
		if got, err := os.Readlink(link); err != nil || got != tc.target {
			t.Errorf("the symlink %s was changed: %q %v", link, got, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a symlink's missing target was created: %v", err)
	}
	if fi, err := os.Lstat(stale); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("a symlink's stale socket was touched: %v %v", fi, err)
	}
	if err := dial(t, live); err != nil {
		t.Errorf("a symlink's live socket was broken: %v", err)
	}
	if _, err := Listen(regular, Options{}); err == nil || err.Error() != regular+" exists and is not a socket" {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if fi, err := os.Lstat(regular); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the regular file's mode changed: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "data" {
		t.Error("the regular file was touched")
	}
	if _, err := Listen(dir, Options{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a folder: %v", err)
	}
}

// A path too long for a sockaddr_un is bound and dialed through its
// folder; only a file name too long even for that is refused.
func TestLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gsup.sock")
	l := listen(t, path, Options{Mode: 0o640})
	if err := dial(t, path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o640 || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("long path: %v %v", fi, err)
	}
	if err := listenErr(path); !errors.Is(err, ErrInUse) {
		t.Errorf("a live long path: %v, want ErrInUse", err)
	}
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Close left the long path behind: %v", err)
	}

	name := "/" + strings.Repeat("x", 108)
	if _, err := Listen(name, Options{}); err == nil || !strings.Contains(err.Error(), "socket path is 109 bytes long; the system allows 107") {
		t.Errorf("a 108-byte file name: %v", err)
	}
}

// listenErr is the error of a Listen at path that must fail.
func listenErr(path string) error {
	l, err := Listen(path, Options{})
	if err == nil {
		l.Close()
		return errors.New("no error")
	}
	return err
}

func TestAbstractAndEmptyRefused(t *testing.T) {
	if _, err := Listen("@gsup", Options{}); err == nil || !strings.Contains(err.Error(), "abstract sockets (@name) are not supported") {
		t.Errorf("Listen(@gsup): %v", err)
	}
	if _, err := Dial(context.Background(), "@gsup"); err == nil {
		t.Error("Dial(@gsup): no error")
	}
	if _, err := Listen("", Options{}); err == nil || err.Error() != "empty socket path" {
		t.Errorf("Listen(\"\"): %v", err)
	}
}

func TestCloseKeepsAnotherFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l := bind(t, path, Options{})
	// Someone removed ours and bound their own at the same path.
	os.Remove(path)
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l.Close()
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Close removed a socket that was not its own: %v", err)
	}
}

func TestPeerCred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l := bind(t, path, Options{})
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cred, err := PeerCred(sc)
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.UID) != os.Geteuid() || int(cred.GID) != os.Getegid() || int(cred.PID) != os.Getpid() {
		t.Errorf("PeerCred = %v, want uid %d, gid %d, pid %d", cred, os.Geteuid(), os.Getegid(), os.Getpid())
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if !cred.InGroup(uint32(g)) {
			t.Errorf("PeerCred groups %v lack %d (of %v)", cred.Groups, g, groups)
		}
	}
	if cred.InGroup(4242424) || slices.Contains(cred.Groups, 4242424) {
		t.Errorf("InGroup of a group the peer is not in")
	}
	if _, err := PeerCred(c.(*net.UnixConn)); err != nil {
		t.Errorf("PeerCred of the client side: %v", err)
	}
}

// Close removes the file Listen bound even after a symlinked folder on
// its path was switched, and never the file the path names then.
func TestCloseAfterSwitch(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"r1", "r2"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cur := filepath.Join(base, "cur")
	if err := os.Symlink("r1", cur); err != nil {
		t.Fatal(err)
	}
	l := listen(t, filepath.Join(cur, "s.sock"), Options{})
	if want := filepath.Join(base, "r1", "s.sock"); l.File() != want {
		t.Errorf("File = %q, want %q", l.File(), want)
	}
	if err := os.Remove(cur); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("r2", cur); err != nil {
		t.Fatal(err)
	}
	l2 := listen(t, filepath.Join(cur, "s.sock"), Options{})
	l.Close()
	if _, err := os.Lstat(filepath.Join(base, "r1", "s.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("r1/s.sock after Close: %v, want it removed", err)
	}
	if err := dial(t, l2.Path()); err != nil {
		t.Errorf("r2/s.sock after the other's Close: %v", err)
	}
}
