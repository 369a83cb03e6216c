package listen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/procfile"
)

// FuzzServe sends random bytes, seeded with PROXY headers and requests, to
// listeners of every mode served by an http.Server: nothing may crash, and
// every connection must end within a bound.
func FuzzServe(f *testing.F) {
	req := []byte(request)
	for _, c := range proxyCases() {
		f.Add(byte(0), append(append([]byte{}, c.prefix...), req...))
		f.Add(byte(1), c.prefix)
	}
	f.Add(byte(2), []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"+request+request+request))
	f.Add(byte(3), v2(proxyCmd, tcp6, inet6("::1", "::2", 1, 2), sslTLV(1)))
	f.Add(byte(4), []byte("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add(byte(5), []byte{})
	f.Add(byte(0), []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"))

	log := logrus.New()
	log.SetOutput(io.Discard)
	// Mostly UNIX sockets (every PROXY path runs there too: UNIX peers may
	// send headers), so that hundreds of thousands of connections do not
	// fill the TCP TIME-WAIT table and make dials wait for SYN retries.
	o := Options{Log: log, HeaderTimeout: 100 * time.Millisecond}
	var ls []*Listener
	for i, mode := range []string{ProxyAuto, ProxyRequired, ProxyV1, ProxyV2, ProxyOff} {
		o.ProxyProtocol = mode
		ls = append(ls, openOne(f, procfile.Bind{Address: "unix:" + filepath.Join(f.TempDir(), fmt.Sprint(i))}, o))
	}
	o.ProxyProtocol = ProxyAuto
	ls = append(ls, openOne(f, procfile.Bind{Address: "127.0.0.1:0"}, o))
	o.ProxyProtocol, o.ProxyAllow = ProxyRequired, mustAllow(f, "192.0.2.0/24") // the peer may not send headers
	ls = append(ls, openOne(f, procfile.Bind{Address: "127.0.0.1:0"}, o))
	for _, l := range ls {
		srv := &http.Server{
			Handler:           http.HandlerFunc(infoHandler),
			ConnContext:       ConnContext,
			ReadHeaderTimeout: 500 * time.Millisecond,
			ReadTimeout:       time.Second,
			WriteTimeout:      time.Second,
			IdleTimeout:       500 * time.Millisecond,
		}
		go func() { _ = srv.Serve(l) }()
		f.Cleanup(func() { _ = srv.Close() })
	}
	var runs atomic.Int64

	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		l := ls[int(which)%len(ls)]
		c, err := net.DialTimeout(l.Addr().Network(), l.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const bound = 5 * time.Second
		_ = c.SetDeadline(time.Now().Add(bound))
		// Read while writing, so pipelined responses cannot fill the
		// buffers and stall both sides.
		read := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, c)
			read <- err
		}()
		if _, err := c.Write(data); err == nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}
		err = <-read
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection to %s still open after %s", l.Name, bound)
		}
		// Now and then, check that the listener still serves.
		if runs.Add(1)%50 == 0 {
			get(t, ls[0], nil, 1)
		}
	})
}
