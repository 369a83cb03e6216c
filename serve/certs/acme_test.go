package certs

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sirupsen/logrus"

	"gsup/internal/testcert"
	"gsup/procfile"
)

// handshake makes a TLS handshake with conf's server as a client naming
// name and offering protos; it returns the DNS names of the certificate
// the server gave.
func handshake(t *testing.T, conf *tls.Config, ca *testcert.CA, name string, protos ...string) ([]string, error) {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	go func() {
		srv := tls.Server(s, conf)
		if srv.Handshake() == nil {
			_, _ = io.Copy(io.Discard, srv)
		}
		srv.Close()
	}()
	cc := ca.ClientConfig(name)
	cc.NextProtos = protos
	cl := tls.Client(c, cc)
	if err := cl.Handshake(); err != nil {
		return nil, err
	}
	return cl.ConnectionState().PeerCertificates[0].DNSNames, nil
}

// A store with certificate files and ACME: each name gets its own
// certificate (the file's, or the one ACME stored), TLS-ALPN-01
// validations go to ACME, other names are refused with a host allow-list.
func TestStoreWithACME(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.WriteLeaf(certFile, keyFile, "files.example.com"); err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(dir, "acme")
	log := logrus.New()
	log.SetOutput(io.Discard)
	a, err := NewACME(&procfile.ACME{Domains: []string{"acme.example.com"}, Directory: "https://127.0.0.1:1/dir", Storage: storage}, log)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(storage); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("storage folder: %v, %v; want mode 0700", fi, err)
	}
	// A certificate obtained at an earlier run, as autocert stores it.
	c, k, err := ca.Leaf("acme.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storage, "acme.example.com"), append(k, c...), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := New([]procfile.CertPair{{CertFile: certFile, KeyFile: keyFile}}, a, true, log)
	if err != nil {
		t.Fatal(err)
	}
	conf := st.Config()
	if !slices.Equal(conf.NextProtos, []string{"h2", "http/1.1", "acme-tls/1"}) {
		t.Errorf("NextProtos = %q", conf.NextProtos)
	}
	for _, name := range []string{"files.example.com", "acme.example.com"} {
		names, err := handshake(t, conf, ca, name, "h2")
		if err != nil || !slices.Equal(names, []string{name}) {
			t.Errorf("handshake naming %s: certificate for %q, %v", name, names, err)
		}
	}
	if _, err := handshake(t, conf, ca, "other.example.com"); err == nil {
		t.Error("handshake naming other.example.com: no error, want it refused")
	}
	// An ACME server's TLS-ALPN-01 validation gets no ordinary
	// certificate: with no challenge pending, it is refused.
	if names, err := handshake(t, conf, ca, "files.example.com", "acme-tls/1"); err == nil {
		t.Errorf("acme-tls/1 handshake with no challenge pending: certificate for %q, want refused", names)
	}
	if !st.Covers("ACME.example.com") || st.Covers("other.example.com") {
		t.Error("Covers: want acme.example.com covered, other.example.com not")
	}
}
