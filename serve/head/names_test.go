package head

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// asked are the names the front looks up in a request's header map:
// framing (h1), the checks (httpcheck), the proxy's, the forwarding
// plan's and the default access log format's.
var asked = []string{
	"Transfer-Encoding", "Trailer", "Content-Length", "Expect", "Connection", "Content-Type",
	"X-Forwarded-Proto", "X-Forwarded-Protocol", "X-Forwarded-Ssl", "Upgrade", "Te",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "Forwarded", "X-Real-Ip",
	"Front-End-Https", "Authorization", "Referer", "User-Agent",
}

// common are names browsers and tools send most often.
var common = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Cookie", "Origin",
	"Pragma", "Priority", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
	"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Upgrade-Insecure-Requests",
	"If-None-Match", "If-Modified-Since", "Dnt", "X-Requested-With",
}

// Lookup answers as the map does, whatever was added: with the filter
// sealed for the map, after a field was deleted from it (the filter is
// then off), for another map (a clone), and with no filter at all.
func TestLookupIsTheMaps(t *testing.T) {
	all := append(append([]string{}, asked...), common...)
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 2000 {
		h := http.Header{}
		var s Names
		for _, name := range all {
			if rng.IntN(4) == 0 {
				h[name] = []string{"v"}
				s.Note(name)
			}
		}
		s.Seal(h)
		check := func(what string, s *Names, h http.Header) {
			t.Helper()
			for _, name := range all {
				if got, want := s.Lookup(h, NameOf(name)), h[name]; len(got) != len(want) {
					t.Fatalf("round %d, %s: Lookup(%q) = %q, the map has %q", round, what, name, got, want)
				}
			}
		}
		check("sealed", &s, h)
		check("no filter", nil, h)
		clone := h.Clone()
		clone["X-Forwarded-For"] = []string{"10.0.0.1"}
		check("a clone with a field added", &s, clone)
		for name := range h {
			delete(h, name)
			h["X-Real-Ip"] = []string{"10.0.0.2"} // a name deleted, another added: the length may stay
			if len(h) == s.n {
				delete(h, "X-Real-Ip") // what the filter cannot see (see Names); gsup adds no request field
			}
			break
		}
		check("after a delete", &s, h)
	}
}

// The filter spares the searches it is for: no two of the names the
// front asks for share a bit, and none shares one with a name clients
// send most often, so that a request with those fields is answered
// without a search for any name it lacks.
func TestAskedNamesHaveBitsOfTheirOwn(t *testing.T) {
	owner := map[[2]uint64]string{}
	for _, name := range append(append([]string{}, asked...), common...) {
		w, b := nameBit(name)
		var k [2]uint64
		k[w] = b
		if o, ok := owner[k]; ok {
			t.Errorf("%q and %q share the filter's bit", o, name)
		}
		owner[k] = name
	}
}

// Covers says a head was checked against limits only when the connection
// layer checked it against those or stricter ones.
func TestCovers(t *testing.T) {
	l := Limits{RequestLine: 4094, Fields: 100, FieldSize: 8190}
	for _, tt := range []struct {
		s    *Names
		want bool
	}{
		{nil, false},
		{&Names{}, false},
		{&Names{Checked: l}, true},
		{&Names{Checked: Limits{RequestLine: 100, Fields: 10, FieldSize: 100}}, true},
		{&Names{Checked: Limits{RequestLine: 8190, Fields: 100, FieldSize: 8190}}, false},
		{&Names{Checked: Limits{RequestLine: 4094, Fields: 101, FieldSize: 8190}}, false},
		{&Names{Checked: Limits{RequestLine: 4094, Fields: 100, FieldSize: 8191}}, false},
	} {
		if got := tt.s.Covers(l); got != tt.want {
			t.Errorf("%+v covers %+v: %v, want %v", tt.s, l, got, tt.want)
		}
	}
}

// InHead holds for every part of the head and nothing else: not a copy,
// not the bytes right after it, not one that reaches past its end.
func TestInHead(t *testing.T) {
	mem := "GET / HTTP/1.1\r\nX-A: value\r\n\r\nafter"
	raw := mem[:len(mem)-len("after")]
	s := &Names{Head: raw}
	for i := 0; i < len(raw); i++ {
		for j := i + 1; j <= len(raw); j++ {
			if !s.InHead(raw[i:j]) {
				t.Fatalf("raw[%d:%d] not in the head", i, j)
			}
		}
	}
	for _, v := range []string{
		strings.Clone(raw[16:24]), mem[len(raw):], mem[len(raw)-1 : len(raw)+1], mem[len(raw)-2:], "", "value",
	} {
		if s.InHead(v) {
			t.Errorf("%q said to be in the head", v)
		}
	}
	var none *Names
	if none.InHead(raw) || (&Names{}).InHead(raw) {
		t.Error("a head said to hold a value with no head given")
	}
}
