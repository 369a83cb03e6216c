package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gsup/internal/fieldbytes"
	"gsup/serve/head"
)

// outMax is how many body bytes are kept before the response head goes
// out (a body the handler writes whole up to this size goes with its head
// in one write, with a Content-Length), and the most bytes gathered for
// one write after it.
const outMax = head.Held

// outBufs is a response's two buffers, pooled together: out, and the
// body written before the head (most responses use both).
type outBufs struct{ out, body []byte }

var outPool = sync.Pool{New: func() any {
	return &outBufs{out: make([]byte, 0, bufSize), body: make([]byte, 0, bufSize)}
}}

// response is the http.ResponseWriter of one request. It is also an
// http.Flusher and http.Hijacker, and has what http.ResponseController
// looks for (SetReadDeadline, SetWriteDeadline, EnableFullDuplex,
// FlushError).
type response struct {
	c           *conn
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool // the status is set
	headSent    bool // the head is in out, or written
	head        bool // a HEAD request: the body is not sent
	chunked     bool
	cl          int64 // Content-Length the handler set, or -1
	written     int64
	closeAfter  bool
	continued   bool   // 100 Continue was written
	body        []byte // body written before the head went out
	out         []byte // bytes to write, after the head went out
	bufs        *outBufs
	err         error        // writing to the client failed
	keys        []field      // appendFields' scratch
	vals        []string     // HeaderValues
	given       []head.Field // WriteFields': written after the header's fields
	givenDate   bool         // given has a Date
	givenTrail  bool         // given has a Trailer
	trailers    bool         // the head declared trailers, or the header has Trailer: keys
}

func (w *response) reset(c *conn, req *http.Request) {
	if w.header == nil {
		w.header = make(http.Header, 8)
		w.keys = make([]field, 0, 8) // grown by appendFields when an answer has more
	} else {
		clear(w.header)
	}
	*w = response{c: c, req: req, header: w.header, keys: w.keys[:0], vals: w.vals, given: w.given[:0], cl: -1, head: req.Method == http.MethodHead}
}

// HeaderValues lends n strings for the values of the response's header
// fields (serve/upstream's copy of the app's fields), kept from response
// to response as the header map is: the fields are written before the
// next response reuses them, and idle lets go of what they hold.
func (w *response) HeaderValues(n int) []string {
	if cap(w.vals) < n {
		w.vals = make([]string, max(n, 8))
	}
	w.vals = w.vals[:n]
	return w.vals
}

// idle lets go of the request and the header values once the answer is
// out (the header map's room is kept for the next request).
func (w *response) idle() {
	clear(w.header)
	clear(w.vals)
	clear(w.given)
	w.given = w.given[:0]
	w.req = nil
}

// Header is the response's header; the fields given to WriteFields are
// moved into it first.
func (w *response) Header() http.Header {
	if len(w.given) > 0 {
		w.moveGiven()
	}
	return w.header
}

// moveGiven puts the fields given to WriteFields in the header: they are
// written from there if the head has not gone out yet.
func (w *response) moveGiven() {
	for _, f := range w.given {
		w.header[f.Name] = append(w.header[f.Name], f.Value)
	}
	clear(w.given)
	w.given, w.givenDate, w.givenTrail = w.given[:0], false, false
}

// WriteFields is WriteHeader with fs added to the header: the fields are
// written after the header's own, in fs's order, without going through
// the map, and as they are (head.FieldWriter: the caller checked them).
// When a field frames the body otherwise than one plain Content-Length
// does (a second one, one not a plain number, Transfer-Encoding,
// Connection), all go through the map, as the header's own do.
func (w *response) WriteFields(code int, fs []head.Field) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	w.given = append(w.given[:0], fs...)
	cl, viaMap := int64(-1), false
	for _, f := range fs {
		switch f.Name {
		case "Date":
			w.givenDate = true
		case "Trailer":
			w.givenTrail = true
		case "Content-Length":
			n, ok := parseLength(f.Value)
			viaMap = viaMap || !ok || cl >= 0
			cl = n
		case "Transfer-Encoding", "Connection":
			viaMap = true
		}
	}
	if viaMap || code < 200 || cl >= 0 && len(w.header) > 0 && w.header["Content-Length"] != nil {
		w.moveGiven()
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(code)
	if cl >= 0 {
		w.cl = cl
	}
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An interim response goes out at once, with the fields set so far.
		if code == http.StatusContinue {
			w.writeContinue()
			return
		}
		w.grab()
		w.out = w.appendStatus(w.out, code)
		w.out = w.appendFields(w.out)
		w.out = append(w.out, "\r\n"...)
		w.flushOut()
		return
	}
	w.wroteHeader, w.status = true, code
	if v := w.header["Content-Length"]; len(v) == 1 {
		if n, ok := parseLength(v[0]); ok {
			w.cl = n
		}
	}
}

// bodyAllowed: the status may have a body.
func (w *response) bodyAllowed() bool {
	return w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.headSent {
		if len(w.body)+len(p) <= outMax {
			if w.body == nil {
				w.grabBody()
			}
			w.body = append(w.body, p...)
			return len(p), nil
		}
		w.sendHead(false)
	}
	if w.chunked {
		w.out = strconv.AppendInt(w.out, int64(len(p)), 16)
		w.out = append(w.out, "\r\n"...)
	}
	if len(w.out)+len(p) <= outMax {
		w.out = append(w.out, p...)
	} else {
		w.flushOut()
		if w.err == nil {
			_, w.err = w.c.write(p)
		}
	}
	if w.chunked {
		w.out = append(w.out, "\r\n"...)
	}
	if w.err != nil {
		w.closeAfter = true
		return 0, w.err
	}
	return len(p), nil
}

// WriteString saves io.WriteString a copy.
func (w *response) WriteString(s string) (int, error) {
	if !w.headSent && w.wroteHeader && w.bodyAllowed() && !w.head && w.err == nil &&
		(w.cl < 0 || w.written+int64(len(s)) <= w.cl) && len(w.body)+len(s) <= outMax {
		if w.body == nil {
			w.grabBody()
		}
		w.body = append(w.body, s...)
		w.written += int64(len(s))
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// ReadFrom sends src as the body. A body with a Content-Length larger
// than what fits with the head goes by the connection's own ReadFrom
// (sendfile for a file, on a plain TCP connection); the rest is copied.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.c.nc.(io.ReaderFrom)
	if !ok || w.c.hijacked || w.head || !w.bodyAllowed() || w.err != nil || w.cl < 0 || w.cl-w.written <= outMax {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		return io.CopyBuffer(writerOnly{w}, src, *bp)
	}
	if !w.headSent {
		w.sendHead(false)
	}
	w.flushOut()
	if w.err != nil {
		return 0, w.err
	}
	// One *io.LimitedReader around the file, no more: sendfile looks
	// through one only.
	lr := &io.LimitedReader{R: src, N: w.cl - w.written}
	if in, ok := src.(*io.LimitedReader); ok {
		lr.R, lr.N = in.R, min(in.N, lr.N)
		defer func(n0 int64) { in.N -= n0 - lr.N }(lr.N)
	}
	n, err := rf.ReadFrom(lr)
	w.written += n
	if err != nil {
		w.err, w.closeAfter = err, true
	}
	return n, err
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// grab takes the response's buffers, if it has none, and out.
func (w *response) grab() {
	w.takeBufs()
	if w.out == nil {
		w.out = w.bufs.out[:0]
	}
}

func (w *response) takeBufs() {
	if w.bufs == nil {
		w.bufs = outPool.Get().(*outBufs)
	}
}

func (w *response) grabBody() {
	w.takeBufs()
	w.body = w.bufs.body[:0]
}

// sendHead puts the head in out, then the body written so far. final:
// the handler is done, so the body is whole.
func (w *response) sendHead(final bool) {
	w.grab()
	w.headSent = true
	hf := w.gather()
	hf.hasDate = hf.hasDate || w.givenDate
	// Trailers go in a chunked body's last chunk: a body with them is
	// chunked even when it is whole, as net/http's are.
	w.trailers = hf.trailers || w.givenTrail
	allowed := w.bodyAllowed()
	if hf.hasTE && allowed && !w.head && w.cl < 0 {
		w.chunked = len(hf.te) == 1 && hf.te[0] == "chunked"
		if !w.chunked {
			w.closeAfter = true
		}
	} else if w.cl < 0 && allowed {
		switch {
		case final && !w.trailers && (!w.head || w.written > 0):
			w.cl = w.written
			w.setField("Content-Length", []string{strconv.FormatInt(w.written, 10)})
		case w.head || final && !w.trailers:
		case w.req.ProtoAtLeast(1, 1):
			w.chunked = true
			w.setField("Transfer-Encoding", chunkedValue)
		default:
			w.closeAfter = true // an HTTP/1.0 body runs to the close
		}
	}
	if hasToken(hf.conn, "close") {
		w.closeAfter = true
	}
	if w.req.Close || w.c.srv.shutting.Load() {
		w.closeAfter = true
	}
	if b, ok := w.req.Body.(*body); ok && !b.eof && (b.err != nil || b.cont || !b.chunked && b.remain > maxDiscard) {
		w.closeAfter = true // what is left of the body will not be read
	}
	if w.closeAfter {
		if !hasToken(hf.conn, "close") {
			w.setField("Connection", closeValue)
		}
	} else if w.req.ProtoMajor == 1 && w.req.ProtoMinor == 0 {
		w.setField("Connection", keepAliveValue)
	}
	if !hf.hasDate {
		w.setField("Date", date())
	}
	w.out = w.appendStatus(w.out, w.status)
	w.out = w.writeFields(w.out)
	for _, f := range w.given {
		// Valid, as head.FieldWriter requires: written as they are.
		w.out = append(w.out, f.Name...)
		w.out = append(w.out, ": "...)
		w.out = append(w.out, f.Value...)
		w.out = append(w.out, "\r\n"...)
	}
	w.out = append(w.out, "\r\n"...)
	if len(w.body) > 0 {
		if w.chunked {
			w.out = strconv.AppendInt(w.out, int64(len(w.body)), 16)
			w.out = append(w.out, "\r\n"...)
		}
		w.out = append(w.out, w.body...)
		if w.chunked {
			w.out = append(w.out, "\r\n"...)
		}
	}
	w.dropBody()
}

// dropBody is done with the body buffer (release gives it back).
func (w *response) dropBody() {
	if w.body != nil {
		w.bufs.body = w.body[:0]
		w.body = nil
	}
}

// statusLines are the status lines of the codes net/http has a text for,
// made once.
var statusLines = func() (lines [600]string) {
	for code := 100; code < len(lines); code++ {
		if t := http.StatusText(code); t != "" {
			lines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n"
		}
	}
	return lines
}()

var (
	chunkedValue   = []string{"chunked"}
	closeValue     = []string{"close"}
	keepAliveValue = []string{"keep-alive"}
)

func (w *response) appendStatus(b []byte, code int) []byte {
	if code >= 100 && code < len(statusLines) && statusLines[code] != "" {
		return append(b, statusLines[code]...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if t := http.StatusText(code); t != "" {
		b = append(b, t...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendFields writes the header's fields, sorted by name as net/http
// does; a nil value writes nothing.
func (w *response) appendFields(b []byte) []byte {
	w.gather()
	return w.writeFields(b)
}

// headFields is what sendHead needs to know of the header's fields, found
// in the pass that gathers them for writing rather than by a look-up each.
type headFields struct {
	te, conn       []string // Transfer-Encoding's, Connection's values
	hasTE, hasDate bool     // the header has the name, with values or nil
	trailers       bool     // a Trailer field, or a key with http.TrailerPrefix
}

// gather puts the header's fields that have values in w.keys, and notes
// those the head's framing depends on.
func (w *response) gather() (hf headFields) {
	keys := w.keys[:0]
	for k, vv := range w.header {
		switch k {
		case "Transfer-Encoding":
			hf.te, hf.hasTE = vv, true
		case "Connection":
			hf.conn = vv
		case "Date":
			hf.hasDate = true
		case "Trailer":
			hf.trailers = true
		default:
			if strings.HasPrefix(k, http.TrailerPrefix) {
				hf.trailers = true
				continue // a trailer, not in the head
			}
		}
		if len(vv) > 0 {
			keys = append(keys, field{k, vv})
		}
	}
	w.keys = keys
	return hf
}

// setField sets name's values in the header and among the gathered
// fields.
func (w *response) setField(name string, vv []string) {
	w.header[name] = vv
	for i := range w.keys {
		if w.keys[i].name == name {
			w.keys[i].values = vv
			return
		}
	}
	w.keys = append(w.keys, field{name, vv})
}

// writeFields appends the gathered fields, sorted by name, and empties
// the gathering.
func (w *response) writeFields(b []byte) []byte {
	keys := w.keys
	sortFields(keys)
	for _, f := range keys {
		for _, v := range f.values {
			b = appendField(b, f.name, v)
		}
	}
	clear(keys) // nothing of this answer kept
	w.keys = keys[:0]
	return b
}

// appendField appends a field line, with a line break in the value made a
// space and the value trimmed, as net/http writes them.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	if fieldbytes.Controls(v) && strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	if !fieldbytes.Trimmed(v) {
		v = strings.TrimSpace(v)
	}
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// parseLength is a Content-Length value's number: strconv.ParseInt's
// (base 10, not negative), without its generality for plain digits.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n >= 0
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil && n >= 0
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// sortFields sorts fs by name: by insertion while they are few (an
// answer's most often are), which costs less than slices.SortFunc's
// calls of a comparison.
func sortFields(fs []field) {
	if len(fs) > 12 {
		slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.name, b.name) })
		return
	}
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].name < fs[j-1].name; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// field is a header field's name and values, for appendFields to write
// in the names' order without looking each up again.
type field struct {
	name   string
	values []string
}

// flushOut writes what out holds.
func (w *response) flushOut() {
	if len(w.out) == 0 {
		return
	}
	if w.err == nil {
		_, w.err = w.c.write(w.out)
		if w.err != nil {
			w.closeAfter = true
		}
	}
	w.out = w.out[:0]
}

// Flush sends the head and what was written so far.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush, saying whether writing failed.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(false)
	}
	w.flushOut()
	return w.err
}

// finish completes the response once the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(true)
	}
	if w.chunked {
		w.out = append(w.out, "0\r\n"...)
		if w.trailers {
			w.out = w.appendTrailers(w.out)
		}
		w.out = append(w.out, "\r\n"...)
	}
	w.flushOut()
	if w.cl >= 0 && w.bodyAllowed() && !w.head && w.written != w.cl {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	w.release()
}

// appendTrailers appends the trailer fields, as net/http's server sends
// them: each key with http.TrailerPrefix, without it, and each name the
// head's Trailer fields declared (but those that frame the message) with
// the values the header has for it now.
func (w *response) appendTrailers(b []byte) []byte {
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && name != "" {
			name = http.CanonicalHeaderKey(name)
			for _, v := range vv {
				b = appendField(b, name, v)
			}
		}
	}
	declared := func(list string) {
		for name := range strings.SplitSeq(list, ",") {
			switch name = http.CanonicalHeaderKey(strings.TrimSpace(name)); name {
			case "", "Transfer-Encoding", "Content-Length", "Trailer":
				continue
			}
			for _, v := range w.header[name] {
				b = appendField(b, name, v)
			}
		}
	}
	for _, v := range w.header["Trailer"] {
		declared(v)
	}
	for _, f := range w.given {
		if f.Name == "Trailer" {
			declared(f.Value)
		}
	}
	return b
}

// flushOnAbort sends what was written of a response whose handler
// panicked (the connection is closed next).
func (w *response) flushOnAbort() {
	if w.headSent {
		w.flushOut()
	}
	w.dropBody()
	w.release()
}

// release gives the response's buffers back.
func (w *response) release() {
	w.dropBody()
	if w.bufs != nil {
		if w.out != nil {
			w.bufs.out = w.out[:0]
		}
		outPool.Put(w.bufs)
		w.bufs, w.out = nil, nil
	}
}

// OnClientGone has f called once, from another goroutine, if the client
// goes away while the request runs (as the request's context is then
// cancelled): context.AfterFunc on the request's context, without its
// allocations. stop's Stop removes f and reports whether it had not
// run.
func (w *response) OnClientGone(f func()) (stop interface{ Stop() bool }) {
	w.c.watch.onGone(f)
	return &w.c.watch
}

// writeContinue answers Expect: 100-continue, once, before the head.
func (w *response) writeContinue() {
	if w.continued || w.wroteHeader || w.c.hijacked {
		return
	}
	w.continued = true
	if b, ok := w.req.Body.(*body); ok {
		b.cont = false
	}
	w.grab()
	w.out = append(w.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
	w.flushOut()
}

// Hijack hands the connection over, after what was written of the
// response; its reader holds the bytes the client sent that were not
// read yet.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader && !w.c.hijacked {
		if !w.headSent {
			w.sendHead(false)
		}
		w.flushOut()
	}
	nc, rest, err := w.c.hijack()
	if err != nil {
		return nil, nil, err
	}
	w.dropBody()
	w.release()
	rd := bufio.NewReaderSize(&prefixed{rest: rest, Conn: nc}, max(len(rest), bufSize))
	if len(rest) > 0 {
		_, _ = rd.Peek(len(rest))
	}
	return nc, bufio.NewReadWriter(rd, bufio.NewWriter(nc)), nil
}

// prefixed reads rest, then from the connection.
type prefixed struct {
	rest []byte
	net.Conn
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		p.rest = p.rest[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

func (w *response) SetReadDeadline(t time.Time) error  { return w.c.nc.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex: the request body can always be read while the
// response is written.
func (w *response) EnableFullDuplex() error { return nil }

// date returns the Date field's value for now, made once a second (the
// slice is shared: never written to).
func date() []string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.sec == now {
		return d.v
	}
	d := &dateVal{sec: now, v: []string{time.Unix(now, 0).UTC().Format(http.TimeFormat)}}
	dateCache.Store(d)
	return d.v
}

type dateVal struct {
	sec int64
	v   []string
}

var dateCache atomic.Pointer[dateVal]
