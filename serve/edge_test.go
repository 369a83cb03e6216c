package serve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gsup/internal/testprog"
	"gsup/procfile"
)

// TestEdgeThroughTheFront: static files, X-Accel-Redirect, compression
// and error pages behind the real listeners, each request in the access
// log with the status and the bytes the client got.
func TestEdgeThroughTheFront(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: sendfile's path
	testprog.WriteFiles(t, dir, map[string]string{
		"public/robots.txt":  "User-agent: *\n",
		"public/big.bin":     big,
		"private/report.txt": "report\n",
		"pages/502.html":     "<h1>the app is down</h1>\n",
		"pages/404.html":     "<h1>no such file</h1>\n",
		"staticfiles/app.js": "console.log(1)\n",
	})
	set := defaults()
	set.Root = filepath.Join(dir, "public")
	set.Static = []procfile.StaticDir{
		{Prefix: "/static/", Dir: filepath.Join(dir, "staticfiles")},
		{Prefix: "/protected/", Dir: filepath.Join(dir, "private"), Internal: true},
	}
	set.Compress = []string{"zstd", "br", "gzip"}
	set.ErrorPages = map[int]string{502: filepath.Join(dir, "pages/502.html"), 404: filepath.Join(dir, "pages/404.html")}
	page := strings.Repeat("<p>hello</p>\n", 200)
	addr, logPath := front(t, set, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download":
			w.Header().Set("X-Accel-Redirect", "/protected/report.txt")
			w.Header().Set("Content-Disposition", "attachment")
			io.WriteString(w, "dropped")
		case "/die":
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		default:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
		}
	}), nil)
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	get := func(path string, header ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/robots.txt"); resp.StatusCode != 200 || body != "User-agent: *\n" {
		t.Errorf("root file: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("/big.bin"); resp.StatusCode != 200 || body != big {
		t.Errorf("big file: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, body := get("/static/app.js"); resp.StatusCode != 200 || body != "console.log(1)\n" {
		t.Errorf("prefix file: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("/static/nope.js"); resp.StatusCode != 404 || body != "<h1>no such file</h1>\n" {
		t.Errorf("missing under a prefix: %d %q", resp.StatusCode, body)
	}
	resp, body := get("/page", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || len(body) >= len(page) {
		t.Errorf("app page: %q, %d bytes", resp.Header.Get("Content-Encoding"), len(body))
	}
	gzLen := len(body)
	if resp, body := get("/download"); resp.StatusCode != 200 || body != "report\n" || resp.Header.Get("Content-Disposition") != "attachment" {
		t.Errorf("X-Accel-Redirect: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body := get("/die"); resp.StatusCode != 502 || body != "<h1>the app is down</h1>\n" || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("gsup's 502: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	// The access log has every one, with what the client got.
	c, _ := net.Dial("tcp", addr)
	c.Close()
	for _, want := range []string{
		`"GET /robots.txt HTTP/1.1" 200 14 `,
		fmt.Sprintf(`"GET /big.bin HTTP/1.1" 200 %d `, len(big)),
		`"GET /static/app.js HTTP/1.1" 200 15 `,
		`"GET /static/nope.js HTTP/1.1" 404 22 `,
		fmt.Sprintf(`"GET /page HTTP/1.1" 200 %d `, gzLen),
		`"GET /download HTTP/1.1" 200 7 `,
		`"GET /die HTTP/1.1" 502 25 `,
	} {
		eventually(t, "access log line "+want, func() bool {
			return regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(accessLog(t, logPath))
		})
	}
}

// A static file whose client goes away before the end is logged 499,
// as a proxied answer cut by its client is: the log shows the client did
// not get it all.
func TestStaticFileCutIsLogged499(t *testing.T) {
	dir := t.TempDir()
	testprog.WriteFiles(t, dir, map[string]string{"public/small.txt": "small\n"})
	// Far more than the socket buffers hold (a sparse file).
	f, err := os.Create(filepath.Join(dir, "public/huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(256 << 20)
	f.Close()
	set := defaults()
	set.Root = filepath.Join(dir, "public")
	addr, logPath := front(t, set, http.NotFoundHandler(), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("huge.bin: %v, %v", resp, err)
	}
	c.(*net.TCPConn).SetLinger(0) // the client resets: unread bytes are dropped
	c.Close()
	eventually(t, "a 499 line for the cut file", func() bool {
		return strings.Contains(accessLog(t, logPath), `"GET /huge.bin HTTP/1.1" 499 `)
	})
	// A file sent whole is still 200.
	resp, err = http.Get("http://" + addr + "/small.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "a 200 line for the whole file", func() bool {
		return strings.Contains(accessLog(t, logPath), `"GET /small.txt HTTP/1.1" 200 6 `)
	})
}
