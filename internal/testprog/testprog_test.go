package testprog

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, Programs())
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		Cmds:                Commands(),
		Setup:               Setup,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		pos     []string
		after   string
		printed string
	}{
		{args: []string{"3"}, pos: []string{"3"}},
		{args: []string{"3", "-after", "1s", "-print", "hi"}, pos: []string{"3"}, after: "1s", printed: "hi"},
		{args: []string{"-print", "hi", "3", "4"}, pos: []string{"3", "4"}, printed: "hi"},
		{args: []string{"a", "--", "-after", "b"}, pos: []string{"a", "-after", "b"}},
		{args: []string{"--", "-x", "-y"}, pos: []string{"-x", "-y"}},
		{args: nil, pos: nil},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		after := fs.String("after", "", "")
		printed := fs.String("print", "", "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !slices.Equal(pos, tt.pos) || *after != tt.after || *printed != tt.printed {
			t.Errorf("%q: got %q after=%q print=%q; want %q after=%q print=%q",
				tt.args, pos, *after, *printed, tt.pos, tt.after, tt.printed)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "-nosuch"}); err == nil {
		t.Error("unknown flag after an argument: no error")
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
	}{
		{"TERM", syscall.SIGTERM},
		{"SIGHUP", syscall.SIGHUP},
		{"usr1", syscall.SIGUSR1},
		{"9", syscall.SIGKILL},
		{"WINCH", syscall.SIGWINCH},
	}
	for _, tt := range tests {
		got, err := parseSignal(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if name := signalName(got); tt.in == "TERM" && name != "TERM" {
			t.Errorf("signalName(%v) = %q", got, name)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "99", "-1"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q): no error", bad)
		}
	}
}

func TestNotifyLine(t *testing.T) {
	tests := map[string]string{
		"READY=1":                       "READY=1",
		"READY=1\n":                     "READY=1",
		"READY=1\nSTATUS=up\nMAINPID=7": "READY=1 STATUS=up MAINPID=7",
		"\n\nSTOPPING=1\n":              "STOPPING=1",
	}
	for in, want := range tests {
		if got := notifyLine([]byte(in)); got != want {
			t.Errorf("notifyLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAliveAndTagged(t *testing.T) {
	if !alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	tag := "TESTPROG_TAG=" + t.Name()
	cmd := exec.Command("sleep", "60")
	cmd.Env = append(os.Environ(), tag)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if got := tagged(tag); !slices.Equal(got, []int{cmd.Process.Pid}) {
		t.Errorf("tagged(%q) = %v, want [%d]", tag, got, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	// Not reaped yet: a zombie, which counts as gone.
	Eventually(t, "the killed child to die", 10*time.Second, func() (bool, string) {
		return !alive(cmd.Process.Pid), procState(cmd.Process.Pid)
	})
	if got := procState(cmd.Process.Pid); got != "Z" {
		t.Errorf("state of a killed, unreaped child = %q, want Z", got)
	}
	if got := tagged(tag); len(got) != 0 {
		t.Errorf("tagged(%q) after kill = %v", tag, got)
	}
	cmd.Wait()
	if alive(cmd.Process.Pid) || procState(cmd.Process.Pid) != "" {
		t.Error("reaped child still has a state")
	}
}

// startProgram runs one of the programs (this test binary under the
// program's name) in dir, with stdout collected in the returned builder.
func startProgram(t *testing.T, dir, name string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Args = append([]string{name}, args...)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out
}

// waitFor polls for path to exist and returns its content, trimmed.
func waitFor(t *testing.T, path string) string {
	t.Helper()
	var data []byte
	Eventually(t, path, 10*time.Second, func() (done bool, last string) {
		var err error
		data, err = os.ReadFile(path)
		return err == nil, fmt.Sprint(err)
	})
	return strings.TrimSpace(string(data))
}

func TestEchoserverFinishesStreamOnTERM(t *testing.T) {
	dir := t.TempDir()
	cmd, out := startProgram(t, dir, "echoserver", "-addr", "127.0.0.1:0", "-ready", "addr")
	addr := waitFor(t, filepath.Join(dir, "addr"))
	resp, err := http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The handler is running: a graceful stop lets it finish.
	rest := TermMidStream(t, cmd, resp.Body, "chunk 1\n", out)
	if want := "chunk 2\nchunk 3\nchunk 4\nchunk 5\n"; rest != want {
		t.Errorf("rest of the stream = %q, want %q", rest, want)
	}
	if !strings.Contains(out.String(), "echoserver stopped\n") {
		t.Errorf("output:\n%s", out)
	}
}

func TestEchoserverListenFDs(t *testing.T) {
	f, inherited := ListenerFile(t)
	dir := t.TempDir()
	// os/exec cannot set LISTEN_PID to the child's pid; sh can, as $$
	// stays the pid across exec. echoserver is on PATH (testscript.Main).
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec echoserver -ready addr`)
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{f}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := waitFor(t, filepath.Join(dir, "addr"))
	if addr != inherited {
		t.Errorf("listening on %s, want the inherited %s", addr, inherited)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(" pid=%d ", cmd.Process.Pid); !strings.Contains(string(body), want) {
		t.Errorf("body %q does not contain %q", body, want)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("echoserver: %v\n%s", err, &out)
	}
}

func TestSeqProblems(t *testing.T) {
	for _, tc := range []struct {
		counts map[int]int
		want   string
	}{
		{map[int]int{1: 1, 2: 1, 3: 1}, ""},
		{map[int]int{1: 1, 3: 1}, "numbers 1..3: missing: 2"},
		{map[int]int{1: 1, 2: 2}, "numbers 1..2: repeated: 2 (2 times)"},
		{map[int]int{0: 1, 1: 1}, "numbers 1..1: out of range: [0]"},
	} {
		if got := seqProblems(tc.counts); got != tc.want {
			t.Errorf("seqProblems(%v) = %q, want %q", tc.counts, got, tc.want)
		}
	}
}
