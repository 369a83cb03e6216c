// Package httpcheck refuses bad HTTP/1 requests before they reach an app:
// what net/http, the front's client side, lets through but Gunicorn (the
// app server gsup replaces) or the RFCs refuse, and what request smuggling
// needs. It does no I/O of its own beyond the connections it wraps.
//
// # Two layers
//
// WrapListener checks the raw bytes, which net/http normalises away: line
// endings, obsolete line folding, white space before a colon, control
// bytes, the request line and field limits of Gunicorn (414 and 431, with
// Gunicorn's arithmetic), and the framing (Content-Length and chunked,
// including every chunk-size line, extension and trailer) on every request
// of a keep-alive connection. Check judges the parsed request: method,
// version, the request-target's form, Host, duplicate Content-Type,
// contradictory scheme headers and the body limit. DropUnderscoreFields
// removes the header fields that CGI-style apps would confuse with their
// dashed spelling.
//
// Wiring, in the front:
//
//	srv := &http.Server{Handler: h, MaxHeaderBytes: httpcheck.MaxHeaderBytes(lim)}
//	srv.Serve(httpcheck.WrapListener(ln, lim, log, nil))
//
//	// in h, first:
//	if status, reason := httpcheck.Check(r, lim); status != 0 {
//		w.Header().Set("Connection", "close")
//		http.Error(w, reason, status)
//		return
//	}
//	httpcheck.DropUnderscoreFields(r.Header)
//	// and when reading the body fails:
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
// Gunicorn's default header_map and nginx's default. Where net/http is
// already strict it is left to answer: a missing or repeated Host (400),
// a transfer coding other than chunked (501).
//
// The corpus test (corpus_test.go) runs Gunicorn's own request corpus
// through net/http alone, net/http with Check, and the whole front, and
// names the RFC section behind every valid request the front refuses.
package httpcheck
