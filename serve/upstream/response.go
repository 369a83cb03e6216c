package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"gsup/internal/fieldbytes"
	"gsup/serve/head"
)

const (
	// maxHeadBytes bounds a response head (and a trailer section).
	maxHeadBytes = 1 << 20
	// maxChunkLine bounds a chunk-size line with its extensions.
	maxChunkLine = 4 << 10
)

var (
	errHeadTooLarge = errors.New("response head larger than 1 MiB")
	errChunkLine    = errors.New("malformed chunked encoding")
)

// headError is a malformed response head.
type headError struct{ msg string }

func (e *headError) Error() string { return "malformed response head: " + e.msg }

func malformed(format string, a ...any) error { return &headError{fmt.Sprintf(format, a...)} }

// field is one header field line; its name is in canonical form.
type field = head.Field

// respHead is a response head parsed by hand: net/http's ReadResponse
// builds a Response, a header map and a string per value, all of which
// would be copied into the ResponseWriter's map anyway. Here the whole head
// becomes one string, the fields are slices of it, and they go into the
// ResponseWriter's map with one more allocation for all the value slices.
type respHead struct {
	status    int
	minor     int   // HTTP/1.minor
	clen      int64 // Content-Length, -1 when absent
	chunked   bool
	close     bool // the connection cannot carry another exchange
	keepAlive bool // Connection: keep-alive (HTTP/1.0)
	hasConn   bool // a Connection field names headers to drop
	sse       bool // Content-Type: text/event-stream
	upgrade   string
	fields    []field

	raw  []byte  // the head as read, reused
	offs []int32 // key start, key end, value start, value end per field, reused
}

// readRaw reads lines into h.raw up to and including an empty line. got
// reports whether any byte arrived.
func readRaw(br *bufio.Reader, raw []byte) (_ []byte, got bool, err error) {
	raw = raw[:0]
	// Most often the whole head comes in one read: its end is found in
	// br's buffer and it is taken in one copy, not line by line.
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil && br.Buffered() == 0 {
			return raw, false, err
		}
	}
	if buf, _ := br.Peek(br.Buffered()); len(buf) > 0 {
		if end := headEnd(buf); end > 0 {
			raw = append(raw, buf[:end]...)
			_, _ = br.Discard(end)
			return raw, true, nil
		}
	}
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			got = true
		}
		if len(raw)+len(frag) > maxHeadBytes {
			return raw, got, errHeadTooLarge
		}
		raw = append(raw, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && got {
				err = io.ErrUnexpectedEOF
			}
			return raw, got, err
		}
		if n := len(raw) - lineStart; n == 1 || n == 2 && raw[lineStart] == '\r' {
			return raw, got, nil
		}
		lineStart = len(raw)
	}
}

// read reads and parses one response head from br. got reports whether any
// byte of it arrived (a reused connection that fails with got false may be
// retried).
func (h *respHead) read(br *bufio.Reader) (got bool, err error) {
	h.raw, got, err = readRaw(br, h.raw)
	if err != nil {
		return got, err
	}
	return true, h.parse()
}

// parse parses h.raw, which holds a complete head.
func (h *respHead) parse() error {
	b := h.raw
	*h = respHead{raw: b, offs: h.offs[:0], fields: h.fields[:0], clen: -1}
	eol := indexLF(b, 0)
	line := trimCR(b[:eol])
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return malformed("status line %q", clip(line))
	}
	switch line[7] {
	case '0':
		h.minor = 0
	case '1':
		h.minor = 1
	default:
		return malformed("status line %q", clip(line))
	}
	c0, c1, c2 := line[9], line[10], line[11]
	if !isDigit(c0) || !isDigit(c1) || !isDigit(c2) || c0 == '0' || len(line) > 12 && line[12] != ' ' {
		return malformed("status line %q", clip(line))
	}
	h.status = int(c0-'0')*100 + int(c1-'0')*10 + int(c2-'0')
	for i := 13; i < len(line); i++ {
		if !validValueByte(line[i]) {
			return malformed("status line %q", clip(line))
		}
	}
	// Field lines: canonicalise keys in place and note offsets, so that
	// one string conversion serves every key and value.
	for start := eol + 1; ; {
		end := indexLF(b, start)
		line := trimCR(b[start:end])
		if len(line) == 0 {
			break
		}
		if err := h.addOffsets(b, start, len(line)); err != nil {
			return err
		}
		start = end + 1
	}
	return h.build(string(b))
}

// addOffsets checks the field line b[start:start+n] and records it.
func (h *respHead) addOffsets(b []byte, start, n int) error {
	line := b[start : start+n]
	if line[0] == ' ' || line[0] == '\t' {
		return malformed("folded field line %q", clip(line))
	}
	// A name that apps send most often is known valid and canonical: one
	// search for the colon and one comparison.
	if colon := bytes.IndexByte(line, ':'); colon > 0 && commonName(line[:colon]) {
		return h.addValue(line, start, colon)
	}
	// Any other name is checked, and whether it is in canonical form
	// seen, in one pass.
	colon := -1
	upper, canon := true, true
	for i, c := range line {
		k := keyByte[c]
		if k == keyColon {
			colon = i
			break
		}
		if k == keyInvalid {
			return malformed("field name in %q", clip(line))
		}
		if upper {
			canon = canon && k != keyLower
		} else {
			canon = canon && k != keyUpper
		}
		upper = c == '-'
	}
	if colon <= 0 {
		return malformed("field line %q", clip(line))
	}
	if !canon {
		canonicalize(line[:colon])
	}
	return h.addValue(line, start, colon)
}

// commonName reports whether name is one of the field names apps send
// most often, in canonical form.
func commonName(name []byte) bool {
	switch string(name) {
	case "Content-Length", "Content-Type", "Date", "Server", "Connection", "Transfer-Encoding",
		"Cache-Control", "Set-Cookie", "Location", "Vary", "Etag", "Last-Modified", "Expires",
		"Content-Encoding", "Keep-Alive", "X-Frame-Options", "X-Content-Type-Options",
		"Content-Language", "Content-Disposition", "Access-Control-Allow-Origin",
		"Strict-Transport-Security", "Referrer-Policy", "Content-Security-Policy",
		"Accept-Ranges", "Age", "Pragma", "Link", "Allow", "Upgrade", "Retry-After",
		"Www-Authenticate", "X-Request-Id", "Trailer":
		return true
	}
	return false
}

// addValue checks the value of the field line line (b[start:start+len(line)])
// whose name ends at colon, and records the field.
func (h *respHead) addValue(line []byte, start, colon int) error {
	vs, ve := colon+1, len(line)
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	if !validValue(line[vs:ve]) {
		return malformed("field value in %q", clip(line))
	}
	h.offs = append(h.offs, int32(start), int32(start+colon), int32(start+vs), int32(start+ve))
	return nil
}

// build makes the fields from s (the head as a string) and works out the
// framing.
func (h *respHead) build(s string) error {
	var teSeen bool
	for i := 0; i < len(h.offs); i += 4 {
		f := field{Name: s[h.offs[i]:h.offs[i+1]], Value: s[h.offs[i+2]:h.offs[i+3]]}
		h.fields = append(h.fields, f)
		switch f.Name {
		case "Content-Length":
			n, ok := parseLength(f.Value)
			if !ok || h.clen >= 0 && n != h.clen {
				return malformed("Content-Length %q", f.Value)
			}
			h.clen = n
		case "Transfer-Encoding":
			if h.minor == 0 {
				continue // RFC 9112 6.1: ignored in HTTP/1.0, as net/http does
			}
			if teSeen || !strings.EqualFold(strings.TrimSpace(f.Value), "chunked") {
				return malformed("unsupported Transfer-Encoding %q", f.Value)
			}
			teSeen, h.chunked = true, true
		case "Connection":
			for tok := range strings.SplitSeq(f.Value, ",") {
				tok = strings.TrimSpace(tok)
				switch {
				case strings.EqualFold(tok, "close"):
					h.close = true
				case strings.EqualFold(tok, "keep-alive"):
					h.keepAlive = true
				case tok == "" || strings.EqualFold(tok, "upgrade"):
				default:
					h.hasConn = true
				}
			}
		case "Upgrade":
			if h.upgrade == "" {
				h.upgrade = f.Value
			}
		case "Content-Type":
			h.sse = isEventStream(f.Value)
		}
	}
	if h.chunked && h.clen >= 0 {
		// RFC 9112 6.3: Transfer-Encoding wins, and the connection must
		// not be reused.
		h.clen, h.close = -1, true
	}
	if h.minor == 0 && !h.keepAlive {
		h.close = true
	}
	return nil
}

// hasBody reports whether the response carries a body, for a request with
// the given method.
func (h *respHead) hasBody(method string) bool {
	return method != http.MethodHead && h.status >= 200 && h.status != 204 && h.status != 304
}

// copyTo adds the end-to-end fields to dst, leaving out hop-by-hop ones.
// The value slices share one new backing array.
func (h *respHead) copyTo(dst http.Header) { h.copyInto(dst, make([]string, len(h.fields))) }

// copyInto is copyTo with the values' backing array given: strs holds
// len(h.fields) strings at least.
//
// Into an empty dst (the common case), a name no field before it had is
// set without a look-up first: the fields are few, and comparing names
// costs less than a map look-up each.
func (h *respHead) copyInto(dst http.Header, strs []string) {
	empty := len(dst) == 0
	for i, f := range h.fields {
		if !h.keep(i) {
			continue
		}
		// Whether dst has the name already. A field before this one with
		// the same name was copied too: what keep leaves out depends on
		// the name alone (but for a repeated Content-Length).
		var had bool
		if empty {
			had = h.namedBefore(i)
		} else {
			_, had = dst[f.Name]
		}
		if had {
			dst[f.Name] = append(dst[f.Name], f.Value)
		} else {
			strs[i] = f.Value
			dst[f.Name] = strs[i : i+1 : i+1]
		}
	}
}

// forwarded appends the end-to-end fields to fs, in the app's order: what
// copyTo puts in a header, as a list.
func (h *respHead) forwarded(fs []field) []field {
	for i, f := range h.fields {
		if h.keep(i) {
			fs = append(fs, f)
		}
	}
	return fs
}

// keep reports whether h.fields[i] goes on to the client: not a hop-by-hop
// field, nor one the Connection field names, nor a Content-Length beside
// a chunked body or after the first (repeats were checked to be equal),
// nor a Trailer field where no trailer section can follow.
func (h *respHead) keep(i int) bool {
	f := &h.fields[i]
	switch f.Name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Transfer-Encoding", "Upgrade":
		return false
	case "Trailer":
		if !h.chunked {
			return false
		}
	case "Content-Length":
		if h.chunked || h.namedBefore(i) {
			return false
		}
	}
	return !h.hasConn || !h.connNames(f.Name)
}

// namedBefore reports whether a field before h.fields[i] has its name.
func (h *respHead) namedBefore(i int) bool {
	k := h.fields[i].Name
	for _, f := range h.fields[:i] {
		if f.Name == k {
			return true
		}
	}
	return false
}

// connNames reports whether a Connection field lists key.
func (h *respHead) connNames(key string) bool {
	for _, f := range h.fields {
		if f.Name == "Connection" && listsToken(f.Value, key) {
			return true
		}
	}
	return false
}

// listsToken reports whether the comma-separated list v holds tok,
// compared without case.
func listsToken(v, tok string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

func isEventStream(ct string) bool {
	// ct is a field value, trimmed: a type whose subtype does not begin
	// with e (text/plain, text/html, application/json) is out at once.
	if len(ct) < len("text/event-stream") || ct[4] != '/' || ct[5]|0x20 != 'e' {
		return false
	}
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// indexLF returns the index of the first '\n' at or after i; the caller
// knows there is one.
func indexLF(b []byte, i int) int {
	return i + bytes.IndexByte(b[i:], '\n')
}

// headEnd returns the length of the head at the start of b, up to and
// including its empty line, or 0 when b does not hold all of it.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		switch {
		case j < 0:
			return 0
		case j == 0 || j == 1 && b[i] == '\r':
			return i + j + 1
		}
		i += j + 1
	}
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// keyByte tells of each byte what it is in a field line's name: not in
// one, a letter of either case, another byte of an RFC 9110 token, or the
// colon that ends it.
var keyByte = func() (t [256]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = keyOther
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = keyLower
		t[c-'a'+'A'] = keyUpper
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = keyOther
	}
	t[':'] = keyColon
	return t
}()

const (
	keyInvalid = iota
	keyLower
	keyUpper
	keyOther
	keyColon
)

// validValueByte reports whether c may appear in a field value: VCHAR, SP,
// HTAB or obs-text, as net/textproto accepts.
func validValueByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t'
}

// validValue reports whether every byte of v may appear in a field value.
// Only a value with a control byte (a tab may be) is looked at byte by
// byte.
func validValue(v []byte) bool {
	if !fieldbytes.ControlsIn(v) {
		return true
	}
	for _, c := range v {
		if !validValueByte(c) {
			return false
		}
	}
	return true
}

// canonicalize rewrites a valid field name in place the way
// textproto.CanonicalMIMEHeaderKey does.
func canonicalize(k []byte) {
	upper := true
	for i, c := range k {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
}

// lengthReader reads exactly n bytes of body from br.
type lengthReader struct {
	br *bufio.Reader
	n  int64
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.br.Read(p)
	l.n -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkedReader decodes a chunked body from br and keeps its trailer
// fields.
type chunkedReader struct {
	br      *bufio.Reader
	left    int64 // bytes left in the current chunk
	crlf    bool  // the CRLF after a chunk's data is still to come
	err     error
	trailer respHead // only its fields are used
}

func (cr *chunkedReader) reset(br *bufio.Reader) {
	cr.br, cr.left, cr.crlf, cr.err = br, 0, false, nil
	cr.trailer.fields = cr.trailer.fields[:0]
}

func (cr *chunkedReader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	for cr.left == 0 {
		if err := cr.next(); err != nil {
			if err == io.EOF && !cr.crlf {
				cr.err = io.EOF
			} else {
				cr.err = unexpected(err)
			}
			return 0, cr.err
		}
	}
	if int64(len(p)) > cr.left {
		p = p[:cr.left]
	}
	n, err := cr.br.Read(p)
	cr.left -= int64(n)
	if cr.left == 0 {
		cr.crlf = true
	}
	if err != nil {
		cr.err = unexpected(err)
	}
	return n, cr.err
}

// ready reports whether the next Read can return data without waiting for
// the app: the rest of the current chunk, or the next chunk's size line
// and at least one byte after it, is buffered.
func (cr *chunkedReader) ready() bool {
	n := cr.br.Buffered()
	if cr.left > 0 || n == 0 {
		return n > 0
	}
	b, _ := cr.br.Peek(n)
	if cr.crlf {
		if len(b) < 2 {
			return false
		}
		b = b[2:]
	}
	i := bytes.IndexByte(b, '\n')
	return i >= 0 && i+1 < len(b)
}

// next reads the end of the previous chunk and the next chunk-size line;
// after the last chunk it reads the trailer section and returns io.EOF with
// cr.crlf false.
func (cr *chunkedReader) next() error {
	if cr.crlf {
		line, err := cr.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if string(line) != "\r\n" {
			return errChunkLine
		}
		cr.crlf = false
	}
	line, err := cr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return errChunkLine
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	size, ok := parseChunkSize(line)
	if !ok {
		return errChunkLine
	}
	if size > 0 {
		cr.left = size
		return nil
	}
	// Last chunk: the trailer section, then an empty line.
	t := &cr.trailer
	t.raw, _, err = readRaw(cr.br, t.raw)
	if err != nil {
		return unexpected(err)
	}
	t.offs = t.offs[:0]
	for start := 0; ; {
		end := indexLF(t.raw, start)
		line := trimCR(t.raw[start:end])
		if len(line) == 0 {
			break
		}
		if err := t.addOffsets(t.raw, start, len(line)); err != nil {
			return err
		}
		start = end + 1
	}
	if len(t.offs) > 0 {
		s := string(t.raw)
		for i := 0; i < len(t.offs); i += 4 {
			t.fields = append(t.fields, field{Name: s[t.offs[i]:t.offs[i+1]], Value: s[t.offs[i+2]:t.offs[i+3]]})
		}
	}
	return io.EOF
}

// parseChunkSize parses "HEX[;ext...]\r\n" (CRLF required, as net/http does
// since bare LF there was used for request smuggling).
func parseChunkSize(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, false
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, false
	}
	for ; i < len(line); i++ {
		if c := line[i]; c == ';' {
			break
		} else if c != ' ' && c != '\t' {
			return 0, false
		}
	}
	for ; i < len(line); i++ {
		if c := line[i]; c == '\r' || c == '\n' || c == 0 {
			return 0, false
		}
	}
	return n, true
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
