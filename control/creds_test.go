package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"gsup/procfile"
)

// dialEnv makes the test binary a client that dials the socket it names
// and exits: 0 when /v1/ps answered, 13 when connect(2) was refused with
// EACCES, 43 when the server answered 403, 1 otherwise.
const dialEnv = "GSUP_CONTROL_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialEnv); path != "" {
		os.Exit(dialHelper(path))
	}
	if path := os.Getenv(emfileEnv); path != "" {
		os.Exit(emfileHelper(path))
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
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			return 43
		}
		return 1
	}
	return 0
}

// Another uid cannot connect with the default mode 0600; with 0660 it can
// when the socket's group is one of its groups, but it is answered only
// when control_allow names its uid or one of its groups: else 403 and a
// warning.
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
	dial := func(path string, groups ...uint32) int {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), dialEnv+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: append([]uint32{}, groups...)}}
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
	log, hook := logtest.NewNullLogger()
	serveAt := func(path string, mode os.FileMode) *Server {
		s, err := Listen(path, mode)
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(newFake(0), log)
		t.Cleanup(func() { s.Close() })
		return s
	}

	p1 := filepath.Join(dir, "default.sock")
	serveAt(p1, 0)
	if code := dial(p1); code != 13 {
		t.Errorf("uid %d with mode 0600: exit %d, want 13 (EACCES)", uid, code)
	}

	p2 := filepath.Join(dir, "group.sock")
	s := serveAt(p2, 0o660)
	if code := dial(p2); code != 13 {
		t.Errorf("uid %d with mode 0660 and root's group: exit %d, want 13 (EACCES)", uid, code)
	}
	if err := os.Chown(p2, 0, gid); err != nil {
		t.Fatal(err)
	}
	// Connected, but not answered: the mode alone lets nobody in.
	hook.Reset()
	if code := dial(p2); code != 43 {
		t.Errorf("uid %d with mode 0660 and group %d, no control_allow: exit %d, want 43 (403)", uid, gid, code)
	}
	entries := hook.AllEntries()
	if len(entries) != 1 || entries[0].Level != logrus.WarnLevel || entries[0].Data["uid"] != uint32(uid) ||
		entries[0].Data["gid"] != uint32(gid) || entries[0].Data["pid"] == nil ||
		!strings.Contains(entries[0].Message, "control: refused GET /v1/ps") {
		for _, e := range entries {
			t.Logf("%v %s %v", e.Level, e.Message, e.Data)
		}
		t.Errorf("refusal: %d log entries, want one warning with uid %d, gid %d and pid", len(entries), uid, gid)
	}
	for _, tc := range []struct {
		allow  []procfile.ControlPeer
		groups []uint32
		want   int
	}{
		{[]procfile.ControlPeer{{Name: "65534", ID: uid}}, nil, 0},
		{[]procfile.ControlPeer{{Name: "@65534", ID: gid, Group: true}}, nil, 0},
		{[]procfile.ControlPeer{{Name: "@4242", ID: 4242, Group: true}}, []uint32{4242}, 0},
		{[]procfile.ControlPeer{{Name: "@4242", ID: 4242, Group: true}}, nil, 43},
		{[]procfile.ControlPeer{{Name: "1000", ID: 1000}, {Name: "@1000", ID: 1000, Group: true}}, nil, 43},
		{nil, nil, 43},
	} {
		s.Allow(tc.allow)
		if code := dial(p2, tc.groups...); code != tc.want {
			t.Errorf("uid %d (groups %v) with control_allow %v: exit %d, want %d", uid, tc.groups, tc.allow, code, tc.want)
		}
	}

	// The socket Follow binds where a switched symlink leads is the same
	// server, with the same checks.
	cur := releases(t, dir, "r1", "r2")
	p3 := filepath.Join(cur, "g.sock")
	s3 := serveAt(p3, 0o660)
	switchLink(t, cur, "r2")
	followed, err := s3.Follow()
	if err != nil || followed != filepath.Join(dir, "r2", "g.sock") {
		t.Fatalf("Follow = %q, %v", followed, err)
	}
	if err := os.Chown(followed, 0, gid); err != nil {
		t.Fatal(err)
	}
	if code := dial(p3); code != 43 {
		t.Errorf("uid %d through the followed socket, no control_allow: exit %d, want 43 (403)", uid, code)
	}
	s3.Allow([]procfile.ControlPeer{{Name: "65534", ID: uid}})
	if code := dial(p3); code != 0 {
		t.Errorf("uid %d through the followed socket, in control_allow: exit %d, want 0", uid, code)
	}
}

// emfileEnv makes the test binary serve the control socket it names with
// its descriptors used up, and print gsup's log (JSON) to stdout: it
// exits 0 once a request queued meanwhile was answered.
const emfileEnv = "GSUP_CONTROL_TEST_EMFILE"

func emfileHelper(path string) int {
	log := logrus.New()
	log.SetOutput(os.Stdout)
	log.SetFormatter(&logrus.JSONFormatter{})
	s, err := Listen(path, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	// A client waits in the backlog while no descriptor is left to accept it.
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 256, Max: 256}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var fill []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		fill = append(fill, f)
	}
	warned := make(chan struct{})
	var once sync.Once
	log.AddHook(hookFunc(func(e *logrus.Entry) {
		if strings.Contains(e.Message, "ccept") {
			once.Do(func() { close(warned) })
		}
	}))
	go s.Serve(newFake(0), log)
	select {
	case <-warned:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "no accept error logged")
		return 1
	}
	for _, f := range fill {
		f.Close()
	}
	if _, err := io.WriteString(c, "GET /v1/ps HTTP/1.1\r\nHost: gsup\r\nConnection: close\r\n\r\n"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "no answer once descriptors came back:", err)
		return 1
	}
	return 0
}

type hookFunc func(*logrus.Entry)

func (hookFunc) Levels() []logrus.Level       { return logrus.AllLevels }
func (h hookFunc) Fire(e *logrus.Entry) error { h(e); return nil }

// An accept error (no descriptor left) is logged through gsup's logger,
// not Go's default log, and the socket answers again once descriptors
// are back.
func TestAcceptErrorsLogged(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), emfileEnv+"="+filepath.Join(shortTempDir(t), "gsup.sock"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("written outside gsup's log:\n%s", stderr.String())
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var e struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("not a line of gsup's log: %q", line)
			continue
		}
		if e.Level == "warning" && strings.HasPrefix(e.Msg, "control: ") && strings.Contains(e.Msg, "too many open files") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning about the accept error in gsup's log:\n%s", stdout.String())
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
