package rawsock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gsup/internal/testprog"
)

// echoServer answers every read on its connections with the same bytes,
// on a listener of net's; it returns the address to dial.
func echoServer(t *testing.T, network string) string {
	t.Helper()
	l := listener(t, network)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

func TestDialEchoAndAddresses(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := echoServer(t, network)
			c, err := Dial(network, addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.RemoteAddr().String(); got != addr {
				t.Errorf("RemoteAddr %s, want %s", got, addr)
			}
			if network == "tcp" {
				if a, ok := c.LocalAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() || a.Port == 0 {
					t.Errorf("LocalAddr %v, want a loopback address with its port", c.LocalAddr())
				}
			}
			for i := range 3 {
				msg := []byte{'a' + byte(i), 'b', 'c'}
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, len(msg))
				if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, msg) {
					t.Fatalf("echo %d: %q, %v", i, buf, err)
				}
			}
			c.CloseWrite()
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after CloseWrite, the echo's close: %v, want EOF", err)
			}
		})
	}
}

// A TCP connect in progress lets the goroutines ready to run go before
// the dial looks at it and returns, as an event loop handles the rest of
// its ready events before it writes to a socket it is connecting. (A
// connect to an app on the same CPU wakes a worker that takes the CPU,
// accepts and waits for a request the dial has not written yet; a dial
// that wrote at once had that worker woken twice per connection, and the
// app's workers drained their accept queue and slept once per request.)
func TestDialInProgressLetsReadyGoroutinesRunFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	addr := echoServer(t, "tcp")
	// The scheduler takes from its global queue now and then before the
	// goroutines ready on its own, so the yielding dial comes back first
	// once in a while: most dials, not each, find the other one run.
	const dials = 40
	first := 0
	for range dials {
		var ran atomic.Bool
		go ran.Store(true)
		c, err := Dial("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if ran.Load() {
			first++
		}
	}
	if first < dials/2 {
		t.Fatalf("%d of %d dials returned after a goroutine ready to run had run, want most", first, dials)
	}
}

// A connection kept for several exchanges (an app's): WriteWait sends
// each request and the read after it finds the answer, also after a read
// that came short marked the socket empty.
func TestDialWriteWaitExchanges(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			c, err := Dial(network, echoServer(t, network), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io := c.RawIO()
			buf := make([]byte, 64) // larger than an answer: every read is short
			for i := range 5 {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				msg := []byte{'0' + byte(i), '\n'}
				if n, err := io.WriteWait(msg); err != nil || n != len(msg) {
					t.Fatalf("exchange %d: WriteWait: %d, %v", i, n, err)
				}
				n, err := io.Read(buf)
				if err != nil || string(buf[:n]) != string(msg) {
					t.Fatalf("exchange %d: read %q, %v; want %q", i, buf[:n], err, msg)
				}
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := Dial("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial to a closed port: %v, want ECONNREFUSED", err)
	}
	var oe *net.OpError
	if _, err := Dial("tcp", addr, time.Second); !errors.As(err, &oe) || oe.Op != "dial" || oe.Addr.String() != addr {
		t.Errorf("Dial to a closed port: %#v, want net's *OpError for a dial to %s", err, addr)
	}
	if _, err := Dial("unix", filepath.Join(t.TempDir(), "none"), time.Second); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Dial to a missing socket: %v, want ENOENT", err)
	}
	for _, a := range []string{"localhost:80", "[fe80::1%lo]:80"} {
		if _, err := Dial("tcp", a, time.Second); !ErrNotSupported(err) {
			t.Errorf("Dial %s: %v, want left to net", a, err)
		}
	}
}

func TestWriteBuffers(t *testing.T) {
	srv, cli := pair(t, "tcp")
	big := make([]byte, 4<<20)
	rand.Read(big)
	parts := net.Buffers{[]byte("head\r\n"), nil, big, []byte("\r\n")}
	want := bytes.Join(parts, nil)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(cli)
		got <- b
	}()
	n, err := srv.WriteBuffers(&parts)
	if err != nil || n != int64(len(want)) || len(parts) != 0 {
		t.Fatalf("WriteBuffers: %d, %v, %d left", n, err, len(parts))
	}
	srv.Close()
	if !bytes.Equal(<-got, want) {
		t.Fatal("the reader got other bytes")
	}
}

// A dial whose handshake gets no answer waits for the poller, and fails
// at its timeout: the listener's queue (backlog 0) is full with one
// connection, and the system drops the next ones' SYNs.
func TestDialTimesOut(t *testing.T) {
	_, port := testprog.ListenBacklog0(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	first, err := Dial("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("the connection that fills the queue: %v", err)
	}
	defer first.Close()
	start := time.Now()
	c, err := Dial("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("a dial to a listener with a full queue connected")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a dial to a listener with a full queue: %v; want a timeout", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("the dial gave up after %v; its timeout was 200ms", waited)
	}
}

// connectEnded on each state a TCP connect can be in when it is looked at:
// still connecting (the listener's queue full), connected, connected with
// the peer's side already shut (the app answered and closed), refused.
func TestConnectEndedByState(t *testing.T) {
	connect := func(t *testing.T, port int) int {
		t.Helper()
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
		err = syscall.Connect(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
		if err != nil && err != syscall.EINPROGRESS {
			t.Fatal(err)
		}
		return fd
	}
	// ended waits for the connect to leave SYN_SENT (loopback ends it at
	// once, or drops the SYN when the queue is full) for a bounded time.
	ended := func(t *testing.T, fd int) (bool, syscall.Errno) {
		t.Helper()
		var ok bool
		var e syscall.Errno
		deadline := time.Now().Add(5 * time.Second)
		for {
			if ok, e = connectEnded(fd); ok || e != 0 || time.Now().After(deadline) {
				return ok, e
			}
			time.Sleep(time.Millisecond)
		}
	}

	lfd, port := testprog.ListenBacklog0(t)

	first := connect(t, port) // fills the queue (backlog 0 takes one)
	if ok, e := ended(t, first); !ok || e != 0 {
		t.Fatalf("a connect the listener took: connected %v, error %v; want connected", ok, e)
	}
	pending := connect(t, port) // its SYN is dropped: the queue is full
	if ok, e := connectEnded(pending); ok || e != 0 {
		t.Errorf("a connect whose SYN was dropped: connected %v, error %v; want still connecting", ok, e)
	}

	// The peer closes its side: the connect has ended, connected.
	afd, _, err := syscall.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(afd)
	fds := []unix.PollFd{{Fd: int32(first), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, 5000); err != nil || fds[0].Revents&unix.POLLIN == 0 {
		t.Fatalf("the peer's close did not reach the socket: %v", err)
	}
	if ok, e := connectEnded(first); !ok || e != 0 {
		t.Errorf("a connected socket whose peer closed: connected %v, error %v; want connected", ok, e)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	refused := connect(t, closedPort)
	if ok, e := ended(t, refused); ok || e != syscall.ECONNREFUSED {
		t.Errorf("a connect to a closed port: connected %v, error %v; want ECONNREFUSED", ok, e)
	}
}
