package compress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func TestNegotiate(t *testing.T) {
	all := []string{"zstd", "br", "gzip"}
	for _, tc := range []struct {
		accept  string
		offered []string
		want    string
	}{
		{"", all, ""},
		{"gzip, deflate, br, zstd", all, "zstd"},
		{"gzip, deflate, br", all, "br"},
		{"gzip", all, "gzip"},
		{"x-gzip", all, "gzip"},
		{"GZIP", all, "gzip"},
		{"br;q=0.5, gzip", all, "gzip"},
		{"br;q=0.5, gzip;q=0.5", all, "br"},
		{"*", all, "zstd"},
		{"*;q=0.1, gzip;q=0.9", all, "gzip"},
		{"*, zstd;q=0", all, "br"},
		{"gzip;q=0", all, ""},
		{"identity", all, ""},
		{"gzip;q=bogus", all, ""},
		{"br, gzip", []string{"gzip", "br"}, "gzip"},
		{"zstd", []string{"gzip"}, ""},
	} {
		if got := Negotiate(tc.accept, tc.offered); got != tc.want {
			t.Errorf("Negotiate(%q, %q) = %q, want %q", tc.accept, tc.offered, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check([]string{"zstd", "br", "gzip"}); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]string{{"deflate"}, {"gzip", "gzip"}, {"GZIP"}} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q): no error", bad)
		}
	}
}

func decode(t *testing.T, coding string, r io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	case "":
		return r
	}
	t.Fatalf("coding %q", coding)
	return nil
}

// page is a text body well over MinLength.
var page = strings.Repeat("<p>gsup compresses text-like responses for clients that accept it.</p>\n", 100)

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	c, err := New([]string{"zstd", "br", "gzip"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := c.Wrap(w, r)
		defer cw.Close()
		h(cw, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(decode(t, resp.Header.Get("Content-Encoding"), resp.Body))
	if err != nil {
		t.Fatalf("%s %s: decoding %s: %v", method, path, resp.Header.Get("Content-Encoding"), err)
	}
	return resp, body
}

// TestCompressesForEveryCoding: what the client decodes is what the app
// wrote, for each coding, with Vary and a weak ETag; known and unknown
// lengths alike.
func TestCompressesForEveryCoding(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Etag", `"v1"`)
		if r.URL.Path == "/known" {
			w.Header().Set("Content-Length", "7200")
		}
		io.WriteString(w, page)
	})
	for _, coding := range Codings {
		for _, path := range []string{"/known", "/chunked"} {
			resp, body := get(t, srv, "GET", path, "Accept-Encoding", coding)
			if got := resp.Header.Get("Content-Encoding"); got != coding {
				t.Errorf("%s %s: Content-Encoding %q", coding, path, got)
			}
			if string(body) != page {
				t.Errorf("%s %s: decoded body differs (%d bytes, want %d)", coding, path, len(body), len(page))
			}
			if resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Etag") != `W/"v1"` || resp.ContentLength == int64(len(page)) {
				t.Errorf("%s %s: Vary %q, ETag %q, length %d", coding, path, resp.Header.Get("Vary"), resp.Header.Get("Etag"), resp.ContentLength)
			}
		}
	}
}

// TestLeavesAlone: what must never be compressed.
func TestLeavesAlone(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		body := page
		switch r.URL.Path {
		case "/small":
			body = "tiny"
			h.Set("Content-Length", "4")
		case "/png":
			h.Set("Content-Type", "image/png")
		case "/encoded":
			h.Set("Content-Encoding", "gzip")
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			io.WriteString(zw, page)
			zw.Close()
			body = b.String()
		case "/no-transform":
			h.Set("Cache-Control", "public, no-transform")
		case "/no-content":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
			return
		case "/partial":
			h.Set("Content-Range", "bytes 0-99/7200")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, page[:100])
			return
		case "/untyped":
			h["Content-Type"] = nil
		}
		io.WriteString(w, body)
	})
	for _, tc := range []struct {
		method, path string
		header       []string
		vary         bool
	}{
		{"GET", "/small", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/png", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/encoded", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/no-transform", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/no-content", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/not-modified", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/partial", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/untyped", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/page", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-10"}, false},
		{"HEAD", "/page", []string{"Accept-Encoding", "gzip"}, false},
		{"GET", "/page", nil, true},
		{"GET", "/page", []string{"Accept-Encoding", "identity"}, true},
		{"GET", "/page", []string{"Accept-Encoding", "deflate"}, true},
	} {
		resp, body := get(t, srv, tc.method, tc.path, tc.header...)
		if ce := resp.Header.Get("Content-Encoding"); ce != "" && tc.path != "/encoded" {
			t.Errorf("%s %s %q: Content-Encoding %q", tc.method, tc.path, tc.header, ce)
		}
		if tc.path == "/page" && tc.method == "GET" && string(body) != page {
			t.Errorf("%s %s %q: body changed", tc.method, tc.path, tc.header)
		}
		if tc.path == "/encoded" && string(body) != page {
			t.Errorf("app's own gzip was touched")
		}
		if got := resp.Header.Get("Vary") == "Accept-Encoding"; got != tc.vary {
			t.Errorf("%s %s %q: Vary %q", tc.method, tc.path, tc.header, resp.Header.Get("Vary"))
		}
	}
}

// TestStreamsArriveAsSent: each Server-Sent Event is decodable by the
// client before the next is written, for every coding.
func TestStreamsArriveAsSent(t *testing.T) {
	next := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			io.WriteString(w, "data: event "+string(rune('1'+i))+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
		}
	})
	for _, coding := range Codings {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Accept-Encoding", coding)
		tr := &http.Transport{DisableCompression: true}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Encoding") != coding {
			t.Fatalf("%s: Content-Encoding %q", coding, resp.Header.Get("Content-Encoding"))
		}
		br := bufio.NewReader(decode(t, coding, resp.Body))
		for i := range 3 {
			// The handler waits for next: this read would hang (and time
			// out the test) if the event were held back.
			line, err := br.ReadString('\n')
			want := "data: event " + string(rune('1'+i)) + "\n"
			if err != nil || line != want {
				t.Fatalf("%s: event %d: %q %v", coding, i+1, line, err)
			}
			br.ReadString('\n')
			next <- struct{}{}
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
}
