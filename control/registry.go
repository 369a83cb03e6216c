package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"syscall"

	"gsup/internal/handoff"
	"gsup/internal/unixsock"
)

// The control path is fixed at start, but a folder on it may be a
// symlink that a deploy switches (current -> releases/N): the socket file
// stays where gsup bound it, and the path then leads to a release that
// has none. So gsup also binds the socket in a runtime folder only its
// uid may enter, under a name derived from the path (Register), and a
// client that finds no file at the path looks there (Client.Registry);
// after a reload gsup binds the path again where it now leads (Follow).

// Kinds of the sockets bound besides the control path.
const (
	KindRegistry = "registry" // in the runtime folder (Register)
	KindFollowed = "followed" // the control path where it leads now (Follow)
)

// AlsoFD is a socket bound besides the control path, with its
// descriptor, handed across an in-place upgrade.
type AlsoFD struct {
	Kind string `json:"kind"`
	Path string `json:"path"` // as bound
	File string `json:"file"` // unixsock.Listener.File
	FD   int    `json:"fd"`
}

// alsoSocket is a socket the Server serves besides ln.
type alsoSocket struct {
	ln   *unixsock.Listener
	kind string
	pl   *handoff.Pausable // ln as hs serves it
}

func alsoListeners(also []*alsoSocket) []*unixsock.Listener {
	out := make([]*unixsock.Listener, len(also))
	for i, a := range also {
		out[i] = a.ln
	}
	return out
}

// RuntimeDirs are the runtime folders of gsup's control sockets, best
// first (unixsock.RuntimeDirs): a server registers in the first, a
// client looks in each.
func RuntimeDirs(getenv func(string) string) []string {
	return unixsock.RuntimeDirs("gsup", getenv)
}

// registryName is the file name, in a runtime folder, of the socket
// registered for the control path logical (absolute, as the user named
// it): a hash, so that every path has its own and any path fits.
func registryName(logical string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(logical)))
	return hex.EncodeToString(sum[:16]) + ".sock"
}

// logical is the control path as given to Listen, made absolute.
func (s *Server) logical() string {
	p, err := filepath.Abs(s.ln.Path())
	if err != nil {
		return s.ln.Path()
	}
	return p
}

// Register also binds the control socket in dir, a runtime folder (made
// 0700 when missing; refused unless it is a folder of gsup's uid with
// mode 0700), under a name derived from the control path. It returns that
// socket's path; an error wrapping ErrRunning when a live gsup answers
// there (it serves the same control path). The socket gets the same
// checks of who may ask what, and Close removes it.
func (s *Server) Register(dir string) (string, error) {
	if err := unixsock.MakePrivateDir(dir); err != nil {
		return "", fmt.Errorf("control socket registry: %w", err)
	}
	path := filepath.Join(dir, registryName(s.logical()))
	ln, err := unixsock.Listen(path, unixsock.Options{Mode: s.mode})
	if errors.Is(err, unixsock.ErrInUse) {
		return "", fmt.Errorf("%w at %s (found through %s)", ErrRunning, s.ln.Path(), path)
	}
	if err != nil {
		return "", fmt.Errorf("control socket registry: %w", err)
	}
	s.addAlso(&alsoSocket{ln: ln, kind: KindRegistry}, "")
	return path, nil
}

// Follow binds the control socket again at its path when the path no
// longer names a socket file this Server bound (a folder on it is a
// symlink that was switched), so that clients that do not look in the
// runtime folder (another user's, curl) reach gsup there, and the folder
// it was bound in first can be deleted. The socket an earlier Follow
// bound is closed. It returns the path bound, "" when there was nothing
// to do.
func (s *Server) Follow() (string, error) {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	path := s.ln.Path()
	s.mu.Lock()
	done := s.closed || s.ln.At(path)
	for _, a := range s.also {
		done = done || a.kind == KindFollowed && a.ln.At(path)
	}
	s.mu.Unlock()
	if done {
		return "", nil
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(s.logical())); err == nil {
		path = filepath.Join(dir, filepath.Base(path))
	}
	ln, err := unixsock.Listen(s.ln.Path(), unixsock.Options{Mode: s.mode})
	if err != nil {
		return "", fmt.Errorf("control socket: %w", err)
	}
	s.addAlso(&alsoSocket{ln: ln, kind: KindFollowed}, KindFollowed)
	return path, nil
}

// addAlso serves a (at once when the Server serves), after closing the
// sockets of kind replace.
func (s *Server) addAlso(a *alsoSocket, replace string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		a.ln.Close()
		return
	}
	var keep, gone []*alsoSocket
	for _, o := range s.also {
		if o.kind == replace {
			gone = append(gone, o)
		} else {
			keep = append(keep, o)
		}
	}
	s.also = append(keep, a)
	if s.serving {
		s.serveAlsoLocked(a)
	}
	s.mu.Unlock()
	for _, o := range gone {
		o.ln.Close() // its Serve returns; its connections are served on
	}
}

// serveAlsoLocked serves a with hs (mu held).
func (s *Server) serveAlsoLocked(a *alsoSocket) {
	if a.pl == nil {
		a.pl = &handoff.Pausable{Listener: a.ln, Socket: a.ln}
	}
	hs, pl, log := s.hs, a.pl, s.log
	go func() {
		err := hs.Serve(pl)
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) && !pl.Paused() && log != nil {
			log.Errorf("control: %s: %v", a.ln.Path(), err)
		}
	}()
}

// AlsoFDs returns the sockets bound besides the control path with their
// descriptors (owned by the Server), for an in-place upgrade.
func (s *Server) AlsoFDs() ([]AlsoFD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AlsoFD
	for _, a := range s.also {
		fd, err := handoff.FD(a.ln)
		if err != nil {
			return nil, fmt.Errorf("control socket %s: %w", a.ln.Path(), err)
		}
		out = append(out, AlsoFD{Kind: a.kind, Path: a.ln.Path(), File: a.ln.File(), FD: fd})
	}
	return out, nil
}

// InheritAlso serves again a socket AlsoFDs returned before an in-place
// upgrade.
func (s *Server) InheritAlso(a AlsoFD) error {
	ln, err := inheritListener(a.FD, a.Path, a.File)
	if err != nil {
		return err
	}
	s.addAlso(&alsoSocket{ln: ln, kind: a.Kind}, "")
	return nil
}

// Registry makes c look, when nobody accepts at its path (no file, or a
// stale socket of a gsup that was killed), for the
// socket a gsup registered for logical (the control path, absolute, as
// the user named it) in each of dirs in turn (RuntimeDirs). A folder
// that is not private to this uid is skipped, and named in the error
// when no gsup is found. It returns c; call it before any request.
func (c *Client) Registry(logical string, dirs []string) *Client {
	c.logical, c.dirs = logical, dirs
	return c
}

// dialRegistry dials the socket registered for c's path, after err
// (ENOENT, ECONNREFUSED) at the path itself.
func (c *Client) dialRegistry(ctx context.Context, err error) (net.Conn, error) {
	ni := &noInstanceError{path: c.path, err: err}
	if c.logical == "" {
		return nil, ni
	}
	name := registryName(c.logical)
	for _, dir := range c.dirs {
		if err := unixsock.CheckPrivateDir(dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				ni.notes = append(ni.notes, err.Error())
			}
			continue
		}
		conn, err := unixsock.Dial(ctx, filepath.Join(dir, name))
		switch {
		case err == nil:
			return conn, nil
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		default:
			ni.notes = append(ni.notes, err.Error())
		}
	}
	return nil, ni
}
