package serve

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/testprog"
	"gsup/procfile"
)

// A reload applies every [serve] setting that needs no new listener: the
// requests after it see the new ones, a request in flight keeps those it
// started with (its access-log line too), a setting that needs a restart
// is named in a warning, and a bad value changes nothing.
func TestReloadAppliesSettings(t *testing.T) {
	release := make(chan struct{})
	events := heldEvents(release)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			events(w, r)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			fmt.Fprint(w, "slow")
		default:
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "xff=%s %s", r.Header.Get("X-Forwarded-For"), strings.Repeat("a", 2000))
		}
	}))
	t.Cleanup(app.Close)
	dir := t.TempDir()
	root := filepath.Join(dir, "public")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "robots.txt"), []byte("User-agent: *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := defaults()
	set.AccessLogfile = filepath.Join(dir, "access.log")
	set.AccessLogformat = `old "%(r)s" %(s)s`
	errLog := &testprog.Buffer{}
	log := logrus.New()
	log.SetOutput(errLog)
	s := startServer(t, Config{Settings: set, Log: log, Stdout: io.Discard}, []procfile.Bind{{Address: "127.0.0.1:0"}}, app.URL)
	addr := s.lns[0].Addr().String()
	get := func(host, path string, header ...string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	// A stream in flight across the reload.
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	next := set
	next.Hosts = []string{"example.com"}
	next.HealthPath = "/-/health"
	next.Root = root
	next.Compress = []string{"gzip"}
	next.MaxBody = 10
	next.LimitRequestLine = 100
	next.ForwardedAllowIPs = []string{"10.0.0.1"}
	next.Timeout = 100 * time.Millisecond
	next.AccessLogformat = `new "%(r)s" %(s)s`
	next.AccessLogfile = filepath.Join(dir, "other.log")
	next.MetricsBind = "127.0.0.1:9"
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}

	if code, _, _ := get("other.test", "/"); code != http.StatusMisdirectedRequest {
		t.Errorf("hosts: a request for other.test got %d, want 421", code)
	}
	if code, _, body := get("other.test", "/-/health"); code != 200 || body != "ok\n" {
		t.Errorf("health_path: %d %.40q", code, body)
	}
	if _, _, body := get("example.com", "/robots.txt"); body != "User-agent: *\n" {
		t.Errorf("root: %.40q", body)
	}
	code, h, body := get("example.com", "/", "Accept-Encoding", "gzip", "X-Forwarded-For", "6.6.6.6")
	if code != 200 || h.Get("Content-Encoding") != "gzip" {
		t.Errorf("compress: %d %v", code, h)
	} else {
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !strings.HasPrefix(string(plain), "xff=127.0.0.1 ") {
			t.Errorf("forwarded_allow_ips: the app saw %.40q", plain)
		}
	}
	if code, _, _ := get("example.com", "/"+strings.Repeat("x", 200)); code != http.StatusRequestURITooLong {
		t.Errorf("limit_request_line: %d, want 414", code)
	}
	if code, _, _ := get("example.com", "/slow"); code != http.StatusGatewayTimeout {
		t.Errorf("timeout: %d, want 504", code)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n")
	if line, _ := readLine(c); !strings.Contains(line, " 413 ") {
		t.Errorf("max_body: %q, want 413", line)
	}
	c.Close()

	// The stream started before the reload ends with its own settings:
	// not compressed, and logged in the old format.
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "data: last\n\n" {
		t.Errorf("the stream in flight: %q", rest)
	}
	eventually(t, "the access log", func() bool {
		l := accessLog(t, set.AccessLogfile)
		return strings.Contains(l, `old "GET /events HTTP/1.1" 200`) && strings.Contains(l, `new "GET /robots.txt HTTP/1.1" 200`)
	})
	for _, key := range []string{"access_logfile", "metrics_bind"} {
		if want := key + " changed: kept until a restart"; !strings.Contains(errLog.String(), want) {
			t.Errorf("no warning %q in:\n%s", want, errLog)
		}
	}

	// A bad value refuses the reload: nothing changes.
	bad := next
	bad.Hosts = nil
	bad.AccessLogformat = "%(s"
	if err := s.Reload(bad); err == nil || !strings.Contains(err.Error(), "access_logformat") {
		t.Errorf("a bad access_logformat: %v", err)
	}
	if code, _, _ := get("other.test", "/"); code != http.StatusMisdirectedRequest {
		t.Errorf("after a refused reload, hosts changed: %d", code)
	}
}

// readLine reads the first line the server sends on c.
func readLine(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := c.Read(b)
	line, _, _ := strings.Cut(string(b[:n]), "\r\n")
	return line, err
}

// max_connections and error_pages change at a reload too.
func TestReloadConnectionsAndErrorPages(t *testing.T) {
	s := startServer(t, Config{Settings: defaults(), Log: logrus.New(), Stdout: io.Discard}, []procfile.Bind{{Address: "127.0.0.1:0"}}, "http://127.0.0.1:1")
	addr := s.lns[0].Addr().String()
	page := filepath.Join(t.TempDir(), "503.html")
	if err := os.WriteFile(page, []byte("<p>back soon</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := s.set
	next.MaxConnections = 1
	next.ErrorPages = map[int]string{503: page}
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	s.Remove(1) // no instance, none expected: gsup's own 503
	c1 := dialFront(t, addr)
	fmt.Fprint(c1, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c1), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || string(body) != "<p>back soon</p>\n" {
		t.Errorf("error_pages: %d %q", resp.StatusCode, body)
	}
	c2 := dialFront(t, addr)
	fmt.Fprint(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := closedWithin(t, c2, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 503 ") || strings.Contains(got, "back soon") {
		t.Errorf("max_connections = 1: a second connection got %q, want the refusal", got)
	}
}
