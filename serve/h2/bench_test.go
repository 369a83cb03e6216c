package h2

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkStream is one request at a time on one connection (plain TCP,
// no TLS: the layer's own cost) to a handler that answers 6 bytes. The
// client sends a HEADERS frame it encoded once and reads the answer's
// frames; it allocates one frame per HEADERS it reads, so allocs/op is
// the layer's plus one.
func BenchmarkStream(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello\n")
	})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(c)
		}
	}()
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bw := bufio.NewWriter(c)
	fr := http2.NewFramer(bw, bufio.NewReader(c))
	fr.SetReuseFrames()
	io.WriteString(bw, preface)
	fr.WriteSettings()
	fr.WriteWindowUpdate(0, 1<<30)
	bw.Flush()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "x"}, {"user-agent", "bench"}, {"accept", "*/*"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	id := uint32(1)
	b.ReportAllocs()
	for b.Loop() {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				done = f.StreamID == id && f.StreamEnded()
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				b.Fatalf("%v", f)
			}
		}
		id += 2
	}
}
