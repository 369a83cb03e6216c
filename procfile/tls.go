package procfile

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// The TLS settings of the front: certificates from files ([serve]
// certfile/keyfile, [[serve.cert]]), ACME ([serve.acme]), the host
// allow-list, and the binds they make TLS.

var (
	// certPairs reads [[serve.cert]]: tables of certfile and keyfile.
	certPairs = kind[[]CertPair]{
		toml: (*tomlDoc).certPairs,
		show: func(s *Spec, v []CertPair) string {
			var files []string
			for _, p := range v {
				files = append(files, s.rel(p.CertFile))
			}
			return strings.Join(files, ",")
		},
	}
	// tlsCurves reads key exchange groups by name (tlsCurveNames).
	tlsCurves = kind[[]tls.CurveID]{
		toml: func(d *tomlDoc, k toml.Key, v any) ([]tls.CurveID, bool) {
			list, ok := d.strList(k, v, false)
			if !ok {
				return nil, false
			}
			return valid(d, k, list, checkCurves)
		},
		show: func(_ *Spec, v []tls.CurveID) string {
			names := make([]string, len(v))
			for i, id := range v {
				names[i] = curveName(id)
			}
			return strings.Join(names, ",")
		},
	}
	// hostList reads host names, each "example.com" or "*.example.com".
	hostList = kind[[]string]{
		toml: checkedList(false, checkHosts),
		show: func(_ *Spec, v []string) string { return strings.Join(v, ",") },
	}
)

// tlsCurveNames are the key exchange groups of [serve] tls_curves, the
// first name of each as gsup shows it, the others as nginx (OpenSSL) and
// Caddy spell it. The three hybrids pair a classical exchange with
// ML-KEM, against a recording decrypted later by a quantum computer; a
// TLS 1.2 client uses only the classical ones.
var tlsCurveNames = []struct {
	id    tls.CurveID
	names []string
}{
	{tls.X25519MLKEM768, []string{"x25519mlkem768"}},
	{tls.SecP256r1MLKEM768, []string{"secp256r1mlkem768", "p256mlkem768"}},
	{tls.SecP384r1MLKEM1024, []string{"secp384r1mlkem1024", "p384mlkem1024"}},
	{tls.X25519, []string{"x25519"}},
	{tls.CurveP256, []string{"p256", "p-256", "secp256r1", "prime256v1"}},
	{tls.CurveP384, []string{"p384", "p-384", "secp384r1"}},
	{tls.CurveP521, []string{"p521", "p-521", "secp521r1"}},
}

// checkCurves turns names of key exchange groups into their IDs. The
// list must name a classical group, without which no TLS 1.2 client
// could make a handshake.
func checkCurves(list []string) ([]tls.CurveID, error) {
	var out []tls.CurveID
	classical := false
	for _, name := range list {
		id, ok := curveByName(name)
		if !ok {
			var known []string
			for _, c := range tlsCurveNames {
				known = append(known, c.names[0])
			}
			return nil, fmt.Errorf("unknown key exchange group %q (known: %s)", name, strings.Join(known, ", "))
		}
		if slices.Contains(out, id) {
			return nil, fmt.Errorf("%q is listed twice", name)
		}
		out = append(out, id)
		classical = classical || id == tls.X25519 || id == tls.CurveP256 || id == tls.CurveP384 || id == tls.CurveP521
	}
	if len(out) > 0 && !classical {
		return nil, fmt.Errorf("names only post-quantum hybrids, which TLS 1.2 clients cannot use: add x25519 or p256")
	}
	return out, nil
}

func curveByName(name string) (tls.CurveID, bool) {
	name = strings.ToLower(name)
	for _, c := range tlsCurveNames {
		if slices.Contains(c.names, name) {
			return c.id, true
		}
	}
	return 0, false
}

func curveName(id tls.CurveID) string {
	for _, c := range tlsCurveNames {
		if c.id == id {
			return c.names[0]
		}
	}
	return id.String()
}

// checkHosts lowercases host names and refuses what is not one.
func checkHosts(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, h := range list {
		name := strings.ToLower(strings.TrimSuffix(h, "."))
		if !validHostPattern(name) {
			return nil, fmt.Errorf("%q is not a host name or *.domain", h)
		}
		out = append(out, name)
	}
	return out, nil
}

func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 || strings.Contains(h, "*") {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (d *tomlDoc) certPairs(k toml.Key, v any) ([]CertPair, bool) {
	tables, ok := v.([]map[string]any)
	if !ok {
		d.fail(k, "must be [[serve.cert]] tables of certfile and keyfile, not %s", typeName(v))
		return nil, false
	}
	out := []CertPair{}
	ok = true
	for i, m := range tables {
		var p CertPair
		for _, name := range d.children(k, m) {
			ck := sub(k, name)
			switch name {
			case "certfile":
				p.CertFile, _ = d.path(ck, m[name], false)
			case "keyfile":
				p.KeyFile, _ = d.path(ck, m[name], false)
			default:
				d.fail(ck, "unknown key (a [[serve.cert]] table has certfile and keyfile)")
				ok = false
			}
		}
		if p.CertFile == "" || p.KeyFile == "" {
			d.fail(k, "entry %d needs both certfile and keyfile", i+1)
			ok = false
			continue
		}
		out = append(out, p)
	}
	return out, ok
}

// acmeKey reads the [serve.acme] table.
func acmeKey(d *tomlDoc, k toml.Key, v, t any) bool {
	m, ok := d.table(k, v)
	if !ok {
		return false
	}
	a := &ACME{}
	applyDefaults(a, d.dir, d.errs)
	before := len(*d.errs)
	d.walk(k, "serve.acme", m, a)
	if len(a.Domains) == 0 {
		d.fail(k, "no domains")
	}
	for _, dom := range a.Domains {
		if strings.HasPrefix(dom, "*.") {
			d.fail(sub(k, "domains"), "%q: wildcard certificates need the DNS-01 challenge, which gsup does not answer", dom)
		}
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		d.fail(sub(k, "directory"), "%q is not an https URL", a.Directory)
	}
	if a.CARoot != "" {
		if err := checkCARoot(a.CARoot); err != nil {
			d.fail(sub(k, "ca_root"), "%v", err)
		}
	}
	if len(*d.errs) > before {
		return false
	}
	t.(*Spec).Serve.ACME = a
	return true
}

// checkCARoot reads a PEM file of CA certificates.
func checkCARoot(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return nil
}

// checkTLS reads every certificate and key (a bad one is an error naming
// the key that names it), and makes the binds TLS: those that say tls =
// true, else, when the front has a certificate, every TCP bind that does
// not redirect.
func (l *loader) checkTLS() {
	s := &l.spec.Serve
	certO, keyO := l.origin("serve.certfile", "--certfile"), l.origin("serve.keyfile", "--keyfile")
	switch {
	case s.CertFile != "" && s.KeyFile == "":
		certO.fail(&l.errs, "needs a key file (keyfile, --keyfile)")
	case s.KeyFile != "" && s.CertFile == "":
		keyO.fail(&l.errs, "needs a certificate file (certfile, --certfile)")
	case s.CertFile != "":
		if err := CheckCertPair(CertPair{s.CertFile, s.KeyFile}); err != nil {
			certO.fail(&l.errs, "%v", err)
		}
	}
	for _, p := range s.Certs {
		if err := CheckCertPair(p); err != nil {
			l.origin("serve.cert", "").fail(&l.errs, "%v", err)
		}
	}
	explicit := false
	for _, b := range s.Bind {
		explicit = explicit || b.TLS
	}
	if explicit && !s.TLS() {
		l.origin("serve.bind", "--bind").fail(&l.errs, "a bind has tls = true but the front has no certificate (certfile and keyfile, [[serve.cert]] or [serve.acme])")
	}
	if explicit || !s.TLS() {
		return
	}
	for i, b := range s.Bind {
		if b.Redirect == "" && addrPort(b.Address) > 0 {
			s.Bind[i].TLS, s.Bind[i].Scheme = true, "https"
		}
	}
}

// origin is where key was set, or flag when it was not.
func (l *loader) origin(key, flag string) origin {
	if o, ok := l.given[key]; ok {
		return o
	}
	return origin{key: flag}
}

// CheckCertPair reads a certificate and its key and checks they belong
// together; the error says which file is wrong.
func CheckCertPair(p CertPair) error {
	if _, err := os.Stat(p.CertFile); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	if _, err := os.Stat(p.KeyFile); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if _, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile); err != nil {
		return fmt.Errorf("certificate %s with key %s: %w", p.CertFile, p.KeyFile, err)
	}
	return nil
}

// DescribeCert says, for the plan, which names a certificate is for and
// when it expires.
func DescribeCert(p CertPair) string {
	c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil || c.Leaf == nil {
		return "(unreadable)"
	}
	names := c.Leaf.DNSNames
	if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
		names = []string{c.Leaf.Subject.CommonName}
	}
	return fmt.Sprintf("(%s; expires %s)", strings.Join(names, ","), c.Leaf.NotAfter.UTC().Format("2006-01-02"))
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
