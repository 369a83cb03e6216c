package testprog

import (
	"bufio"
	"net/http"
	"strings"
)

// ReadRequest parses raw as net/http's server does, so RequestURI, Host
// and the header map look as they do in a handler; it fails f when
// net/http refuses raw.
func ReadRequest(f Fataler, raw string) *http.Request {
	if h, ok := f.(interface{ Helper() }); ok {
		h.Helper()
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		f.Fatalf("net/http refuses %q itself: %v", raw, err)
	}
	return r
}
