package httpcheck

import (
	"net/http"

	"gsup/internal/fieldbytes"
)

// scanner follows the bytes a client sends on one connection, request
// after request, and finds what net/http would let through but must be
// refused. It keeps a few counters and flags, never the bytes themselves:
// request heads are checked as they stream past, and bodies are skipped by
// their framing (Content-Length, or chunked with every chunk-size line,
// extension and trailer checked).
//
// Its view of the stream must stay in step with net/http's, so it refuses
// every request whose framing it and net/http might read differently
// (Transfer-Encoding with Content-Length, duplicate Content-Length,
// Transfer-Encoding on HTTP/1.0), and it stops following a connection
// where net/http will stop too (a transfer coding net/http answers with
// 501) or where what follows is not HTTP/1 (after a successful Upgrade or
// CONNECT, which the connection tells it; after the HTTP/2 preface).
type scanner struct {
	lim Limits // normalized
	st  state
	n   int // bytes so far in the current line, without CRLF

	// The refusal, once st is stRefused.
	status int
	reason string

	req reqState
}

// reqState is what the scanner learns about the current request.
type reqState struct {
	method    [8]byte
	methodLen int
	targetLen int
	target0   byte
	vers      [8]byte
	versLen   int
	major     byte
	minor     byte

	fields  int  // field lines so far (header, then trailer section)
	trailer bool // reading the trailer section
	hdr     hdr  // what the current field line is
	name    [24]byte
	nameLen int // may exceed len(name): then the name is none we look for

	clSeen  bool
	cl      uint64
	clState uint8 // 0: leading white space, 1: digits, 2: trailing white space
	teLines int
	teMatch int  // bytes of "chunked" matched in the current TE line
	teBad   bool // the current TE line is not exactly "chunked"
	teOK    bool // the last TE line was exactly "chunked"

	connUpgrade bool // Connection lists "upgrade"
	tokLen      int
	tokBad      bool
	tokEnded    bool
	upgrade     bool // Upgrade is not empty
	connect     bool
	pri         bool // "PRI * HTTP/2.0"

	remain    uint64 // body bytes left (Content-Length or current chunk)
	chunkLen  int    // hex digits of the current chunk size
	bodyTotal uint64 // chunked body bytes so far
}

type state uint8

const (
	stReqStart state = iota
	stMethod
	stTarget
	stVersion
	stReqLineLF
	stFieldStart
	stName
	stValue
	stFieldLF
	stHeadLF
	stBody
	stChunkSize
	stChunkBWS     // white space after a size or value: only ";" may follow
	stExtNameStart // after ";"
	stExtName
	stExtNameBWS
	stExtValStart
	stExtToken
	stQuoted
	stQuotedPair
	stAfterQuoted
	stChunkLF
	stChunkData
	stChunkDataCR
	stChunkDataLF
	stAwait       // after a request that may switch protocols: stopped until told
	stPassthrough // not HTTP/1 any more, or net/http closes the connection
	stRefused
)

// hdr is a header field the scanner reads the value of.
type hdr uint8

const (
	hdrOther hdr = iota
	hdrContentLength
	hdrTransferEncoding
	hdrConnection
	hdrUpgrade
)

// event is what feed found.
type event uint8

const (
	evNone       event = iota // every byte given is fine
	evRefuseHead              // b[n] is the first byte of a request head to refuse
	evRefuseBody              // b[n] is the first byte of a request body to refuse
	evAwait                   // b[:n] ends a request that may switch protocols
)

// forbiddenTrailers may not be sent in a trailer section (RFC 9110 section
// 6.5.1: fields that frame the message, route it, modify or authenticate
// the request, or describe the content's coding), nor the forwarding
// headers gsup vouches for. Content-Type is allowed, as Gunicorn allows it
// (its valid/012 case).
var forbiddenTrailers = map[string]bool{
	"content-length": true, "transfer-encoding": true, "trailer": true,
	"host": true, "connection": true, "keep-alive": true,
	"proxy-connection": true, "te": true, "upgrade": true, "expect": true,
	"max-forwards": true, "range": true, "if-match": true,
	"if-none-match": true, "if-modified-since": true,
	"if-unmodified-since": true, "if-range": true, "cache-control": true,
	"pragma": true, "authorization": true, "proxy-authorization": true,
	"cookie": true, "content-encoding": true, "content-range": true,
	"forwarded": true, "x-forwarded-for": true, "x-forwarded-host": true,
	"x-forwarded-proto": true, "x-forwarded-protocol": true,
	"x-forwarded-ssl": true, "x-real-ip": true,
}

// ForbiddenTrailer reports whether a field named name (lower case) may
// not come in a trailer section (forbiddenTrailers): HTTP/2's layer
// refuses such trailers as HTTP/1.1's does.
func ForbiddenTrailer(name string) bool { return forbiddenTrailers[name] }

// newScanner starts a scanner; lim must be normalized.
func newScanner(lim Limits) scanner { return scanner{lim: lim} }

// resume continues after stAwait: passthrough when the connection switched
// protocols, else with the next request.
func (s *scanner) resume(switched bool) {
	if switched {
		s.st = stPassthrough
		return
	}
	s.req = reqState{}
	s.st = stReqStart
}

func (s *scanner) refuse(st int, reason string) {
	s.st, s.status, s.reason = stRefused, st, reason
}

// feed scans b. It returns evNone and len(b) when every byte is fine; the
// index of the offending byte and evRefuseHead or evRefuseBody when a
// request must be refused (s.status and s.reason say why); or evAwait and
// the length of the request that ended at b[n-1] when that request may
// switch protocols: nothing after it is HTTP/1 until resume says so.
func (s *scanner) feed(b []byte) (int, event) {
	r := &s.req
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch s.st {
		case stReqStart:
			// RFC 9112 section 2.2: a server SHOULD ignore empty lines
			// before a request-line. net/http discards them after a POST
			// and refuses them elsewhere; either way the stream stays in
			// step.
			if c == '\r' || c == '\n' {
				continue
			}
			s.st = stMethod
			s.n = 0
			fallthrough
		case stMethod:
			// Run over the method's token bytes.
			if isTchar(c) {
				j := i
				for j < len(b) && isTchar(b[j]) {
					if r.methodLen < len(r.method) {
						r.method[r.methodLen] = b[j]
					}
					r.methodLen++
					j++
				}
				s.n += j - i
				if s.n > s.lim.RequestLine {
					return s.head(j-(s.n-s.lim.RequestLine), http.StatusRequestURITooLong, "request line too long")
				}
				i = j - 1
				continue
			}
			s.n++
			if s.n > s.lim.RequestLine {
				return s.head(i, http.StatusRequestURITooLong, "request line too long")
			}
			switch {
			case c == ' ' && r.methodLen > 0:
				s.st = stTarget
			default:
				return s.head(i, http.StatusBadRequest, "invalid request method")
			}
		case stTarget:
			// The target runs to the next byte that is not a URI byte; only
			// a single SP may follow (RFC 9112 section 3).
			j := i
			for j < len(b) && class[b[j]]&cTarget != 0 {
				j++
			}
			if j > i {
				if r.targetLen == 0 {
					r.target0 = b[i]
				}
				r.targetLen += j - i
				s.n += j - i
				if s.n > s.lim.RequestLine {
					return s.head(i+(j-i)-(s.n-s.lim.RequestLine), http.StatusRequestURITooLong, "request line too long")
				}
				i = j - 1
				continue
			}
			s.n++
			if s.n > s.lim.RequestLine {
				return s.head(i, http.StatusRequestURITooLong, "request line too long")
			}
			if c == ' ' && r.targetLen > 0 {
				s.st = stVersion
				continue
			}
			return s.head(i, http.StatusBadRequest, "invalid request target")
		case stVersion:
			// "HTTP/1.1" or "HTTP/1.0" and CR, whole in b: taken at once.
			if r.versLen == 0 && i+9 <= len(b) && string(b[i:i+7]) == "HTTP/1." && (b[i+7] == '1' || b[i+7] == '0') &&
				b[i+8] == '\r' && s.n+8 <= s.lim.RequestLine {
				copy(r.vers[:], b[i:i+8])
				r.versLen = 8
				s.n += 8
				i += 8
				c = '\r'
			}
			if c == '\r' {
				if st, reason := s.version(); st != 0 {
					return s.head(i, st, reason)
				}
				s.st = stReqLineLF
				continue
			}
			if c == '\n' {
				return s.head(i, http.StatusBadRequest, "bare LF line ending")
			}
			s.n++
			if s.n > s.lim.RequestLine {
				return s.head(i, http.StatusRequestURITooLong, "request line too long")
			}
			if r.versLen == len(r.vers) {
				return s.head(i, http.StatusBadRequest, "invalid HTTP version")
			}
			r.vers[r.versLen] = c
			r.versLen++
		case stReqLineLF, stFieldLF:
			if c != '\n' {
				return s.refuseAt(i, http.StatusBadRequest, "CR without LF")
			}
			s.st = stFieldStart
		case stChunkDataLF:
			if c != '\n' {
				return s.body(i, http.StatusBadRequest, "chunk data not followed by CRLF")
			}
			s.st, s.n = stChunkSize, 0
			r.chunkLen = 0
		case stFieldStart:
			switch {
			case c == '\r':
				s.st = stHeadLF
			case c == '\n':
				return s.refuseAt(i, http.StatusBadRequest, "bare LF line ending")
			case c == ' ' || c == '\t':
				// RFC 9112 section 5.2: obs-fold; section 2.2: white space
				// before the first field line. Either MUST be rejected or
				// ignored; gsup rejects, as Gunicorn does by default.
				return s.refuseAt(i, http.StatusBadRequest, "obsolete line folding")
			case isTchar(c):
				r.fields++
				if r.fields > s.lim.Fields {
					return s.refuseAt(i, http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
				}
				s.st, s.n = stName, 1
				r.nameLen, r.hdr = 1, hdrOther
				r.name[0] = c
			default:
				return s.refuseAt(i, http.StatusBadRequest, "invalid header name")
			}
		case stName:
			// Run over the name's token bytes.
			j := i
			for j < len(b) && isTchar(b[j]) {
				j++
			}
			if r.nameLen < len(r.name) {
				copy(r.name[r.nameLen:], b[i:j]) // as sent: fieldName lowers what it compares
			}
			r.nameLen += j - i
			s.n += j - i
			if s.n+2 > s.lim.FieldSize {
				return s.refuseAt(j-(s.n+2-s.lim.FieldSize), http.StatusRequestHeaderFieldsTooLarge, "header field too long")
			}
			if j == len(b) {
				return len(b), evNone
			}
			i, c = j, b[j]
			s.n++
			if s.n+2 > s.lim.FieldSize {
				return s.refuseAt(i, http.StatusRequestHeaderFieldsTooLarge, "header field too long")
			}
			switch {
			case c == ':':
				if st, reason := s.fieldName(); st != 0 {
					return s.refuseAt(i, st, reason)
				}
				s.st = stValue
			case c == ' ' || c == '\t':
				// RFC 9112 section 5.1: a server MUST reject white space
				// between a field name and the colon, with 400.
				return s.refuseAt(i, http.StatusBadRequest, "white space before colon")
			default:
				return s.refuseAt(i, http.StatusBadRequest, "invalid header name")
			}
		case stValue:
			if r.hdr == hdrOther {
				// The common case: run over the value, eight bytes at a
				// time while they hold no control byte (a tab, which is
				// allowed, and the CR that ends the value are ones),
				// then byte by byte.
				j := i
				for j+8 <= len(b) && !fieldbytes.ControlsAt(b, j) {
					j += 8
				}
				for j < len(b) && class[b[j]]&cField != 0 {
					j++
				}
				s.n += j - i
				if s.n+2 > s.lim.FieldSize {
					return s.refuseAt(j-(s.n+2-s.lim.FieldSize), http.StatusRequestHeaderFieldsTooLarge, "header field too long")
				}
				if j == len(b) {
					return len(b), evNone
				}
				i, c = j, b[j]
			} else {
				s.n++
				if s.n+2 > s.lim.FieldSize {
					return s.refuseAt(i, http.StatusRequestHeaderFieldsTooLarge, "header field too long")
				}
			}
			switch {
			case c == '\r':
				if st, reason := s.fieldEnd(); st != 0 {
					return s.refuseAt(i, st, reason)
				}
				s.st = stFieldLF
			case c == '\n':
				return s.refuseAt(i, http.StatusBadRequest, "bare LF line ending")
			case class[c]&cField == 0:
				// RFC 9110 section 5.5: NUL, other controls and DEL are not
				// field-value bytes (a recipient MAY reject them; CR, LF and
				// NUL MUST be rejected or replaced).
				return s.refuseAt(i, http.StatusBadRequest, "control byte in a header value")
			default:
				if st, reason := s.valueByte(c); st != 0 {
					return s.refuseAt(i, st, reason)
				}
			}
		case stHeadLF:
			if c != '\n' {
				return s.refuseAt(i, http.StatusBadRequest, "CR without LF")
			}
			if r.trailer {
				if n, ev := s.messageEnd(i + 1); ev != evNone {
					return n, ev
				}
				continue
			}
			if n, ev := s.headEnd(i); ev != evNone {
				return n, ev
			}
		case stBody:
			left := uint64(len(b) - i)
			if r.remain > left {
				r.remain -= left
				return len(b), evNone
			}
			i += int(r.remain) - 1
			r.remain = 0
			if n, ev := s.messageEnd(i + 1); ev != evNone {
				return n, ev
			}
		case stChunkSize:
			if s.n++; s.n > maxChunkLineBytes {
				return s.body(i, http.StatusBadRequest, "chunk line too long")
			}
			switch {
			case class[c]&cHex != 0:
				// net/http takes at most 16 hex digits; so does gsup.
				if r.chunkLen == 16 {
					return s.body(i, http.StatusBadRequest, "chunk size too large")
				}
				r.chunkLen++
				r.remain = r.remain<<4 | hexVal(c)
			case r.chunkLen == 0:
				// RFC 9112 section 7.1: chunk-size = 1*HEXDIG; no sign,
				// white space or underscore.
				return s.body(i, http.StatusBadRequest, "invalid chunk size")
			case c == ';':
				s.st = stExtNameStart
			case c == ' ' || c == '\t':
				s.st = stChunkBWS
			case c == '\r':
				s.st = stChunkLF
			default:
				return s.body(i, http.StatusBadRequest, "invalid chunk size")
			}
		case stChunkBWS, stExtNameStart, stExtName, stExtNameBWS, stExtValStart, stExtToken, stQuoted, stQuotedPair, stAfterQuoted:
			if s.n++; s.n > maxChunkLineBytes {
				return s.body(i, http.StatusBadRequest, "chunk line too long")
			}
			if !s.chunkExt(c) {
				return s.body(i, http.StatusBadRequest, "invalid chunk extension")
			}
		case stChunkLF:
			if c != '\n' {
				return s.body(i, http.StatusBadRequest, "CR without LF in chunked body")
			}
			if r.remain == 0 {
				// The last chunk: a trailer section follows.
				r.trailer, r.fields = true, 0
				s.st = stFieldStart
				continue
			}
			if s.lim.Body > 0 {
				r.bodyTotal += r.remain
				if r.bodyTotal > uint64(s.lim.Body) || r.bodyTotal < r.remain {
					return s.body(i, http.StatusRequestEntityTooLarge, "request body too large")
				}
			}
			s.st = stChunkData
		case stChunkData:
			left := uint64(len(b) - i)
			if r.remain > left {
				r.remain -= left
				return len(b), evNone
			}
			i += int(r.remain) - 1
			r.remain = 0
			s.st = stChunkDataCR
		case stChunkDataCR:
			if c != '\r' {
				return s.body(i, http.StatusBadRequest, "chunk data not followed by CRLF")
			}
			s.st = stChunkDataLF
		case stAwait:
			return i, evAwait // not to be fed until resumed
		case stRefused:
			return i, evRefuseHead // not to be fed again
		case stPassthrough:
			return len(b), evNone
		}
	}
	return len(b), evNone
}

// refuseAt refuses at b[i], in the head or, for the trailer section, in
// the body.
func (s *scanner) refuseAt(i int, st int, reason string) (int, event) {
	if s.req.trailer {
		return s.body(i, st, reason)
	}
	return s.head(i, st, reason)
}

func (s *scanner) head(i int, st int, reason string) (int, event) {
	s.refuse(st, reason)
	return i, evRefuseHead
}

func (s *scanner) body(i int, st int, reason string) (int, event) {
	s.refuse(st, reason)
	return i, evRefuseBody
}

// version checks the HTTP-version (RFC 9112 section 2.3:
// "HTTP/" DIGIT "." DIGIT, case-sensitive).
func (s *scanner) version() (int, string) {
	r := &s.req
	v := r.vers[:r.versLen]
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return http.StatusBadRequest, "invalid HTTP version"
	}
	r.major, r.minor = v[5]-'0', v[7]-'0'
	if r.major == 1 {
		r.connect = r.methodLen == 7 && string(r.method[:7]) == "CONNECT"
		return 0, ""
	}
	if r.major == 2 && r.minor == 0 && r.methodLen == 3 && string(r.method[:3]) == "PRI" && r.targetLen == 1 && r.target0 == '*' {
		r.pri = true
		return 0, ""
	}
	return http.StatusHTTPVersionNotSupported, "unsupported HTTP version"
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// fieldName runs at the colon of a field line.
func (s *scanner) fieldName() (int, string) {
	r := &s.req
	if r.nameLen > len(r.name) {
		return 0, ""
	}
	name := r.name[:r.nameLen]
	// The names looked for below are of four lengths, a trailer's any
	// forbidden one's: only those are lowered, to be compared.
	switch {
	case r.trailer, r.nameLen == len("upgrade"), r.nameLen == len("connection"),
		r.nameLen == len("content-length"), r.nameLen == len("transfer-encoding"):
		for k, c := range name {
			name[k] = lower(c)
		}
	}
	if r.trailer {
		if forbiddenTrailers[string(name)] {
			return http.StatusBadRequest, "field not allowed in a trailer"
		}
		return 0, ""
	}
	switch string(name) {
	case "content-length":
		// RFC 9110 section 8.6 lets a recipient reject a repeated
		// Content-Length; RFC 9112 section 6.1 lets a server reject a
		// request with both Transfer-Encoding and Content-Length (it
		// "ought to be handled as an error": the smuggling pattern).
		if r.clSeen {
			return http.StatusBadRequest, "more than one Content-Length"
		}
		if r.teLines > 0 {
			return http.StatusBadRequest, "both Transfer-Encoding and Content-Length"
		}
		r.clSeen, r.clState, r.cl = true, 0, 0
		r.hdr = hdrContentLength
	case "transfer-encoding":
		// RFC 9112 section 6.1: a server that receives Transfer-Encoding in
		// an HTTP/1.0 request MUST treat its framing as faulty (net/http
		// ignores it and reads no body: the chunks would be read as the
		// next request).
		if r.minor == 0 {
			return http.StatusBadRequest, "Transfer-Encoding in an HTTP/1.0 request"
		}
		if r.clSeen {
			return http.StatusBadRequest, "both Transfer-Encoding and Content-Length"
		}
		r.teLines++
		r.teMatch, r.teBad = 0, false
		r.hdr = hdrTransferEncoding
	case "connection":
		r.tokLen, r.tokBad, r.tokEnded = 0, false, false
		r.hdr = hdrConnection
	case "upgrade":
		r.hdr = hdrUpgrade
	}
	return 0, ""
}

const chunked = "chunked"

// valueByte follows the value of a header the scanner reads (not CR).
func (s *scanner) valueByte(c byte) (int, string) {
	r := &s.req
	ows := c == ' ' || c == '\t'
	switch r.hdr {
	case hdrContentLength:
		// RFC 9110 section 8.6: Content-Length = 1*DIGIT. No sign, no
		// list, no white space inside.
		switch {
		case isDigit(c) && r.clState < 2:
			r.clState = 1
			if r.cl > (1<<63-1-9)/10 {
				return http.StatusBadRequest, "Content-Length too large"
			}
			r.cl = r.cl*10 + uint64(c-'0')
		case ows && r.clState != 1:
		case ows:
			r.clState = 2
		default:
			return http.StatusBadRequest, "invalid Content-Length"
		}
	case hdrTransferEncoding:
		switch {
		case ows && (r.teMatch == 0 || r.teMatch == len(chunked)):
		case !r.teBad && r.teMatch < len(chunked) && lower(c) == chunked[r.teMatch]:
			r.teMatch++
		default:
			r.teBad = true
		}
	case hdrConnection:
		switch {
		case c == ',':
			s.connToken()
		case ows:
			if r.tokLen > 0 {
				r.tokEnded = true
			}
		default:
			if r.tokEnded || r.tokLen >= len("upgrade") || lower(c) != "upgrade"[r.tokLen] {
				r.tokBad = true
			}
			r.tokLen++
		}
	case hdrUpgrade:
		if !ows {
			r.upgrade = true
		}
	}
	return 0, ""
}

func (s *scanner) connToken() {
	r := &s.req
	if !r.tokBad && r.tokLen == len("upgrade") {
		r.connUpgrade = true
	}
	r.tokLen, r.tokBad, r.tokEnded = 0, false, false
}

// fieldEnd runs at the CR of a field line.
func (s *scanner) fieldEnd() (int, string) {
	r := &s.req
	switch r.hdr {
	case hdrContentLength:
		if r.clState == 0 {
			return http.StatusBadRequest, "empty Content-Length"
		}
	case hdrTransferEncoding:
		r.teOK = !r.teBad && r.teMatch == len(chunked)
	case hdrConnection:
		s.connToken()
	}
	r.hdr = hdrOther
	return 0, ""
}

// headEnd runs at the LF that ends a request head, b[i].
func (s *scanner) headEnd(i int) (int, event) {
	r := &s.req
	if r.pri {
		s.st = stPassthrough
		return i + 1, evNone
	}
	switch {
	case r.teLines > 0:
		if r.teLines != 1 || !r.teOK {
			// net/http answers 501 to any other transfer coding (RFC 9112
			// section 6.1: a server SHOULD, for a coding it does not
			// implement) and closes: nothing more to follow.
			s.st = stPassthrough
			return i + 1, evNone
		}
		s.st, s.n = stChunkSize, 0
		r.remain, r.chunkLen = 0, 0
		return i + 1, evNone
	case r.clSeen && r.cl > 0:
		if s.lim.Body > 0 && r.cl > uint64(s.lim.Body) {
			return s.head(i, http.StatusRequestEntityTooLarge, "request body too large")
		}
		s.st, r.remain = stBody, r.cl
		return i + 1, evNone
	}
	return s.messageEnd(i + 1)
}

// messageEnd runs when a request ends just before b[end].
func (s *scanner) messageEnd(end int) (int, event) {
	r := &s.req
	// A CONNECT, or an HTTP/1.1 request asking to Upgrade (RFC 9110
	// section 7.8: Upgrade in HTTP/1.0 is ignored), may be followed by
	// another protocol: what comes next is not scanned until the
	// connection knows the answer.
	if r.connect || (r.minor >= 1 && r.upgrade && r.connUpgrade) {
		s.st = stAwait
		return end, evAwait
	}
	s.req = reqState{}
	s.st = stReqStart
	return end, evNone
}

// chunkExt follows a chunk extension (RFC 9112 section 7.1.1):
// *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) CRLF.
// White space is allowed only before ";" or "=" and after them.
func (s *scanner) chunkExt(c byte) bool {
	for _, m := range extMoves[s.st] {
		if m.takes(c) {
			s.st = m.to
			return true
		}
	}
	return false
}

// extMove is a way out of a chunk extension state: the bytes it takes,
// and the state they lead to.
type extMove struct {
	takes func(c byte) bool
	to    state
}

// extMoves are the moves of each chunk extension state, tried in order;
// a byte none takes is refused.
var extMoves = [stRefused + 1][]extMove{
	stChunkBWS:     {{isOWS, stChunkBWS}, {is(';'), stExtNameStart}},
	stExtNameStart: {{isOWS, stExtNameStart}, {isTchar, stExtName}},
	stExtName: {{isTchar, stExtName}, {is('='), stExtValStart}, {is(';'), stExtNameStart},
		{isOWS, stExtNameBWS}, {is('\r'), stChunkLF}},
	stExtNameBWS:  {{isOWS, stExtNameBWS}, {is('='), stExtValStart}, {is(';'), stExtNameStart}},
	stExtValStart: {{isOWS, stExtValStart}, {is('"'), stQuoted}, {isTchar, stExtToken}},
	stExtToken: {{isTchar, stExtToken}, {is(';'), stExtNameStart}, {isOWS, stChunkBWS},
		{is('\r'), stChunkLF}},
	stQuoted: {{is('"'), stAfterQuoted}, {is('\\'), stQuotedPair},
		{func(c byte) bool { return class[c]&cQdtext != 0 }, stQuoted}},
	// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
	stQuotedPair:  {{func(c byte) bool { return class[c]&cField != 0 }, stQuoted}},
	stAfterQuoted: {{is(';'), stExtNameStart}, {isOWS, stChunkBWS}, {is('\r'), stChunkLF}},
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// is returns a test for the byte b.
func is(b byte) func(byte) bool { return func(c byte) bool { return c == b } }
