package h1

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"gsup/serve/head"
	"gsup/serve/httpcheck"
)

func bad(reason string) *httpcheck.Error {
	return &httpcheck.Error{Status: http.StatusBadRequest, Reason: reason}
}

// parse makes a request of head, a whole request head (the stream has
// checked its bytes: CRLF line ends, one SP between the parts of the
// request line, field names of token bytes followed by a colon, no
// folding), and sets up its body.
func (c *conn) parse(head string) (*http.Request, error) {
	line, rest := cutLine(head)
	sp1 := strings.IndexByte(line, ' ')
	sp2 := strings.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1 {
		return nil, bad("malformed request line")
	}
	method, target, proto := internMethod(line[:sp1]), line[sp1+1:sp2], line[sp2+1:]
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, bad("malformed HTTP version")
	}
	if major != 1 {
		return nil, &httpcheck.Error{Status: http.StatusHTTPVersionNotSupported, Reason: "unsupported HTTP version"}
	}
	st := c.newState()
	h, host, nHost, err := c.parseFields(rest, &st.ctx.names)
	if err != nil {
		return nil, err
	}
	r := &st.req
	*r = http.Request{
		Method:     method,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     h,
		RequestURI: target,
		RemoteAddr: c.remoteAddr,
		TLS:        c.tls,
	}
	connect := method == http.MethodConnect
	raw := target
	authority := connect && !strings.HasPrefix(target, "/")
	if authority {
		raw = "http://" + target
	}
	if originForm(raw, &st.url) {
		r.URL = &st.url
	} else if r.URL, err = url.ParseRequestURI(raw); err != nil {
		return nil, bad("malformed request target")
	} else if authority {
		r.URL.Scheme = ""
	}
	switch {
	case r.ProtoAtLeast(1, 1) && nHost == 0 && !connect:
		return nil, bad("missing required Host header")
	case nHost > 1:
		return nil, bad("too many Host headers")
	case nHost == 1 && host != c.host && !httpguts.ValidHostHeader(host):
		return nil, bad("malformed Host header")
	}
	if nHost == 1 {
		c.host = host
	}
	r.Host = r.URL.Host
	if r.Host == "" {
		r.Host = host
	}
	r.Close = shouldClose(r, &st.ctx.names)
	// The request gets its context, which handle cancels when it
	// returns, here: WithContext's copy does not leave this function,
	// and st is the one allocation for the Request, its context and its
	// URL.
	*r = *r.WithContext(&st.ctx)
	if err := c.setBody(r, &st.ctx.names); err != nil {
		st.ctx.cancel()
		return nil, err
	}
	st.ctx.names.Seal(h) // setBody may have taken fields out
	st.ctx.names.Checked = c.stream.Checked()
	st.ctx.names.Head = head
	c.st = st
	c.bodyDeadline(r.Body != http.NoBody)
	return r, nil
}

// setBody frames r's body: chunked, by Content-Length, or none.
func (c *conn) setBody(r *http.Request, names *head.Names) error {
	h := r.Header
	var chunked bool
	var remain int64
	if te := names.Lookup(h, head.Asked.TransferEncoding); te != nil {
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return &httpcheck.Error{Status: http.StatusNotImplemented, Reason: "unsupported transfer encoding"}
		}
		delete(h, "Transfer-Encoding")
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		chunked = true
		if tr := names.Lookup(h, head.Asked.Trailer); tr != nil {
			delete(h, "Trailer")
			for _, v := range tr {
				for k := range strings.SplitSeq(v, ",") {
					if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
						if r.Trailer == nil {
							r.Trailer = http.Header{}
						}
						r.Trailer[k] = nil
					}
				}
			}
		}
	} else if cl := names.Lookup(h, head.Asked.ContentLength); cl != nil {
		n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
		if err != nil || n < 0 {
			return bad("malformed Content-Length")
		}
		r.ContentLength, remain = n, n
	}
	ex := names.Lookup(h, head.Asked.Expect)
	if ex != nil && !hasToken(ex, "100-continue") {
		return &httpcheck.Error{Status: http.StatusExpectationFailed, Reason: "unsupported expectation"}
	}
	if !chunked && remain == 0 { // no body: nothing allocated for it
		r.Body = http.NoBody
		return nil
	}
	r.Body = &body{c: c, req: r, chunked: chunked, remain: remain,
		cont: r.ProtoAtLeast(1, 1) && ex != nil}
	return nil
}

// shouldClose: HTTP/1.0 keeps the connection only when asked to, 1.1 unless
// asked not to.
func shouldClose(r *http.Request, names *head.Names) bool {
	conn := names.Lookup(r.Header, head.Asked.Connection)
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return !hasToken(conn, "keep-alive")
	}
	return hasToken(conn, "close")
}

func hasToken(vv []string, token string) bool {
	return httpguts.HeaderValuesContainsToken(vv, token)
}

// parseFields parses the field lines of a head (each ended by CRLF, then
// an empty line). Names are canonical (net/http's form); values share
// the head's string. Host fields are counted and the first one's value
// returned, not put in the map (net/http's Request has no Host field
// either). The map and the values' backing array are the
// connection's, reused by its next request: handle empties them once the
// request is answered (nothing keeps a request's header past its
// handler), and a parked connection lets them go.
func (c *conn) parseFields(s string, names *head.Names) (_ http.Header, host string, nHost int, _ error) {
	n := strings.Count(s, "\n") - 1 // field lines, or more (one byte is counted faster than two)
	if c.hdr == nil {               // newState took none from the pool
		c.hdr = make(http.Header, max(n, 8))
	}
	h := c.hdr
	if len(h) > 0 {
		clear(h) // empty already, but the filter counts on it
	}
	defer names.Seal(h)
	if n <= 0 {
		return h, "", 0, nil
	}
	if cap(c.hvals) < n {
		c.hvals = make([]string, 0, max(n, 8))
	}
	c.hvals = c.hvals[:n] // what handle clears: the values this head set
	vals := c.hvals
	if c.seen == nil && c.kept {
		c.seen = make([]seenName, 0, maxSeen)
	}
	i := 0
	for j := 0; ; j++ {
		line, rest := cutLine(s)
		if line == "" {
			break
		}
		s = rest
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, "", 0, bad("malformed header field")
		}
		// A name sent as in the last head has its key and bit from
		// there; the names of a kept connection's heads are noted for
		// the next (not a first request's: most connections that end
		// after one request say so in it).
		name := line[:colon]
		var kn head.Name
		hasBit := true // kn's filter bit is worked out
		switch {
		case j < len(c.seen) && c.seen[j].sent == name:
			kn = c.seen[j].key
		case j < len(c.seen):
			kn = head.NameOf(canonicalKey(name))
			c.seen[j] = seenName{name, kn}
		case c.kept && j < maxSeen:
			kn = head.NameOf(canonicalKey(name))
			c.seen = append(c.seen, seenName{name, kn})
		default:
			kn.S, hasBit = canonicalKey(name), false
		}
		key := kn.S
		v := trimOWS(line[colon+1:])
		if key == "Host" {
			if nHost == 0 {
				host = v
			}
			nHost++
			continue
		}
		// The map was empty: a name the filter does not hold yet is not
		// in it.
		var held bool
		if hasBit {
			held = names.NoteName(kn)
		} else {
			held = names.Note(key)
		}
		if held {
			if vv, ok := h[key]; ok {
				h[key] = append(vv, v)
				continue
			}
		}
		vals[i] = v
		h[key] = vals[i : i+1 : i+1]
		i++
	}
	return h, host, nHost, nil
}

// seenName is a field name of a head as sent and as a key (canonical,
// with its filter bit).
type seenName struct {
	sent string
	key  head.Name
}

// maxSeen: the names of a head's first maxSeen field lines are kept for
// the next head.
const maxSeen = 32

// cutLine returns s's first line without its CRLF, and the rest (the
// stream has checked that lines end in CRLF).
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if line != "" && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// trimOWS cuts the spaces and tabs around a field value.
func trimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// canonicalKey is http.CanonicalHeaderKey for a token, without allocating
// for a name already canonical or a common one.
func canonicalKey(name string) string {
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	if len(name) <= 64 {
		var buf [64]byte
		b := buf[:len(name)]
		upper = true
		for i := 0; i < len(name); i++ {
			c := name[i]
			switch {
			case upper && 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			case !upper && 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if k, ok := commonKeys[string(b)]; ok {
			return k
		}
		return string(b)
	}
	return http.CanonicalHeaderKey(name)
}

var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Cookie", "Date", "Expect", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
		"If-Range", "If-Unmodified-Since", "Keep-Alive", "Origin", "Pragma", "Range", "Referer",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
	} {
		commonKeys[k] = k
	}
}

// originForm is url.ParseRequestURI's URL for the common target, an
// origin-form path and query whose path has no byte that Path and its
// escaped form would tell apart (no percent escape, nothing EscapedPath
// would escape), and no control byte; nil for any other target, which
// ParseRequestURI then parses. It does what ParseRequestURI does for
// those targets with one scan and no other allocation
// (FuzzOriginForm compares the two). It reports whether it set *u.
func originForm(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if b := query[i]; b < ' ' || b == 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathByte: the bytes a path keeps as they are in URL.Path and in
// URL.EscapedPath (net/url's shouldEscape in path mode), except '%'.
var plainPathByte = func() (t [256]bool) {
	for b := 'a'; b <= 'z'; b++ {
		t[b] = true
	}
	for b := 'A'; b <= 'Z'; b++ {
		t[b] = true
	}
	for b := '0'; b <= '9'; b++ {
		t[b] = true
	}
	for _, b := range "-_.~$&+,/:;=@" {
		t[b] = true
	}
	return t
}()

// internMethod returns the common methods without a string of their own.
func internMethod(m string) string {
	switch m {
	case "GET":
		return http.MethodGet
	case "POST":
		return http.MethodPost
	case "HEAD":
		return http.MethodHead
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	case "PATCH":
		return http.MethodPatch
	case "CONNECT":
		return http.MethodConnect
	}
	return m
}
