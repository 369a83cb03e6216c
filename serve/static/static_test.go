package static

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gsup/internal/testprog"
)

// tree makes a site under a temp folder: public/ (the root and the
// /static/ prefix), private/ (an internal prefix), and outside/, whose
// secret must never be served.
func tree(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"outside/secret.txt":              "SECRET outside the folder\n",
		"outside/.env":                    "SECRET dotenv outside\n",
		"public/index.html":               "<h1>home</h1>\n",
		"public/app.css":                  strings.Repeat("body { color: red }\n", 100),
		"public/app.css.br":               "BROTLI-BYTES",
		"public/app.css.gz":               "GZIP-BYTES",
		"public/app.css.zst":              "ZSTD-BYTES",
		"public/data.unknownext":          "raw",
		"public/.env":                     "SECRET dotenv\n",
		"public/.git/config":              "SECRET git\n",
		"public/.well-known/security.txt": "Contact: mailto:security@example.com\n",
		"public/sub/file.txt":             "in sub\n",
		"public/withindex/index.html":     "index of withindex\n",
		"public/%2e%2e/literal.txt":       "literal folder named %2e%2e\n",
		"private/report.txt":              "the protected report\n",
		"private/nested/deep.txt":         "deep\n",
	}
	testprog.WriteFiles(t, dir, files)
	links := map[string]string{
		"public/link-out":     "../outside/secret.txt",
		"public/link-abs":     filepath.Join(dir, "outside/secret.txt"),
		"public/linkdir-out":  "../outside",
		"public/link-in":      "app.css",
		"public/sub/link-up":  "../app.css",
		"public/sub/link-env": "../.env",
		"public/link-root":    "/",
		"private/link-public": "../public/index.html",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const appStatus = 299 // what the fake app answers: the request went on to it

// server serves dir's site: root public/, /static/ from public/,
// /protected/ from private/ (internal, with a Cache-Control), and an app
// that answers appStatus, or an X-Accel-Redirect when asked.
func server(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	f, err := New(Options{
		Root: filepath.Join(dir, "public"),
		Dirs: []Dir{
			{Prefix: "/static/", Path: filepath.Join(dir, "public"), CacheControl: "public, max-age=31536000, immutable"},
			{Prefix: "/protected/", Path: filepath.Join(dir, "private"), Internal: true, CacheControl: "private, max-age=60"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("accel"); to != "" {
			w.Header().Set("X-Accel-Redirect", to)
			w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
			w.Header().Set("Set-Cookie", "seen=1")
			w.Header().Set("Content-Length", "9")
			w.Write([]byte("APP BODY!"))
			return
		}
		w.WriteHeader(appStatus)
		io.WriteString(w, "app "+r.URL.RawPath+r.URL.Path)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Serve(w, r) {
			return
		}
		aw := f.Accel(w, w, r)
		app.ServeHTTP(aw, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// raw sends target exactly as written (no client-side cleaning) and
// returns the response, or status 0 if the server refused the request
// line itself.
func raw(t *testing.T, srv *httptest.Server, method, target string, header ...string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestTraversalNeverLeavesTheFolder sends every way out of a folder we
// know of, under root and under a prefix: none may return a byte of a
// file outside it, or of a dotfile. Under root they go to the app (or are
// refused by net/http); under a prefix they are gsup's 404.
func TestTraversalNeverLeavesTheFolder(t *testing.T) {
	dir := tree(t)
	srv := server(t, dir)
	paths := []string{
		"../outside/secret.txt",
		"../../outside/secret.txt",
		"sub/../../outside/secret.txt",
		"%2e%2e/outside/secret.txt",
		"%2E%2E/outside/secret.txt",
		".%2e/outside/secret.txt",
		"%252e%252e/outside/secret.txt",
		"%252e%252e%252foutside%252fsecret.txt",
		"..%2foutside%2fsecret.txt",
		"..%2Foutside%2Fsecret.txt",
		"%2e%2e%2foutside%2fsecret.txt",
		"sub%2f..%2f..%2foutside%2fsecret.txt",
		"..%5coutside%5csecret.txt",
		"..%5Coutside%5Csecret.txt",
		`..\outside\secret.txt`,
		"..%c0%afoutside%c0%afsecret.txt",
		"%2f..%2foutside%2fsecret.txt",
		"/../outside/secret.txt",
		"/etc/passwd",
		"%2fetc%2fpasswd",
		"link-out",
		"link-abs",
		"linkdir-out/secret.txt",
		"linkdir-out/.env",
		"link-root/etc/passwd",
		".env",
		"%2eenv",
		".git/config",
		".git/",
		"sub/../.env",
		"sub/%2e%2e/.env",
		"./.env",
		".well-known/../.env",
		"app.css%00",
		"app.css%00.txt",
		"app.css%0a",
		"sub/",
		"sub",
		".",
		"%2e",
	}
	for _, prefix := range []string{"/", "/static/"} {
		for _, p := range paths {
			target := prefix + p
			t.Run(target, func(t *testing.T) {
				resp, body := raw(t, srv, "GET", target)
				if strings.Contains(body, "SECRET") || strings.Contains(body, "root:") {
					t.Fatalf("GET %s: %d served a file it must not:\n%s", target, resp.StatusCode, body)
				}
				switch {
				case resp.StatusCode == http.StatusBadRequest: // net/http refused the request line
				case prefix == "/" && resp.StatusCode != appStatus:
					t.Errorf("GET %s: %d %q, want it passed to the app", target, resp.StatusCode, body)
				case prefix != "/" && resp.StatusCode != http.StatusNotFound:
					t.Errorf("GET %s: %d %q, want 404", target, resp.StatusCode, body)
				}
			})
		}
	}
	// The same through X-Accel-Redirect, whose value comes from the app.
	for _, p := range paths {
		to := "/protected/" + p
		resp, body := raw(t, srv, "GET", "/download?accel="+urlQueryEscape(to))
		if strings.Contains(body, "SECRET") || resp.StatusCode != http.StatusNotFound {
			t.Errorf("X-Accel-Redirect %s: %d %q, want 404", to, resp.StatusCode, body)
		}
	}
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

// TestServesWhatIsInside: files, symlinks that stay inside, .well-known,
// a literal folder named "%2e%2e" (double-encoded), directory indexes
// under a prefix; root passes directories and methods other than GET and
// HEAD to the app.
func TestServesWhatIsInside(t *testing.T) {
	srv := server(t, tree(t))
	for _, tc := range []struct {
		method, target string
		status         int
		body           string
		ctype          string
	}{
		{"GET", "/index.html", 200, "<h1>home</h1>\n", "text/html; charset=utf-8"},
		{"GET", "/static/index.html", 200, "<h1>home</h1>\n", "text/html; charset=utf-8"},
		{"GET", "/link-in", 200, "body { color: red }", "application/octet-stream"},
		{"GET", "/sub/link-up", 200, "body { color: red }", "application/octet-stream"},
		{"GET", "/.well-known/security.txt", 200, "Contact:", "text/plain; charset=utf-8"},
		{"GET", "/%252e%252e/literal.txt", 200, "literal folder", "text/plain; charset=utf-8"},
		{"GET", "/data.unknownext", 200, "raw", "application/octet-stream"},
		{"GET", "/static/withindex/", 200, "index of withindex", "text/html; charset=utf-8"},
		{"GET", "/static/sub/file.txt", 200, "in sub", "text/plain; charset=utf-8"},
		{"HEAD", "/index.html", 200, "", "text/html; charset=utf-8"},
		{"GET", "/", appStatus, "app /", ""},
		{"GET", "/withindex/", appStatus, "app", ""},
		{"GET", "/missing.txt", appStatus, "app /missing.txt", ""},
		{"POST", "/index.html", appStatus, "app /index.html", ""},
		{"GET", "/static/missing.txt", 404, "404 page not found", ""},
		{"GET", "/static/sub/", 404, "404 page not found", ""},
		{"POST", "/static/index.html", 405, "Method Not Allowed", ""},
		{"GET", "/protected/report.txt", 404, "404 page not found", ""},
	} {
		resp, body := raw(t, srv, tc.method, tc.target)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) || tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: %d %q (%s), want %d with %q (%s)", tc.method, tc.target, resp.StatusCode, body,
				resp.Header.Get("Content-Type"), tc.status, tc.body, tc.ctype)
		}
	}
}

// TestValidatorsRangesAndCaching: ETag and Last-Modified give 304, Range
// gives 206 and 416, Cache-Control comes from the prefix.
func TestValidatorsRangesAndCaching(t *testing.T) {
	srv := server(t, tree(t))
	resp, _ := raw(t, srv, "GET", "/static/sub/file.txt")
	etag, lm := resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || lm == "" || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("validators: ETag %q, Last-Modified %q, Accept-Ranges %q", etag, lm, resp.Header.Get("Accept-Ranges"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("Cache-Control %q", cc)
	}
	if resp, body := raw(t, srv, "GET", "/static/sub/file.txt", "If-None-Match: "+etag); resp.StatusCode != 304 || body != "" {
		t.Errorf("If-None-Match: %d %q", resp.StatusCode, body)
	}
	if resp, _ := raw(t, srv, "GET", "/static/sub/file.txt", "If-Modified-Since: "+lm); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d", resp.StatusCode)
	}
	if resp, _ := raw(t, srv, "GET", "/static/sub/file.txt", `If-None-Match: "other"`); resp.StatusCode != 200 {
		t.Errorf("If-None-Match other: %d", resp.StatusCode)
	}
	resp, body := raw(t, srv, "GET", "/static/sub/file.txt", "Range: bytes=3-5")
	if resp.StatusCode != 206 || body != "sub" || resp.Header.Get("Content-Range") != "bytes 3-5/7" {
		t.Errorf("Range: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	resp, _ = raw(t, srv, "GET", "/static/sub/file.txt", "Range: bytes=100-")
	if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */7" {
		t.Errorf("Range past the end: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
}

// TestPrecompressedSiblings: the sibling of the coding the client prefers
// is sent with Content-Encoding, its own ETag and Vary; without
// Accept-Encoding the file itself.
func TestPrecompressedSiblings(t *testing.T) {
	srv := server(t, tree(t))
	plain, _ := raw(t, srv, "GET", "/app.css")
	for _, tc := range []struct{ accept, coding, body string }{
		{"gzip, deflate, br, zstd", "zstd", "ZSTD-BYTES"},
		{"gzip, br", "br", "BROTLI-BYTES"},
		{"gzip", "gzip", "GZIP-BYTES"},
		{"br;q=0.5, gzip;q=1", "gzip", "GZIP-BYTES"},
		{"*", "zstd", "ZSTD-BYTES"},
		{"*, zstd;q=0", "br", "BROTLI-BYTES"},
		{"identity", "", "body { color"},
		{"gzip;q=0", "", "body { color"},
	} {
		resp, body := raw(t, srv, "GET", "/static/app.css", "Accept-Encoding: "+tc.accept)
		if resp.Header.Get("Content-Encoding") != tc.coding || !strings.HasPrefix(body, tc.body) {
			t.Errorf("Accept-Encoding %q: %q %q, want %q %q", tc.accept, resp.Header.Get("Content-Encoding"), body[:min(len(body), 20)], tc.coding, tc.body)
		}
		if tc.coding != "" && (resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Etag") == plain.Header.Get("Etag")) {
			t.Errorf("Accept-Encoding %q: Vary %q, ETag %q (plain %q)", tc.accept, resp.Header.Get("Vary"), resp.Header.Get("Etag"), plain.Header.Get("Etag"))
		}
	}
}

// TestAccelRedirect: the app's X-Accel-Redirect sends the file from an
// internal prefix, with the app's other header fields, without its body.
func TestAccelRedirect(t *testing.T) {
	srv := server(t, tree(t))
	resp, body := raw(t, srv, "GET", "/download?accel=/protected/report.txt")
	if resp.StatusCode != 200 || body != "the protected report\n" {
		t.Fatalf("X-Accel-Redirect: %d %q", resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Content-Disposition") == "" || h.Get("Set-Cookie") != "seen=1" || h.Get("X-Accel-Redirect") != "" ||
		h.Get("Cache-Control") != "private, max-age=60" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("X-Accel-Redirect headers: %v", h)
	}
	resp, body = raw(t, srv, "GET", "/download?accel=/protected/nested/deep.txt", "Range: bytes=0-1")
	if resp.StatusCode != 206 || body != "de" {
		t.Errorf("X-Accel-Redirect with Range: %d %q", resp.StatusCode, body)
	}
	for _, to := range []string{"/protected/missing.txt", "/protected/link-public", "/elsewhere/report.txt", "/protected/%2e%2e/public/index.html"} {
		if resp, body := raw(t, srv, "GET", "/download?accel="+urlQueryEscape(to)); resp.StatusCode != 404 || strings.Contains(body, "APP BODY") {
			t.Errorf("X-Accel-Redirect %s: %d %q, want 404", to, resp.StatusCode, body)
		}
	}
}

// TestNewRefusesMissingFolder: a folder that cannot be opened is an error.
func TestNewRefusesMissingFolder(t *testing.T) {
	if _, err := New(Options{Root: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Fatal("no error for a missing root")
	}
}

// TestCacheFollowsTheFolder: the open-file cache never serves a mix of an
// old and a new file, and sees within its time a file replaced by rename,
// changed in place, removed or created.
func TestCacheFollowsTheFolder(t *testing.T) {
	dir := tree(t)
	srv := server(t, dir)
	pub := filepath.Join(dir, "public")
	get := func(target string) (int, string) {
		resp, body := raw(t, srv, "GET", target)
		return resp.StatusCode, body
	}
	// until polls get until it answers want; every answer on the way must
	// be one of ok.
	until := func(target string, want int, wantBody string, ok ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, body := get(target)
			if code == want && body == wantBody {
				return
			}
			if !slices.Contains(ok, body) {
				t.Fatalf("GET %s: %d %q, neither the old nor the new file", target, code, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: still %d %q after 5s, want %d %q", target, code, body, want, wantBody)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(pub, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, next := strings.Repeat("old ", 1000), strings.Repeat("new!", 1000)
	write("page.txt", old)
	if code, body := get("/static/page.txt"); code != 200 || body != old {
		t.Fatalf("first GET: %d %q", code, body[:min(len(body), 20)])
	}
	write("page.txt.tmp", next)
	if err := os.Rename(filepath.Join(pub, "page.txt.tmp"), filepath.Join(pub, "page.txt")); err != nil {
		t.Fatal(err)
	}
	until("/static/page.txt", 200, next, old)
	write("page.txt", "short now")
	until("/static/page.txt", 200, "short now", next, "")
	if err := os.Remove(filepath.Join(pub, "page.txt")); err != nil {
		t.Fatal(err)
	}
	until("/static/page.txt", 404, "404 page not found\n", "short now")
	until("/page.txt", appStatus, "app /page.txt")
	write("page.txt", "back")
	until("/page.txt", 200, "back", "app /page.txt")

	big := strings.Repeat("0123456789abcdef", 1<<12) // 64 KiB: above smallFile, sent with sendfile
	write("big.bin", big)
	if code, body := get("/big.bin"); code != 200 || body != big {
		t.Fatalf("GET /big.bin: %d, %d bytes", code, len(body))
	}
}

// TestCacheIsBounded: a folder keeps at most cacheMax names, and gives
// back every file when closed.
func TestCacheIsBounded(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := New(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * cacheMax {
		w := httptest.NewRecorder()
		f.Serve(w, httptest.NewRequest("GET", fmt.Sprintf("/f%d", i), nil)) // 20 files, the rest missing
		if n := len(f.root.cache.m); n > cacheMax {
			t.Fatalf("%d names cached, at most %d", n, cacheMax)
		}
	}
	f.Close()
	if n := len(f.root.cache.m); n != 0 {
		t.Errorf("%d names cached after Close", n)
	}
}
