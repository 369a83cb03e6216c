package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"gsup/procfile"
)

// ChallengePath is the URL path prefix of ACME's HTTP-01 challenges.
const ChallengePath = "/.well-known/acme-challenge/"

// ACME obtains and renews the certificates of [serve.acme] with
// golang.org/x/crypto/acme/autocert: TLS-ALPN-01 is answered in the TLS
// handshakes of the front (Config adds "acme-tls/1" to its protocols),
// HTTP-01 by ServeChallenge on its plain HTTP binds. Certificates and the
// account key are kept in the storage folder (read again at the next
// start: no new order while they are valid); autocert renews them 30 days
// before they expire, with no restart.
type ACME struct {
	m       *autocert.Manager
	http01  http.Handler
	domains []string
	log     *logrus.Logger
	once    sync.Once
}

// NewACME prepares the ACME client of a; it creates the storage folder
// (0700) and reads ca_root, but asks the ACME server nothing yet.
func NewACME(a *procfile.ACME, log *logrus.Logger) (*ACME, error) {
	if err := os.MkdirAll(a.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("[serve.acme] storage: %w", err)
	}
	client := &acme.Client{DirectoryURL: a.Directory, UserAgent: "gsup"}
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			return nil, fmt.Errorf("[serve.acme] ca_root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("[serve.acme] ca_root: %s: no PEM certificate in it", a.CARoot)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.HTTPClient = &http.Client{Transport: t}
	}
	domains := make([]string, len(a.Domains))
	for i, d := range a.Domains {
		domains[i] = strings.ToLower(d)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.Storage),
		HostPolicy: autocert.HostWhitelist(domains...),
		Email:      a.Email,
		Client:     client,
	}
	// HTTPHandler also makes autocert try HTTP-01 when TLS-ALPN-01 fails.
	return &ACME{m: m, http01: m.HTTPHandler(http.NotFoundHandler()), domains: domains, log: log}, nil
}

// Covers reports whether name is one of the domains.
func (a *ACME) Covers(name string) bool { return slices.Contains(a.domains, name) }

// GetCertificate returns the certificate of hello's name (obtained now
// when none is stored: the handshake waits), or answers a TLS-ALPN-01
// challenge. A hello with no name gets the first domain's certificate.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = a.domains[0]
		hello = &h
	}
	return a.m.GetCertificate(hello)
}

// ServeChallenge answers an HTTP-01 challenge request (a path under
// ChallengePath) and returns its status.
func (a *ACME) ServeChallenge(w http.ResponseWriter, r *http.Request) int {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if host, _, err := net.SplitHostPort(r.Host); err == nil {
		// autocert checks the Host as it came; on a port other than 80
		// it names the port.
		r = r.Clone(r.Context())
		r.Host = host
	}
	a.http01.ServeHTTP(sw, r)
	return sw.status
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Start makes sure, in the background, that each domain has its
// certificate (from storage, else from the ACME server, each waited for 5
// minutes at most), and logs the outcome; call it once the binds answer
// challenges. Calls after the first do nothing.
func (a *ACME) Start() {
	a.once.Do(func() { go a.prime() })
}

func (a *ACME) prime() {
	for _, d := range a.domains {
		hello := &tls.ClientHelloInfo{ // an ECDSA-capable client naming d
			ServerName:        d,
			CipherSuites:      CipherSuites,
			SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
			SupportedCurves:   []tls.CurveID{tls.CurveP256},
			SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		}
		log := a.log.WithField("domain", d)
		c, err := a.m.GetCertificate(hello)
		if err == nil && c.Leaf == nil {
			c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
		}
		if err != nil {
			log.Errorf("ACME certificate for %s: %v (tried again at the next handshake naming it)", d, err)
			continue
		}
		log.Infof("ACME certificate for %s ready (expires %s)", d, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// isChallengeHello reports whether hello is an ACME server's TLS-ALPN-01
// validation (it offers "acme-tls/1" alone).
func isChallengeHello(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}
