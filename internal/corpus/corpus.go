package corpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gsup/internal/testprog"
)

// RelDir is where the corpus lives, below some folder above the package
// being tested (the repository sits beside shared/).
const RelDir = "shared/corpus/gunicorn-requests"

// Case is one request file of the corpus.
type Case struct {
	ID       string // Kind "/" Name, as the tables below spell it
	Kind     string // "valid" or "invalid"
	Name     string // the file name without .http
	Err      string // the error Gunicorn raises for an invalid case; "-" for a valid one
	Settings string // the Gunicorn settings the case was written for; "-" = defaults
	Raw      []byte // the bytes to send, decoded
}

// TB is the part of testing.TB that Load uses.
type TB interface {
	testprog.Skipper
	Fatal(args ...any)
}

// Find returns the corpus folder: $GSUP_CORPUS when set, else the first
// folder holding RelDir with its manifest walking up from dir; ok is
// false when there is none.
func Find(dir string) (path string, ok bool) {
	if p := os.Getenv("GSUP_CORPUS"); p != "" {
		if st, err := os.Stat(filepath.Join(p, "manifest.tsv")); err == nil && !st.IsDir() {
			return p, true
		}
		return "", false
	}
	for {
		p := filepath.Join(dir, filepath.FromSlash(RelDir))
		if st, err := os.Stat(filepath.Join(p, "manifest.tsv")); err == nil && !st.IsDir() {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Load finds the corpus above the working directory (a test's is its
// package folder) and reads it. Without it the test is skipped, or fails
// when the CI environment variable is "true"; a corpus that does not read
// fails the test.
func Load(t TB) []Case {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir, ok := Find(wd)
	if !ok {
		testprog.Missing(t, "%s not found above %s: no corpus test", RelDir, wd)
		return nil
	}
	cases, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// LoadDir reads the manifest of the corpus in dir (manifest.tsv: kind,
// name, Gunicorn's error, settings; tab-separated) and every case it
// lists, decoded, in the manifest's order.
func LoadDir(dir string) ([]Case, error) {
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.tsv"))
	if err != nil {
		return nil, err
	}
	var cases []Case
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		f := strings.Split(strings.TrimSuffix(line, "\r"), "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("manifest.tsv:%d: %d fields, want 4", i+1, len(f))
		}
		if f[0] != "valid" && f[0] != "invalid" {
			return nil, fmt.Errorf("manifest.tsv:%d: kind %q, want valid or invalid", i+1, f[0])
		}
		if f[1] == "" || strings.ContainsAny(f[1], `/\`) || f[1] == "." || f[1] == ".." {
			return nil, fmt.Errorf("manifest.tsv:%d: bad case name %q", i+1, f[1])
		}
		id := f[0] + "/" + f[1]
		if seen[id] {
			return nil, fmt.Errorf("manifest.tsv:%d: %s listed twice", i+1, id)
		}
		seen[id] = true
		raw, err := os.ReadFile(filepath.Join(dir, f[0], f[1]+".http"))
		if err != nil {
			return nil, fmt.Errorf("manifest.tsv:%d: %w", i+1, err)
		}
		cases = append(cases, Case{ID: id, Kind: f[0], Name: f[1], Err: f[2], Settings: f[3], Raw: Decode(raw)})
	}
	return cases, nil
}

// Decode turns a corpus file into the bytes it stands for (Gunicorn's
// convention, the corpus README): real newlines are ignored; \r, \n, \t,
// \0 and \xHH (two hex digits, either case) are escapes. A backslash
// before anything else, or a \x without two hex digits, stays as it is.
func Decode(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\n"), nil)
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		switch b[i+1] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case 'x':
			hi, ok1 := hexDigit(b, i+2)
			lo, ok2 := hexDigit(b, i+3)
			if !ok1 || !ok2 {
				out = append(out, c, 'x')
				break
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			out = append(out, c, b[i+1])
		}
		i++
	}
	return out
}

func hexDigit(b []byte, i int) (byte, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ProxyV2Signature starts every PROXY protocol v2 header.
var ProxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// HasProxyHeader reports whether raw starts with a PROXY protocol header,
// well-formed or not ("PROXY " for v1, the v2 signature): one of
// Gunicorn's proxy_protocol tests, whatever the manifest's settings say.
func HasProxyHeader(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte("PROXY ")) || bytes.HasPrefix(raw, ProxyV2Signature)
}

// WantsProxyProtocol reports whether Gunicorn's test for c runs with
// proxy_protocol on: c starts with a PROXY header, or the manifest says so
// (valid/pp_03 checks that a connection without one is still served).
func (c Case) WantsProxyProtocol() bool {
	return HasProxyHeader(c.Raw) || strings.Contains(c.Settings, "proxy_protocol=True")
}

// SameBytes returns the scored valid case whose bytes c has, if c is a
// different case (valid/040_compat is valid/040): no server can tell them
// apart, so c is judged as that case. "" when there is none.
func SameBytes(cases []Case, c Case) string {
	for _, o := range cases {
		if o.ID != c.ID && o.Kind == "valid" && bytes.Equal(o.Raw, c.Raw) {
			if _, excluded := NotInScore[o.ID]; !excluded {
				return o.ID
			}
		}
	}
	return ""
}
