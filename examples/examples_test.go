// Package examples_test builds the example programs and checks that they
// behave as the README and gsup.toml expect: listening where gsup says,
// answering their routes, saying READY=1, and stopping gracefully on TERM.
package examples_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"gsup/internal/testprog"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles ./web and ./worker once per test binary.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gsup-examples")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out, err := exec.Command(goTool, "build", "-o", binDir+"/", "./web", "./worker").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// waitOutput polls until out contains s.
func waitOutput(t *testing.T, out *testprog.Buffer, s string) {
	t.Helper()
	testprog.Eventually(t, fmt.Sprintf("%q in the testprog.Buffer", s), 10*time.Second, func() (bool, string) {
		return strings.Contains(out.String(), s), "\n" + out.String()
	})
}

// start runs name with env added to the test's environment.
func start(t *testing.T, cmd *exec.Cmd, env ...string) *testprog.Buffer {
	t.Helper()
	out := &testprog.Buffer{}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return out
}

// stop sends TERM and expects a clean exit.
func stop(t *testing.T, cmd *exec.Cmd, out *testprog.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after TERM: %v\n%s", err, out)
	}
}

func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", url, resp.StatusCode, body, err)
	}
	return string(body)
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

func TestWebOnPort(t *testing.T) {
	bin := build(t)
	port := freePort(t)
	cmd := exec.Command(filepath.Join(bin, "web"))
	out := start(t, cmd, "PORT="+port, "PS=web.1", "GSUP_SOCKET=", "LISTEN_FDS=", "NOTIFY_SOCKET=")
	waitOutput(t, out, "listening on 127.0.0.1:"+port)
	base := "http://127.0.0.1:" + port
	client := &http.Client{}

	if got, want := get(t, client, base+"/"), fmt.Sprintf("hello from web.1 (pid %d)\n", cmd.Process.Pid); got != want {
		t.Errorf("GET / = %q, want %q", got, want)
	}
	req, _ := http.NewRequest("GET", base+"/echo?x=1", nil)
	req.Host = "example.com"
	req.Header.Set("X-B", "2")
	req.Header.Set("X-A", "1")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	echo := string(body)
	for _, want := range []string{"GET /echo?x=1 HTTP/1.1\n", "Host: example.com\n", "RemoteAddr: 127.0.0.1:", "X-A: 1\nX-B: 2\n"} {
		if !strings.Contains(echo, want) {
			t.Errorf("GET /echo: no %q in\n%s", want, echo)
		}
	}
	if got := get(t, client, base+"/slow?ms=10"); got != "slept 10 ms\n" {
		t.Errorf("GET /slow?ms=10 = %q", got)
	}
	waitOutput(t, out, "GET /slow?ms=10 200")

	// A stream in flight when TERM arrives is finished, then web exits 0.
	resp, err = client.Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("/stream Content-Type %q", ct)
	}
	rest := testprog.TermMidStream(t, cmd, resp.Body, "id: 1\n", out)
	if n := strings.Count(rest, "data: event "); n != 5 {
		t.Errorf("/stream: %d events, want 5:\n%s", n, rest)
	}
	if !strings.Contains(out.String(), "stopped\n") {
		t.Errorf("testprog.Buffer:\n%s", out)
	}
}

func TestWebUnixSocketAndNotify(t *testing.T) {
	bin := build(t)
	dir, err := os.MkdirTemp("", "gx") // short: socket paths hold 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	sock := filepath.Join(dir, "web.sock")

	cmd := exec.Command(filepath.Join(bin, "web"))
	out := start(t, cmd, "GSUP_SOCKET="+sock, "NOTIFY_SOCKET="+filepath.Join(dir, "notify"), "PS=web.2")
	notify.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notify: %q, %v\n%s", buf[:n], err, out)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	if got := get(t, client, "http://web/"); !strings.HasPrefix(got, "hello from web.2 ") {
		t.Errorf("GET / = %q", got)
	}
	client.CloseIdleConnections()
	stop(t, cmd, out)
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("%s left behind", sock)
	}
}

func TestWebListenFDs(t *testing.T) {
	bin := build(t)
	f, addr := testprog.ListenerFile(t)
	// $$ is the shell's pid, which web keeps across exec.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0"`, filepath.Join(bin, "web"))
	cmd.ExtraFiles = []*os.File{f}
	out := start(t, cmd, "GSUP_SOCKET=", "PORT=", "NOTIFY_SOCKET=")
	f.Close()
	waitOutput(t, out, "listening on "+addr)
	client := &http.Client{}
	if got := get(t, client, "http://"+addr+"/"); !strings.Contains(got, fmt.Sprintf("(pid %d)", cmd.Process.Pid)) {
		t.Errorf("GET / = %q", got)
	}
	client.CloseIdleConnections()
	stop(t, cmd, out)
}

func TestWorker(t *testing.T) {
	bin := build(t)
	cmd := exec.Command(filepath.Join(bin, "worker"))
	out := start(t, cmd)
	waitOutput(t, out, "worker started")
	stop(t, cmd, out)
	if !strings.HasSuffix(out.String(), "worker stopping\n") {
		t.Errorf("testprog.Buffer:\n%s", out)
	}
}

func TestExampleFiles(t *testing.T) {
	procfile, err := os.ReadFile("Procfile")
	if err != nil {
		t.Fatal(err)
	}
	if want := "web: ../bin/web\nworker: ../bin/worker\n"; string(procfile) != want {
		t.Errorf("Procfile = %q, want %q", procfile, want)
	}
	var conf struct {
		Procfile string
		Process  map[string]struct {
			Scale       int
			StopTimeout string `toml:"stop_timeout"`
		}
		Serve struct {
			Bind            []string
			GracefulTimeout string `toml:"graceful_timeout"`
		}
	}
	md, err := toml.DecodeFile("gsup.toml", &conf)
	if err != nil {
		t.Fatal(err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		t.Errorf("gsup.toml: keys not checked here: %v", undecoded)
	}
	if conf.Procfile != "Procfile" || conf.Process["web"].Scale != 2 ||
		conf.Process["worker"].StopTimeout == "" || len(conf.Serve.Bind) != 1 {
		t.Errorf("gsup.toml = %+v", conf)
	}
}
