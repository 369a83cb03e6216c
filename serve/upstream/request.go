package upstream

import (
	"net/http"
	"strconv"
	"strings"
)

var (
	teTrailers  = []string{"trailers"}
	connUpgrade = []string{"Upgrade"}
	expect100   = []string{"100-continue"}
)

// hopByHop reports whether the field named k (canonical) is hop-by-hop
// whatever the Connection field says; the list is ReverseProxy's.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// listedIn reports whether one of the Connection field values conn names k.
func listedIn(conn []string, k string) bool {
	for _, v := range conn {
		if listsToken(v, k) {
			return true
		}
	}
	return false
}

// upgradeType returns the protocol a request asks to switch to, or "".
func upgradeType(h http.Header) string {
	conn := h["Connection"]
	if len(conn) == 0 || !listedIn(conn, "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// idempotent reports whether a request with this method may be sent again
// after a failure that may have reached the app (RFC 9110's idempotent
// methods, which nginx's proxy_next_upstream also retries).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// buildHeader fills x.out with the end-to-end request fields, then lets the
// Rewrite hook set the forwarding ones. Value slices are shared with
// r.Header.
func (x *exchange) buildHeader(upType string, forwardExpect bool) {
	r, out := x.r, x.out
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
		out["Te"] = teTrailers
	}
	if upType != "" {
		out["Connection"] = connUpgrade
		out["Upgrade"] = []string{upType}
	}
	if forwardExpect {
		out["Expect"] = expect100
	}
	if x.p.rewrite != nil {
		if scheme := x.p.rewrite(out, r); scheme != "" {
			x.rec.Scheme = scheme
		}
	}
}

// requestURI is the request target as the client sent it; only the
// absolute form (for proxies) is cut down to path and query.
func requestURI(r *http.Request) string {
	if u := r.RequestURI; u != "" && (u[0] == '/' || u == "*") {
		return u
	}
	return r.URL.RequestURI()
}

// appendHead appends the request head for the upstream to b.
func (x *exchange) appendHead(b []byte, host string) []byte {
	r := x.r
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, x.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = appendValue(b, host)
	b = append(b, "\r\n"...)
	for k, vv := range x.out {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding":
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	switch {
	case x.stream != nil && x.streamLen < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case x.stream != nil:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, x.streamLen, 10)
		b = append(b, "\r\n"...)
	case len(x.body) > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(x.body)), 10)
		b = append(b, "\r\n"...)
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		// Many servers want a length for these (net/http's Transport rule).
		b = append(b, "Content-Length: 0\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendValue appends v with CR and LF replaced by spaces, as
// http.Header.Write does: values from the Rewrite hook are not checked
// elsewhere.
func appendValue(b []byte, v string) []byte {
	// Two IndexByte (vector code) cost less than ContainsAny, which
	// builds a byte set on every call.
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}
