package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
)

// dialEnv makes the test binary a client that dials the socket it names
// and exits: 0 when /v1/ps answered, 13 when connect(2) was refused with
// EACCES, 1 otherwise.
const dialEnv = "GSUP_CONTROL_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialEnv); path != "" {
		os.Exit(dialHelper(path))
	}
	os.Exit(m.Run())
}

func dialHelper(path string) int {
	c, err := net.Dial("unix", path)
	if errors.Is(err, syscall.EACCES) {
		return 13
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.Close()
	if _, err := NewClient(path).Status(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Another uid cannot connect with the default mode 0600; with 0660 it can
// when the socket's group is one of its groups.
func TestOtherUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid (uid 65534)")
	}
	const uid, gid = 65534, 65534
	// A folder and a copy of this binary that uid 65534 can reach.
	dir, err := os.MkdirTemp("/tmp", "gsc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	dial := func(path string) int {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), dialEnv+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ee.ExitCode() == 1 {
				t.Logf("client: %s", out)
			}
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("running the client: %v", err)
		}
		return 0
	}
	serveAt := func(path string, mode os.FileMode) *Server {
		s, err := Listen(path, mode)
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(newFake(0), logrus.New())
		t.Cleanup(func() { s.Close() })
		return s
	}

	p1 := filepath.Join(dir, "default.sock")
	serveAt(p1, 0)
	if code := dial(p1); code != 13 {
		t.Errorf("uid %d with mode 0600: exit %d, want 13 (EACCES)", uid, code)
	}

	p2 := filepath.Join(dir, "group.sock")
	serveAt(p2, 0o660)
	if code := dial(p2); code != 13 {
		t.Errorf("uid %d with mode 0660 and root's group: exit %d, want 13 (EACCES)", uid, code)
	}
	if err := os.Chown(p2, 0, gid); err != nil {
		t.Fatal(err)
	}
	if code := dial(p2); code != 0 {
		t.Errorf("uid %d with mode 0660 and group %d: exit %d, want 0", uid, gid, code)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
