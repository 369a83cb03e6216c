package upstream

import (
	"net/http"
	"strconv"

	"gsup/internal/fieldbytes"
	"gsup/serve/head"
)

var connUpgrade = []string{"Upgrade"}

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

// upgradeOf returns the protocol a request asks to switch to, or "",
// given its Connection values and its head's names filter (which may be
// nil).
func upgradeOf(h http.Header, conn []string, names *head.Names) string {
	if len(conn) == 0 || !listedIn(conn, "Upgrade") {
		return ""
	}
	return names.Get(h, head.Asked.Upgrade)
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

// endToEnd reports whether the client's fields named k go to the app
// as the client sent them, Options.Forward aside: not the hop-by-hop
// ones, nor those the proxy sets itself.
func (x *exchange) endToEnd(k string) bool {
	if hopByHop(k) || k == "Expect" || k == "Content-Length" || k == "Host" {
		return false
	}
	return len(x.conn) == 0 || !listedIn(x.conn, k)
}

// Field gives Options.Forward the request's end-to-end fields. Most
// names asked for are absent: the map is looked in first.
func (x *exchange) Field(n head.Name) []string {
	vs := x.names.Lookup(x.r.Header, n)
	if vs == nil || !x.endToEnd(n.S) {
		return nil
	}
	return vs
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
	b = appendValue(b, host, x.names.InHead(host))
	b = append(b, "\r\n"...)
	for k, vv := range r.Header {
		if !x.endToEnd(k) || !x.fwd.Keep(k) {
			continue
		}
		for _, v := range vv {
			b = appendField(b, k, v, x.names.InHead(v))
		}
	}
	if te := x.names.Lookup(r.Header, head.Asked.Te); len(te) > 0 && listedIn(te, "trailers") {
		b = append(b, "Te: trailers\r\n"...)
	}
	if x.upType != "" {
		b = append(b, "Connection: Upgrade\r\n"...)
		b = appendField(b, "Upgrade", x.upType, false)
	}
	if x.expect {
		b = append(b, "Expect: 100-continue\r\n"...)
	}
	for _, f := range x.fwd.Fields() {
		switch f.Name {
		case "Host", "Content-Length", "Transfer-Encoding":
			continue
		}
		b = appendField(b, f.Name, f.Value, false)
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

// appendField appends the field line "k: v" (appendValue's v).
func appendField(b []byte, k, v string, checked bool) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = appendValue(b, v, checked)
	return append(b, "\r\n"...)
}

// appendValue appends v with CR and LF replaced by spaces, as
// http.Header.Write does: values from the Forward hook are not checked
// elsewhere. A value checked already (one that lies in the head the
// connection layer checked, Names.InHead) goes as it is.
func appendValue(b []byte, v string, checked bool) []byte {
	if checked || !fieldbytes.Controls(v) {
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
