package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gsup/serve/forward"
)

var helloBody = []byte("hello\n")

// helloApp is the benchmark app of reference/proxy-speed.md: a 6-byte body
// with a Content-Length.
var helloApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "6")
	w.Write(helloBody)
})

// setForwarded is the kind of Forward gsup's front installs.
func setForwarded(p *forward.Plan, _ forward.Source, in *http.Request) {
	host, _, _ := net.SplitHostPort(in.RemoteAddr)
	p.Set("X-Forwarded-For", host)
	p.Set("X-Forwarded-Proto", "http")
	p.Set("X-Forwarded-Host", in.Host)
	p.Scheme = "http"
}

// BenchmarkProxy measures one keep-alive GET through each front, with
// client, front and app in this process: ns/op is the wall time per request
// with b.SetParallelism(8) connections per P; cpu-ns/op (CPU time of the
// whole process per request) and allocs/op count all three. "direct" is the
// app alone, so a front's own cost = its row - the direct row.
func BenchmarkProxy(b *testing.B) {
	tcpApp := startBackend(b, helloApp)
	unixApp := startUnixBackend(b, helloApp)

	gsup := func(addr string) string {
		bal := NewBalancer()
		bal.Add(1, addr)
		return startBenchFront(b, NewProxy(bal, Options{Forward: setForwarded}))
	}
	ref := func(addr string) string {
		target := &url.URL{Scheme: "http", Host: addr}
		tr := &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 256,
			DisableCompression: true, ForceAttemptHTTP2: false,
		}
		if path, ok := strings.CutPrefix(addr, "unix:"); ok {
			target.Host = "localhost"
			tr.Dial = func(string, string) (net.Conn, error) { return net.Dial("unix", path) }
		}
		b.Cleanup(tr.CloseIdleConnections)
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			Transport:  tr,
			BufferPool: bufPool{},
		}
		return startBenchFront(b, rp)
	}

	for _, c := range []struct{ name, addr string }{
		{"direct/tcp", tcpApp},
		{"direct/unix", unixApp},
		{"gsup/tcp", gsup(tcpApp)},
		{"gsup/unix", gsup(unixApp)},
		{"reverseproxy/tcp", ref(tcpApp)},
		{"reverseproxy/unix", ref(unixApp)},
	} {
		b.Run(c.name, func(b *testing.B) { benchGet(b, c.addr) })
	}
}

func startBenchFront(b *testing.B, h http.Handler) string {
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Start()
	b.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

type bufPool struct{}

func (bufPool) Get() []byte  { return (*getBuf(copySize))[:copySize] }
func (bufPool) Put(p []byte) { putBuf(&p) }

// benchGet sends keep-alive GETs on raw connections, so that the client
// costs little next to what it measures.
func benchGet(b *testing.B, addr string) {
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	req := []byte("GET /hello HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu0 := cpuTime()
	b.ResetTimer()
	defer func() {
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial(network, addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := readHello(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// readHello reads one response and checks it is the hello body.
func readHello(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return errorf("bad status line %q", line)
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n != len(helloBody) {
		return errorf("Content-Length %d", n)
	}
	body, err := br.Peek(n)
	if err != nil {
		return err
	}
	if !bytes.Equal(body, helloBody) {
		return errorf("body %q", body)
	}
	br.Discard(n)
	return nil
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

// cpuTime is the CPU time (user and system) this process has used, in
// nanoseconds: on a shared machine it moves far less than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
