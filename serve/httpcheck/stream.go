package httpcheck

import (
	"fmt"
	"io"
	"net"
	"time"

	"gsup/serve/head"
)

// Stream checks the bytes a client sends on one connection, request after
// request, for a connection layer that reads them itself (serve/h1).
// Feed it every byte read from the client, in order, once.
type Stream struct{ sc scanner }

// Verdict is what Feed found.
type Verdict uint8

const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

const (
	// Fine: every byte given may be handed on.
	Fine Verdict = iota
	// RefuseHead: the bytes from the index Feed returned are part of a
	// request head to refuse with Refusal.
	RefuseHead
	// RefuseBody: the bytes from the index Feed returned are part of a
	// request body (its chunked framing or trailer) to refuse.
	RefuseBody
	// Await: the bytes up to the index Feed returned end a request that
	// may switch protocols (an Upgrade or a CONNECT); what follows is not
	// to be fed until Resume says what the answer was.
	Await
)

// NewStream returns a Stream checking against lim.
func NewStream(lim Limits) *Stream {
	s := new(Stream)
	s.Init(lim)
	return s
}

// Init makes s a new Stream checking against lim: for a Stream held in
// another struct rather than allocated on its own.
func (s *Stream) Init(lim Limits) { s.sc = newScanner(lim.normalize()) }

// Feed checks b, the next bytes read from the client. It returns len(b)
// and Fine, or the number of bytes of b that may be handed on and why the
// rest may not.
func (s *Stream) Feed(b []byte) (int, Verdict) {
	n, ev := s.sc.feed(b)
	switch ev {
	case evRefuseHead:
		return n, RefuseHead
	case evRefuseBody:
		return n, RefuseBody
	case evAwait:
		return n, Await
	}
	return n, Fine
}

// Checked are the size limits Feed holds every request head to (the
// request line, the field lines and each one's size), for the request's
// head.Names: Check need not count again what Feed counted exactly.
func (s *Stream) Checked() head.Limits {
	l := s.sc.lim
	return head.Limits{RequestLine: l.RequestLine, Fields: l.Fields, FieldSize: l.FieldSize}
}

// Refusal is the answer to the refused request once Feed returned
// RefuseHead or RefuseBody.
func (s *Stream) Refusal() Error { return Error{Status: s.sc.status, Reason: s.sc.reason} }

// Resume continues after Await: switched says the connection changed
// protocols (nothing more is checked), else the next request follows.
func (s *Stream) Resume(switched bool) { s.sc.resume(switched) }

// Response is the whole answer to a refused request, with "Connection:
// close".
func (e Error) Response() []byte { return refusalResponse(e) }

// Linger half-closes c and reads what the client still sends, for up to
// 500 ms and 256 KiB, so that the client reads an answer just written
// rather than a reset; the caller then closes c.
func Linger(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c, lingerBytes)
}

// Body is the body of the answer to a refused request head.
func (e Error) Body() string {
	return fmt.Sprintf("%d %s: %s\n", e.Status, statusText(e.Status), e.Reason)
}

// refusalResponse is the answer to a refused request.
func refusalResponse(ref Error) []byte {
	body := ref.Body()
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		ref.Status, statusText(ref.Status), len(body), body)
}

func statusText(code int) string {
	switch code {
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 431:
		return "Request Header Fields Too Large"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Bad Request"
}
