package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	logtest "github.com/sirupsen/logrus/hooks/test"
)

// switchLink points the symlink link at target, atomically (as `ln -sfn
// T link.new && mv -T link.new link`).
func switchLink(t *testing.T, link, target string) {
	t.Helper()
	if err := os.Symlink(target, link+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link+".new", link); err != nil {
		t.Fatal(err)
	}
}

// releases makes the folders names in base and base/cur, a symlink to
// the first; it returns base/cur.
func releases(t *testing.T, base string, names ...string) string {
	t.Helper()
	for _, d := range names {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cur := filepath.Join(base, "cur")
	if err := os.Symlink(names[0], cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// A control path through a switched symlink: reached through the
// registry, then where it leads after Follow; every file is removed at
// Close; a registry folder open to others is not searched.
func TestRegisterFollow(t *testing.T) {
	base := shortTempDir(t)
	cur := releases(t, base, "r1", "r2", "r3")
	path := filepath.Join(cur, "g.sock")
	s, err := Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	rt := filepath.Join(base, "rt")
	reg, err := s.Register(rt)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(rt)
	if filepath.Dir(reg) != rt || err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("Register = %q, folder %v, %v; want a socket in %s (0700)", reg, fi.Mode(), err, rt)
	}
	if m := modeOf(t, reg); m != 0o600 {
		t.Errorf("registered socket mode %04o", m)
	}
	log, _ := logtest.NewNullLogger()
	done := make(chan error, 1)
	go func() { done <- s.Serve(newFake(0), log) }()
	ctx := context.Background()
	status := func(c *Client) error {
		t.Helper()
		_, err := c.Status(ctx)
		return err
	}
	registered := func() *Client { return NewClient(path).Registry(path, []string{filepath.Join(base, "none"), rt}) }

	// A second server for the same path is refused, and leaves no file.
	switchLink(t, cur, "r2")
	s2, err := Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Register(rt); !errors.Is(err, ErrRunning) {
		t.Errorf("Register of a second server = %v, want ErrRunning", err)
	}
	s2.Close()

	if err := status(NewClient(path)); !errors.Is(err, ErrNoInstance) {
		t.Errorf("after the switch, without the registry: %v, want ErrNoInstance", err)
	}
	if err := status(registered()); err != nil {
		t.Errorf("after the switch, through the registry: %v", err)
	}
	if got, err := s.Follow(); err != nil || got != filepath.Join(base, "r2", "g.sock") {
		t.Errorf("Follow = %q, %v; want r2/g.sock", got, err)
	}
	if err := status(NewClient(path)); err != nil {
		t.Errorf("after Follow: %v", err)
	}
	if got, err := s.Follow(); got != "" || err != nil {
		t.Errorf("Follow again = %q, %v; want nothing to do", got, err)
	}
	switchLink(t, cur, "r1")
	if got, err := s.Follow(); got != "" || err != nil {
		t.Errorf("Follow back to r1 = %q, %v; want nothing to do (bound there first)", got, err)
	}
	switchLink(t, cur, "r3")
	if got, err := s.Follow(); err != nil || got != filepath.Join(base, "r3", "g.sock") {
		t.Errorf("Follow = %q, %v; want r3/g.sock", got, err)
	}
	if _, err := os.Lstat(filepath.Join(base, "r2", "g.sock")); err == nil {
		t.Error("r2/g.sock is still there after Follow bound r3's")
	}

	if err := os.Chmod(rt, 0o755); err != nil {
		t.Fatal(err)
	}
	switchLink(t, cur, "r2")
	err = status(registered())
	if !errors.Is(err, ErrNoInstance) || !strings.Contains(err.Error(), "has mode 0755") {
		t.Errorf("with the registry folder 0755: %v; want ErrNoInstance naming the mode", err)
	}

	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	for _, p := range []string{reg, filepath.Join(base, "r1", "g.sock"), filepath.Join(base, "r3", "g.sock")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after Close", p)
		}
	}
}
