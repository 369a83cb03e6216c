package forward

import (
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestTrusted(t *testing.T) {
	loopback := Policy{Allow: mustParse(t, "127.0.0.1, ::1, 10.0.0.0/8"), TrustUnixPeers: true}
	noUnix := Policy{Allow: loopback.Allow}
	star := Policy{Allow: mustParse(t, "*")}
	nobody := Policy{}
	tests := []struct {
		name   string
		policy Policy
		ci     ClientInfo
		want   bool
	}{
		{"ipv4 allowed", loopback, ClientInfo{Addr: ap("127.0.0.1:5000"), Peer: ap("127.0.0.1:5000")}, true},
		{"ipv4 not allowed", loopback, ClientInfo{Addr: ap("203.0.113.5:5000"), Peer: ap("203.0.113.5:5000")}, false},
		{"ipv6 allowed", loopback, ClientInfo{Addr: ap("[::1]:5000"), Peer: ap("[::1]:5000")}, true},
		{"ipv6 not allowed", loopback, ClientInfo{Addr: ap("[2001:db8::1]:5000"), Peer: ap("[2001:db8::1]:5000")}, false},
		{"ipv4-mapped allowed", loopback, ClientInfo{Addr: ap("[::ffff:127.0.0.1]:5000")}, true},
		{"ipv4-mapped in cidr", loopback, ClientInfo{Addr: ap("[::ffff:10.9.8.7]:5000")}, true},
		{"ipv4-mapped not allowed", loopback, ClientInfo{Addr: ap("[::ffff:192.0.2.1]:5000")}, false},
		{"cidr", loopback, ClientInfo{Addr: ap("10.200.0.1:1")}, true},
		{"star v4", star, ClientInfo{Addr: ap("203.0.113.5:1")}, true},
		{"star v6", star, ClientInfo{Addr: ap("[2001:db8::1]:1")}, true},
		{"star unix", star, ClientInfo{Unix: true}, true},
		{"unix trusted", loopback, ClientInfo{Unix: true}, true},
		{"unix not trusted", noUnix, ClientInfo{Unix: true}, false},
		{"unix, PROXY client not allowed", loopback, ClientInfo{Unix: true, Proxied: true, Addr: ap("203.0.113.5:4000")}, false},
		{"unix, PROXY client allowed", noUnix, ClientInfo{Unix: true, Proxied: true, Addr: ap("127.0.0.1:4000")}, true},
		{"unix, PROXY LOCAL (no address)", loopback, ClientInfo{Unix: true, Proxied: true}, true},
		{"unix, PROXY LOCAL, unix not trusted", noUnix, ClientInfo{Unix: true, Proxied: true}, false},
		{"tcp, PROXY client not allowed via allowed proxy", loopback,
			ClientInfo{Addr: ap("203.0.113.5:4000"), Peer: ap("127.0.0.1:5000"), Proxied: true}, false},
		{"tcp, PROXY client allowed", loopback,
			ClientInfo{Addr: ap("10.0.0.2:4000"), Peer: ap("127.0.0.1:5000"), Proxied: true}, true},
		{"tcp, PROXY LOCAL keeps the peer", loopback,
			ClientInfo{Addr: ap("127.0.0.1:5000"), Peer: ap("127.0.0.1:5000"), Proxied: true}, true},
		{"no allow list", nobody, ClientInfo{Addr: ap("127.0.0.1:1")}, false},
		{"no address on tcp", loopback, ClientInfo{}, false},
		{"no address on tcp, star", star, ClientInfo{}, true},
	}
	for _, tt := range tests {
		if got := tt.policy.Trusted(tt.ci); got != tt.want {
			t.Errorf("%s: Trusted(%+v) = %v, want %v", tt.name, tt.ci, got, tt.want)
		}
	}
}

// spoofed is a request header set carrying every forwarding header a client
// could try to spoof, in several spellings, plus two ordinary headers.
func spoofed() http.Header {
	return http.Header{
		"X-Forwarded-For":      {"1.2.3.4"},
		"x-forwarded-for":      {"5.6.7.8"}, // not canonical: built by hand
		"X_forwarded_for":      {"9.9.9.9"},
		"x_forwarded_for":      {"9.9.9.8"},
		"X-FORWARDED-PROTO":    {"https"},
		"X-Forwarded-Proto":    {"https"},
		"X_Forwarded_Proto":    {"https"},
		"X-Forwarded-Host":     {"evil.example"},
		"X-Forwarded-Port":     {"443"},
		"X-Forwarded-Ssl":      {"on"},
		"X-Forwarded-Protocol": {"ssl"},
		"X-Forwarded-Prefix":   {"/admin"},
		"X-Forwarded-Scheme":   {"https"},
		"X-Forwarded-Server":   {"evil"},
		"Front-End-Https":      {"on"},
		"Front_End_Https":      {"on"},
		"Forwarded":            {"for=1.2.3.4;proto=https"},
		"X-Real-Ip":            {"1.2.3.4"},
		"X_Real_IP":            {"1.2.3.4"},
		"X-Url-Scheme":         {"https"},
		"Client-Ip":            {"1.2.3.4"},
		"X-Client-Ip":          {"1.2.3.4"},
		"True-Client-Ip":       {"1.2.3.4"},
		"X-Cluster-Client-Ip":  {"1.2.3.4"},
		"Cf-Connecting-Ip":     {"1.2.3.4"},
		"Fastly-Client-Ip":     {"1.2.3.4"},
		"Accept":               {"*/*"},
		"X-Request-Id":         {"abc"},
		"X-Forwarded":          {"kept: not a known name nor the X-Forwarded- family"},
	}
}

func TestRewrite(t *testing.T) {
	client := ClientInfo{Addr: ap("203.0.113.5:4000"), Peer: ap("203.0.113.5:4000")}
	proxied := ClientInfo{Addr: ap("198.51.100.7:4000"), Peer: ap("127.0.0.1:5000"), Proxied: true}
	tlsClient := ClientInfo{Addr: ap("203.0.113.5:4000"), Peer: ap("203.0.113.5:4000"), HTTPS: true}
	v6 := ClientInfo{Addr: ap("[2001:db8::1]:4000"), Peer: ap("[2001:db8::1]:4000")}
	unix := ClientInfo{Unix: true}
	tests := []struct {
		name    string
		in      http.Header
		host    string
		ci      ClientInfo
		trusted bool
		want    http.Header
	}{
		{
			name: "untrusted: every spoofed header removed, own set", in: spoofed(), host: "app.example", ci: client,
			want: http.Header{
				"Accept": {"*/*"}, "X-Request-Id": {"abc"}, "X-Forwarded": {"kept: not a known name nor the X-Forwarded- family"},
				"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.example"},
			},
		},
		{
			name: "untrusted over TLS (SSL TLV or scheme = https)", in: spoofed(), host: "app.example", ci: tlsClient,
			want: http.Header{
				"Accept": {"*/*"}, "X-Request-Id": {"abc"}, "X-Forwarded": {"kept: not a known name nor the X-Forwarded- family"},
				"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example"},
			},
		},
		{
			name: "untrusted PROXY client", in: http.Header{"X-Forwarded-For": {"1.1.1.1"}}, host: "h", ci: proxied,
			want: http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "untrusted ipv6 client, no brackets", in: http.Header{}, host: "h", ci: v6,
			want: http.Header{"X-Forwarded-For": {"2001:db8::1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "untrusted unix peer: no address to give", in: spoofed(), host: "h", ci: unix,
			want: http.Header{
				"Accept": {"*/*"}, "X-Request-Id": {"abc"}, "X-Forwarded": {"kept: not a known name nor the X-Forwarded- family"},
				"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"},
			},
		},
		{
			name: "untrusted, no host", in: http.Header{"X-Forwarded-Host": {"evil"}}, host: "", ci: client,
			want: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http"}},
		},
		{
			name: "trusted: chain extended, others kept, underscores dropped",
			in: http.Header{
				"X-Forwarded-For": {"1.1.1.1, 2.2.2.2"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"},
				"X-Forwarded-Port": {"443"}, "X-Real-Ip": {"1.1.1.1"}, "Forwarded": {"for=1.1.1.1"},
				"X_Forwarded_For": {"6.6.6.6"}, "X_Real_Ip": {"6.6.6.6"}, "Accept": {"*/*"},
			},
			host: "internal:8000", ci: client, trusted: true,
			want: http.Header{
				"X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 203.0.113.5"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"},
				"X-Forwarded-Port": {"443"}, "X-Real-Ip": {"1.1.1.1"}, "Forwarded": {"for=1.1.1.1"}, "Accept": {"*/*"},
			},
		},
		{
			name: "trusted: several XFF lines joined",
			in:   http.Header{"X-Forwarded-For": {"1.1.1.1", "2.2.2.2,3.3.3.3", ""}},
			host: "h", ci: client, trusted: true,
			want: http.Header{"X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.5"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted without headers: set from the connection", in: http.Header{}, host: "h", ci: tlsClient, trusted: true,
			want: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted PROXY client extends with the PROXY address", in: http.Header{"X-Forwarded-For": {"1.1.1.1"}}, host: "h", ci: proxied, trusted: true,
			want: http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted legacy secure header sets the proto", in: http.Header{"X-Forwarded-Ssl": {"on"}}, host: "h", ci: client, trusted: true,
			want: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Ssl": {"on"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted bogus proto replaced", in: http.Header{"X-Forwarded-Proto": {"ftp"}}, host: "h", ci: client, trusted: true,
			want: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted proto chain kept", in: http.Header{"X-Forwarded-Proto": {"HTTPS, http"}}, host: "h", ci: client, trusted: true,
			want: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"HTTPS, http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted unix peer: chain kept as is", in: http.Header{"X-Forwarded-For": {"1.1.1.1"}, "X-Forwarded-Proto": {"https"}}, host: "h", ci: unix, trusted: true,
			want: http.Header{"X-Forwarded-For": {"1.1.1.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted unix peer without chain", in: http.Header{}, host: "h", ci: unix, trusted: true,
			want: http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
		{
			name: "trusted empty XFH replaced", in: http.Header{"X-Forwarded-Host": {""}}, host: "h", ci: client, trusted: true,
			want: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.in.Clone()
			Rewrite(out, tt.host, tt.ci, tt.trusted)
			if !reflect.DeepEqual(out, tt.want) {
				t.Errorf("got  %v\nwant %v", out, tt.want)
			}
		})
	}
}

func TestRewriteCoherent(t *testing.T) {
	// Whatever a client sends and whoever it is, the app gets exactly one
	// X-Forwarded-Proto that agrees with Scheme, and one X-Forwarded-Host.
	cis := []ClientInfo{
		{Addr: ap("203.0.113.5:1")}, {Addr: ap("203.0.113.5:1"), HTTPS: true}, {Unix: true}, {Unix: true, HTTPS: true},
	}
	for _, trusted := range []bool{false, true} {
		for _, ci := range cis {
			in := spoofed()
			out := in.Clone()
			Rewrite(out, "h", ci, trusted)
			if got := out.Values(HeaderProto); len(got) != 1 {
				t.Fatalf("trusted=%v %+v: X-Forwarded-Proto %q", trusted, ci, got)
			}
			if p, ok := protoOf(Header(out)); !ok || p != Scheme(in, ci, trusted) {
				t.Errorf("trusted=%v %+v: X-Forwarded-Proto %q, Scheme %q", trusted, ci, out.Get(HeaderProto), Scheme(in, ci, trusted))
			}
			if got := out.Values(HeaderHost); len(got) != 1 {
				t.Errorf("trusted=%v %+v: X-Forwarded-Host %q", trusted, ci, got)
			}
			for name := range out {
				if _, underscore := isForwarding(name); underscore {
					t.Errorf("trusted=%v: %s passed on", trusted, name)
				}
			}
		}
	}
}

func TestScheme(t *testing.T) {
	plain := ClientInfo{Addr: ap("203.0.113.5:1")}
	tlsCI := ClientInfo{Addr: ap("203.0.113.5:1"), HTTPS: true}
	tests := []struct {
		in      http.Header
		ci      ClientInfo
		trusted bool
		want    string
	}{
		{http.Header{}, plain, false, "http"},
		{http.Header{}, tlsCI, false, "https"},
		{http.Header{"X-Forwarded-Proto": {"https"}}, plain, false, "http"},
		{http.Header{"X-Forwarded-Ssl": {"on"}}, plain, false, "http"},
		{http.Header{"X-Forwarded-Proto": {"http"}}, tlsCI, false, "https"},
		{http.Header{"X-Forwarded-Proto": {"https"}}, plain, true, "https"},
		{http.Header{"X-Forwarded-Proto": {"HTTPS"}}, plain, true, "https"}, // Gunicorn: http
		{http.Header{"X-Forwarded-Proto": {" https , http"}}, plain, true, "https"},
		{http.Header{"X-Forwarded-Proto": {"http"}}, tlsCI, true, "http"},
		{http.Header{"X-Forwarded-Proto": {"wss"}}, plain, true, "http"},
		{http.Header{"X-Forwarded-Proto": {"wss"}}, tlsCI, true, "https"},
		{http.Header{"X-Forwarded-Ssl": {"on"}}, plain, true, "https"},
		{http.Header{"X-Forwarded-Ssl": {"off"}}, plain, true, "http"},
		{http.Header{"X-Forwarded-Protocol": {"ssl"}}, plain, true, "https"},
		{http.Header{"Front-End-Https": {"On"}}, plain, true, "https"},
		{http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Ssl": {"on"}}, plain, true, "http"}, // Gunicorn: 400
		{http.Header{}, tlsCI, true, "https"},
	}
	for _, tt := range tests {
		if got := Scheme(tt.in, tt.ci, tt.trusted); got != tt.want {
			t.Errorf("Scheme(%v, https=%v, trusted=%v) = %q, want %q", tt.in, tt.ci.HTTPS, tt.trusted, got, tt.want)
		}
	}
}

func TestIsForwardingDoesNotAllocate(t *testing.T) {
	names := []string{"X-Forwarded-For", "X_Forwarded_For", "Accept", "Cf-Connecting-Ip", "Content-Type"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, n := range names {
			isForwarding(n)
		}
	})
	if allocs != 0 {
		t.Errorf("isForwarding allocates %v times", allocs)
	}
}

// isForwarding's first look (a length, a first letter) lets every
// forwarding name through, in any case and with '_' for '-'.
func TestForwardingNamesPassTheFirstLook(t *testing.T) {
	names := append([]string{forwardedPrefix + "for", forwardedPrefix + "x"}, forwardingNames...)
	for _, n := range names {
		if len(n) < minForwarding || !strings.ContainsRune("xfct", rune(n[0])) {
			t.Errorf("%q fails isForwarding's first look", n)
		}
		for _, v := range []string{n, strings.ToUpper(n), http.CanonicalHeaderKey(n), strings.ReplaceAll(n, "-", "_")} {
			if f, _ := isForwarding(v); !f {
				t.Errorf("isForwarding(%q) = false", v)
			}
		}
	}
	for _, v := range []string{"Accept", "User-Agent", "Connection", "Cookie", "X-Request-Id", "Content-Type"} {
		if f, _ := isForwarding(v); f {
			t.Errorf("isForwarding(%q) = true", v)
		}
	}
}

// Fix's texts are what Host and Port give of an unfixed ClientInfo, for
// every kind of address, cut from one string.
func TestFixGivesHostAndPort(t *testing.T) {
	for _, a := range []string{
		"192.0.2.1:8080", "127.0.0.1:1", "[2001:db8::1]:443", "[::1]:65535",
		"[fe80::1%eth0]:80", "[::ffff:192.0.2.1]:99", "0.0.0.0:0",
	} {
		ap := netip.MustParseAddrPort(a)
		plain := ClientInfo{Addr: ap}
		fixed := plain
		fixed.Fix()
		if fixed.Host() != plain.Host() || fixed.Port() != plain.Port() || fixed.AddrText() != plain.AddrText() {
			t.Errorf("%s: fixed %q %q %q, want %q %q %q", a, fixed.Host(), fixed.Port(), fixed.AddrText(), plain.Host(), plain.Port(), plain.AddrText())
		}
		// As RemoteAddr's text (a connection's ClientInfo holds no
		// IPv4-mapped address: it is unmapped).
		if tcp := net.TCPAddrFromAddrPort(ap).String(); !ap.Addr().Is4In6() && fixed.AddrText() != tcp {
			t.Errorf("%s: AddrText %q, net's %q", a, fixed.AddrText(), tcp)
		}
	}
	var none ClientInfo
	none.Fix()
	if none.Host() != "" || none.Port() != "" || none.AddrText() != "" {
		t.Errorf("no address: fixed %q %q, want none", none.Host(), none.Port())
	}
}
