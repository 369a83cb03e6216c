package procfile

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestLoadTLS(t *testing.T) {
	cert, key := testCertPEM(t, "example.com")
	files := func(toml string) map[string]string {
		return map[string]string{"Procfile": "web: x\n", "gsup.toml": toml, "c.pem": cert, "k.pem": key, "bad.pem": "not a certificate\n"}
	}
	spec := mustLoad(t, files("[serve]\nbind = [\"127.0.0.1:8443\", { address = \"127.0.0.1:8080\", redirect = \"https\" }, \"unix:/tmp/x.sock\"]\n"+
		"certfile = \"c.pem\"\nkeyfile = \"k.pem\"\nhosts = [\"Example.com\", \"*.example.com\"]\ntls_curves = [\"X25519\", \"prime256v1\"]\n"), Options{})
	sv := spec.Serve
	want := []Bind{{Address: "127.0.0.1:8443", Scheme: "https", TLS: true}, {Address: "127.0.0.1:8080", Scheme: "http", Redirect: "https"}, {Address: "unix:/tmp/x.sock", Scheme: "http"}}
	if !slices.Equal(sv.Bind, want) {
		t.Errorf("binds made TLS by certfile: %+v", sv.Bind)
	}
	if !slices.Equal(sv.Hosts, []string{"example.com", "*.example.com"}) {
		t.Errorf("hosts %q", sv.Hosts)
	}
	if !slices.Equal(sv.TLSCurves, []tls.CurveID{tls.X25519, tls.CurveP256}) {
		t.Errorf("tls_curves %v", sv.TLSCurves)
	}
	var plan strings.Builder
	spec.WritePlan(&plan)
	for _, s := range []string{"127.0.0.1:8443 (tls)", "127.0.0.1:8080 (redirect to https)", "cert  ", "c.pem k.pem (example.com; expires ", "hosts=example.com,*.example.com", "tls-curves=x25519,p256"} {
		if !strings.Contains(plan.String(), s) {
			t.Errorf("plan lacks %q:\n%s", s, plan.String())
		}
	}

	spec = mustLoad(t, files("[serve]\nbind = [{ address = \"127.0.0.1:8443\", tls = true }, \"127.0.0.1:8080\"]\n[[serve.cert]]\ncertfile = \"c.pem\"\nkeyfile = \"k.pem\"\n"), Options{})
	if b := spec.Serve.Bind; !b[0].TLS || b[1].TLS || len(spec.Serve.TLSPairs()) != 1 {
		t.Errorf("explicit tls: %+v", spec.Serve)
	}

	for _, tc := range []struct{ toml, err string }{
		{"[serve]\ncertfile = \"bad.pem\"\nkeyfile = \"k.pem\"\n", "gsup.toml:2: serve.certfile: certificate bad.pem with key k.pem: tls: failed to find any PEM data in certificate input"},
		{"[serve]\ncertfile = \"c.pem\"\nkeyfile = \"nope.pem\"\n", "gsup.toml:2: serve.certfile: key: stat nope.pem: no such file or directory"},
		{"[serve]\n\ncertfile = \"c.pem\"\n", "gsup.toml:3: serve.certfile: needs a key file (keyfile, --keyfile)"},
		{"[serve]\nbind = [{ address = \"127.0.0.1:8443\", tls = true }]\n", "gsup.toml:2: serve.bind: a bind has tls = true but the front has no certificate (certfile and keyfile, [[serve.cert]] or [serve.acme])"},
		{"[serve]\nbind = [{ address = \"127.0.0.1:8443\", tls = true, redirect = \"https\" }]\ncertfile = \"c.pem\"\nkeyfile = \"k.pem\"\n", "gsup.toml:2: serve.bind: entry 1: a bind either speaks TLS or redirects to https, not both"},
		{"[serve]\nhosts = [\"a..b\"]\n", `gsup.toml:2: serve.hosts: "a..b" is not a host name or *.domain`},
		{"[[serve.cert]]\ncertfile = \"c.pem\"\n", "gsup.toml:1: serve.cert: entry 1 needs both certfile and keyfile"},
		{"[serve]\n\ntls_curves = [\"x25519\", \"x448\"]\n", `gsup.toml:3: serve.tls_curves: unknown key exchange group "x448" (known: x25519mlkem768, secp256r1mlkem768, secp384r1mlkem1024, x25519, p256, p384, p521)`},
		{"[serve]\ntls_curves = [\"x25519mlkem768\"]\n", "gsup.toml:2: serve.tls_curves: names only post-quantum hybrids, which TLS 1.2 clients cannot use: add x25519 or p256"},
		{"[serve]\ntls_curves = [\"p256\", \"secp256r1\"]\n", `gsup.toml:2: serve.tls_curves: "secp256r1" is listed twice`},
		{"[serve.acme]\ndomains = [\"*.example.com\"]\ndirectory = \"http://x\"\n", "gsup.toml:2: serve.acme.domains: \"*.example.com\": wildcard certificates need the DNS-01 challenge, which gsup does not answer\ngsup.toml:3: serve.acme.directory: \"http://x\" is not an https URL"},
		{"[serve.acme]\ndomains = [\"example.com\"]\nca_root = \"bad.pem\"\n", "gsup.toml:3: serve.acme.ca_root: bad.pem: no PEM certificate in it"},
	} {
		_, err := load(t, files(tc.toml), Options{})
		if err != tc.err {
			t.Errorf("%s\n got %s\nwant %s", tc.toml, err, tc.err)
		}
	}
	_, err := load(t, files(""), Options{Over: Overrides{"certfile": {"bad.pem"}, "keyfile": {"k.pem"}}})
	if err != "--certfile: certificate: stat bad.pem: no such file or directory" {
		t.Errorf("--certfile: %s", err)
	}
}
