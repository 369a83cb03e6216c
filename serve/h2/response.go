package h2

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	// sendAt is how much body a response holds before it sends it as
	// DATA.
	sendAt = 16 << 10
	// sendQuantum bounds the DATA one stream writes in one hold of the
	// write lock: a large answer lets the others (and the connection's
	// own frames) through between its quanta.
	sendQuantum = 64 << 10
)

// responseWriter is a stream's http.ResponseWriter. Its fields are the
// handler's, but sent, which is also read under the connection's write
// lock by a body read that sends 100 Continue.
type responseWriter struct {
	st       *stream
	hdr      http.Header
	status   int
	wrote    bool // the final status is set
	sent     bool // HEADERS went out (set under wmu)
	buf      []byte
	trailers []string // announced by the Trailer field when HEADERS went out
}

func (w *responseWriter) Header() http.Header { return w.hdr }

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wrote {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.status, w.wrote = code, true
}

// bodyAllowed reports whether the answer may have a body.
func (w *responseWriter) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *responseWriter) Write(p []byte) (int, error) { return writeBody(w, p) }

func (w *responseWriter) WriteString(s string) (int, error) { return writeBody(w, s) }

// writeBody adds p to the body, and sends the body once it holds sendAt.
func writeBody[T string | []byte](w *responseWriter, p T) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.st.req.Method == http.MethodHead {
		return len(p), nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= sendAt {
		if err := w.send(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *responseWriter) Flush() { w.FlushError() }

// FlushError sends the status, the fields and what the body holds.
func (w *responseWriter) FlushError() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(false)
}

// EnableFullDuplex: a stream's body can always be read while its answer
// is written.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// SetReadDeadline bounds the reads of the request's body.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	if w.st.body != nil {
		w.st.body.setDeadline(t)
	}
	return nil
}

// finish ends the answer once the handler returned.
func (w *responseWriter) finish() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent && w.bodyAllowed() && w.st.req.Method != http.MethodHead && len(w.hdr["Trailer"]) == 0 && !hasTrailerPrefix(w.hdr) {
		if _, ok := w.hdr["Content-Length"]; !ok {
			w.hdr["Content-Length"] = []string{strconv.Itoa(len(w.buf))}
		}
	}
	w.send(true)
}

func hasTrailerPrefix(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// send sends HEADERS if they have not gone, then what the body holds as
// DATA, as the windows let it; end ends the stream (after the trailers,
// if any). A stream whose window stays shut SendTimeout is reset.
func (w *responseWriter) send(end bool) error {
	st, sc := w.st, w.st.sc
	data := w.buf
	defer func() { w.buf = w.buf[:0] }()
	var trailers []hpack.HeaderField
	if end {
		trailers = w.trailerFields()
	}
	for {
		var chunk []byte
		if len(data) > 0 {
			n, err := st.take(len(data))
			if err != nil {
				if err == errWindowShut {
					sc.resetStream(st.id, http2.ErrCodeCancel)
				}
				return err
			}
			chunk, data = data[:n], data[n:]
		}
		last := end && len(data) == 0 && len(trailers) == 0
		err := sc.write(func() error {
			if !sc.alive(st) {
				return errStreamReset
			}
			if !w.sent {
				w.sent = true
				w.trailers = announced(w.hdr)
				sc.encodeFields(w.status, w.hdr, w.trailers)
				if err := sc.writeBlock(st.id, last && len(chunk) == 0); err != nil {
					return err
				}
				if len(chunk) == 0 {
					if last {
						sc.endSent(st)
					}
					return nil
				}
			} else if len(chunk) == 0 && !last {
				return nil
			}
			max := int(sc.maxFrame.Load())
			for len(chunk) > max {
				if err := sc.fr.WriteData(st.id, false, chunk[:max]); err != nil {
					return err
				}
				chunk = chunk[max:]
			}
			if err := sc.fr.WriteData(st.id, last, chunk); err != nil {
				return err
			}
			if last {
				sc.endSent(st)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(data) == 0 {
			break
		}
	}
	if len(trailers) == 0 {
		return nil
	}
	return sc.write(func() error {
		if !sc.alive(st) {
			return errStreamReset
		}
		sc.hbuf.Reset()
		for _, f := range trailers {
			sc.henc.WriteField(f)
		}
		if err := sc.writeBlock(st.id, true); err != nil {
			return err
		}
		sc.endSent(st)
		return nil
	})
}

// endSent notes that st's last frame is written, not sent yet (under
// wmu): a stream the client has ended too is closed from now on, so that
// a frame the client sends on it once it has the answer finds it closed.
func (sc *conn) endSent(st *stream) {
	sc.mu.Lock()
	if st.remoteDone {
		sc.endLocked(st)
	}
	sc.mu.Unlock()
}

// trailerFields returns the trailers the handler set: the fields the
// Trailer field announced, and those named with http.TrailerPrefix.
func (w *responseWriter) trailerFields() []hpack.HeaderField {
	var out []hpack.HeaderField
	names := w.trailers
	if !w.sent {
		names = announced(w.hdr)
	}
	for _, k := range names {
		for _, v := range w.hdr[k] {
			out = append(out, hpack.HeaderField{Name: commonLower(k), Value: cleanValue(v)})
		}
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && validName(name) {
			for _, v := range vv {
				out = append(out, hpack.HeaderField{Name: strings.ToLower(name), Value: cleanValue(v)})
			}
		}
	}
	return out
}

// announced returns the canonical names the Trailer field of h lists.
func announced(h http.Header) []string {
	var out []string
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" && validName(k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// informational sends a 1xx answer with the fields set so far (103 Early
// Hints).
func (w *responseWriter) informational(code int) {
	st, sc := w.st, w.st.sc
	sc.write(func() error {
		if w.sent || !sc.alive(st) {
			return nil
		}
		sc.encodeFields(code, w.hdr, nil)
		return sc.writeBlock(st.id, false)
	})
}

// continue100 sends 100 Continue, unless the answer has begun.
func (w *responseWriter) continue100() {
	st, sc := w.st, w.st.sc
	sc.write(func() error {
		if w.sent || !sc.alive(st) {
			return nil
		}
		sc.encodeFields(http.StatusContinue, nil, nil)
		return sc.writeBlock(st.id, false)
	})
}

// alive reports whether st is open on the connection.
func (sc *conn) alive(st *stream) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.streams[st.id] == st
}

// take waits until st may send at least one byte, and takes up to n
// bytes (at most sendQuantum) from its window and the connection's.
func (st *stream) take(n int) (int, error) {
	sc := st.sc
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var deadline time.Time
	for {
		switch {
		case sc.closed:
			return 0, errConnClosed
		case sc.streams[st.id] != st:
			return 0, errStreamReset
		}
		if w := min(st.sendWindow, sc.sendWindow); w > 0 {
			m := min(int64(n), w, sendQuantum)
			st.sendWindow -= m
			sc.sendWindow -= m
			return int(m), nil
		}
		if d := sc.s.SendTimeout; d > 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(d)
				t := time.AfterFunc(d, func() {
					sc.mu.Lock()
					sc.flow.Broadcast()
					sc.mu.Unlock()
				})
				defer t.Stop()
			} else if !time.Now().Before(deadline) {
				return 0, errWindowShut
			}
		}
		sc.flow.Wait()
	}
}

// encodeFields encodes the status and the fields of h into hbuf (under
// wmu): the connection-specific ones and trailers (those named with
// http.TrailerPrefix, and those in trailers, which the Trailer field
// announced) are left out, and a Date added if h has none.
func (sc *conn) encodeFields(status int, h http.Header, trailers []string) {
	sc.hbuf.Reset()
	sc.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	for k, vv := range h {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		}
		if len(trailers) > 0 && slices.Contains(trailers, k) {
			continue
		}
		name, ok := commonLowerOf[k]
		if !ok {
			if strings.HasPrefix(k, http.TrailerPrefix) || !validName(k) {
				continue
			}
			name = strings.ToLower(k)
		}
		for _, v := range vv {
			sc.henc.WriteField(hpack.HeaderField{Name: name, Value: cleanValue(v)})
		}
	}
	if status >= 200 {
		if _, ok := h["Date"]; !ok {
			sc.henc.WriteField(hpack.HeaderField{Name: "date", Value: date()})
		}
	}
}

// writeBlock writes the encoded block in hbuf as HEADERS and as many
// CONTINUATIONs as the client's frame size needs (under wmu).
func (sc *conn) writeBlock(id uint32, end bool) error {
	block := sc.hbuf.Bytes()
	max := int(sc.maxFrame.Load())
	first := block[:min(len(block), max)]
	block = block[len(first):]
	if err := sc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0}); err != nil {
		return err
	}
	for len(block) > 0 {
		frag := block[:min(len(block), max)]
		block = block[len(frag):]
		if err := sc.fr.WriteContinuation(id, len(block) == 0, frag); err != nil {
			return err
		}
	}
	return nil
}

func validName(k string) bool { return httpguts.ValidHeaderFieldName(k) }

// cleanValue returns v with CR, LF and NUL as spaces: a value never ends a
// field early.
func cleanValue(v string) string {
	if !strings.ContainsAny(v, "\r\n\x00") {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, v)
}

// statusText returns code in decimal.
func statusText(code int) string {
	if code >= 100 && code < 600 {
		return statuses[code-100]
	}
	return strconv.Itoa(code)
}

var statuses = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return s
}()

// date returns the Date field's value for now, made once a second.
func date() string {
	now := time.Now().Unix()
	if d := dateNow.Load(); d != nil && d.sec == now {
		return d.v
	}
	d := &dated{sec: now, v: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateNow.Store(d)
	return d.v
}

type dated struct {
	sec int64
	v   string
}

var dateNow atomic.Pointer[dated]
