package static

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkServe: a GET for a 4 KiB file under root, as wrk sends it
// (no conditional, no Range, no Accept-Encoding), and the same with
// Accept-Encoding and If-None-Match (a browser's revalidation).
func BenchmarkServe(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "4k.bin"), []byte(strings.Repeat("x", 4096)), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := New(Options{Root: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, bc := range []struct {
		name   string
		header http.Header
	}{
		{"plain", nil},
		{"revalidate", http.Header{"Accept-Encoding": {"gzip, br, zstd"}, "If-None-Match": {`"x"`}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/4k.bin", nil)
			for k, v := range bc.header {
				r.Header[k] = v
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				if !f.Serve(w, r) || w.Code != 200 {
					b.Fatalf("not served: %d", w.Code)
				}
			}
		})
	}
}
