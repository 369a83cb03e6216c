package h1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// A kept connection takes the keys of names sent as in its last head
// from that head: whatever the next heads send (the same names, others
// at the same places, the same ones cased otherwise, fewer, more, a name
// repeated), each request's header is the one net/http's parser makes
// of its head, and a name a head no longer sends is not in its map.
func TestKeptConnectionHeadsWithOtherNames(t *testing.T) {
	heads := [][]string{
		{"Accept: a", "User-Agent: b", "X-Foo: c"},
		{"Accept: a2", "User-Agent: b2", "X-Foo: c2"},
		{"accept: a3", "USER-AGENT: b3", "x-foo: c3"},
		{"X-Foo: c4", "Accept: a4"},
		{"X-Bar: d5", "User-Agent: b5", "X-Foo: c5", "X-Foo: c5b", "Cookie: e5", "Host: h5", "x-bar: d5b"},
		{"Accept: a6"},
		{},
		{"Accept: a8", "User-Agent: b8", "X-Foo: c8"},
	}
	for i := range 40 {
		heads[4] = append(heads[4], fmt.Sprintf("X-N%d: %d", i, i)) // beyond maxSeen
	}
	heads = append(heads, heads[4], heads[0])
	got := make(chan http.Header, 1)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		io.WriteString(w, "ok")
	})})
	c, br := dial(t, addr)
	for n, fields := range heads {
		head := "GET /" + fmt.Sprint(n) + " HTTP/1.1\r\n"
		if !strings.Contains(strings.Join(fields, "\n"), "Host:") {
			head += "Host: x\r\n"
		}
		for _, f := range fields {
			head += f + "\r\n"
		}
		head += "\r\n"
		io.WriteString(c, head)
		if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("head %d: %s", n, resp.Status)
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatal(err)
		}
		if h := <-got; !reflect.DeepEqual(h, want.Header) {
			t.Errorf("head %d: the handler saw %v, want %v", n, h, want.Header)
		}
	}
}

// A kept connection's Host is checked for each request: the same valid
// one again is taken, another one that is not valid is refused.
func TestKeptConnectionHostCheckedEachTime(t *testing.T) {
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host)
	})})
	c, br := dial(t, addr)
	for i, host := range []string{"a.example:8080", "a.example:8080", `a"example`} {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, body := readResponse(t, br, "GET")
		if want := 200; i == 2 {
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("Host %q after a valid one: %s %q, want 400", host, resp.Status, body)
			}
		} else if resp.StatusCode != want || body != host {
			t.Errorf("Host %q: %s %q, want %d %q", host, resp.Status, body, want, host)
		}
	}
}
