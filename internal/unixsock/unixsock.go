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
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxPath is the longest path a sockaddr_un holds (with its NUL).
const MaxPath = len(unix.RawSockaddrUnix{}.Path) - 1

// DefaultMode is the mode of a socket file when Options.Mode is 0.
const DefaultMode = os.FileMode(0o600)

// probeTimeout bounds the dial that tells a stale socket from a live one.
const probeTimeout = 2 * time.Second

// ErrInUse is wrapped by Listen's error when a live process accepts on
// the path: "PATH is in use: another process listens on it".
var ErrInUse = errors.New("is in use")

// Options say what the socket file looks like.
type Options struct {
	// Mode is the file's permission bits; 0 means DefaultMode (0600).
	Mode os.FileMode
	// Owner and Group, when set, are given to the file after bind: names
	// or numeric ids.
	Owner, Group string
}

// Listener is a bound UNIX socket whose Close removes its file. It is
// safe for concurrent use, as net.UnixListener.
type Listener struct {
	*net.UnixListener
	path     string // as given
	abs      string // absolute, for Close
	dev, ino uint64
	once     sync.Once
}

// testHookAfterBind, when set, runs right after bind, before anything
// else touches the file.
var testHookAfterBind func(path string)

// Listen binds a UNIX stream socket at path with o's mode and owner (see
// the package comment). Errors name the path.
func Listen(path string, o Options) (*Listener, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	mode := o.Mode.Perm()
	if o.Mode == 0 {
		mode = DefaultMode
	}
	uid, gid, err := LookupOwner(o.Owner, o.Group)
	if err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = unix.Fchmod(int(fd), uint32(mode)) }); err != nil {
			return err
		}
		if ferr != nil {
			return fmt.Errorf("fchmod: %w", ferr)
		}
		return nil
	}}
	var ul *net.UnixListener
	err = viaFolder(path, func(addr string) error {
		l, err := lc.Listen(context.Background(), "unix", addr)
		if err != nil {
			return err
		}
		ul = l.(*net.UnixListener)
		return nil
	})
	if err != nil {
		var oe *net.OpError
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, fmt.Errorf("%s %w: another process bound it first", path, ErrInUse)
		case errors.As(err, &oe):
			return nil, fmt.Errorf("binding %s: %w", path, oe.Err)
		}
		return nil, err
	}
	ul.SetUnlinkOnClose(false) // Close removes it, only while it is ours
	l := &Listener{UnixListener: ul, path: path, abs: path}
	if abs, err := filepath.Abs(path); err == nil {
		l.abs = abs
	}
	if testHookAfterBind != nil {
		testHookAfterBind(path)
	}
	if err := l.setup(mode, uid, gid); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Adopt makes a Listener of ul, a socket bound at path by an earlier
// program of this process (an in-place upgrade keeps it across exec):
// Close removes path only while it is still that socket.
func Adopt(ul *net.UnixListener, path string) (*Listener, error) {
	ul.SetUnlinkOnClose(false)
	l := &Listener{UnixListener: ul, path: path, abs: path}
	if abs, err := filepath.Abs(path); err == nil {
		l.abs = abs
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.abs, &st); err != nil {
		return nil, fmt.Errorf("socket file %s: %w", path, err)
	}
	l.dev, l.ino = st.Dev, st.Ino
	return l, nil
}

// AdoptFile is Adopt for a socket bound by the name path whose file is
// file (File of the Listener that bound it: a folder on path may since
// lead elsewhere). A file that is gone (its folder was deleted) is no
// error: Close then removes nothing.
func AdoptFile(ul *net.UnixListener, path, file string) (*Listener, error) {
	ul.SetUnlinkOnClose(false)
	l := &Listener{UnixListener: ul, path: path, abs: file}
	var st unix.Stat_t
	switch err := unix.Lstat(file, &st); {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK:
		l.dev, l.ino = st.Dev, st.Ino
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("socket file %s: %w", file, err)
	}
	return l, nil
}

// setup gives the bound file its owner and exact mode through an O_PATH
// descriptor (no symlink is ever followed), and records its identity.
func (l *Listener) setup(mode os.FileMode, uid, gid int) error {
	fd, err := unix.Open(l.path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the socket file %s: %w", l.path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("socket file %s: %w", l.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s was replaced by something that is not a socket right after bind", l.path)
	}
	l.dev, l.ino = st.Dev, st.Ino
	// Where the file is, whatever a symlinked folder on path names later.
	if file, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil && filepath.IsAbs(file) {
		l.abs = file
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("chown of socket file %s: %w", l.path, err)
		}
	}
	if os.FileMode(st.Mode).Perm() != mode {
		// chmod of the descriptor's magic link reaches the inode itself.
		if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), uint32(mode)); err != nil {
			return fmt.Errorf("chmod of socket file %s: %w", l.path, err)
		}
	}
	return nil
}

// Path is the socket's path, as given to Listen.
func (l *Listener) Path() string { return l.path }

// File is the socket file's absolute path with every symlink resolved as
// it was at bind: what Close removes.
func (l *Listener) File() string { return l.abs }

// At reports whether path names the socket file l bound (same device
// and inode); a symlink at path is not followed.
func (l *Listener) At(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Dev == l.dev && st.Ino == l.ino
}

// Close closes the socket and removes its file, unless the path now holds
// another file. It may be called more than once.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if !l.At(l.abs) {
			return
		}
		if rerr := os.Remove(l.abs); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("removing socket file %s: %w", l.path, rerr)
		}
	})
	return err
}

// Dial connects to the UNIX stream socket at path, long paths included.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	var c net.Conn
	err := viaFolder(path, func(addr string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", addr)
		return err
	})
	return c, err
}

func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty socket path")
	case path[0] == '@':
		return errors.New("abstract sockets (@name) are not supported: they have no file mode to restrict who connects")
	}
	return nil
}

// viaFolder calls fn with an address for path that fits a sockaddr_un:
// path itself, or /proc/self/fd/N/NAME with N a descriptor of its folder.
func viaFolder(path string, fn func(addr string) error) error {
	if len(path) <= MaxPath {
		return fn(path)
	}
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket folder %s: %w", dir, err)
	}
	defer unix.Close(fd)
	addr := "/proc/self/fd/" + strconv.Itoa(fd) + "/" + name
	if len(addr) > MaxPath {
		return fmt.Errorf("socket path is %d bytes long; the system allows %d, and its file name is too long even to reach through its folder", len(path), MaxPath)
	}
	return fn(addr)
}

// removeStale removes a socket file that nobody accepts on. A live
// socket, a symlink or anything else that is not a socket is an error,
// and left alone.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	switch fi.Mode().Type() {
	case fs.ModeSocket:
	case fs.ModeSymlink:
		return fmt.Errorf("%s is a symlink: gsup neither follows nor replaces it", path)
	default:
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	c, err := Dial(ctx, path)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("%s %w: another process listens on it", path, ErrInUse)
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("%s %w: another process listens on it (backlog full)", path, ErrInUse)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("checking the existing socket %s: %w", path, err)
}

// LookupOwner resolves a socket file's owner and group (names or numeric
// ids); -1 stands for one that is empty.
func LookupOwner(owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner != "" {
		if uid, err = LookupUser(owner); err != nil {
			return -1, -1, fmt.Errorf("unix socket owner: %w", err)
		}
	}
	if group != "" {
		if gid, err = LookupGroup(group); err != nil {
			return -1, -1, fmt.Errorf("unix socket group: %w", err)
		}
	}
	return uid, gid, nil
}

// LookupUser returns the uid of a user name, or a numeric uid as it is.
func LookupUser(name string) (int, error) {
	return lookupID(name, user.Lookup, func(u *user.User) string { return u.Uid })
}

// LookupGroup returns the gid of a group name, or a numeric gid as it is.
func LookupGroup(name string) (int, error) {
	return lookupID(name, user.LookupGroup, func(g *user.Group) string { return g.Gid })
}

// lookupID returns name as a number when it is one (never looked up, so a
// numeric id needs no entry in the database), else the id that lookup
// finds for it.
func lookupID[T any](name string, lookup func(string) (*T, error), id func(*T) string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	e, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id(e))
}
