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
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gsup/internal/testprog"
)

// listener is a listener of net's on loopback or a UNIX socket, closed
// when the test ends.
func listener(t *testing.T, network string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	switch network {
	case "unix":
		addr = filepath.Join(t.TempDir(), "s.sock")
	case "tcp6":
		addr = "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil && network == "tcp6" {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawPair is pair with the accepted connection's syscall.RawConn.
func rawPair(t *testing.T, network string) (srv *Conn, cli net.Conn, rc syscall.RawConn) {
	t.Helper()
	srv, cli = pair(t, network)
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return srv, cli, rc
}

// pair is a connection accepted by a Listener and its client, net's.
func pair(t *testing.T, network string) (srv *Conn, cli net.Conn) {
	t.Helper()
	l := listener(t, network)
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := acceptOne(l)
		ch <- res{c, err}
	}()
	cli, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { cli.Close(); r.c.Close() })
	return r.c, cli
}

func TestEchoAndAddresses(t *testing.T) {
	for _, network := range []string{"tcp", "tcp6", "unix"} {
		t.Run(network, func(t *testing.T) {
			srv, cli := pair(t, network)
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := srv.Read(buf)
					if err != nil {
						srv.Close()
						return
					}
					srv.Write(buf[:n])
				}
			}()
			if _, err := cli.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(cli, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("echo: %q, %v", buf, err)
			}
			if network != "unix" {
				if got, want := srv.RemoteAddr().String(), cli.LocalAddr().String(); got != want {
					t.Errorf("server's RemoteAddr %s, client's LocalAddr %s", got, want)
				}
				if got, want := srv.LocalAddr().String(), cli.RemoteAddr().String(); got != want {
					t.Errorf("server's LocalAddr %s, client's RemoteAddr %s", got, want)
				}
			}
			cli.(interface{ CloseWrite() error }).CloseWrite()
			if _, err := cli.Read(buf); err != io.EOF {
				t.Fatalf("after CloseWrite, the echo's close: %v, want EOF", err)
			}
		})
	}
}

// The addresses of a UNIX connection are what net gives for the same.
func TestUnixAddressesAsNet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, ours := range []bool{false, true} {
		go func() {
			c, err := net.Dial("unix", path)
			if err == nil {
				defer c.Close()
				c.Read(make([]byte, 1))
			}
		}()
		var c net.Conn
		if ours {
			c, err = acceptOne(l)
		} else {
			c, err = l.Accept()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ours=%v: local %q remote %q", ours, c.LocalAddr(), c.RemoteAddr())
		if c.LocalAddr().String() != path || c.RemoteAddr().String() != "@" || c.RemoteAddr().Network() != "unix" {
			t.Errorf("ours=%v: local %q remote %q, want %q and @ (net's)", ours, c.LocalAddr(), c.RemoteAddr(), path)
		}
		c.Close()
	}
}

func TestReadDeadline(t *testing.T) {
	srv, cli := pair(t, "tcp")
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := srv.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	// Passed, it fails at once even with data waiting, as net's.
	cli.Write([]byte("x"))
	if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with the deadline passed: %v", err)
	}
	srv.SetReadDeadline(time.Time{})
	if n, err := srv.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after the deadline was cleared: %d, %v", n, err)
	}
	// A deadline moved later before it passes does not fire.
	srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	srv.SetReadDeadline(time.Now().Add(time.Hour))
	go func() {
		time.Sleep(100 * time.Millisecond) // past the first deadline
		cli.Write([]byte("y"))
	}()
	if n, err := srv.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read with the deadline moved later: %d, %v", n, err)
	}
}

// The deadline's timer moves only for an earlier deadline; a later one,
// or none, is seen when it fires. Each must still hold as net's.
func TestDeadlinesMovedLazily(t *testing.T) {
	srv, cli := pair(t, "tcp")

	// Moved earlier: the earlier one holds.
	srv.SetReadDeadline(time.Now().Add(time.Hour))
	srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	readTimesOut(t, srv, "the deadline moved earlier")

	// Moved later, several times: the last one holds, not an earlier.
	srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	srv.SetReadDeadline(time.Now().Add(60 * time.Millisecond))
	last := time.Now().Add(150 * time.Millisecond)
	srv.SetReadDeadline(last)
	readTimesOut(t, srv, "the deadline moved later")
	if now := time.Now(); now.Before(last) {
		t.Fatalf("the read timed out %v before its deadline", last.Sub(now))
	}

	// Taken away: the timer that still fires does nothing, and a deadline
	// set after it has fired holds.
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	srv.SetReadDeadline(time.Time{})
	testprog.Eventually(t, "the timer fired", 5*time.Second, func() (bool, string) {
		srv.rd.dmu.Lock()
		defer srv.rd.dmu.Unlock()
		return srv.rd.fires.IsZero(), ""
	})
	cli.Write([]byte("z"))
	if n, err := srv.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read with no deadline after the timer fired: %d, %v", n, err)
	}
	srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	readTimesOut(t, srv, "a deadline set after the timer fired")
}

// A deadline no call waits under arms no timer (a new connection's
// request is there at accept), and still holds as net's: passed while
// no call waited, it fails the next read even with data waiting. A
// deadline set while a read waits arms its timer at once.
func TestPendingDeadlines(t *testing.T) {
	srv, cli := pair(t, "tcp")
	srv.SetReadDeadline(time.Now().Add(time.Minute))
	cli.Write([]byte("x"))
	testprog.Eventually(t, "the byte to arrive", 5*time.Second, func() (bool, string) {
		var v int
		_, _, e := syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(srv.fd), unix.SIOCINQ, uintptr(unsafe.Pointer(&v)))
		return e == 0 && v == 1, ""
	})
	if n, err := srv.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read with a byte waiting: %d, %v", n, err)
	}
	srv.rd.dmu.Lock()
	armed := !srv.rd.fires.IsZero()
	srv.rd.dmu.Unlock()
	if armed {
		t.Errorf("a read that did not wait armed the deadline's timer")
	}

	dl := time.Now().Add(30 * time.Millisecond)
	srv.SetReadDeadline(dl)
	cli.Write([]byte("y"))
	time.Sleep(time.Until(dl) + 5*time.Millisecond) // the deadline itself is what passes
	if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with the deadline passed while nothing waited: %v, want a timeout", err)
	}

	srv.SetReadDeadline(time.Time{})
	if n, err := srv.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after the deadline was cleared: %d, %v", n, err)
	}
	errc := startRead(srv)
	testprog.Eventually(t, "the read to wait", 5*time.Second, func() (bool, string) { return srv.rd.waiting.Load(), "" })
	srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	readEnds(t, errc, os.ErrDeadlineExceeded, 10*time.Second, "read under a deadline set while it waited")
}

// A deadline already past when it is set fails the next call at once,
// as net's, though setting it reads no clock: one long past, one at the
// instant the package counts its readings from (which it stores as 0
// otherwise, its "none"), and one set while a read waits, which ends it.
func TestPastDeadlines(t *testing.T) {
	srv, cli := pair(t, "tcp")
	cli.Write([]byte("xy"))
	testprog.Eventually(t, "the bytes to arrive", 5*time.Second, func() (bool, string) {
		var v int
		_, _, e := syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(srv.fd), unix.SIOCINQ, uintptr(unsafe.Pointer(&v)))
		return e == 0 && v == 2, ""
	})
	for _, dl := range []time.Time{time.Now().Add(-time.Second), time.Unix(1, 0), epoch} {
		srv.SetReadDeadline(dl)
		if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read under a deadline set past (%v): %v, want a timeout with data waiting", dl, err)
		}
	}
	srv.SetReadDeadline(time.Time{})
	if n, err := srv.Read(make([]byte, 2)); n != 2 || err != nil {
		t.Fatalf("read after the deadline was cleared: %d, %v", n, err)
	}
	errc := startRead(srv)
	testprog.Eventually(t, "the read to wait", 5*time.Second, func() (bool, string) { return srv.rd.waiting.Load(), "" })
	srv.SetReadDeadline(time.Now().Add(-time.Second))
	readEnds(t, errc, os.ErrDeadlineExceeded, 10*time.Second, "a waiting read under a deadline set past")
}

// readTimesOut reads c, with nothing to read, and fails unless the read
// ends in a timeout within 10 s.
func readTimesOut(t *testing.T, c *Conn, what string) {
	t.Helper()
	readEnds(t, startRead(c), os.ErrDeadlineExceeded, 10*time.Second, "read with "+what)
}

// startRead reads one byte of c in a goroutine of its own; its error
// comes on the channel.
func startRead(c *Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	return errc
}

// readEnds fails unless the read whose error comes on errc ends with
// want within the bound.
func readEnds(t *testing.T, errc <-chan error, want error, within time.Duration, what string) {
	t.Helper()
	select {
	case err := <-errc:
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	case <-time.After(within):
		t.Fatalf("%s: still waiting %s later", what, within)
	}
}

func TestCloseWakesAndFreesDescriptor(t *testing.T) {
	if _, err := getPoller(); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	srv, cli := pair(t, "tcp")
	errc := make(chan error, 2)
	go func() {
		_, err := srv.Read(make([]byte, 1))
		errc <- err
	}()
	go func() {
		// Fills the socket until the write waits.
		_, err := srv.Write(make([]byte, 64<<20))
		errc <- err
	}()
	testprog.Eventually(t, "a read and a write in progress", 5*time.Second, func() (bool, string) {
		return locked(&srv.rd.mu) && locked(&srv.wr.mu), ""
	})
	srv.Close()
	for range 2 {
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("a call in progress at Close: %v, want net.ErrClosed", err)
		}
	}
	if err := srv.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	cli.Close()
	testprog.Eventually(t, "descriptors back to their count", 5*time.Second, func() (bool, string) {
		n := openFDs(t)
		return n <= before+1, fmt.Sprintf("%d open, %d before", n, before) // +1: the listener, open until the end
	})
}

func TestWriteToSlowReaderAndDeadline(t *testing.T) {
	srv, cli := pair(t, "tcp")
	want := make([]byte, 8<<20)
	rand.Read(want)
	got := make(chan []byte)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 32<<10)
		for b.Len() < len(want) {
			n, err := cli.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		got <- b.Bytes()
	}()
	if n, err := srv.Write(want); n != len(want) || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if !bytes.Equal(<-got, want) {
		t.Fatal("the reader got other bytes")
	}
	// Nobody reads now: the write stops at its deadline, with what it wrote.
	srv.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := srv.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == 64<<20 {
		t.Fatalf("write past its deadline: %d, %v", n, err)
	}
}

func TestSendfile(t *testing.T) {
	srv, cli := pair(t, "tcp")
	want := make([]byte, 3<<20+17)
	rand.Read(want)
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, want, 0o600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(100, io.SeekStart)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(cli)
		got <- b
	}()
	lr := &io.LimitedReader{R: f, N: 1 << 20}
	if n, err := srv.ReadFrom(lr); n != 1<<20 || err != nil || lr.N != 0 {
		t.Fatalf("ReadFrom a limited file: %d, %v, N %d", n, err, lr.N)
	}
	if n, err := srv.ReadFrom(f); n != int64(len(want)-100-1<<20) || err != nil {
		t.Fatalf("ReadFrom the rest: %d, %v", n, err)
	}
	if n, err := srv.ReadFrom(bytes.NewReader([]byte("tail"))); n != 4 || err != nil {
		t.Fatalf("ReadFrom a reader: %d, %v", n, err)
	}
	srv.Close()
	if b := <-got; !bytes.Equal(b, append(want[100:], "tail"...)) {
		t.Fatalf("the client got %d bytes, not the file from offset 100 and the tail", len(b))
	}
}

func TestAcceptDeadlineAndClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := NewListener(l)
	if err != nil {
		t.Fatal(err)
	}
	rl.SetDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := rl.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Accept past the listener's deadline: %v", err)
	}
	rl.SetDeadline(time.Time{})
	errc := make(chan error)
	go func() {
		_, err := rl.Accept()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait; either order must end it
	rl.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v", err)
	}
}

// Many connections opened and closed at once, from both sides, leave no
// descriptor behind.
func TestChurn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 500
	rl, err := NewListener(l)
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	before := openFDs(t)
	go func() {
		for {
			c, err := rl.AcceptConn()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16)
				if m, err := c.Read(buf); err == nil {
					c.Write(buf[:m])
				}
			}()
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if i%3 == 0 {
				return // closed unread
			}
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
				t.Errorf("echo: %q, %v", b, err)
			}
		}()
	}
	wg.Wait()
	testprog.Eventually(t, "descriptors back to their count", 5*time.Second, func() (bool, string) {
		n := openFDs(t)
		return n <= before, fmt.Sprintf("%d open, %d before", n, before)
	})
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// locked reports whether m is held (by a call in progress).
func locked(m *sync.Mutex) bool {
	if m.TryLock() {
		m.Unlock()
		return false
	}
	return true
}

// acceptOne accepts one connection of l by a Listener, closed after.
func acceptOne(l net.Listener) (*Conn, error) {
	rl, err := NewListener(l)
	if err != nil {
		return nil, err
	}
	defer rl.c.Close()
	return rl.AcceptConn()
}

// After a read that came short, the next read waits for an event before
// it tries: nothing is read in vain while no byte came, and bytes that
// came meanwhile, or while a read failed on its deadline, are still read.
func TestReadAfterShortReadWaitsForEvent(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			srv, cli, rc := rawPair(t, network)
			buf := make([]byte, 64)
			short := func(want string) {
				t.Helper()
				srv.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := srv.Read(buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
				}
			}
			// The byte's event taken first: a token left for bytes
			// already read would make the next read try once in vain
			// (harmless, and not what is looked at here).
			cli.Write([]byte("a"))
			testprog.Eventually(t, "the event of a byte sent", 10*time.Second, func() (bool, string) {
				return srv.rd.kept.Load() || len(srv.rd.readyChan()) == 1, "no token"
			})
			if !srv.rd.kept.Swap(false) {
				<-srv.rd.readyChan()
			}
			short("a")

			// Nothing comes: the read function is never called.
			calls := 0
			srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			err := rc.Read(func(fd uintptr) bool { calls++; return false })
			if !errors.Is(err, os.ErrDeadlineExceeded) || calls != 0 {
				t.Fatalf("waiting read: %v after %d tries; want the deadline and no try", err, calls)
			}

			// That read failed without trying: the next one tries first,
			// and finds what came before it.
			cli.Write([]byte("b"))
			short("b")

			// A byte that comes before the next read, after a short one.
			cli.Write([]byte("c"))
			short("c")

			// A read failing on its deadline after a byte came leaves it
			// for the next read.
			cli.Write([]byte("d"))
			srv.SetReadDeadline(time.Now().Add(-time.Second))
			if _, err := srv.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past its deadline: %v", err)
			}
			short("d")
		})
	}
}

// A client that sends its bytes and then shuts its side (nc -N, a
// half-close after a request): the end of file that came with them, or
// just after, is seen at once, even though the read of the bytes came
// short. Its event may have been taken by the wait before that read, and
// no other comes.
func TestEndOfFileAfterShortRead(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			for i := range 100 {
				srv, cli := pair(t, network)
				srv.SetReadDeadline(time.Now().Add(2 * time.Second))
				type result struct {
					got []byte
					err error
				}
				done := make(chan result, 1)
				go func() {
					buf := make([]byte, 4096)
					var r result
					for r.err == nil {
						var n int
						n, r.err = srv.Read(buf)
						r.got = append(r.got, buf[:n]...)
					}
					done <- r
				}()
				// The server waits before the bytes come, as a server does.
				testprog.Eventually(t, "a read waiting", 10*time.Second, func() (bool, string) {
					return locked(&srv.rd.mu), "no read"
				})
				cli.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
				cli.(interface{ CloseWrite() error }).CloseWrite()
				r := <-done
				if r.err != io.EOF || string(r.got) != "GET / HTTP/1.1\r\n\r\n" {
					t.Fatalf("connection %d: read %q, then %v; want the request, then EOF", i, r.got, r.err)
				}
				srv.Close()
				cli.Close()
			}
		})
	}
}

// A new connection allocates itself and its two directions' tokens, and
// binds no function for rawio's reads and writes (it is a rawio.TryConn).
func TestNewConnAllocations(t *testing.T) {
	if allocs := newConnAllocs(t, nil); allocs > 1 {
		t.Errorf("a new connection, made and closed: %v allocations; want 1", allocs)
	}
}

// newConnAllocs counts the allocations of a Conn made on one end of a
// socket pair, given to use (if not nil), and closed.
func newConnAllocs(t *testing.T, use func(*Conn)) float64 {
	t.Helper()
	addr := &net.UnixAddr{Name: "@", Net: "unix"}
	var err error
	allocs := testing.AllocsPerRun(200, func() {
		var fds [2]int
		if fds, err = syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		defer syscall.Close(fds[1])
		var c *Conn
		if c, err = newConn(fds[0], "unix", addr, addr, nil); err != nil {
			return
		}
		if use != nil {
			use(c)
		}
		err = c.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return allocs
}

// A connection closed while a read waited under a deadline takes its
// deadline out of the heap (an app's connection per request waits for
// each answer so). The next connections' deadlines hold: one passes and
// ends its read, a later one does not end a read early, and the closed
// connection's deadline ends nothing.
func TestDeadlinesOfClosedConnections(t *testing.T) {
	first, _ := pair(t, "tcp")
	first.SetReadDeadline(time.Now().Add(80 * time.Millisecond))
	errc := startRead(first)
	testprog.Eventually(t, "the first read to wait", 5*time.Second, func() (bool, string) { return first.rd.waiting.Load(), "" })
	first.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a read ended by Close: %v, want net.ErrClosed", err)
	}

	soon, _ := pair(t, "tcp")
	soon.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	readTimesOut(t, soon, "a deadline after a closed connection's")

	later, cli := pair(t, "tcp")
	later.SetReadDeadline(time.Now().Add(time.Hour))
	errc = startRead(later)
	testprog.Eventually(t, "the last read to wait", 5*time.Second, func() (bool, string) { return later.rd.waiting.Load(), "" })
	time.Sleep(150 * time.Millisecond) // past the closed connection's deadline, which must end nothing
	cli.Write([]byte("x"))
	if err := <-errc; err != nil {
		t.Fatalf("a read under a deadline an hour away: %v, want the byte", err)
	}
}

// A connection that waits under a deadline and closes allocates nothing
// for the deadline. The race detector's sync.Pool drops some of what it
// is given, so the count holds without it.
func TestDeadlineAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without the race detector (.ci/run runs the tests so too)")
	}
	allocs := newConnAllocs(t, func(c *Conn) {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		c.rd.armPending() // what a read does before it waits
	})
	if allocs > 3 {
		t.Errorf("a new connection that armed its read deadline, then closed: %v allocations; want 3 (the connection's own)", allocs)
	}
}

// TestCloseRacesAWait closes connections while a read is about to wait,
// waits, or has not begun: every read ends with net.ErrClosed. Close
// sends a token only to a call it sees waiting; one that begins to wait
// as Close runs must see the close itself.
func TestCloseRacesAWait(t *testing.T) {
	for i := range 500 {
		srv, cli := pair(t, "tcp")
		errc := startRead(srv)
		for range i % 50 {
			runtime.Gosched()
		}
		srv.Close()
		readEnds(t, errc, net.ErrClosed, 5*time.Second, fmt.Sprintf("round %d: a read at Close", i))
		cli.Close()
	}
}

// Tokens are not lost when events and waits cross: both directions of
// one connection wait often (small socket buffers, a peer that reads and
// writes in bursts of random size), each call within a deadline that
// only a lost token would reach.
func TestWaitsAreWokenUnderLoad(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			srv, cli, rc := rawPair(t, network)
			rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10)
			})
			const total = 64 << 20
			seed := make([]byte, 1024)
			rand.Read(seed)
			size := func(i int) int { return 1 + int(seed[i%len(seed)])*int(seed[(i+7)%len(seed)])%8192 }

			// The peer echoes what it reads, in bursts.
			go func() {
				buf := make([]byte, 16<<10)
				for i := 0; ; i++ {
					n, err := cli.Read(buf[:size(i)])
					if n > 0 {
						if _, werr := cli.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
					if seed[i%len(seed)]%8 == 0 {
						runtime.Gosched()
					}
				}
			}()
			readErr := make(chan error, 1)
			go func() {
				buf := make([]byte, 16<<10)
				for got, i := 0, 0; got < total; i++ {
					srv.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := srv.Read(buf[:size(i+3)])
					got += n
					if err != nil {
						readErr <- fmt.Errorf("read after %d bytes: %w", got, err)
						return
					}
				}
				readErr <- nil
			}()
			out := make([]byte, 16<<10)
			for sent, i := 0, 0; sent < total; i++ {
				n := min(size(i+5), total-sent)
				srv.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := srv.Write(out[:n]); err != nil {
					t.Fatalf("write after %d bytes: %v", sent, err)
				}
				sent += n
			}
			if err := <-readErr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A token left while a call starts to wait is not lost: wake is held
// after it saw no call waiting, until a read stored that it waits (and
// took no token); the read then ends with the token, not at its deadline.
func TestWakeRacesAWait(t *testing.T) {
	srv, _, rc := rawPair(t, "tcp")
	for i := range 200 {
		saw, release := make(chan struct{}), make(chan struct{})
		hook := func(h *half) {
			if h == &srv.rd {
				close(saw)
				<-release
			}
		}
		testHookWake.Store(&hook)
		go srv.rd.wake()
		<-saw
		done := make(chan error, 1)
		go func() {
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			tries := 0
			done <- rc.Read(func(fd uintptr) bool { tries++; return tries > 1 })
		}()
		testprog.Eventually(t, "the read to wait", 5*time.Second, func() (bool, string) {
			return srv.rd.waiting.Load(), "not waiting"
		})
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("round %d: a read woken as it began to wait: %v", i, err)
		}
		testHookWake.Store(nil)
		srv.rd.kept.Store(false) // a token both kept and sent: the next round starts with none
		select {
		case <-srv.rd.readyChan():
		default:
		}
	}
}

// An error of a read by the descriptor (rawio's, as the upstream pool
// reads) names the connection as net's would: its network and the
// address it went to, not "tcp" for every socket. The app here resets
// the connection: it closes with the request unread.
func TestRawIOErrorNamesTheConnection(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ln := listener(t, network)
			c, err := Dial(network, ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			srv, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			// Closing with unread data resets the peer (a TCP RST, or
			// ECONNRESET on a UNIX socket) once the data has arrived.
			testprog.Eventually(t, "the request to arrive", 5*time.Second, func() (bool, string) {
				n, _ := unreadBytes(srv)
				return n > 0, ""
			})
			srv.Close()
			_, err = c.RawIO().Read(make([]byte, 64))
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after the reset: %v, want ECONNRESET", err)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Net != network || oe.Addr == nil || oe.Addr.String() != ln.Addr().String() {
				t.Errorf("read error %q: want a *net.OpError on %s to %s", err, network, ln.Addr())
			}
		})
	}
}

// unreadBytes is how many bytes wait in c's receive queue (SIOCINQ).
func unreadBytes(c net.Conn) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	err = rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	if err == nil {
		err = ierr
	}
	return n, err
}
