package upstream

import (
	"bufio"
	"bytes"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"gsup/serve/forward"
	"gsup/serve/httpcheck"
)

// referenceFields is the request's fields for the app as the proxy made
// them before it wrote heads from a forward.Plan: a copy of the
// end-to-end fields, the proxy's own, then forward.Rewrite on the copy.
func referenceFields(r *http.Request, upType string, ci forward.ClientInfo, trusted bool) (_ http.Header, scheme string) {
	out := http.Header{}
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if hopByHop(k) || k == "Expect" || k == "Content-Length" || k == "Host" {
			continue
		}
		if len(conn) > 0 && listedIn(conn, k) {
			continue
		}
		out[k] = vv
	}
	if te := r.Header["Te"]; len(te) > 0 && listedIn(te, "trailers") {
		out["Te"] = []string{"trailers"}
	}
	if upType != "" {
		out["Connection"] = []string{"Upgrade"}
		out["Upgrade"] = []string{upType}
	}
	scheme = forward.Rewrite(out, r.Host, ci, trusted)
	delete(out, "Content-Length")
	delete(out, "Transfer-Encoding")
	return out, scheme
}

// FuzzRequestHead compares the head the proxy writes for the app with
// referenceFields: the same fields with the same values, in the same
// order within a name, from trusted and untrusted clients, over TCP and
// over a UNIX socket without an address.
func FuzzRequestHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nAccept: */*\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\nX-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=1.2.3.4\r\nX-Real-Ip: 1.1.1.1\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-Ssl: on\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Forwarded-Proto, X-Secret\r\nX-Secret: s\r\nX-Forwarded-Proto: https\r\nKeep-Alive: 5\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-Websocket-Key: k\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nTe: trailers, deflate\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: \r\nX-Forwarded-Host: \r\nX-Forwarded-Proto: gopher\r\nFront-End-Https: on\r\n\r\n",
	} {
		f.Add(seed, true, false, byte(1))
		f.Add(seed, false, true, byte(0))
	}
	f.Fuzz(func(t *testing.T, raw string, trusted, https bool, client byte) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		if status, _ := httpcheck.Check(r, httpcheck.Limits{}); status != 0 {
			return // the handling layer refuses it before the proxy
		}
		upType := upgradeOf(r.Header, r.Header["Connection"], nil)
		if !isPrint(upType) {
			return // refused with 400 before any head is written
		}
		ci := forward.ClientInfo{HTTPS: https}
		if client != 0 {
			ci.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, client}), 4321)
			ci.Peer = ci.Addr
		} else {
			ci.Unix = true
		}
		want, scheme := referenceFields(r, upType, ci, trusted)

		p := &Proxy{forward: func(p *forward.Plan, in forward.Source, r *http.Request) {
			p.Decide(in, r.Host, ci, trusted)
		}}
		x := &exchange{p: p, r: r, conn: r.Header["Connection"], uri: requestURI(r), upType: upType}
		p.forward(&x.fwd, x, r)
		head := x.appendHead(nil, r.Host)
		out, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(head))))
		if err != nil {
			t.Fatalf("the head written for the app does not parse: %v\n%s", err, head)
		}
		got := out.Header
		delete(got, "Content-Length")
		// Whitespace around a value is not part of it (RFC 9110 5.5) and
		// the parse of the written head drops it: a folded line can leave
		// some at the end of a value net/http's parser gave the request.
		for k, vs := range want {
			trimmed := make([]string, len(vs))
			for i, v := range vs {
				trimmed[i] = strings.Trim(v, " \t")
			}
			want[k] = trimmed
		}
		if out.Host != r.Host {
			t.Errorf("Host %q, want %q", out.Host, r.Host)
		}
		if x.fwd.Scheme != scheme {
			t.Errorf("scheme %q, want %q", x.fwd.Scheme, scheme)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("trusted=%v https=%v client=%d\nrequest:\n%s\ngot  %q\nwant %q", trusted, https, client, raw, got, want)
		}
	})
}

// TestValidValue checks the eight-at-a-time check of a field value
// against the check of each byte: every byte value, at every place in
// values of 1 to 17 bytes, among printable bytes and among obs-text.
func TestValidValue(t *testing.T) {
	for _, fill := range []byte{'a', 0x80, 0xff, '\t'} {
		for n := 1; n <= 17; n++ {
			for at := 0; at < n; at++ {
				for c := 0; c < 256; c++ {
					v := bytes.Repeat([]byte{fill}, n)
					v[at] = byte(c)
					want := true
					for _, b := range v {
						want = want && validValueByte(b)
					}
					if got := validValue(v); got != want {
						t.Fatalf("validValue(%q) = %v, want %v", v, got, want)
					}
				}
			}
		}
	}
}

// TestCommonNames checks that the names taken without a look at each
// byte are canonical tokens, and that other spellings of them are not
// taken so (they go through the check and canonicalisation).
func TestCommonNames(t *testing.T) {
	for _, n := range []string{"Content-Length", "Content-Type", "Date", "Server", "Connection", "Transfer-Encoding",
		"Cache-Control", "Set-Cookie", "Location", "Vary", "Etag", "Last-Modified", "Expires",
		"Content-Encoding", "Keep-Alive", "X-Frame-Options", "X-Content-Type-Options",
		"Content-Language", "Content-Disposition", "Access-Control-Allow-Origin",
		"Strict-Transport-Security", "Referrer-Policy", "Content-Security-Policy",
		"Accept-Ranges", "Age", "Pragma", "Link", "Allow", "Upgrade", "Retry-After",
		"Www-Authenticate", "X-Request-Id", "Trailer"} {
		if !commonName([]byte(n)) {
			t.Errorf("%q is not taken as common", n)
		}
		if http.CanonicalHeaderKey(n) != n || !httpguts.ValidHeaderFieldName(n) {
			t.Errorf("%q is not a canonical token", n)
		}
		for _, other := range []string{strings.ToLower(n), strings.ToUpper(n), n + " ", " " + n} {
			if other != n && commonName([]byte(other)) {
				t.Errorf("%q is taken as common", other)
			}
		}
	}
}

// TestIsEventStream checks the Content-Type values that make an answer a
// stream of server-sent events, and some that do not.
func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"Text/Event-Stream":                true,
		"text/event-stream; charset=utf-8": true,
		"text/event-stream ;charset=utf-8": true,
		"TEXT/EVENT-STREAM":                true,
		"text/plain; charset=utf-8":        false,
		"text/html":                        false,
		"text/event-streams":               false,
		"application/json":                 false,
		"text/events":                      false,
		"":                                 false,
		"text/event-stream-x":              false,
		"image/event-stream":               false,
	} {
		if got := isEventStream(ct); got != want {
			t.Errorf("isEventStream(%q) = %v, want %v", ct, got, want)
		}
	}
}
