package corpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"GET / HTTP/1.1\\r\\n\nHost: a\\r\\n\n\\r\\n\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{`a\tb\0c\nd`, "a\tb\x00c\nd"},
		{`\x0D\x0a\xFf`, "\r\n\xff"},
		{`\xZZ\x1`, `\xZZ\x1`},
		{`\q\`, `\q\`},
		{"", ""},
	} {
		if got := Decode([]byte(tc.in)); !bytes.Equal(got, []byte(tc.want)) {
			t.Errorf("Decode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHasProxyHeader(t *testing.T) {
	for raw, want := range map[string]bool{
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n": true,
		"PROXY garbage\r\n":              true,
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11": true,
		"GET / HTTP/1.1\r\n":             false,
		"PROXYGET / HTTP/1.1\r\n":        false,
		"\r\n\r\n\x00\r\nQUI":            false,
	} {
		if got := HasProxyHeader([]byte(raw)); got != want {
			t.Errorf("HasProxyHeader(%q) = %v", raw, got)
		}
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"valid", "invalid"} {
		if err := os.Mkdir(filepath.Join(dir, k), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "valid", "a.http"), []byte("GET / HTTP/1.0\\r\\n\n\\r\\n\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "invalid", "b.http"), []byte("\\x00\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "manifest.tsv"), []byte("valid\ta\t-\t-\ninvalid\tb\tInvalidRequestLine\tproxy_protocol=True\n"), 0o644)
	cases, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[0].ID != "valid/a" || string(cases[0].Raw) != "GET / HTTP/1.0\r\n\r\n" ||
		cases[1].ID != "invalid/b" || cases[1].Err != "InvalidRequestLine" || string(cases[1].Raw) != "\x00" ||
		!cases[1].WantsProxyProtocol() || cases[0].WantsProxyProtocol() {
		t.Fatalf("%+v", cases)
	}
	for _, bad := range []string{"valid\ta\t-\n", "other\ta\t-\t-\n", "valid\t../a\t-\t-\n", "valid\ta\t-\t-\nvalid\ta\t-\t-\n", "valid\tmissing\t-\t-\n"} {
		os.WriteFile(filepath.Join(dir, "manifest.tsv"), []byte(bad), 0o644)
		if _, err := LoadDir(dir); err == nil {
			t.Errorf("manifest %q: no error", bad)
		}
	}
}

// The tables name only cases the corpus has, and the scored counts are
// the ones the peers were measured on.
func TestTablesMatchTheCorpus(t *testing.T) {
	cases := Load(t)
	ids := map[string]Case{}
	for _, c := range cases {
		ids[c.ID] = c
	}
	for _, table := range []map[string]string{NotInScore, ValidRefusals} {
		for id := range table {
			if _, ok := ids[id]; !ok {
				t.Errorf("%s: in a table, not in the corpus", id)
			}
		}
	}
	for id := range CaseLimits {
		if _, ok := ids[id]; !ok {
			t.Errorf("%s: in CaseLimits, not in the corpus", id)
		}
	}
	for id := range ValidRefusals {
		if ids[id].Kind != "valid" {
			t.Errorf("%s: in ValidRefusals, not a valid case", id)
		}
	}
	s := Tally(cases, func(Case) Verdict { return Verdict{} })
	if s.Invalid != InvalidScored || s.Valid != ValidScored {
		t.Errorf("%d invalid and %d valid cases scored, want %d and %d", s.Invalid, s.Valid, InvalidScored, ValidScored)
	}
}

func TestFind(t *testing.T) {
	t.Setenv("GSUP_CORPUS", "")
	root := t.TempDir()
	corpusDir := filepath.Join(root, filepath.FromSlash(RelDir))
	deep := filepath.Join(root, "main", "serve", "httpcheck")
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := Find(deep); ok {
		t.Fatal("found a corpus without its manifest")
	}
	if err := os.WriteFile(filepath.Join(corpusDir, "manifest.tsv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := Find(deep); !ok || got != corpusDir {
		t.Fatalf("Find = %q, %v; want %q", got, ok, corpusDir)
	}
}

// fakeTB records what Load asks of the test.
type fakeTB struct{ fatal, skip []string }

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Fatal(args ...any) { f.fatal = append(f.fatal, fmt.Sprint(args...)) }
func (f *fakeTB) Skip(args ...any)  { f.skip = append(f.skip, fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = append(f.fatal, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skip = append(f.skip, fmt.Sprintf(format, args...))
}

// Without the corpus, Load skips the test, or fails it under CI.
func TestLoadWithoutCorpus(t *testing.T) {
	t.Setenv("GSUP_CORPUS", "")
	t.Chdir(t.TempDir())
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		var f fakeTB
		if cases := Load(&f); cases != nil {
			t.Fatalf("CI=%q: %d cases from nowhere", ci, len(cases))
		}
		switch {
		case ci == "true" && (len(f.fatal) != 1 || len(f.skip) != 0):
			t.Errorf("CI=true: Fatal %q, Skip %q; want one Fatal", f.fatal, f.skip)
		case ci == "" && (len(f.skip) != 1 || len(f.fatal) != 0):
			t.Errorf("CI unset: Fatal %q, Skip %q; want one Skip", f.fatal, f.skip)
		}
	}
}
