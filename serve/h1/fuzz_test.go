package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"gsup/serve/httpcheck"
)

// FuzzServe sends arbitrary bytes to a Server on a loopback connection
// and checks that every request the handler was given is the one
// net/http's own parser reads at the same place of the same bytes (the
// method, target, Host and body): a request the two would frame
// differently is one a smuggler could use. The server must also go on
// answering a plain request on a new connection.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"\r\nGET http://h/p?q HTTP/1.1\r\nHost: y\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	var mu sync.Mutex
	var got []string
	s := &Server{Limits: httpcheck.DefaultLimits, ReadHeaderTimeout: time.Second, IdleTimeout: time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			got = append(got, describe(r, b))
			mu.Unlock()
			io.WriteString(w, "ok")
		})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go s.Serve(ln)
	f.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()
	f.Fuzz(func(t *testing.T, raw []byte) {
		mu.Lock()
		got = nil
		mu.Unlock()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
		mu.Lock()
		handled := got
		mu.Unlock()
		br := bufio.NewReader(bytes.NewReader(raw))
		for i, h := range handled {
			for { // empty lines before a request line are skipped (RFC 9112 section 2.2)
				if b, err := br.Peek(1); err != nil || (b[0] != '\r' && b[0] != '\n') {
					break
				}
				br.ReadByte()
			}
			r, err := http.ReadRequest(br)
			if err != nil {
				t.Fatalf("request %d was handled as %s; net/http refuses it: %v", i, h, err)
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatalf("request %d was handled as %s; net/http cannot read its body: %v", i, h, err)
			}
			if want := describe(r, b); want != h {
				t.Fatalf("request %d: handled as %s, net/http reads %s", i, h, want)
			}
		}
		c, br2 := dialFuzz(t, addr)
		defer c.Close()
		io.WriteString(c, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(br2, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("a plain request after the case: %v, %v", resp, err)
		}
	})
}

func dialFuzz(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

func describe(r *http.Request, body []byte) string {
	return fmt.Sprintf("%s %q host=%q body=%q", r.Method, r.RequestURI, r.Host, body)
}
