package procfile

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	good := []struct{ in, dir, want string }{
		{"127.0.0.1:8000", "", "127.0.0.1:8000"},
		{"tcp://127.0.0.1:80", "", "127.0.0.1:80"},
		{"[::1]:8000", "", "[::1]:8000"},
		{"[::1]", "", "[::1]:8000"},
		{"[fe80::1%eth0]:80", "", "[fe80::1%eth0]:80"},
		{"localhost", "", "localhost:8000"},
		{"Example.COM:443", "", "example.com:443"},
		{"0.0.0.0:0", "", "0.0.0.0:0"},
		{":8080", "", ":8080"},
		{"unix:/run/a.sock", "", "unix:/run/a.sock"},
		{"unix:///run/a.sock", "", "unix:/run/a.sock"},
		{"unix:a.sock", "", "unix:a.sock"},
		{"unix:a.sock", "/srv/app", "unix:/srv/app/a.sock"},
		{"unix:/abs.sock", "/srv/app", "unix:/abs.sock"},
		{"fd://3", "", "fd://3"},
		{"fd://10", "", "fd://10"},
	}
	for _, tt := range good {
		if got, err := parseAddress(tt.in, tt.dir); err != nil || got != tt.want {
			t.Errorf("parseAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	bad := map[string]string{
		"":              "empty address",
		"unix:":         "empty socket path",
		"unix://":       "empty socket path",
		"fd://":         "fd://N",
		"fd://2":        "3 or more",
		"fd://x":        "fd://N",
		"http://x:80":   "unknown scheme",
		"host:":         `invalid port ""`,
		"host:65536":    `invalid port "65536"`,
		"host:-1":       `invalid port "-1"`,
		"::1":           "brackets",
		"::1:80":        "brackets",
		"[::1":          "missing ']'",
		"[::1]x":        `unexpected "x"`,
		"[::1]:x":       `invalid port "x"`,
		"[localhost]:1": "not an IPv6 address",
		"a b:80":        "invalid host",
		"-a:80":         "invalid host",
		"a..b:80":       "invalid host",
	}
	for in, want := range bad {
		if got, err := parseAddress(in, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseAddress(%q) = %q, %v; want an error with %q", in, got, err, want)
		}
	}
	if addrPort("127.0.0.1:8000") != 8000 || addrPort("[::1]:1") != 1 || addrPort(":80") != 80 ||
		addrPort("unix:/a:80") != -1 || addrPort("fd://3") != -1 {
		t.Error("addrPort")
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "4096": 4096, "1B": 1, "1KB": 1000, "1kb": 1000, "10MB": 10_000_000, "1GB": 1e9, "1TB": 1e12,
		"512KiB": 512 << 10, "1MiB": 1 << 20, "1 MiB": 1 << 20, "1mib": 1 << 20, "2GiB": 2 << 30, "1TiB": 1 << 40,
	}
	bad := []string{"", "MiB", "-1", "1.5MiB", "1 parsec", "1MiBs", "9999999999TiB", "99999999999999999999"}
	checkParse(t, "parseSize", "%d", parseSize, good, bad)
}

// checkParse checks that parse, named name, reads each key of good as its
// value and fails on each of bad; verb formats its results.
func checkParse[T comparable](t *testing.T, name, verb string, parse func(string) (T, error), good map[string]T, bad []string) {
	t.Helper()
	for in, want := range good {
		if got, err := parse(in); err != nil || got != want {
			t.Errorf("%s(%q) = "+verb+", %v; want "+verb, name, in, got, err, want)
		}
	}
	for _, in := range bad {
		if got, err := parse(in); err == nil {
			t.Errorf("%s(%q) = "+verb+", want an error", name, in, got)
		}
	}
}

func TestParseMode(t *testing.T) {
	good := map[string]os.FileMode{"0660": 0o660, "660": 0o660, "0o600": 0o600, "0": 0, "777": 0o777, "022": 0o22}
	bad := []string{"", "999", "1777", "0x1ff", "-1", "+660", "rw-rw----", "0o"}
	checkParse(t, "parseMode", "%o", parseMode, good, bad)
}

func TestParseIPList(t *testing.T) {
	got, err := parseIPList([]string{" 127.0.0.1", "::1 ", "", "10.0.0.0/8", "2001:db8::/32", "*", "::ffff:10.0.0.1"})
	want := []string{"127.0.0.1", "::1", "10.0.0.0/8", "2001:db8::/32", "*", "::ffff:10.0.0.1"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseIPList = %q, %v", got, err)
	}
	if got, err := parseIPList(splitList("")); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty list = %q, %v; want an empty list", got, err)
	}
	bad := map[string]string{
		"192.168.1.1/24": "host bits set (did you mean 192.168.1.0/24?)",
		"10.0.0.0/33":    "not an IP address or network",
		"localhost":      "not an IP address or network",
		"fe80::1%eth0":   "not an IP address or network",
		"1.2.3":          "not an IP address or network",
		"**":             "not an IP address or network",
	}
	for in, want := range bad {
		if _, err := parseIPList([]string{in}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseIPList(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "gsup.toml", Line: 12, Key: "process.web.restart", Msg: "bad"}, "gsup.toml:12: process.web.restart: bad"},
		{Error{File: "Procfile", Line: 3, Msg: "bad"}, "Procfile:3: bad"},
		{Error{File: "a.env", Msg: "bad"}, "a.env: bad"},
		{Error{File: "a.env", Key: "K", Msg: "bad"}, "a.env: K: bad"},
		{Error{Key: "--bind", Msg: "bad"}, "--bind: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
