package serve

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/procfile"
)

// BenchmarkFront is one client through the whole front (h1, the
// handling layer, the proxy, the access log) to an app that answers every
// request with the same 6 bytes, on one kept connection (keep-alive) or a
// new one per request (close). The app and the client allocate nothing
// per request on a kept connection, so allocs/op is the front's there.
func BenchmarkFront(b *testing.B) {
	b.Run("app-keeps", func(b *testing.B) { benchFront(b, rawApp(b, false)) })
	// An app that closes every connection (Gunicorn's sync workers): a
	// new app connection per request.
	b.Run("app-closes", func(b *testing.B) { benchFront(b, rawApp(b, true)) })
}

func benchFront(b *testing.B, app string) {
	addr := benchServer(b, app)
	b.Run("keep-alive", func(b *testing.B) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		for b.Loop() {
			if err := keptRequest(c, br); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("close", func(b *testing.B) {
		br := bufio.NewReader(nil)
		b.ReportAllocs()
		for b.Loop() {
			if err := newConnRequest(addr, br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchServer starts a front with an access log (to a file) before app, for
// tb's duration, and returns its address.
func benchServer(tb testing.TB, app string) string {
	set := defaults()
	set.AccessLogfile = filepath.Join(tb.TempDir(), "access.log")
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := New(Config{Settings: set, Log: log, Stdout: io.Discard})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Listen([]procfile.Bind{{Address: "127.0.0.1:0"}}, nil, ""); err != nil {
		tb.Fatal(err)
	}
	s.Serve()
	s.Add(1, app)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s.lns[0].Addr().String()
}

var (
	keptReq  = []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	closeReq = []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nConnection: close\r\n\r\n")
)

// keptRequest sends a request on c, a kept connection, and reads its
// answer from br (c's).
func keptRequest(c net.Conn, br *bufio.Reader) error {
	if _, err := c.Write(keptReq); err != nil {
		return err
	}
	return readAnswer(br)
}

// newConnRequest sends a request with Connection: close on a new
// connection to addr and reads its answer with br.
func newConnRequest(addr string, br *bufio.Reader) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br.Reset(c)
	if _, err := c.Write(closeReq); err != nil {
		return err
	}
	return readAnswer(br)
}

// readAnswer reads one response with a Content-Length, allocating
// nothing.
func readAnswer(br *bufio.Reader) error {
	clen := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && len(k) == 14 && bytes.EqualFold(k, []byte("Content-Length")) {
			clen, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if clen < 0 {
		return io.ErrUnexpectedEOF
	}
	_, err := br.Discard(clen)
	return err
}

// rawApp serves "hello\n" to every request on a loopback port, reading
// heads line by line, and closes the connection after each answer when
// closes is set; it returns its address.
func rawApp(tb testing.TB, closes bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
	if closes {
		answer = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 6\r\n\r\nhello\n")
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 {
						if _, err := c.Write(answer); err != nil || closes {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
