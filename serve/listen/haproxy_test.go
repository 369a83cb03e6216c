package listen

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gsup/internal/testcert"
	"gsup/internal/testprog"
	"gsup/procfile"
)

// TestHAProxy puts a real HAProxy in front of the listeners, with
// send-proxy (v1), send-proxy-v2, send-proxy-v2-ssl behind a TLS frontend,
// a UNIX-socket server, and PROXY v2 health checks (LOCAL).
func TestHAProxy(t *testing.T) {
	bin := testprog.NeedProgram(t, "haproxy", "haproxy")
	dir := t.TempDir()
	log, logs := testLogger()
	o := Options{ProxyProtocol: ProxyRequired, Log: log}
	gsupTCP := openOne(t, procfile.Bind{Address: "127.0.0.1:0"}, o)
	gsupUnix := openOne(t, procfile.Bind{Address: "unix:" + filepath.Join(dir, "gsup.sock")}, o)
	checks := make(chan seen, 100)
	for _, l := range []*Listener{gsupTCP, gsupUnix} {
		srv := &http.Server{ConnContext: ConnContext, ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/health" {
					ci, _ := FromContext(r.Context())
					select {
					case checks <- seen{Addr: apString(ci.Addr), Peer: apString(ci.Peer), Proxied: ci.Proxied, Unix: ci.Unix}:
					default:
					}
				}
				infoHandler(w, r)
			})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}

	// HAProxy's frontends are sockets made here and passed as fd@3.., so no
	// port has to be guessed.
	var fronts []net.Listener
	var files []*os.File
	for range 4 {
		l := testListen(t, "tcp4", "127.0.0.1:0")
		fronts = append(fronts, l)
		files = append(files, listenerFile(t, l))
	}
	pemPath := filepath.Join(dir, "site.pem")
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pemPath, append(certPEM, keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`
global
    log stderr format raw local0 warning
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v1
    bind fd@3
    default_backend v1
backend v1
    server gsup %[1]s send-proxy
frontend v2
    bind fd@4
    default_backend v2
backend v2
    option httpchk GET /health
    server gsup %[1]s send-proxy-v2 check check-send-proxy inter 200ms
frontend tls
    bind fd@5 ssl crt %[2]s
    default_backend tls
backend tls
    server gsup %[1]s send-proxy-v2-ssl
frontend unix
    bind fd@6
    default_backend unix
backend unix
    server gsup unix@%[3]s send-proxy-v2
`, gsupTCP.Addr(), pemPath, gsupUnix.Path)
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	cmd.ExtraFiles = files
	var out logBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy's output:\n%s", out.String())
		}
	})

	check := func(name string, c net.Conn, https, unix bool) {
		t.Helper()
		client := c.LocalAddr().String()
		if tc, ok := c.(*tls.Conn); ok {
			client = tc.NetConn().LocalAddr().String()
		}
		_, got := getConn(t, c, nil, 3)
		for i, s := range got {
			if s.Addr != client || !s.Proxied || s.HTTPS != https || s.Unix != unix {
				t.Errorf("%s, request %d: gsup saw %+v; the client is %s", name, i+1, s, client)
			}
		}
	}
	check("send-proxy", dialAddr(t, "tcp", fronts[0].Addr().String()), false, false)
	check("send-proxy-v2", dialAddr(t, "tcp", fronts[1].Addr().String()), false, false)
	check("send-proxy-v2 to a UNIX socket", dialAddr(t, "tcp", fronts[3].Addr().String()), false, true)
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fronts[2].Addr().String(),
		ca.ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	check("send-proxy-v2-ssl", tc, true, false)

	// Health checks carry a LOCAL header: the client is HAProxy itself.
	select {
	case s := <-checks:
		if !s.Proxied || s.Addr == "" || s.Addr != s.Peer {
			t.Errorf("health check seen as %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Error("no health check arrived")
	}
	if lines := logs.lines(); len(lines) != 0 {
		t.Errorf("gsup logged %q", lines)
	}
}
