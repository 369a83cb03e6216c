package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/http2"

	"gsup/internal/testcert"
	"gsup/internal/testprog"
	"gsup/procfile"
)

// tlsFront is a Server with TLS binds in front of an app, and what the
// tests need to reach it.
type tlsFront struct {
	s        *Server
	ca       *testcert.CA
	dir      string
	tlsAddr  string // the TLS bind
	httpAddr string // the redirect bind
	logPath  string
	errLog   *testprog.Buffer
}

// startTLSFront serves app over TLS with the certificates of certs
// (names of each), on a TLS bind and a redirect bind.
func startTLSFront(t *testing.T, set procfile.Serve, app http.Handler, certs ...[]string) *tlsFront {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFront{ca: ca, dir: t.TempDir(), errLog: &testprog.Buffer{}}
	if err := os.WriteFile(filepath.Join(f.dir, "ca.pem"), ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, names := range certs {
		p := procfile.CertPair{CertFile: filepath.Join(f.dir, fmt.Sprintf("c%d.pem", i)), KeyFile: filepath.Join(f.dir, fmt.Sprintf("k%d.pem", i))}
		if err := ca.WriteLeaf(p.CertFile, p.KeyFile, names...); err != nil {
			t.Fatal(err)
		}
		set.Certs = append(set.Certs, p)
	}
	backend := httptest.NewServer(app)
	t.Cleanup(backend.Close)
	f.logPath = filepath.Join(f.dir, "access.log")
	set.AccessLogfile = f.logPath
	set.AccessLogformat = `%(h)s "%(r)s" %(s)s %(H)s %({host}i)s`
	set.Bind = []procfile.Bind{{Address: "127.0.0.1:0", Scheme: "https", TLS: true}, {Address: "127.0.0.2:0", Scheme: "http", Redirect: "https"}}
	log := logrus.New()
	log.SetOutput(f.errLog)
	log.SetLevel(logrus.DebugLevel)
	s := startServer(t, Config{Settings: set, Log: log, Stdout: io.Discard}, set.Bind, backend.URL)
	f.s = s
	f.tlsAddr, f.httpAddr = s.lns[0].Addr().String(), s.lns[1].Addr().String()
	return f
}

// curl runs curl with args, resolving every name in names to the TLS
// bind, and returns its output.
func (f *tlsFront) curl(t *testing.T, names []string, args ...string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(f.tlsAddr)
	all := []string{"-sS", "--max-time", "10", "--cacert", filepath.Join(f.dir, "ca.pem")}
	for _, n := range names {
		all = append(all, "--resolve", n+":"+port+":127.0.0.1")
	}
	out, err := exec.Command("curl", append(all, args...)...).CombinedOutput()
	if err != nil {
		t.Logf("curl %q: %v", args, err)
	}
	return string(out)
}

func (f *tlsFront) url(host, path string) string {
	_, port, _ := net.SplitHostPort(f.tlsAddr)
	return "https://" + host + ":" + port + path
}

// echoApp answers with what the app saw of the request.
var echoApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "proto=%s xfp=%s xff=%s host=%s\n", r.Proto, r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For"), r.Host)
})

// TLS from files with real clients: curl over HTTP/2 and HTTP/1.1 (the
// app sees https, over HTTP/1.1), openssl s_client (TLS 1.1 refused,
// ALPN, SNI choosing the certificate), the host allow-list (421, an
// unknown SNI's handshake refused, the health path answering), the
// redirect bind (308), and the access log's %(H)s.
func TestTLSRealClients(t *testing.T) {
	testprog.NeedProgram(t, "curl", "curl")
	openssl := testprog.NeedProgram(t, "openssl", "openssl")
	set := defaults()
	set.Hosts = []string{"example.com", "*.example.org"}
	set.HealthPath = "/healthz"
	f := startTLSFront(t, set, echoApp, []string{"example.com"}, []string{"*.example.org"})
	names := []string{"example.com", "a.example.org", "other.net"}

	if out := f.curl(t, names, "--http2", f.url("example.com", "/x")); out != "proto=HTTP/1.1 xfp=https xff=127.0.0.1 host=example.com:"+port(f.tlsAddr)+"\n" {
		t.Errorf("curl --http2: %q", out)
	}
	if out := f.curl(t, names, "--http1.1", "-w", "%{http_version}", f.url("a.example.org", "/")); !strings.HasPrefix(out, "proto=HTTP/1.1 xfp=https") || !strings.HasSuffix(out, "\n1.1") {
		t.Errorf("curl --http1.1: %q", out)
	}
	if out := f.curl(t, names, "--http2", "-w", "%{http_version}", "-o", "/dev/null", f.url("example.com", "/")); out != "2" {
		t.Errorf("curl --http2 negotiated %q", out)
	}
	// A Host not in hosts: 421; the health path answers whatever the Host.
	if out := f.curl(t, names, "--http2", "-H", "Host: evil.test", "-w", "%{http_code}", "-o", "/dev/null", f.url("example.com", "/")); out != "421" {
		t.Errorf("Host evil.test: %q, want 421", out)
	}
	if out := f.curl(t, names, "-H", "Host: evil.test", f.url("example.com", "/healthz")); out != "ok\n" {
		t.Errorf("health path with Host evil.test: %q", out)
	}
	// An SNI no certificate or host covers: the connection is closed.
	if out := f.curl(t, names, f.url("other.net", "/")); !strings.Contains(out, "alert") && !strings.Contains(out, "SSL") {
		t.Errorf("SNI other.net: %q, want a TLS failure", out)
	}
	// HTTP/2 limits: a header over limit_request_field_size is 431.
	big := "X-Big: " + strings.Repeat("a", 9000)
	if out := f.curl(t, names, "--http2", "-H", big, "-w", "%{http_code} %{http_version}", "-o", "/dev/null", f.url("example.com", "/")); out != "431 2" {
		t.Errorf("big header over h2: %q, want 431 2", out)
	}

	s := func(args ...string) string {
		cmd := exec.Command(openssl, append([]string{"s_client", "-connect", f.tlsAddr, "-CAfile", filepath.Join(f.dir, "ca.pem")}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := s("-tls1_1", "-servername", "example.com"); !strings.Contains(out, "alert protocol version") || !strings.Contains(out, "Cipher is (NONE)") {
		t.Errorf("TLS 1.1 was not refused:\n%s", out)
	}
	if out := s("-tls1_2", "-alpn", "h2", "-servername", "example.com"); !strings.Contains(out, "ALPN protocol: h2") || !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Errorf("TLS 1.2 with ALPN h2:\n%s", out)
	}
	if out := s("-alpn", "http/1.1", "-servername", "b.example.org"); !strings.Contains(out, "ALPN protocol: http/1.1") || !strings.Contains(out, "CN = *.example.org") {
		t.Errorf("SNI b.example.org did not get the wildcard certificate:\n%s", out)
	}

	// The redirect bind.
	_, tlsPort, _ := net.SplitHostPort(f.tlsAddr)
	out, _ := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: example.com", "http://"+f.httpAddr+"/a/b?c=d").CombinedOutput()
	if want := "308 https://example.com:" + tlsPort + "/a/b?c=d"; string(out) != want {
		t.Errorf("redirect bind: %q, want %q", out, want)
	}

	eventually(t, "the access log", func() bool { return strings.Count(accessLog(t, f.logPath), "\n") >= 7 })
	log := accessLog(t, f.logPath)
	for _, want := range []string{`"GET /x HTTP/2.0" 200 HTTP/2.0 example.com:`, `"GET / HTTP/1.1" 200 HTTP/1.1 a.example.org`, `"GET / HTTP/2.0" 421 HTTP/2.0 evil.test`, `"GET /a/b?c=d HTTP/1.1" 308 HTTP/1.1 example.com`} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %q:\n%s", want, log)
		}
	}
}

// tls_curves chooses the key exchange groups, as seen by openssl
// s_client (OpenSSL 3.0, which has no ML-KEM) and Go's client (which
// offers X25519MLKEM768 first): by default the hybrid post-quantum group
// for a client that offers it; with ["x25519", "p256"], X25519 for that
// client, P-256 for one that offers only P-256, and no handshake for one
// that offers only P-384.
func TestTLSCurves(t *testing.T) {
	openssl := testprog.NeedProgram(t, "openssl", "openssl")
	for _, tc := range []struct {
		curves []tls.CurveID
		goWant tls.CurveID       // what Go's client with its defaults gets
		groups map[string]string // s_client -groups: what it must print
	}{
		{nil, tls.X25519MLKEM768, map[string]string{"X25519": "Server Temp Key: X25519", "P-384": "Server Temp Key: ECDH, secp384r1"}},
		{[]tls.CurveID{tls.X25519, tls.CurveP256}, tls.X25519, map[string]string{"P-256": "Server Temp Key: ECDH, prime256v1", "P-384": "handshake failure"}},
	} {
		set := defaults()
		set.TLSCurves = tc.curves
		f := startTLSFront(t, set, echoApp, []string{"example.com"})
		c, err := tls.Dial("tcp", f.tlsAddr, f.ca.ClientConfig("example.com"))
		if err != nil {
			t.Fatalf("tls_curves %v: Go's client: %v", tc.curves, err)
		}
		if got := c.ConnectionState().CurveID; got != tc.goWant {
			t.Errorf("tls_curves %v: Go's client got %v; want %v", tc.curves, got, tc.goWant)
		}
		c.Close()
		for groups, want := range tc.groups {
			cmd := exec.Command(openssl, "s_client", "-connect", f.tlsAddr, "-servername", "example.com", "-CAfile", filepath.Join(f.dir, "ca.pem"), "-groups", groups)
			cmd.Stdin = strings.NewReader("")
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), want) {
				t.Errorf("tls_curves %v: s_client -groups %s did not say %q:\n%s", tc.curves, groups, want, out)
			}
		}
	}
}

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// h2load over HTTP/2: every request succeeds.
func TestTLSH2Load(t *testing.T) {
	h2load := testprog.NeedProgram(t, "h2load", "nghttp2-client")
	f := startTLSFront(t, defaults(), echoApp, []string{"127.0.0.1", "localhost"})
	out, err := exec.Command(h2load, "-n", "2000", "-c", "4", "-m", "8", "https://"+f.tlsAddr+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Application protocol: h2") || !strings.Contains(string(out), "2000 succeeded, 0 failed, 0 errored") {
		t.Errorf("h2load:\n%s", out)
	}
}

// h2spec (RFC 7540/7541 conformance, every case of its HTTP/2 and HPACK
// suites) passes whole against the front over TLS: frames, stream
// states, flow control, settings, malformed requests, HPACK.
func TestTLSH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes a few seconds")
	}
	h2spec := testprog.NeedProgram(t, "h2spec", "go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible, as .ci/run does; no Debian package")
	f := startTLSFront(t, defaults(), echoApp, []string{"127.0.0.1"})
	host, port, _ := net.SplitHostPort(f.tlsAddr)
	out, err := exec.Command(h2spec, "-t", "-k", "-h", host, "-p", port, "-o", "10").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0 failed") {
		t.Errorf("h2spec: %v\n%s", err, out)
	}
}

// Certificates are read again when their files change on disk and on
// Reopen (USR1); a bad file is reported and the certificate in use kept;
// connections in flight are untouched.
func TestTLSCertificateReload(t *testing.T) {
	f := startTLSFront(t, defaults(), echoApp, []string{"example.com"})
	serial := func() string {
		c, err := tls.Dial("tcp", f.tlsAddr, f.ca.ClientConfig("example.com"))
		if err != nil {
			return "error: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	// A connection open across the swap keeps working.
	tr := &http.Transport{TLSClientConfig: f.ca.ClientConfig("example.com"), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() string {
		resp, err := client.Get("https://" + f.tlsAddr + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Proto + " " + string(b)
	}
	if out := get(); !strings.HasPrefix(out, "HTTP/2.0 proto=HTTP/1.1 xfp=https") {
		t.Fatalf("before: %q", out)
	}
	pair := f.s.set.Certs[0]
	if err := f.ca.WriteLeaf(pair.CertFile, pair.KeyFile, "example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new certificate", func() bool { s := serial(); return s != first && !strings.HasPrefix(s, "error") })
	if out := get(); !strings.HasPrefix(out, "HTTP/2.0 proto=HTTP/1.1") {
		t.Errorf("after the swap, on the same connection: %q", out)
	}
	second := serial()

	if err := os.WriteFile(pair.CertFile, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad file reported", func() bool {
		return strings.Contains(f.errLog.String(), "reading the certificate again, the one in use is kept")
	})
	if err := f.s.Reopen(); err == nil || !strings.Contains(err.Error(), "the one in use is kept") {
		t.Errorf("Reopen with a bad certificate file: %v", err)
	}
	if s := serial(); s != second {
		t.Errorf("after a bad file the certificate changed: %s, want %s", s, second)
	}
	if err := f.s.Reload(f.s.set); err == nil {
		t.Errorf("Reload with a bad certificate file: no error")
	}
	if err := f.ca.WriteLeaf(pair.CertFile, pair.KeyFile, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Reopen(); err != nil {
		t.Errorf("Reopen: %v", err)
	}
	if s := serial(); s == second {
		t.Errorf("Reopen did not read the new certificate")
	}
}

// Over HTTP/2, streams are flushed as they go, a client's reset is a
// 499, and Shutdown lets the streams in flight finish (GOAWAY) while
// refusing new ones.
func TestTLSH2StreamingResetAndShutdown(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	arrived := make(chan struct{}, 1)
	events := heldEvents(release)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		events(w, r)
	})
	f := startTLSFront(t, defaults(), app, []string{"127.0.0.1"})
	tr := &http.Transport{TLSClientConfig: f.ca.ClientConfig("127.0.0.1"), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	// A stream reset before the app answered: 499 in the access log.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	if _, err := client.Do(mustRequest(t, ctx, "https://"+f.tlsAddr+"/reset")); err == nil {
		t.Fatal("the reset request got an answer")
	}
	eventually(t, "499 in the access log", func() bool {
		return strings.Contains(accessLog(t, f.logPath), `"GET /reset HTTP/2.0" 499 HTTP/2.0`)
	})

	// An event stream is flushed as it goes; one in flight at Shutdown
	// finishes.
	resp, err := client.Do(mustRequest(t, context.Background(), "https://"+f.tlsAddr+"/long"))
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(resp.Body, line); err != nil || resp.Proto != "HTTP/2.0" {
		t.Fatalf("first event: %q %v %s", line, err, resp.Proto)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- f.s.Shutdown(ctx)
	}()
	eventually(t, "new connections refused", func() bool {
		c, err := net.Dial("tcp", f.tlsAddr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	once.Do(func() { close(release) })
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: last\n\n" {
		t.Errorf("the stream in flight at Shutdown: %q %v", rest, err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func mustRequest(t *testing.T, ctx context.Context, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A reload that drops a TLS bind sends GOAWAY to its HTTP/2 connections:
// the stream in flight finishes, no new stream is taken, and the
// connection is closed once it is idle.
func TestTLSH2DroppedBindGoaway(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := startTLSFront(t, defaults(), heldEvents(release), []string{"127.0.0.1"})
	conf := f.ca.ClientConfig("127.0.0.1")
	conf.NextProtos = []string{"h2"}
	tc, err := tls.Dial("tcp", f.tlsAddr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	cc, err := (&http2.Transport{}).NewClientConn(tc)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cc.RoundTrip(mustRequest(t, context.Background(), "https://"+f.tlsAddr+"/long"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(resp.Body, line); err != nil {
		t.Fatalf("first event: %q %v", line, err)
	}

	// The reload keeps only the redirect bind.
	if err := f.s.Rebind(f.s.set.Bind[1:]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "GOAWAY on the dropped bind's connection", func() bool { return cc.State().Closing })
	if _, err := cc.RoundTrip(mustRequest(t, context.Background(), "https://"+f.tlsAddr+"/new")); err == nil {
		t.Errorf("a new stream was served after GOAWAY")
	}
	release <- struct{}{}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: last\n\n" {
		t.Errorf("the stream in flight: %q %v", rest, err)
	}
	eventually(t, "the connection closed", func() bool { return cc.State().Closed })
}

// A reload that raises the header limits applies to both protocols: a
// request head larger than the old limits let through is served after it,
// over HTTP/2 on a new connection too, and a client connected before it
// is told to go (GOAWAY) and gets the new limits on its next connection;
// the server for the old limits then ends.
func TestTLSReloadRaisesHeaderLimits(t *testing.T) {
	f := startTLSFront(t, defaults(), echoApp, []string{"127.0.0.1"})
	before := &http.Transport{TLSClientConfig: f.ca.ClientConfig("127.0.0.1"), ForceAttemptHTTP2: true}
	defer before.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: before}).Get("https://" + f.tlsAddr + "/"); err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("before the reload: %v", err)
	} else {
		resp.Body.Close()
	}
	next := f.s.set
	next.LimitRequestFields = 4
	next.LimitRequestFieldSize = 1 << 20
	if err := f.s.Reload(next); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("a", 900<<10) // over the old 100 fields of 8190 bytes in all
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: f.ca.ClientConfig("127.0.0.1"), ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		req := mustRequest(t, context.Background(), "https://"+f.tlsAddr+"/")
		req.Header.Set("X-Big", big)
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Errorf("h2=%v: %v", h2, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Errorf("h2=%v: %d %s", h2, resp.StatusCode, resp.Proto)
		}
		tr.CloseIdleConnections()
	}
	eventually(t, "one HTTP/2 server left", func() bool {
		f.s.h2.mu.Lock()
		defer f.s.h2.mu.Unlock()
		return len(f.s.h2.groups) == 1
	})
	req := mustRequest(t, context.Background(), "https://"+f.tlsAddr+"/")
	req.Header.Set("X-Big", big)
	resp, err := (&http.Client{Transport: before, Timeout: 10 * time.Second}).Do(req)
	if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("the client connected before the reload: %v, %v", resp, err)
	}
	resp.Body.Close()
}
