package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// BenchmarkKeepAlive compares the layer with net/http's server: one
// keep-alive connection over loopback, a 6-byte answer per request. The
// client is the same for both (a raw connection and http.ReadResponse).
func BenchmarkKeepAlive(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello\n")
	})
	for _, layer := range []string{"h1", "net-http"} {
		b.Run(layer, func(b *testing.B) {
			addr, stop := startLayer(b, layer, hello)
			defer stop()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkIdleMemory reports the memory (heap and stacks, after a
// collection) that each idle keep-alive connection holds in the server,
// next to net/http's server: N connections each send one request, read
// the answer and stay open.
func BenchmarkIdleMemory(b *testing.B) {
	const conns = 2000
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })
	for _, layer := range []string{"h1", "net-http"} {
		b.Run(layer, func(b *testing.B) {
			for range b.N {
				addr, stop := startLayer(b, layer, hello)
				before, beforeStack := inUse()
				cs := make([]net.Conn, 0, conns)
				for range conns {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Fatal(err)
					}
					cs = append(cs, c)
					io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
					if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
						b.Fatal(err)
					}
				}
				after, afterStack := inUse()
				b.ReportMetric(float64(after-before)/conns, "B/idle-conn")
				b.ReportMetric(float64(afterStack-beforeStack)/conns, "stack-B/idle-conn")
				for _, c := range cs {
					c.Close()
				}
				stop()
			}
		})
	}
}

// inUse is the heap and stack memory in use after a collection, and the
// stacks' part.
func inUse() (all, stacks int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse), int64(m.StackInuse)
}

// startLayer serves h with this package's Server ("h1") or net/http's.
func startLayer(b *testing.B, layer string, h http.Handler) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if layer == "h1" {
		s := &Server{Handler: h}
		go s.Serve(ln)
		return ln.Addr().String(), func() { s.Close() }
	}
	s := &http.Server{Handler: h}
	go s.Serve(ln)
	return ln.Addr().String(), func() { s.Close() }
}
