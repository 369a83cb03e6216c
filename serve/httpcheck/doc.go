// Package httpcheck refuses bad HTTP/1 requests before they reach an app:
// what a lenient parser lets through but Gunicorn (the app server gsup
// replaces) or the RFCs refuse, and what request smuggling needs. It does
// no I/O of its own.
//
// # Two layers
//
// Stream checks the raw bytes of a connection as a connection layer reads
// them (gsup's HTTP/1.1 layer, serve/h1): line endings, obsolete line
// folding, white space before a colon, control bytes, the request line
// and field limits of Gunicorn (414 and 431, with Gunicorn's arithmetic),
// and the framing (Content-Length and chunked, including every chunk-size
// line, extension and trailer) on every request of a keep-alive
// connection. Check judges the parsed request: method, version, the
// request-target's form, Host, duplicate Content-Type, contradictory
// scheme headers and the body limit; it also runs behind the HTTP/2
// layer. DropUnderscoreFields removes the header fields that CGI-style
// apps would confuse with their dashed spelling.
//
// In a handler, first:
//
//	if status, reason := httpcheck.Check(r, lim); status != 0 {
//		w.Header().Set("Connection", "close")
//		http.Error(w, reason, status)
//		return
//	}
//	httpcheck.DropUnderscoreFields(r.Header)
//	// and when reading the body fails (a refused chunked framing):
//	var refused *httpcheck.Error
//	if errors.As(err, &refused) { /* answer refused.Status */ }
//
// # Decisions
//
// Where the RFCs leave a choice, gsup takes the strict one, as Gunicorn
// does by default: obsolete line folding is refused (RFC 9112 section 5.2
// allows refusing or unfolding), as are a repeated Content-Length (RFC 9110
// section 8.6) and Transfer-Encoding with Content-Length (RFC 9112 section
// 6.1). Header names with underscores are dropped, not refused, as by
// Gunicorn's default header_map and nginx's default. The connection layer
// answers what it parses itself: a missing or repeated Host (400), a
// transfer coding other than chunked (501).
//
// serve/h1's corpus test runs Gunicorn's own request corpus through
// net/http alone, net/http with Check, and gsup's HTTP/1.1 layer with
// Check, and serve's runs it through the whole front, naming the RFC
// section behind every valid request the front refuses.
package httpcheck
