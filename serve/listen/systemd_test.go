package listen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gsup/internal/rawsock"
	"gsup/internal/testprog"
)

// The test binary doubles as a socket-activated program: with
// GSUP_LISTEN_TEST_CHILD=inherited, TestMain runs inheritedChild instead of
// the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GSUP_LISTEN_TEST_CHILD") == "inherited" {
		os.Exit(inheritedChild())
	}
	rawsock.Force(true) // the front's sockets are rawsock's, whatever the processors
	os.Exit(m.Run())
}

type childListener struct {
	Name, Network, Addr string
}

type childReport struct {
	Serve, Held []childListener
	Err         string
	Env         []string // LISTEN_* variables still set after Inherited
}

// inheritedChild calls Inherited, prints a childReport line on stdout, then
// serves infoHandler on the served sockets until stdin closes.
func inheritedChild() int {
	var exclude []string
	if e := os.Getenv("GSUP_LISTEN_TEST_EXCLUDE"); e != "" {
		exclude = strings.Split(e, ",")
	}
	serve, held, err := Inherited(Options{ProxyProtocol: os.Getenv("GSUP_LISTEN_TEST_PROXY")}, exclude)
	var r childReport
	if err != nil {
		r.Err = err.Error()
	}
	for _, l := range serve {
		r.Serve = append(r.Serve, childListener{l.Name, l.Addr().Network(), l.Addr().String()})
	}
	for _, l := range held {
		r.Held = append(r.Held, childListener{l.Name, l.Addr().Network(), l.Addr().String()})
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(v); ok {
			r.Env = append(r.Env, v)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(infoHandler), ConnContext: ConnContext, ReadHeaderTimeout: 5 * time.Second}
	for _, l := range serve {
		go func() { _ = srv.Serve(l) }()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
	closeAll(held)
	return 0
}

// startChild starts cmd, returns its report, and stops it when the test ends.
func startChild(t *testing.T, cmd *exec.Cmd) childReport {
	t.Helper()
	return readReport(t, runChild(t, "the child", cmd))
}

// runChild starts cmd (name says what it is in failures) and returns its
// stdout. When the test ends it closes cmd's stdin, which ends the child,
// and fails unless cmd then exits 0 within 10s; a failed test shows cmd's
// stderr.
func runChild(t *testing.T, name string, cmd *exec.Cmd) io.Reader {
	t.Helper()
	var stderr logBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's stderr:\n%s", name, stderr.String())
		}
	})
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not exit", name)
			<-done
		}
	})
	return stdout
}

// readReport reads the child's report, the first line of its stdout, and
// then drains the rest.
func readReport(t *testing.T, stdout io.Reader) childReport {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		var r childReport
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatalf("child said %q: %v", s, err)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no report from the child")
	}
	return childReport{}
}

func listenerFile(t *testing.T, l net.Listener) *os.File {
	t.Helper()
	f, err := l.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// shellWithListenPID runs the test binary through sh, which sets
// LISTEN_PID to its own pid and then execs: os/exec cannot set a child's
// own pid in its environment.
func shellWithListenPID(env ...string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0"`, os.Args[0])
	cmd.Env = append(childEnv(), env...)
	return cmd
}

// childEnv is the environment that makes the test binary run as the
// socket-activated child.
func childEnv() []string {
	return append(os.Environ(), "GSUP_LISTEN_TEST_CHILD=inherited", "GORACE=atexit_sleep_ms=0")
}

func TestInherited(t *testing.T) {
	web := testListen(t, "tcp4", "127.0.0.1:0")
	kids := testListen(t, "unix", filepath.Join(t.TempDir(), "kids.sock"))
	admin := testListen(t, "unix", filepath.Join(t.TempDir(), "admin.sock"))

	cmd := shellWithListenPID("LISTEN_FDS=3", "LISTEN_FDNAMES=web:kids:admin",
		"GSUP_LISTEN_TEST_EXCLUDE=kids,other", "GSUP_LISTEN_TEST_PROXY=v1")
	cmd.ExtraFiles = []*os.File{listenerFile(t, web), listenerFile(t, kids), listenerFile(t, admin)}
	r := startChild(t, cmd)
	if r.Err != "" {
		t.Fatal(r.Err)
	}
	wantServe := []childListener{{"web", "tcp", web.Addr().String()}, {"admin", "unix", admin.Addr().String()}}
	wantHeld := []childListener{{"kids", "unix", kids.Addr().String()}}
	if !slices.Equal(r.Serve, wantServe) || !slices.Equal(r.Held, wantHeld) {
		t.Errorf("serve %v held %v\nwant %v and %v", r.Serve, r.Held, wantServe, wantHeld)
	}
	if len(r.Env) != 0 {
		t.Errorf("still set: %v", r.Env)
	}
	// The child serves the inherited socket, with the PROXY protocol on.
	_, got := get(t, web, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n"), 2)
	for _, s := range got {
		if s.Addr != "192.0.2.1:1000" || !s.Proxied {
			t.Errorf("child saw %+v", s)
		}
	}
	_, got = get(t, admin, nil, 1)
	if !got[0].Unix {
		t.Errorf("child saw %+v", got[0])
	}
}

func TestInheritedNotForUs(t *testing.T) {
	web := testListen(t, "tcp4", "127.0.0.1:0")
	// LISTEN_PID names another process (a parent that did not clean up).
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(childEnv(), "LISTEN_PID=1", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{listenerFile(t, web)}
	r := startChild(t, cmd)
	if r.Err != "" || len(r.Serve) != 0 || len(r.Held) != 0 || len(r.Env) != 0 {
		t.Errorf("report %+v", r)
	}
}

func TestInheritedNotAListener(t *testing.T) {
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := shellWithListenPID("LISTEN_FDS=1", "LISTEN_FDNAMES=web")
	cmd.ExtraFiles = []*os.File{f}
	r := startChild(t, cmd)
	if !strings.Contains(r.Err, `socket "web" from systemd (fd 3): `) || len(r.Serve) != 0 {
		t.Errorf("report %+v", r)
	}
}

func TestInheritedNoActivation(t *testing.T) {
	t.Setenv("LISTEN_PID", "")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	serve, held, err := Inherited(Options{}, nil)
	if err != nil || serve != nil || held != nil {
		t.Errorf("Inherited = %v, %v, %v", serve, held, err)
	}
	if _, _, err := Inherited(Options{ProxyProtocol: "bogus"}, nil); err == nil {
		t.Error("bad options accepted")
	}
}

// TestInheritedSystemdSocketActivate runs the child under systemd's
// systemd-socket-activate, which sets LISTEN_PID itself.
func TestInheritedSystemdSocketActivate(t *testing.T) {
	activate := testprog.NeedProgram(t, "systemd-socket-activate", "systemd")
	sock := filepath.Join(t.TempDir(), "web.sock")
	cmd := exec.Command(activate, "-l", sock, "--fdname=web",
		"-E", "GSUP_LISTEN_TEST_CHILD=inherited", "-E", "GSUP_LISTEN_TEST_PROXY=auto",
		"-E", "GORACE=atexit_sleep_ms=0", os.Args[0])
	stdout := runChild(t, "systemd-socket-activate", cmd)
	// systemd-socket-activate binds first and starts the child at the first connection.
	var c net.Conn
	var err error
	testprog.Eventually(t, "dialling "+sock, 10*time.Second, func() (bool, string) {
		c, err = net.Dial("unix", sock)
		return err == nil, fmt.Sprint(err)
	})
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, got := getConn(t, c, []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n"), 1)
	if got[0].Addr != "[2001:db8::1]:1000" || !got[0].Unix {
		t.Errorf("child saw %+v", got[0])
	}
	if r := readReport(t, stdout); r.Err != "" || len(r.Serve) != 1 || r.Serve[0].Name != "web" || len(r.Env) != 0 {
		t.Errorf("report %+v", r)
	}
}
