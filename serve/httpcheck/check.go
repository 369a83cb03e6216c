package httpcheck

import (
	"net/http"
	"strings"

	"gsup/serve/head"
)

// Check validates a request as net/http parsed it, for what net/http lets
// through. It returns 0 and "" for a request the front may forward, else
// the status to answer (400, 413, 414, 431 or 505) and a short reason safe
// to show to the client. It does not modify r and does not allocate.
//
// What Check refuses (the RFC sections are in the code):
//   - a method with lower-case letters, or shorter than 3 or longer than 20
//     bytes (Gunicorn's rule without its compat switches);
//   - a version other than HTTP/1.x (the "PRI * HTTP/2.0" preface aside);
//   - a request-target in the wrong form for the method: "*" other than
//     with OPTIONS, authority-form other than with CONNECT, CONNECT without
//     authority-form, absolute-form with a scheme other than http or https,
//     an empty host, or user information;
//   - a Host with user information; more than one Content-Type;
//   - X-Forwarded-Proto, X-Forwarded-Protocol and X-Forwarded-Ssl that
//     contradict each other (Gunicorn's InvalidSchemeHeaders);
//   - a request over the limits (414, 431) or a Content-Length over
//     l.Body (413). These are approximate here, because a parser has
//     already trimmed white space and merged lines: Stream checks them
//     exactly on the raw bytes.
//
// Behind a Stream, the raw checks (line endings, folding, control bytes,
// framing) have already run; without one, Check alone is roughly what the
// corpus test reports for "net/http + Check".
func Check(r *http.Request, l Limits) (status int, reason string) {
	n := l.normalize()

	// The preface of HTTP/2 with prior knowledge is not an HTTP/1 request
	// to judge (net/http hands it over only when asked to).
	if r.ProtoMajor == 2 && r.Method == "PRI" && r.RequestURI == "*" {
		return 0, ""
	}
	// HTTP/2 comes only from the HTTP/2 connection layer, over TLS.
	if r.ProtoMajor != 1 && (r.ProtoMajor != 2 || r.TLS == nil) {
		return http.StatusHTTPVersionNotSupported, "unsupported HTTP version"
	}

	// RFC 9110 section 9.1: a method is a case-sensitive token; every
	// registered method is upper case. Gunicorn refuses lower-case methods
	// and methods outside 3..20 bytes unless permit_unconventional_http_method
	// is set; the app behind gsup may be Gunicorn, so gsup answers for it.
	if len(r.Method) < 3 || len(r.Method) > 20 {
		return http.StatusBadRequest, "invalid method"
	}
	for i := 0; i < len(r.Method); i++ {
		if c := r.Method[i]; 'a' <= c && c <= 'z' || !isTchar(c) {
			return http.StatusBadRequest, "invalid method"
		}
	}

	if status, reason := checkTarget(r); status != 0 {
		return status, reason
	}

	// RFC 9110 section 7.2: Host is uri-host [":" port]; user information
	// has no place in it (and section 4.2.4 treats it as an error).
	if strings.IndexByte(r.Host, '@') >= 0 {
		return http.StatusBadRequest, "invalid Host"
	}
	// RFC 9110 section 5.3: Content-Type is a singleton field; two lines of
	// it leave the representation's type ambiguous (Gunicorn 26.1 refuses).
	names := head.NamesOf(r)
	if len(names.Lookup(r.Header, head.Asked.ContentType)) > 1 {
		return http.StatusBadRequest, "more than one Content-Type"
	}
	if contradictoryScheme(r.Header, names) {
		return http.StatusBadRequest, "contradictory scheme headers"
	}

	// What a Stream read, it counted exactly on the raw bytes.
	if !names.Covers(head.Limits{RequestLine: n.RequestLine, Fields: n.Fields, FieldSize: n.FieldSize}) {
		if status, reason := checkSizes(r, n); status != 0 {
			return status, reason
		}
	}
	if n.Body > 0 && r.ContentLength > n.Body {
		return http.StatusRequestEntityTooLarge, "request body too large"
	}
	return 0, ""
}

// checkTarget checks the request-target's form against the method
// (RFC 9112 section 3.2).
func checkTarget(r *http.Request) (int, string) {
	t := r.RequestURI
	switch {
	case t == "":
		return http.StatusBadRequest, "empty request target"
	case t == "*":
		// Section 3.2.4: asterisk-form is only for a server-wide OPTIONS.
		if r.Method != http.MethodOptions {
			return http.StatusBadRequest, `"*" target without OPTIONS`
		}
		return 0, ""
	case r.Method == http.MethodConnect:
		// Section 3.2.3: CONNECT takes authority-form (host:port) only.
		if t[0] == '/' || strings.Contains(t, "://") || r.URL == nil || r.URL.Host == "" || r.URL.Port() == "" {
			return http.StatusBadRequest, "CONNECT needs host:port"
		}
		return 0, ""
	case t[0] == '/':
		return 0, "" // origin-form
	}
	// Anything else must be absolute-form (section 3.2.2), which a server
	// must accept; authority-form with another method is invalid.
	scheme, rest, ok := strings.Cut(t, "://")
	if !ok {
		return http.StatusBadRequest, "invalid request target"
	}
	if !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return http.StatusBadRequest, "absolute target with a scheme other than http(s)"
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	// RFC 9110 section 4.2.4: a recipient SHOULD treat user information in
	// an http(s) URI as an error (it disguises the authority); section
	// 4.2.1: an http URI with an empty host MUST be rejected as invalid.
	if strings.IndexByte(authority, '@') >= 0 {
		return http.StatusBadRequest, "user information in the request target"
	}
	if authority == "" || authority[0] == ':' {
		return http.StatusBadRequest, "empty host in the request target"
	}
	return 0, ""
}

// checkSizes applies the limits to the parsed request.
func checkSizes(r *http.Request, n Limits) (int, string) {
	if len(r.Method)+1+len(r.RequestURI)+1+len(r.Proto) > n.RequestLine {
		return http.StatusRequestURITooLong, "request line too long"
	}
	fields := 0
	if r.Host != "" {
		fields++
		if len("Host:")+len(r.Host)+2 > n.FieldSize {
			return http.StatusRequestHeaderFieldsTooLarge, "header field too long"
		}
	}
	if len(r.TransferEncoding) > 0 {
		fields++ // net/http moved it out of the map
	}
	for name, vv := range r.Header {
		fields += len(vv)
		for _, v := range vv {
			// name ":" value CRLF: a lower bound of the line received,
			// whose white space net/http trimmed.
			if len(name)+1+len(v)+2 > n.FieldSize {
				return http.StatusRequestHeaderFieldsTooLarge, "header field too long"
			}
		}
	}
	if fields > n.Fields {
		return http.StatusRequestHeaderFieldsTooLarge, "too many header fields"
	}
	return 0, ""
}

// contradictoryScheme reports whether the scheme headers Gunicorn trusts by
// default (secure_scheme_headers) say different things: one says https and
// another says http. A list value (from a chain of proxies) is judged by
// its last element, the one the nearest proxy added.
func contradictoryScheme(h http.Header, names *head.Names) bool {
	if len(h) == 0 {
		return false
	}
	https, plain := false, false
	for _, s := range schemeFields {
		for _, v := range names.Lookup(h, s.name) {
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if strings.EqualFold(strings.TrimSpace(v), s.secure) {
				https = true
			} else {
				plain = true
			}
		}
	}
	return https && plain
}

// schemeFields are Gunicorn's secure_scheme_headers: each field's name
// and the value that says https.
var schemeFields = [...]struct {
	name   head.Name
	secure string
}{
	{head.NameOf("X-Forwarded-Proto"), "https"},
	{head.NameOf("X-Forwarded-Protocol"), "ssl"},
	{head.NameOf("X-Forwarded-Ssl"), "on"},
}

// DropUnderscoreFields deletes every header field whose name contains an
// underscore and returns how many names it deleted.
//
// CGI-style gateways (WSGI, Rack, PHP) map both X-Forwarded-For and
// X_Forwarded_For to HTTP_X_FORWARDED_FOR, so a client could smuggle a
// value past a proxy that only checks the dashed spelling (Gunicorn issue
// #2799). Gunicorn (header_map = drop, its default) and nginx
// (underscores_in_headers off) drop such fields silently; gsup does the
// same, before its forwarding headers are set. The fields still count
// towards the limits, which run first.
func DropUnderscoreFields(h http.Header) int {
	n := 0
	for name := range h {
		if strings.IndexByte(name, '_') >= 0 {
			delete(h, name)
			n++
		}
	}
	return n
}
