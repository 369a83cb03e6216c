package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// tlsServer is an httptest TLS server answering "hello\n" on / and 404
// elsewhere; it issues session tickets (crypto/tls's default).
func tlsServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("hello\n"))
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(srv *httptest.Server) config {
	return config{
		addr:     strings.TrimPrefix(srv.URL, "https://"),
		conns:    4,
		duration: time.Second,
		timeout:  5 * time.Second,
		path:     "/",
		host:     "example.com",
	}
}

// runClean runs cfg and wants answered handshakes, no error, no resumption.
func runClean(t *testing.T, cfg config) result {
	t.Helper()
	res := run(context.Background(), cfg)
	if res.handshakes == 0 || res.errors != 0 || res.resumed != 0 {
		t.Fatalf("handshakes=%d errors=%d resumed=%d (first error: %v); want > 0, 0, 0",
			res.handshakes, res.errors, res.resumed, res.firstErr)
	}
	return res
}

func TestRunNeverResumes(t *testing.T) {
	srv := tlsServer(t)
	cfg := testConfig(srv)
	res := runClean(t, cfg)
	if res.versions["TLS 1.3"] != res.handshakes {
		t.Errorf("versions %v, want all %d on TLS 1.3 (both sides' choice)", res.versions, res.handshakes)
	}
	var out bytes.Buffer
	res.print(&out)
	for _, want := range []string{"resumed=0\n", "errors=0\n", "tls1.3=", "group.", "handshakes_per_s="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunTLS12(t *testing.T) {
	srv := tlsServer(t)
	cfg := testConfig(srv)
	cfg.version = tls.VersionTLS12
	cfg.curves = []tls.CurveID{tls.CurveP256}
	res := runClean(t, cfg)
	if res.versions["TLS 1.2"] != res.handshakes || res.groups["CurveP256"] != res.handshakes {
		t.Errorf("versions %v, groups %v; want all %d on TLS 1.2 with P256", res.versions, res.groups, res.handshakes)
	}
}

// The resumption check is real: with a session cache shared by the
// connections (what wrk does), the resumed ones are counted.
func TestRunCountsResumptions(t *testing.T) {
	srv := tlsServer(t)
	cfg := testConfig(srv)
	cfg.cache = tls.NewLRUClientSessionCache(16)
	res := run(context.Background(), cfg)
	if res.handshakes == 0 || res.resumed == 0 {
		t.Fatalf("handshakes=%d resumed=%d (first error: %v); want both > 0", res.handshakes, res.resumed, res.firstErr)
	}
}

// A non-200 answer is an error, not a handshake.
func TestRunCountsBadStatus(t *testing.T) {
	srv := tlsServer(t)
	cfg := testConfig(srv)
	cfg.path = "/missing"
	cfg.duration = 200 * time.Millisecond
	res := run(context.Background(), cfg)
	if res.handshakes != 0 || res.errors == 0 || !strings.Contains(res.firstErr.Error(), "404") {
		t.Fatalf("handshakes=%d errors=%d first error %v; want 0, > 0, a 404", res.handshakes, res.errors, res.firstErr)
	}
}
