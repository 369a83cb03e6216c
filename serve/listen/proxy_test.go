package listen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"gsup/procfile"
)

// v2 builds a PROXY v2 header: verCmd is the 13th byte (0x21 PROXY, 0x20
// LOCAL), fam the 14th; the length is that of body.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	b := append([]byte{}, proxyproto.SIGV2...)
	b = append(b, verCmd, fam)
	all := bytes.Join(body, nil)
	b = binary.BigEndian.AppendUint16(b, uint16(len(all)))
	return append(b, all...)
}

// inet4 is a v2 TCP/UDP over IPv4 address block.
func inet4(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// inet6 is a v2 TCP over IPv6 address block.
func inet6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// tlv is one v2 Type-Length-Value.
func tlv(typ byte, value []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

// sslTLV is a PP2_TYPE_SSL TLV with the given client bits and a version.
func sslTLV(client byte) []byte {
	v := []byte{client, 0, 0, 0, 0}
	v = append(v, tlv(0x21, []byte("TLSv1.3"))...)
	return tlv(0x20, v)
}

const (
	proxyCmd = 0x21
	localCmd = 0x20
	tcp4     = 0x11
	udp4     = 0x12
	tcp6     = 0x21
	unixStr  = 0x31
)

var (
	longestV1 = "PROXY UNKNOWN " + strings.Repeat("f", 39) + " " + strings.Repeat("f", 39) + " 65535 65535\r\n"
	tooLongV1 = "PROXY UNKNOWN " + strings.Repeat("f", 40) + " " + strings.Repeat("f", 39) + " 65535 65535\r\n"
)

// proxyCase is one PROXY protocol exchange: prefix is sent before the
// HTTP request(s). want* describe what the server must see, or refused the
// reason that must be logged with the 400.
type proxyCase struct {
	name      string
	mode      string
	allow     []string // ProxyAllow; nil = the default
	prefix    []byte
	wantAddr  string // "" = the peer; "-" = no address
	wantHTTPS bool
	proxied   bool
	refused   string
}

func proxyCases() []proxyCase {
	unixBlock := make([]byte, 108) // sun_path: 108 bytes each for source and destination
	copy(unixBlock, "/run/client.sock")
	return []proxyCase{
		{name: "v1 TCP4", mode: ProxyAuto, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n"), wantAddr: "192.0.2.1:56324", proxied: true},
		{name: "v1 TCP6", mode: ProxyAuto, prefix: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"), wantAddr: "[2001:db8::1]:56324", proxied: true},
		{name: "v1 TCP6 v4-mapped is unmapped", mode: ProxyAuto, prefix: []byte("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1 2\r\n"), wantAddr: "192.0.2.1:1", proxied: true},
		{name: "v1 UNKNOWN", mode: ProxyAuto, prefix: []byte("PROXY UNKNOWN\r\n"), proxied: true},
		{name: "v1 UNKNOWN of 107 bytes", mode: ProxyAuto, prefix: []byte(longestV1), proxied: true},
		{name: "v1 only, v1 header", mode: ProxyV1, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), wantAddr: "192.0.2.1:1", proxied: true},
		{name: "v2 TCP4", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 56324, 443)), wantAddr: "192.0.2.1:56324", proxied: true},
		{name: "v2 TCP6", mode: ProxyAuto, prefix: v2(proxyCmd, tcp6, inet6("2001:db8::1", "2001:db8::2", 56324, 443)), wantAddr: "[2001:db8::1]:56324", proxied: true},
		{name: "v2 only, v2 header", mode: ProxyV2, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 7, 8)), wantAddr: "192.0.2.1:7", proxied: true},
		{name: "v2 LOCAL", mode: ProxyAuto, prefix: v2(localCmd, 0x00), proxied: true},
		{name: "v2 LOCAL with an address block", mode: ProxyAuto, prefix: v2(localCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)), proxied: true},
		{name: "v2 LOCAL with a short block", mode: ProxyAuto, prefix: v2(localCmd, tcp4, []byte{1, 2, 3}), proxied: true},
		{name: "v2 AF_UNIX", mode: ProxyAuto, prefix: v2(proxyCmd, unixStr, unixBlock, unixBlock), proxied: true},
		{name: "v2 UDP4", mode: ProxyAuto, prefix: v2(proxyCmd, udp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)), proxied: true},
		{name: "v2 TLVs skipped", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2),
			tlv(0x01, []byte("h2")), tlv(0x02, []byte("example.com")), tlv(0x03, []byte{1, 2, 3, 4}),
			tlv(0x04, make([]byte, 10)), tlv(0x05, []byte("id")), tlv(0xE1, []byte("custom")), tlv(0xEA, nil)),
			wantAddr: "192.0.2.1:1", proxied: true},
		{name: "v2 SSL TLV", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2), tlv(0x02, []byte("a")), sslTLV(0x01)),
			wantAddr: "192.0.2.1:1", wantHTTPS: true, proxied: true},
		{name: "v2 SSL TLV with client certificate", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2), sslTLV(0x07)),
			wantAddr: "192.0.2.1:1", wantHTTPS: true, proxied: true},
		{name: "v2 SSL TLV without the client-SSL bit", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2), tlv(0x20, []byte{0, 0, 0, 0, 0})),
			wantAddr: "192.0.2.1:1", proxied: true},
		{name: "v2 short SSL TLV", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2), tlv(0x20, []byte{1})),
			wantAddr: "192.0.2.1:1", proxied: true},
		{name: "auto without header", mode: ProxyAuto},
		{name: "v1 only without header", mode: ProxyV1},
		{name: "v2 only without header", mode: ProxyV2},
		{name: "required v1", mode: ProxyRequired, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), wantAddr: "192.0.2.1:1", proxied: true},
		{name: "required v2", mode: ProxyRequired, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)), wantAddr: "192.0.2.1:1", proxied: true},
		{name: "required v2 LOCAL", mode: ProxyRequired, prefix: v2(localCmd, 0x00), proxied: true},
		{name: "peer not allowed, no header", mode: ProxyAuto, allow: []string{"192.0.2.0/24"}},
		{name: "allowed by CIDR", mode: ProxyAuto, allow: []string{"127.0.0.0/8"}, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), wantAddr: "192.0.2.1:1", proxied: true},
		{name: "allowed by *", mode: ProxyAuto, allow: []string{"*"}, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), wantAddr: "192.0.2.1:1", proxied: true},

		{name: "v1 over 107 bytes", mode: ProxyAuto, prefix: []byte(tooLongV1), refused: "PROXY v1 header longer than 107 bytes"},
		{name: "v1 4 KiB without CRLF", mode: ProxyAuto, prefix: []byte("PROXY " + strings.Repeat("x", 4096)), refused: "PROXY v1 header longer than 107 bytes"},
		{name: "v1 garbage", mode: ProxyAuto, prefix: []byte("PROXY garbage\r\n"), refused: "malformed PROXY header"},
		{name: "v1 bad address", mode: ProxyAuto, prefix: []byte("PROXY TCP4 999.0.0.1 192.0.2.2 1 2\r\n"), refused: "malformed PROXY header: invalid address"},
		{name: "v1 TCP4 with IPv6 addresses", mode: ProxyAuto, prefix: []byte("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n"), refused: "malformed PROXY header: invalid address"},
		{name: "v1 port with a leading zero", mode: ProxyAuto, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 080 2\r\n"), refused: "malformed PROXY header: invalid port"},
		{name: "v1 port out of range", mode: ProxyAuto, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n"), refused: "malformed PROXY header: invalid port"},
		{name: "v1 LF without CR", mode: ProxyAuto, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n"), refused: "malformed PROXY header"},
		{name: "v1 extra field", mode: ProxyAuto, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n"), refused: "malformed PROXY header"},
		{name: "PROXY glued to a request", mode: ProxyAuto, prefix: []byte("PROXYGET / HTTP/1.1\r\n"), refused: "malformed PROXY header"},
		{name: "v2 bad version", mode: ProxyAuto, prefix: v2(0x11, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)), refused: "malformed PROXY header"},
		{name: "v2 bad command", mode: ProxyAuto, prefix: v2(0x22, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)), refused: "malformed PROXY header"},
		{name: "v2 PROXY with UNSPEC family (as LOCAL)", mode: ProxyAuto, prefix: v2(proxyCmd, 0x00), proxied: true},
		{name: "v2 family 0x01", mode: ProxyAuto, prefix: v2(proxyCmd, 0x01), refused: "malformed PROXY header"},
		{name: "v2 family 0x13", mode: ProxyAuto, prefix: v2(proxyCmd, 0x13, inet4("192.0.2.1", "192.0.2.2", 1, 2)), refused: "malformed PROXY header"},
		{name: "v2 block shorter than its family", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, []byte{1, 2, 3, 4, 5, 6, 7, 8}), refused: "malformed PROXY header"},
		{name: "v2 truncated TLV", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2), []byte{0x02, 0x00, 0x09, 'a'}),
			refused: "malformed PROXY v2 header: truncated TLV"},
		{name: "v2 over 4 KiB", mode: ProxyAuto, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2), tlv(0xE0, make([]byte, 5000))),
			refused: "malformed PROXY header: invalid length"},
		{name: "v1 only, v2 header", mode: ProxyV1, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)),
			refused: "PROXY v2 header on a bind that accepts v1 only"},
		{name: "v2 only, v1 header", mode: ProxyV2, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"),
			refused: "PROXY v1 header on a bind that accepts v2 only"},
		{name: "required without header", mode: ProxyRequired, refused: "no PROXY header (proxy_protocol = required)"},
		{name: "peer not allowed, v1", mode: ProxyAuto, allow: []string{"192.0.2.0/24"}, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"),
			refused: "PROXY header from a peer not in proxy_allow_from"},
		{name: "peer not allowed, v2", mode: ProxyAuto, allow: []string{"192.0.2.0/24"}, prefix: v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2)),
			refused: "PROXY header from a peer not in proxy_allow_from"},
		{name: "peer not allowed, malformed", mode: ProxyAuto, allow: []string{"192.0.2.0/24"}, prefix: []byte("PROXY garbage\r\n"),
			refused: "PROXY header from a peer not in proxy_allow_from"},
		{name: "peer not allowed, v1 only", mode: ProxyV1, allow: []string{"192.0.2.0/24"}, prefix: []byte("PROXY UNKNOWN\r\n"),
			refused: "PROXY header from a peer not in proxy_allow_from"},
		{name: "peer not allowed, required, no header", mode: ProxyRequired, allow: []string{"192.0.2.0/24"},
			refused: "no PROXY header (proxy_protocol = required)"},
		{name: "peer not allowed, required, v1", mode: ProxyRequired, allow: []string{"192.0.2.0/24"}, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"),
			refused: "PROXY header from a peer not in proxy_allow_from"},
		{name: "empty allow list", mode: ProxyAuto, allow: []string{}, prefix: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"),
			refused: "PROXY header from a peer not in proxy_allow_from"},
	}
}

const request = "GET /info HTTP/1.1\r\nHost: test\r\n\r\n"

func TestProxyTCP(t *testing.T) {
	for _, tt := range proxyCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logs := testLogger()
			o := Options{ProxyProtocol: tt.mode, Log: log, HeaderTimeout: 2 * time.Second}
			if tt.allow != nil {
				o.ProxyAllow = mustAllow(t, tt.allow...)
			}
			l := openOne(t, procfile.Bind{Address: "127.0.0.1:0"}, o)
			serveHTTP(t, l)
			if tt.refused != "" {
				c := dial(t, l)
				got := exchangeOn(t, c, append(append([]byte{}, tt.prefix...), request...), false, 5*time.Second)
				if got != badRequest {
					t.Errorf("client got %q, want the 400", got)
				}
				checkRefusalLogged(t, logs, "127.0.0.1:0", c.LocalAddr().String(), tt.refused)
				return
			}
			c, got := get(t, l, tt.prefix, 3) // keep-alive: the header holds for every request
			peer := c.LocalAddr().String()
			want := seen{Addr: peer, Peer: peer, Remote: peer, Text: peer, Proxied: tt.proxied, HTTPS: tt.wantHTTPS, Direct: true}
			if tt.wantAddr != "" {
				want.Addr, want.Remote, want.Text = tt.wantAddr, tt.wantAddr, tt.wantAddr
			}
			for i, s := range got {
				if s != want {
					t.Errorf("request %d: server saw %+v\nwant %+v", i+1, s, want)
				}
			}
			if lines := logs.lines(); len(lines) != 0 {
				t.Errorf("logged %q", lines)
			}
		})
	}
}

func TestProxyUnix(t *testing.T) {
	for _, tt := range proxyCases() {
		if tt.allow != nil || strings.HasPrefix(tt.name, "peer not allowed") {
			continue // UNIX-socket peers are always allowed
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logs := testLogger()
			sock := filepath.Join(t.TempDir(), "s")
			o := Options{ProxyProtocol: tt.mode, Log: log, HeaderTimeout: 2 * time.Second}
			l := openOne(t, procfile.Bind{Address: "unix:" + sock}, o)
			serveHTTP(t, l)
			if tt.refused != "" {
				got := exchange(t, l, append(append([]byte{}, tt.prefix...), request...), false, 5*time.Second)
				if got != badRequest {
					t.Errorf("client got %q, want the 400", got)
				}
				peer := fmt.Sprintf("a UNIX-socket peer (pid %d, uid %d)", os.Getpid(), os.Getuid())
				checkRefusalLogged(t, logs, "unix:"+sock, peer, tt.refused)
				return
			}
			_, got := get(t, l, tt.prefix, 2)
			want := seen{Unix: true, Proxied: tt.proxied, HTTPS: tt.wantHTTPS, Direct: true}
			if tt.wantAddr != "" {
				want.Addr, want.Text = tt.wantAddr, tt.wantAddr
			}
			for i, s := range got {
				s.Remote = ""
				if s != want {
					t.Errorf("request %d: server saw %+v\nwant %+v", i+1, s, want)
				}
			}
		})
	}
}

// checkRefusalLogged wants exactly one warning naming the bind, the peer and
// the reason.
func checkRefusalLogged(t *testing.T, logs *logBuffer, bind, peer, reason string) {
	t.Helper()
	lines := logs.waitLines(1)
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want 1: %q", len(lines), lines)
	}
	want := fmt.Sprintf("%s: refused a connection from %s: %s", bind, peer, reason)
	if !strings.Contains(lines[0], "level=warning") || !strings.Contains(lines[0], want) {
		t.Errorf("logged %q\nwant a warning with %q", lines[0], want)
	}
}

func TestProxyHTTPSBind(t *testing.T) {
	l := openOne(t, procfile.Bind{Address: "127.0.0.1:0", Scheme: "https"}, Options{ProxyProtocol: ProxyAuto})
	serveHTTP(t, l)
	_, got := get(t, l, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), 1)
	if !got[0].HTTPS || got[0].Addr != "192.0.2.1:1" {
		t.Errorf("server saw %+v", got[0])
	}
}

func TestProxyHeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name   string
		mode   string
		prefix []byte
		reason string
	}{
		// on a UNIX bind: a TCP bind hands over a silent client only after
		// DeferAccept, and then the wait for its header starts
		{"required, silent client", ProxyRequired, nil, "no PROXY header within 300ms (proxy_protocol = required)"},
		{"v2 header cut short", ProxyAuto, v2(proxyCmd, tcp4, inet4("192.0.2.1", "192.0.2.2", 1, 2))[:20], "malformed PROXY header"},
		{"v2 signature only", ProxyRequired, proxyproto.SIGV2, "malformed PROXY header"},
		{"v1 cut short", ProxyAuto, []byte("PROXY TCP4 192.0.2.1"), "malformed PROXY header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logs := testLogger()
			bind := "127.0.0.1:0"
			if tt.prefix == nil {
				bind = "unix:" + filepath.Join(t.TempDir(), "s")
			}
			l := openOne(t, procfile.Bind{Address: bind}, Options{ProxyProtocol: tt.mode, Log: log, HeaderTimeout: timeout})
			serveHTTP(t, l)
			c := dial(t, l)
			start := time.Now()
			got := exchangeOn(t, c, tt.prefix, false, 5*time.Second)
			if elapsed := time.Since(start); elapsed > timeout+refuseLinger+time.Second {
				t.Errorf("answered after %s", elapsed)
			}
			if got != badRequest {
				t.Errorf("client got %q", got)
			}
			peer := c.LocalAddr().String()
			if tt.prefix == nil {
				peer = fmt.Sprintf("a UNIX-socket peer (pid %d, uid %d)", os.Getpid(), os.Getuid())
			}
			checkRefusalLogged(t, logs, bind, peer, tt.reason)
		})
	}
}

func TestProxyRequiredQuietClose(t *testing.T) {
	// A TCP health check connects and closes: no 400, no warning.
	for _, mode := range []string{ProxyRequired, ProxyAuto} {
		log, logs := testLogger()
		l := openOne(t, procfile.Bind{Address: "127.0.0.1:0"}, Options{ProxyProtocol: mode, Log: log})
		serveHTTP(t, l)
		if got := exchange(t, l, nil, true, 5*time.Second); got != "" {
			t.Errorf("%s: client got %q", mode, got)
		}
		time.Sleep(50 * time.Millisecond)
		if lines := logs.lines(); len(lines) != 0 {
			t.Errorf("%s: logged %q", mode, lines)
		}
	}
}

func TestProxyOffPassesHeaderThrough(t *testing.T) {
	// With the PROXY protocol off, a header is just a bad HTTP request line.
	l := openOne(t, procfile.Bind{Address: "127.0.0.1:0"}, Options{})
	serveHTTP(t, l)
	got := exchange(t, l, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"+request), false, 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request") {
		t.Errorf("client got %q", got)
	}
}

func TestInfoOnOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if ci := Info(a); ci.Addr.IsValid() || ci.Unix {
		t.Errorf("pipe: %+v", ci)
	}
	tcp, c := tcpPair(t)
	if ci := Info(c); ci.Addr.String() != tcp.Addr().String() || ci.Peer != ci.Addr {
		t.Errorf("tcp: %+v", ci)
	}
}

func TestAcceptNotBlockedBySilentClients(t *testing.T) {
	// Headers are read in each connection's goroutine: clients that connect
	// and say nothing hold only their own connection, never Accept.
	const timeout = 3 * time.Second
	for _, mode := range []string{ProxyAuto, ProxyRequired} {
		l := openOne(t, procfile.Bind{Address: "127.0.0.1:0"}, Options{ProxyProtocol: mode, HeaderTimeout: timeout})
		serveHTTP(t, l)
		for range 20 {
			dial(t, l)
		}
		start := time.Now()
		_, got := get(t, l, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), 1)
		if elapsed := time.Since(start); elapsed > timeout/2 {
			t.Errorf("%s: served after %s, behind silent clients", mode, elapsed)
		}
		if got[0].Addr != "192.0.2.1:1" {
			t.Errorf("%s: server saw %+v", mode, got[0])
		}
	}
}
