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
	set := defaults()
	set.AccessLogfile = filepath.Join(b.TempDir(), "access.log")
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := New(Config{Settings: set, Log: log, Stdout: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Listen([]procfile.Bind{{Address: "127.0.0.1:0"}}, nil, ""); err != nil {
		b.Fatal(err)
	}
	s.Serve()
	s.Add(1, app)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	addr := s.lns[0].Addr().String()
	b.Run("keep-alive", func(b *testing.B) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
		br := bufio.NewReader(c)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			if err := readAnswer(br); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("close", func(b *testing.B) {
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(nil)
		b.ReportAllocs()
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			br.Reset(c)
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			if err := readAnswer(br); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
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
func rawApp(b *testing.B, closes bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
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
