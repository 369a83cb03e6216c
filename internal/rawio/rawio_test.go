package rawio

import (
	"bytes"
	"errors"
	"io"
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

// bufs lends ReadWaiting the buffers of get and put.
type bufs struct {
	get func() []byte
	put func()
}

func (b *bufs) TakeBuf() []byte { return b.get() }
func (b *bufs) PutBuf()         { b.put() }

func conn(t *testing.T, c net.Conn) *Conn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return New(rc)
}

// Read, Write and ReadWaiting allocate nothing.
func TestNoAllocations(t *testing.T) {
	server, client := pair(t)
	rs, rc := conn(t, server), conn(t, client)
	buf := make([]byte, 16)
	b := &bufs{func() []byte { return buf }, func() {}}
	msg := []byte("hello")
	allocs := testing.AllocsPerRun(100, func() {
		rc.Write(msg)
		rs.Read(buf)
		rc.Write(msg)
		rs.ReadWaiting(b)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run; want none", allocs)
	}
}

// Read reads as net's Read: what is there, io.EOF at the end.
func TestRead(t *testing.T) {
	server, client := pair(t)
	rs := conn(t, server)
	go func() { client.Write([]byte("abc")); client.Close() }()
	b, err := io.ReadAll(struct{ io.Reader }{rs})
	if string(b) != "abc" || err != nil {
		t.Errorf("ReadAll: %q, %v; want abc, nil", b, err)
	}
}

// While ReadWaiting waits for data it holds no buffer: the one it took to try
// was given back.
func TestReadWaitsWithoutABuffer(t *testing.T) {
	server, client := pair(t)
	rc := conn(t, server)
	var out, gets atomic.Int32
	buf := make([]byte, 64)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := rc.ReadWaiting(&bufs{func() []byte { out.Add(1); gets.Add(1); return buf }, func() { out.Add(-1) }})
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
	if n, err := rc.ReadWaiting(&bufs{func() []byte { return buf }, func() {}}); n != 0 || err != nil {
		t.Errorf("after the peer closed: %d, %v; want 0, nil", n, err)
	}
}

// The connection's read deadline bounds the wait.
func TestReadDeadline(t *testing.T) {
	server, _ := pair(t)
	rc := conn(t, server)
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 8)
	if _, err := rc.ReadWaiting(&bufs{func() []byte { return buf }, func() {}}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline: %v", err)
	}
}

// Write waits for room as net's Write does: a peer that reads slowly
// gets every byte, in order, however many times the socket fills up.
func TestWriteWaitsForRoom(t *testing.T) {
	server, client := pair(t)
	rc := conn(t, server)
	const size = 8 << 20
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	n, err := rc.Write(p)
	if n != size || err != nil {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, size)
	}
	server.Close()
	if b := <-got; !bytes.Equal(b, p) {
		t.Errorf("the peer read %d bytes, not the %d written", len(b), size)
	}
}

// The write deadline bounds the wait for room, and Write still says how
// much went out; a peer that is gone makes it fail.
func TestWriteDeadlineAndReset(t *testing.T) {
	server, client := pair(t)
	rc := conn(t, server)
	server.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	p := make([]byte, 64<<20) // more than both socket buffers hold
	n, err := rc.Write(p)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(p) {
		t.Fatalf("Write to a peer that reads nothing: %d, %v; want some bytes and the deadline", n, err)
	}
	server.SetWriteDeadline(time.Time{})
	client.(*net.TCPConn).SetLinger(0)
	client.Close()
	testprog.Eventually(t, "a write failing after the reset", 5*time.Second, func() (bool, string) {
		_, err = rc.Write([]byte("x"))
		return err != nil, ""
	})
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after the peer reset: %v; want ECONNRESET or EPIPE", err)
	}
}
