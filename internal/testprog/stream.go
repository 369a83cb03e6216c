package testprog

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
)

// TermMidStream reads the first line of a streamed body, fails f unless
// it is first, sends TERM to cmd while the rest is still to come, and
// returns that rest: what a graceful stop lets the handler finish. It
// then waits for cmd, and fails f with out (cmd's output) unless cmd
// exits 0.
func TermMidStream(f Fataler, cmd *exec.Cmd, body io.Reader, first string, out fmt.Stringer) string {
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
	if err := cmd.Wait(); err != nil {
		f.Fatalf("after TERM: %v\n%s", err, out)
	}
	return string(rest)
}

// ListenerFile listens on a loopback TCP port and returns the listening
// socket as a file, to pass to a child as systemd does (LISTEN_FDS), and
// its address. The listener itself is closed: the file holds the socket.
func ListenerFile(f Fataler) (*os.File, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	file, err := ln.(*net.TCPListener).File()
	if err != nil {
		f.Fatalf("listener file: %v", err)
	}
	return file, ln.Addr().String()
}
