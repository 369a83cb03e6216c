package httpcheck

import "fmt"

// Limits are Gunicorn's request limits, with Gunicorn's names, defaults and
// special values (reference/gunicorn.md section 1.3). The zero Limits is
// Gunicorn's defaults except RequestLine, whose 0 means "no limit"; use
// DefaultLimits for all of Gunicorn's defaults.
type Limits struct {
	// RequestLine is limit_request_line (default 4094): the longest request
	// line, in bytes without its CRLF, else 414. Values of 8190 and more
	// become 8190, negative ones 8190, as in Gunicorn. 0 means no limit in
	// Gunicorn's Python parser and 1 MiB in its C parser; gsup uses 1 MiB,
	// because net/http needs a bound for its header buffer.
	RequestLine int
	// Fields is limit_request_fields (default 100): the most header field
	// lines, else 431. 0, negative values and values over 32768 mean 32768.
	Fields int
	// FieldSize is limit_request_field_size (default 8190): the longest
	// header field line in bytes, counting its CRLF as Gunicorn does, else
	// 431. 0 and negative values mean 8190: Gunicorn's documentation says
	// 0 is unlimited, but its code has always used 8190.
	FieldSize int
	// Body is max_body: the largest request body in bytes, else 413.
	// 0 means no limit (Gunicorn has none).
	Body int64
}

// DefaultLimits are Gunicorn's defaults.
var DefaultLimits = Limits{RequestLine: 4094, Fields: 100, FieldSize: 8190}

const (
	maxRequestLine    = 8190    // Gunicorn's MAX_REQUEST_LINE
	unlimitedLine     = 1 << 20 // Gunicorn's C parser's meaning of 0
	maxFields         = 32768   // Gunicorn's MAX_HEADERS
	defaultFieldSize  = 8190    // Gunicorn's DEFAULT_MAX_HEADERFIELD_SIZE
	maxChunkLineBytes = 4096    // net/http's own limit on a chunk-size line
)

// normalize applies Gunicorn's special values: every field of the result
// is a positive limit (Body: 0 still means none).
func (l Limits) normalize() Limits {
	switch {
	case l.RequestLine == 0:
		l.RequestLine = unlimitedLine
	case l.RequestLine < 0 || l.RequestLine >= maxRequestLine:
		l.RequestLine = maxRequestLine
	}
	if l.Fields <= 0 || l.Fields > maxFields {
		l.Fields = maxFields
	}
	if l.FieldSize <= 0 {
		l.FieldSize = defaultFieldSize
	}
	if l.Body < 0 {
		l.Body = 0
	}
	return l
}

// MaxHeaderBytes is the largest request head under l: Gunicorn's header
// buffer, fields*(field_size+2)+4, plus the request line and its CRLF,
// which Gunicorn reads apart. It is the bound of serve/h1's head buffer,
// and http.Server.MaxHeaderBytes of the HTTP/2 layer, so that no 431 of
// a server's own fires before this package's checks do.
func MaxHeaderBytes(l Limits) int {
	n := l.normalize()
	return n.Fields*(n.FieldSize+2) + 4 + n.RequestLine + 2
}

// Error is a request the front refuses: Status is the HTTP status to
// answer (400, 413, 414, 431, 505) and Reason says why, in a few words
// safe to show to the client. A request body's Read returns an *Error
// when its chunked framing or trailer is invalid (serve/h1), so the
// handler reading the body can answer Status.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("refused request (%d): %s", e.Status, e.Reason)
}
