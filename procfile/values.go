package procfile

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// defaultBindPort is the port a bind without one gets, as in Gunicorn.
const defaultBindPort = "8000"

// parseAddress validates and normalises a listening address:
//
//	"unix:/path", "unix:///path"       -> "unix:/path"
//	"fd://3"                           -> "fd://3" (3 or more: 0-2 are stdio)
//	"host:port", "tcp://host:port"     -> "host:port" (host lower-cased)
//	"[::1]:port"                       -> "[::1]:port"
//	"host", "[::1]"                    -> "host:8000", "[::1]:8000" (Gunicorn)
//	":port"                            -> ":port" (every interface)
//
// A relative unix path is joined to dir when dir is not "".
func parseAddress(s, dir string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("empty address")
	case strings.HasPrefix(s, "unix:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s, "unix:"), "//")
		if path == "" {
			return "", fmt.Errorf("%q: empty socket path", s)
		}
		if strings.IndexByte(path, 0) >= 0 {
			return "", fmt.Errorf("%q: socket path contains a NUL byte", s)
		}
		if dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		return "unix:" + path, nil
	case strings.HasPrefix(s, "fd://"):
		n, err := parseCount(strings.TrimPrefix(s, "fd://"))
		if err != nil || n < 3 {
			return "", fmt.Errorf("%q: want fd://N with N a file descriptor number of 3 or more", s)
		}
		return "fd://" + strconv.Itoa(n), nil
	}
	hostport := strings.TrimPrefix(s, "tcp://")
	if strings.Contains(hostport, "://") {
		return "", fmt.Errorf("%q: unknown scheme (use host:port, unix:/path or fd://N)", s)
	}
	var host, port string
	switch {
	case strings.HasPrefix(hostport, "["):
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", fmt.Errorf("%q: missing ']'", s)
		}
		host = hostport[1:end]
		switch rest := hostport[end+1:]; {
		case rest == "":
			port = defaultBindPort
		case rest[0] == ':':
			port = rest[1:]
		default:
			return "", fmt.Errorf("%q: unexpected %q after ']'", s, rest)
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", fmt.Errorf("%q: %q is not an IPv6 address", s, host)
		}
	case strings.Count(hostport, ":") > 1:
		return "", fmt.Errorf("%q: write IPv6 addresses in brackets, as [::1]:8000", s)
	default:
		var ok bool
		host, port, ok = strings.Cut(hostport, ":")
		if !ok {
			port = defaultBindPort
		}
		if host != "" && !validHost(host) {
			return "", fmt.Errorf("%q: invalid host %q", s, host)
		}
	}
	if _, err := parsePort(port); err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

// parsePort parses a TCP port, 0-65535 (0: any free port).
func parsePort(s string) (int, error) {
	n, err := parseCount(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return n, nil
}

// validHost accepts an IPv4 address or a host name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return len(h) <= 253
}

// addrPort returns the port of a "host:port" address, or -1 for a unix or
// fd:// address.
func addrPort(addr string) int {
	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "fd://") {
		return -1
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return -1
	}
	n, err := parsePort(p)
	if err != nil {
		return -1
	}
	return n
}

// parseIPList parses a forwarded_allow_ips or proxy_allow_from list: each
// entry an IP address, a network in CIDR notation whose host bits are zero
// (as Python's strict ip_network, so Gunicorn's values mean the same), or
// "*". Empty entries are skipped.
func parseIPList(entries []string) ([]string, error) {
	out := []string{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			continue
		case e == "*":
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or network", e)
			}
			if m := p.Masked(); m != p {
				return nil, fmt.Errorf("%q has host bits set (did you mean %s?)", e, m)
			}
		default:
			a, err := netip.ParseAddr(e)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP address or network", e)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// splitList splits a comma-separated list.
func splitList(s string) []string { return strings.Split(s, ",") }

// sizeUnits are the suffixes parseSize knows, lower-cased.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// parseSize parses a size: a non-negative integer followed by an optional
// unit (B, KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers
// of 1024; any case): "1MiB", "512KiB", "10MB", "4096".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q (want a number of bytes or a size such as \"512KiB\", \"1MiB\", \"10MB\")", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}

// parseMode parses a file mode written in octal ("0660", "660", "0o660"),
// at most 0777.
func parseMode(s string) (os.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("invalid mode %q (want octal digits, at most 0777, such as \"0660\")", s)
	}
	return os.FileMode(n), nil
}

// FormatSize writes n bytes as parseSize reads them, in powers of 1024:
// "512KiB", "1.5MiB".
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f, i = f/1024, i+1
	}
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) + units[i]
}
