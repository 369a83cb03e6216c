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

// Read, Write, ReadWaiting and WriteWait allocate nothing.
func TestNoAllocations(t *testing.T) {
	server, client := pair(t)
	rs, rc := conn(t, server), conn(t, client)
	buf := make([]byte, 16)
	b := &bufs{func() []byte { return buf }, func() {}}
	msg := []byte("hello")
	// WriteWait's answer comes from an echo on a second pair, after the
	// request: on net's sockets a wait cannot see bytes that were there
	// before it began (see WriteWait).
	server2, client2 := pair(t)
	es, rc2 := conn(t, server2), conn(t, client2)
	go func() {
		echo := make([]byte, 16)
		for {
			n, err := es.Read(echo)
			if err != nil {
				return
			}
			es.Write(echo[:n])
		}
	}()
	allocs := testing.AllocsPerRun(100, func() {
		rc.Write(msg)
		rs.Read(buf)
		rc.Write(msg)
		rs.ReadWaiting(b)
		rs.Write(msg)
		rc.Read(buf)
		rc2.WriteWait(msg)
		rc2.Read(buf)
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
	p := make([]byte, 64<<20) // more than both socket buffers hold
	// The deadline after the allocation: zeroing 64 MiB (under -race, on a
	// busy machine) could take it all before the first write.
	server.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
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

// countingConn counts the tries of the reads its RawConn makes: each try
// of rawio's read function is one read(2).
type countingConn struct {
	syscall.RawConn
	tries *atomic.Int32
}

func (c countingConn) Read(f func(fd uintptr) bool) error {
	return c.RawConn.Read(func(fd uintptr) bool { c.tries.Add(1); return f(fd) })
}

// WriteWait writes the request and returns once the answer is there, so
// the Read after it reads the answer at its first try: no read finds the
// socket empty in between.
func TestWriteWaitThenRead(t *testing.T) {
	server, client := pair(t)
	raw, err := client.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int32
	rc := New(countingConn{raw, &tries})
	answer := make(chan struct{})
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := server.Read(b)
		got <- string(b[:n])
		<-answer
		server.Write([]byte("the answer"))
	}()
	returned := make(chan struct{})
	var n int
	go func() {
		n, err = rc.WriteWait([]byte("a request"))
		close(returned)
	}()
	if req := <-got; req != "a request" {
		t.Fatalf("the peer read %q; want the request", req)
	}
	// A WriteWait that did not wait would return at once: give it time to.
	select {
	case <-returned:
		t.Fatalf("WriteWait returned (%d, %v) before the answer came", n, err)
	case <-time.After(100 * time.Millisecond):
	}
	close(answer)
	<-returned
	if n != len("a request") || err != nil {
		t.Fatalf("WriteWait: %d, %v; want %d, nil", n, err, len("a request"))
	}
	tries.Store(0)
	buf := make([]byte, 64)
	n, err = rc.Read(buf)
	if string(buf[:n]) != "the answer" || err != nil {
		t.Fatalf("Read: %q, %v; want the answer", buf[:n], err)
	}
	if tries.Load() != 1 {
		t.Errorf("Read tried %d reads; want 1, the answer being there", tries.Load())
	}
}

// The read deadline ends WriteWait's wait without an error: the request
// went out, and the Read after it reports the deadline. A deadline passed
// before the call does not stop the write.
func TestWriteWaitDeadline(t *testing.T) {
	server, client := pair(t)
	rc := conn(t, client)
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := rc.WriteWait([]byte("one")); n != 3 || err != nil {
		t.Fatalf("WriteWait, no answer: %d, %v; want 3, nil", n, err)
	}
	buf := make([]byte, 8)
	if _, err := rc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after the deadline: %v; want the deadline", err)
	}
	if n, err := rc.WriteWait([]byte("two")); n != 3 || err != nil {
		t.Fatalf("WriteWait past the deadline: %d, %v; want 3, nil", n, err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(io.LimitReader(server, 6))
	if string(b) != "onetwo" {
		t.Errorf("the peer read %q; want onetwo", b)
	}
}

// A request larger than the socket takes at once (small buffers both
// sides, as a slow app's) is written whole, as Write would, and WriteWait
// returns once the answer comes.
func TestWriteWaitWithoutRoom(t *testing.T) {
	server, client := pair(t)
	client.(*net.TCPConn).SetWriteBuffer(4 << 10)
	server.(*net.TCPConn).SetReadBuffer(4 << 10)
	rc := conn(t, client)
	p := make([]byte, MaxWrite)
	for i := range p {
		p[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(server, int64(len(p))))
		got <- b
		server.Write([]byte("ok"))
	}()
	if n, err := rc.WriteWait(p); n != len(p) || err != nil {
		t.Fatalf("WriteWait: %d, %v; want %d, nil", n, err, len(p))
	}
	if b := <-got; !bytes.Equal(b, p) {
		t.Errorf("the peer read %d bytes, not the %d written", len(b), len(p))
	}
	buf := make([]byte, 8)
	if n, err := rc.Read(buf); string(buf[:n]) != "ok" || err != nil {
		t.Errorf("Read: %q, %v; want ok", buf[:n], err)
	}
}

// A peer that closed the connection while it sat idle (an app closing a
// pooled connection) ends the wait at once: its kernel resets the
// connection the request came on, and the Read after WriteWait fails
// without waiting for the deadline.
func TestWriteWaitPeerGone(t *testing.T) {
	server, client := pair(t)
	rc := conn(t, client)
	server.Close()
	client.SetReadDeadline(time.Now().Add(time.Minute))
	done := make(chan error, 1)
	go func() {
		_, err := rc.WriteWait([]byte("GET / HTTP/1.1\r\n\r\n"))
		if err == nil {
			_, err = rc.Read(make([]byte, 8))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("WriteWait and Read on a closed peer: %v; want EOF or a reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteWait and Read on a closed peer still wait after 10s")
	}
}

// A read error on a RawConn that does not make its errors (net's) names
// no network rather than a wrong one: a UNIX socket's reset reads
// "read: connection reset by peer", never "read tcp: ...".
func TestReadErrorOnAUNIXSocketNamesNoOtherNetwork(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	server.Close() // with data unread: the client's next read is reset
	_, err = conn(t, client).Read(make([]byte, 16))
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) {
		t.Fatalf("read after the reset: %v; want a *net.OpError of ECONNRESET", err)
	}
	if got, want := err.Error(), "read: connection reset by peer"; got != want {
		t.Errorf("read error %q, want %q", got, want)
	}
}
