package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// RuntimeDirs returns the folders where a process of the effective uid
// keeps sockets only that uid (and root) may reach, best first:
// $XDG_RUNTIME_DIR/NAME when XDG_RUNTIME_DIR is set, /run/user/UID/NAME
// when /run/user/UID exists, then $TMPDIR/NAME-UID and /tmp/NAME-UID.
// A server binds in the first (MakePrivateDir); a client looks in every
// one, as the two may not share the same environment (a service started
// at boot has no XDG_RUNTIME_DIR, a login shell has one). getenv is
// os.Getenv or its like.
func RuntimeDirs(name string, getenv func(string) string) []string {
	uid := strconv.Itoa(os.Geteuid())
	var dirs []string
	add := func(d string) {
		for _, have := range dirs {
			if have == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	if x := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		add(filepath.Join(x, name))
	}
	if fi, err := os.Stat("/run/user/" + uid); err == nil && fi.IsDir() {
		add(filepath.Join("/run/user", uid, name))
	}
	if t := getenv("TMPDIR"); filepath.IsAbs(t) {
		add(filepath.Join(t, name+"-"+uid))
	}
	add(filepath.Join("/tmp", name+"-"+uid))
	return dirs
}

// MakePrivateDir creates dir with mode 0700 when it is missing (its
// parent must exist), then checks it as CheckPrivateDir does.
func MakePrivateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("runtime folder %s: %w", dir, err)
	}
	return CheckPrivateDir(dir)
}

// CheckPrivateDir refuses dir unless it is a folder (not a symlink) of
// the effective uid with mode 0700: nobody else may have put a socket in
// it or may connect to one there. A missing dir is an error wrapping
// fs.ErrNotExist.
func CheckPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("runtime folder %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch uid := os.Geteuid(); {
	case !fi.IsDir():
		return fmt.Errorf("runtime folder %s is not a folder (%s)", dir, fi.Mode().Type())
	case !ok:
		return fmt.Errorf("runtime folder %s: no owner", dir)
	case int(st.Uid) != uid:
		return fmt.Errorf("runtime folder %s is owned by uid %d, not %d: not used", dir, st.Uid, uid)
	case fi.Mode().Perm() != 0o700:
		return fmt.Errorf("runtime folder %s has mode %04o; want 0700: not used", dir, fi.Mode().Perm())
	}
	return nil
}
