package rawio

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gsup/internal/testprog"
)

func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// While Read waits for data it holds no buffer: the one it took to try
// was given back.
func TestReadWaitsWithoutABuffer(t *testing.T) {
	server, client := pair(t)
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var out, gets atomic.Int32
	buf := make([]byte, 64)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := Read(rc, func() []byte { out.Add(1); gets.Add(1); return buf }, func() { out.Add(-1) })
		done <- result{n, err}
	}()
	testprog.Eventually(t, "Read waiting", 5*time.Second, func() (bool, string) {
		return gets.Load() >= 1 && out.Load() == 0, ""
	})
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n != 5 || string(buf[:5]) != "hello" || out.Load() != 1 {
		t.Errorf("Read: %d %v %q, %d buffers out; want 5 bytes in the one buffer taken", r.n, r.err, buf[:r.n], out.Load())
	}
	client.Close()
	if n, err := Read(rc, func() []byte { return buf }, func() {}); n != 0 || err != nil {
		t.Errorf("after the peer closed: %d, %v; want 0, nil", n, err)
	}
}

// The connection's read deadline bounds the wait.
func TestReadDeadline(t *testing.T) {
	server, _ := pair(t)
	rc, _ := server.(syscall.Conn).SyscallConn()
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 8)
	if _, err := Read(rc, func() []byte { return buf }, func() {}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline: %v", err)
	}
}
