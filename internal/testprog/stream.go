package testprog

import (
	"bufio"
	"io"
	"os/exec"
	"syscall"
)

// TermMidStream reads the first line of a streamed body, fails f unless
// it is first, sends TERM to cmd while the rest is still to come, and
// returns that rest: what a graceful stop lets the handler finish.
func TermMidStream(f Fataler, cmd *exec.Cmd, body io.Reader, first string) string {
	if h, ok := f.(interface{ Helper() }); ok {
		h.Helper()
	}
	r := bufio.NewReader(body)
	got, err := r.ReadString('\n')
	if err != nil || got != first {
		f.Fatalf("first line of the stream: %q, %v; want %q", got, err, first)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		f.Fatalf("sending TERM: %v", err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		f.Fatalf("rest of the stream: %v (got %q)", err, rest)
	}
	return string(rest)
}
