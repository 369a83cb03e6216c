package httpcheck

import (
	"strings"
	"testing"

	"gsup/internal/testprog"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		lim    Limits // zero: DefaultLimits
		raw    string
		status int
		reason string
	}{
		{name: "simple", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "HTTP/1.0 without Host", raw: "GET / HTTP/1.0\r\n\r\n"},
		{name: "unusual upper-case method", raw: "-BLARGH /foo HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "lower-case method", raw: "-blargh /foo HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: "method"},
		{name: "mixed-case method", raw: "Get / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: "method"},
		{name: "short method", raw: "GE / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: "method"},
		{name: "long method", raw: strings.Repeat("A", 21) + " / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: "method"},
		{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "GET *", raw: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: "*"},
		{name: "authority-form GET", raw: "GET example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", status: 400, reason: "target"},
		{name: "CONNECT", raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
		{name: "CONNECT IPv6", raw: "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"},
		{name: "CONNECT without port", raw: "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 400, reason: "CONNECT"},
		{name: "CONNECT origin-form", raw: "CONNECT /rpc HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: "CONNECT"},
		{name: "absolute-form", raw: "GET http://example.com/foo?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{name: "absolute-form https", raw: "GET HTTPS://example.com/foo HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{name: "absolute-form IPv6", raw: "GET http://[::1]:8080/foo HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},
		{name: "absolute-form userinfo", raw: "GET http://user:pass@example.com:8080/foo HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", status: 400, reason: "user information"},
		{name: "absolute-form other scheme", raw: "GET ftp://example.com/foo HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 400, reason: "scheme"},
		{name: "absolute-form empty host", raw: "GET http:///foo HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 400, reason: "empty host"},
		{name: "Host with userinfo", raw: "GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", status: 400, reason: "Host"},
		{name: "two Content-Type", raw: "GET / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n", status: 400, reason: "Content-Type"},
		{name: "scheme headers agree", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n\r\n"},
		{name: "scheme headers contradict", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n", status: 400, reason: "scheme"},
		{name: "scheme headers contradict (protocol)", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Protocol: ssl\r\nX-Forwarded-Proto: http\r\n\r\n", status: 400, reason: "scheme"},
		{name: "scheme list judged by its last element", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http, https\r\nX-Forwarded-Ssl: on\r\n\r\n"},
		{name: "request line too long", lim: Limits{RequestLine: 20}, raw: "GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", status: 414},
		{name: "too many fields", lim: Limits{Fields: 2}, raw: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", status: 431, reason: "too many"},
		{name: "field too long", lim: Limits{FieldSize: 10}, raw: "GET / HTTP/1.1\r\nHost: a\r\nA: 1234567\r\n\r\n", status: 431, reason: "too long"},
		{name: "Host too long", lim: Limits{FieldSize: 10}, raw: "GET / HTTP/1.1\r\nHost: abcdefgh\r\n\r\n", status: 431, reason: "too long"},
		{name: "body over the limit", lim: Limits{Body: 4}, raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", status: 413},
		{name: "body at the limit", lim: Limits{Body: 5}, raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"},
	}
	for _, tt := range tests {
		lim := tt.lim
		if lim == (Limits{}) {
			lim = DefaultLimits
		}
		r := testprog.ReadRequest(t, tt.raw)
		status, reason := Check(r, lim)
		if status != tt.status || !strings.Contains(reason, tt.reason) || (status == 0) != (reason == "") {
			t.Errorf("%s: Check = %d %q, want %d %q", tt.name, status, reason, tt.status, tt.reason)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	r := testprog.ReadRequest(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	r.ProtoMajor, r.ProtoMinor, r.Proto = 2, 0, "HTTP/2.0"
	if status, _ := Check(r, DefaultLimits); status != 505 {
		t.Errorf("HTTP/2.0 GET: %d, want 505", status)
	}
	pri := testprog.ReadRequest(t, "PRI * HTTP/2.0\r\n\r\n")
	if status, reason := Check(pri, DefaultLimits); status != 0 {
		t.Errorf("HTTP/2 preface: %d %q, want it left alone", status, reason)
	}
}

func TestCheckAllocs(t *testing.T) {
	r := testprog.ReadRequest(t, "GET /a?b=c HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nAccept: */*\r\nX-Forwarded-Proto: https\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { Check(r, DefaultLimits) }); n != 0 {
		t.Errorf("Check allocates %v times per request", n)
	}
}

func TestDropUnderscoreFields(t *testing.T) {
	r := testprog.ReadRequest(t, "GET / HTTP/1.0\r\nTransfer_Encoding: tricked\r\nContent-Length: 0\r\nContent_Length: -1E23\r\nX_Forwarded_For: 1.2.3.4\r\nX-Ok: 1\r\n\r\n")
	if n := DropUnderscoreFields(r.Header); n != 3 {
		t.Errorf("dropped %d fields, want 3", n)
	}
	for name := range r.Header {
		if strings.Contains(name, "_") {
			t.Errorf("%s kept", name)
		}
	}
	if r.Header.Get("X-Ok") != "1" || r.Header.Get("Content-Length") != "0" {
		t.Errorf("other fields lost: %v", r.Header)
	}
}

func BenchmarkCheck(b *testing.B) {
	r := testprog.ReadRequest(b, "GET /api/items?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n"+
		"Accept-Language: en-US\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\nCookie: session=0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		Check(r, DefaultLimits)
	}
}
