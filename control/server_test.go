package control

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"gsup/internal/testprog"
	"gsup/supervisor"
)

// serve starts a server on a socket in a new temporary folder and
// returns it with its client and the log's hook.
func serve(t *testing.T, b Backend) (*Server, *Client, *logtest.Hook) {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "gsup.sock")
	s, err := Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.InfoLevel)
	done := make(chan error, 1)
	go func() { done <- s.Serve(b, log) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, NewClient(path), hook
}

// shortTempDir is a t.TempDir that is short enough for socket paths.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) < 80 {
		return dir
	}
	d, err := os.MkdirTemp("/tmp", "gsc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	return fi.Mode().Perm()
}

func TestListenMode(t *testing.T) {
	old := syscall.Umask(0o022) // would take the group's write bit away
	defer syscall.Umask(old)
	dir := shortTempDir(t)
	for _, tc := range []struct {
		mode, want os.FileMode
	}{{0, 0o600}, {0o600, 0o600}, {0o660, 0o660}, {0o666, 0o666}} {
		path := filepath.Join(dir, fmt.Sprintf("m%o.sock", tc.mode))
		s, err := Listen(path, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if got := modeOf(t, path); got != tc.want {
			t.Errorf("Listen(%04o): socket mode %04o, want %04o", tc.mode, got, tc.want)
		}
		s.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Close left %s behind (%v)", path, err)
		}
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "gsup.sock")
	// A socket file nobody listens on, as a killed gsup leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(path).Status(context.Background()); !errors.Is(err, ErrNoInstance) {
		t.Errorf("client of a stale socket: %v, want ErrNoInstance", err)
	}
	s, err := Listen(path, 0)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
}

func TestListenRefusesLiveSocket(t *testing.T) {
	s, c, _ := serve(t, newFake(0))
	_, err := Listen(c.Path(), 0)
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second Listen: %v, want ErrRunning", err)
	}
	if want := "another gsup is running at " + c.Path(); err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The first one still answers.
	if _, err := c.Status(context.Background()); err != nil {
		t.Error(err)
	}
	_ = s
}

func TestListenRefusesOtherFile(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "gsup.sock")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, 0); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Error("the file was touched")
	}
}

func TestListenLongPath(t *testing.T) {
	dir := shortTempDir(t)
	long := filepath.Join(dir, strings.Repeat("d", 60), strings.Repeat("s", 60)+".sock")
	if err := os.MkdirAll(filepath.Dir(long), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Listen("/"+strings.Repeat("x", 120), 0)
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("Listen of a 121-byte path: %v", err)
	}
	// Inside the working directory, a long absolute path is bound
	// relative to it.
	t.Chdir(filepath.Dir(long))
	s, err := Listen(long, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go s.Serve(newFake(0), logrus.New())
	if _, err := NewClient(long).Status(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestCloseBeforeServe(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "gsup.sock")
	s, err := Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Serve(newFake(0), logrus.New()); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("socket left behind")
	}
}

func TestNoInstance(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "none.sock")
	_, err := NewClient(path).Status(context.Background())
	if !errors.Is(err, ErrNoInstance) {
		t.Fatalf("%v, want ErrNoInstance", err)
	}
	if want := "no running instance at " + path + " (start one with gsup start)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestPs(t *testing.T) {
	_, c, hook := serve(t, newFake(os.Getpid()))
	ctx := context.Background()
	// Burn CPU until the kernel's count shows it (its clock ticks are
	// coarse), so the next sample has something to show.
	self, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	burn := func() {
		t0, err := self.Times()
		if err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
			if t1, err := self.Times(); err == nil && t1.Total()-t0.Total() >= 0.03 {
				return
			}
		}
	}
	burn()
	ps, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 {
		t.Fatalf("%d processes, want 4", len(ps))
	}
	p := ps[0]
	if p.Name != "web.1" || p.Pid != os.Getpid() || p.State != supervisor.StateRunning || !p.Ready || p.Port != 5000 {
		t.Errorf("first process: %+v", p)
	}
	if p.RSSBytes == 0 {
		t.Error("rss_bytes is 0 for a live process")
	}
	if p.UptimeSeconds < 89 || p.UptimeSeconds > 200 {
		t.Errorf("uptime_seconds %v, want about 90", p.UptimeSeconds)
	}
	if p.CPUPercent <= 0 {
		t.Errorf("cpu_percent %v since start, want > 0", p.CPUPercent)
	}
	if q := ps[1]; q.Pid != 0 || q.RSSBytes != 0 || q.UptimeSeconds != 0 || q.CPUPercent != 0 {
		t.Errorf("stopped process has statistics: %+v", q)
	}
	burn()
	ps, err = c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].CPUPercent <= 0 {
		t.Errorf("second sample: cpu_percent %v, want > 0", ps[0].CPUPercent)
	}
	if n := len(hook.AllEntries()); n != 0 {
		t.Errorf("ps logged %d lines; only changes are logged", n)
	}
}

func TestMutations(t *testing.T) {
	f := newFake(0)
	_, c, hook := serve(t, f)
	ctx := context.Background()

	counts, err := c.Scale(ctx, "", map[string]int{"web": 4, "worker": 0})
	if err != nil {
		t.Fatal(err)
	}
	if counts["web"] != 4 || counts["worker"] != 0 || len(counts) != 2 {
		t.Errorf("scale answered %v", counts)
	}
	if _, err := c.Scale(ctx, "billing", map[string]int{"web": 2}); err != nil {
		t.Fatal(err)
	}
	names, err := c.Restart(ctx, []string{"web"})
	if err != nil || !slices.Equal(names, []string{"web.1", "web.2"}) {
		t.Errorf("restart web: %v %v", names, err)
	}
	names, err = c.Stop(ctx, []string{"worker.1"})
	if err != nil || !slices.Equal(names, []string{"worker.1"}) {
		t.Errorf("stop worker.1: %v %v", names, err)
	}
	sig, names, err := c.Signal(ctx, "sighup", []string{"billing/web"})
	if err != nil || sig != "HUP" || !slices.Equal(names, []string{"billing/web.1"}) {
		t.Errorf("signal: %v %v %v", sig, names, err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Error(err)
	}
	app, err := c.Load(ctx, "/srv/billing/Procfile", "")
	if err != nil || app != "billing" {
		t.Errorf("load: %q %v", app, err)
	}
	if err := c.Unload(ctx, "billing"); err != nil {
		t.Error(err)
	}
	want := []string{
		"scale  web=4", "scale  worker=0", "scale billing web=2",
		"restart [web.1 web.2]", "stop [worker.1]", "signal 1 [billing/web.1]",
		"reload", "load /srv/billing/Procfile ", "unload billing",
	}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("backend calls:\n%q\nwant\n%q", got, want)
	}
	var logged []string
	for _, e := range hook.AllEntries() {
		if e.Level != logrus.InfoLevel {
			t.Errorf("logged at %v: %s", e.Level, e.Message)
		}
		logged = append(logged, e.Message)
		// Who asked is in fields, for --log-format json.
		if e.Data["uid"] != uint32(os.Geteuid()) || e.Data["gid"] != uint32(os.Getegid()) || e.Data["pid"] != int32(os.Getpid()) {
			t.Errorf("%s: fields %v, want uid %d, gid %d, pid %d", e.Message, e.Data, os.Geteuid(), os.Getegid(), os.Getpid())
		}
	}
	wantLog := []string{
		"control: scale web=4 worker=0",
		"control: scale billing/web=2",
		"control: restart web",
		"control: stop worker.1",
		"control: signal HUP billing/web",
		"control: reload",
		"control: load /srv/billing/Procfile",
		"control: unload billing",
	}
	if !slices.Equal(logged, wantLog) {
		t.Errorf("log:\n%q\nwant\n%q", logged, wantLog)
	}
}

func TestErrors(t *testing.T) {
	f := newFake(0)
	f.reloadErr = fmt.Errorf("gsup.toml:3: process.web.command: must be a string: %w", ErrInvalid)
	_, c, _ := serve(t, f)
	ctx := context.Background()
	status := func(err error) int {
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%v is not an *APIError", err)
		}
		return ae.Status
	}
	_, err := c.Restart(ctx, []string{"web", "nope"})
	if status(err) != http.StatusNotFound || err.Error() != `no process matches "nope": not found` {
		t.Errorf("unknown target: %d %v", status(err), err)
	}
	if _, err := c.Stop(ctx, []string{"nope.3"}); status(err) != http.StatusNotFound {
		t.Errorf("stop unknown: %v", err)
	}
	if _, _, err := c.Signal(ctx, "HUP", []string{"nope"}); status(err) != http.StatusNotFound {
		t.Errorf("signal unknown: %v", err)
	}
	if _, _, err := c.Signal(ctx, "NOPE", []string{"web"}); status(err) != http.StatusBadRequest {
		t.Errorf("bad signal: %v", err)
	}
	if _, err := c.Restart(ctx, nil); status(err) != http.StatusBadRequest {
		t.Errorf("no targets: %v", err)
	}
	if _, err := c.Scale(ctx, "", map[string]int{"db": 1}); status(err) != http.StatusNotFound {
		t.Errorf("scale unknown type: %v", err)
	}
	if _, err := c.Scale(ctx, "", map[string]int{"web": -1}); status(err) != http.StatusBadRequest {
		t.Errorf("negative scale: %v", err)
	}
	if _, err := c.Scale(ctx, "", map[string]int{"web": 101}); status(err) != http.StatusBadRequest {
		t.Errorf("scale past the port block: %v", err)
	}
	if err := c.Unload(ctx, "app"); status(err) != http.StatusConflict {
		t.Errorf("unload of the first app: %v", err)
	}
	if err := c.Unload(ctx, "nope"); status(err) != http.StatusNotFound {
		t.Errorf("unload unknown: %v", err)
	}
	if _, err := c.Load(ctx, "relative/Procfile", ""); status(err) != http.StatusBadRequest {
		t.Errorf("load of a relative path: %v", err)
	}
	if err := c.Reload(ctx); status(err) != http.StatusBadRequest || !strings.HasPrefix(err.Error(), "gsup.toml:3:") {
		t.Errorf("reload of a bad config: %v", err)
	}
	if err := c.Logs(ctx, []string{"nope"}, false, func(supervisor.Line) error { return nil }); status(err) != http.StatusNotFound {
		t.Errorf("logs of an unknown target: %v", err)
	}
	if err := c.Logs(ctx, []string{"nope"}, true, func(supervisor.Line) error { return nil }); status(err) != http.StatusNotFound {
		t.Errorf("logs -f of an unknown target: %v", err)
	}
	if slices.ContainsFunc(f.Calls(), func(s string) bool { return !strings.HasPrefix(s, "reload") }) {
		t.Errorf("failed requests reached the backend: %q", f.Calls())
	}
}

// raw sends a request over the socket and returns the status and body.
func raw(t *testing.T, path, method, target string, body io.Reader) (int, string) {
	t.Helper()
	resp := rawResponse(t, path, method, target, body)
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawResponse sends a request over the socket and returns the response,
// closed at the end of the test.
func rawResponse(t *testing.T, path, method, target string, body io.Reader) *http.Response {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	req, err := http.NewRequest(method, "http://gsup"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestBadRequests(t *testing.T) {
	f := newFake(0)
	s, _, _ := serve(t, f)
	big := `{"targets": ["` + strings.Repeat("x", MaxBody) + `"]}`
	for _, tc := range []struct {
		method, target, body string
		status               int
		match                string
	}{
		{"POST", "/v1/restart", big, 413, "larger than 1048576 bytes"},
		{"POST", "/v1/restart", `{"targets": ["web"], "extra": 1}`, 400, "unknown field"},
		{"POST", "/v1/restart", `{"targets": [`, 400, "bad request body"},
		{"POST", "/v1/restart", ``, 400, "empty request body"},
		{"POST", "/v1/restart", `{"targets": ["web"]} {}`, 400, "bad request body"},
		{"POST", "/v1/scale", `{"counts": {}}`, 400, "no counts"},
		{"POST", "/v1/unload", `{}`, 400, "no app"},
		{"POST", "/v1/load", `{"app": "x"}`, 400, "no file"},
		{"POST", "/v1/signal", `{"targets": ["web"]}`, 400, "no signal"},
	} {
		status, body := raw(t, s.Path(), tc.method, tc.target, strings.NewReader(tc.body))
		if status != tc.status || !strings.Contains(body, tc.match) || !strings.HasPrefix(body, `{`) {
			t.Errorf("%s %s %.40q: %d %s, want %d with %q", tc.method, tc.target, tc.body, status, body, tc.status, tc.match)
		}
	}
	// Routing is http.ServeMux's: 405 with Allow for a wrong method, 404
	// for an unknown endpoint.
	for _, tc := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{"GET", "/v1/restart", 405, "POST"},
		{"DELETE", "/v1/scale", 405, "POST"},
		{"POST", "/v1/ps", 405, "GET, HEAD"},
		{"PUT", "/v1/logs", 405, "GET, HEAD"},
		{"GET", "/v2/ps", 404, ""},
		{"GET", "/v1/ps/x", 404, ""},
		{"GET", "/", 404, ""},
	} {
		resp := rawResponse(t, s.Path(), tc.method, tc.target, nil)
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d with Allow %q, want %d with %q", tc.method, tc.target, resp.StatusCode, resp.Header.Get("Allow"), tc.status, tc.allow)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("bad requests reached the backend: %q", calls)
	}
}

func TestLogs(t *testing.T) {
	f := newFake(0)
	_, c, _ := serve(t, f)
	ctx := context.Background()
	var got []string
	collect := func(l supervisor.Line) error {
		got = append(got, l.Instance+" "+l.Text)
		return nil
	}
	if err := c.Logs(ctx, nil, false, collect); err != nil {
		t.Fatal(err)
	}
	if want := []string{"web.1 old web", "worker.1 old worker"}; !slices.Equal(got, want) {
		t.Errorf("logs: %q, want %q", got, want)
	}
	got = nil
	if err := c.Logs(ctx, []string{"worker"}, false, collect); err != nil {
		t.Fatal(err)
	}
	if want := []string{"worker.1 old worker"}; !slices.Equal(got, want) {
		t.Errorf("logs worker: %q, want %q", got, want)
	}

	// Follow: the ring, then new lines; a line of the ring that the
	// follower also saw is not repeated.
	ctx, cancel := context.WithCancel(ctx)
	lines := make(chan supervisor.Line, 16)
	done := make(chan error, 1)
	go func() {
		done <- c.Logs(ctx, []string{"web"}, true, func(l supervisor.Line) error {
			lines <- l
			return nil
		})
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l.Instance + " " + l.Text
		case <-time.After(5 * time.Second):
			t.Fatal("no line")
			return ""
		}
	}
	if l := next(); l != "web.1 old web" {
		t.Errorf("first followed line %q", l)
	}
	testprog.Eventually(t, "a log follower", 5*time.Second, f.liveAre(1, -1))
	f.follow <- f.lines[0] // already sent from the ring
	f.follow <- supervisor.Line{Time: time.Now(), Instance: "web.1", Text: "new 1"}
	f.follow <- supervisor.Line{Time: time.Now(), Instance: "web.2", Text: "new 2"}
	for _, want := range []string{"web.1 new 1", "web.2 new 2"} {
		if l := next(); l != want {
			t.Errorf("followed %q, want %q", l, want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Logs after cancel: %v", err)
	}
	// The server lets go of the backend once the client is gone.
	testprog.Eventually(t, "no log follower", 5*time.Second, f.liveAre(0, -1))
}

// Close ends a follower: the client returns nil, gsup went away.
func TestCloseEndsStreams(t *testing.T) {
	f := newFake(0)
	s, c, _ := serve(t, f)
	logsDone := make(chan error, 1)
	go func() {
		logsDone <- c.Logs(context.Background(), nil, true, func(supervisor.Line) error { return nil })
	}()
	eventsDone := make(chan error, 1)
	go func() {
		eventsDone <- c.Events(context.Background(), func(supervisor.Event) error { return nil })
	}()
	testprog.Eventually(t, "a follower and a subscriber", 5*time.Second, f.liveAre(1, 1))
	s.Close()
	for _, ch := range []chan error{logsDone, eventsDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("stream after Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream still open after Close")
		}
	}
	testprog.Eventually(t, "no follower and no subscriber", 5*time.Second, f.liveAre(0, 0))
}

func TestEvents(t *testing.T) {
	f := newFake(0)
	s, c, _ := serve(t, f)
	s.heartbeat = 20 * time.Millisecond

	// The wire format: a comment, then "event: KIND" and "data: JSON".
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events HTTP/1.1\r\nHost: gsup\r\n\r\n")
	r := bufio.NewReader(conn)
	readUntil := func(want string) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var seen bytes.Buffer
		for {
			line, err := r.ReadString('\n')
			seen.WriteString(line)
			if err != nil {
				t.Fatalf("waiting for %q: %v; read:\n%s", want, err, seen.String())
			}
			if want == "\r\n" && line == want || want != "\r\n" && strings.Contains(line, want) {
				return seen.String()
			}
		}
	}
	head := readUntil("\r\n")
	if !strings.Contains(head, "200 OK") || !strings.Contains(head, "Content-Type: text/event-stream") {
		t.Errorf("head:\n%s", head)
	}
	readUntil(": heartbeat")
	testprog.Eventually(t, "an event subscriber", 5*time.Second, f.liveAre(-1, 1))
	f.events <- supervisor.Event{Kind: supervisor.EventReady, Instance: "web.1", Pid: 42}
	readUntil("event: ready")
	if line := readUntil("\n"); !strings.HasPrefix(line, `data: {`) || !strings.Contains(line, `"instance":"web.1"`) || !strings.Contains(line, `"pid":42`) {
		t.Errorf("data line %q", line)
	}
	conn.Close()
	testprog.Eventually(t, "no event subscriber", 5*time.Second, f.liveAre(-1, 0))

	// The client.
	ctx, cancel := context.WithCancel(context.Background())
	evs := make(chan supervisor.Event, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.Events(ctx, func(ev supervisor.Event) error { evs <- ev; return nil })
	}()
	testprog.Eventually(t, "an event subscriber", 5*time.Second, f.liveAre(-1, 1))
	f.events <- supervisor.Event{Kind: supervisor.EventLoaded, App: "billing"}
	f.events <- supervisor.Event{Kind: supervisor.EventExited, Instance: "web.2", Status: "status 1", Code: 1}
	for _, want := range []string{"loaded billing", "exited web.2 status 1"} {
		select {
		case ev := <-evs:
			got := strings.TrimSpace(strings.Join([]string{string(ev.Kind), ev.App, ev.Instance, ev.Status}, " "))
			got = strings.Join(strings.Fields(got), " ")
			if got != want {
				t.Errorf("event %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Events after cancel: %v", err)
	}
}
