package accesslog

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gsup/internal/fieldbytes"
	"gsup/serve/head"
)

// Entry is what the front knows about one finished request.
type Entry struct {
	// Request is the request as received; nil prints "-" for every
	// request atom.
	Request *http.Request
	// RemoteAddr is the client address as the front decided it (the PROXY
	// client, else the socket peer), without port; "" (a UNIX socket)
	// prints "-".
	RemoteAddr string
	RemotePort string
	// Status is the status sent to the client: 499 for a client abort,
	// 0 when none was sent (prints "-").
	Status int
	// BytesSent counts response body bytes sent; negative means unknown
	// and prints "-".
	BytesSent      int64
	ResponseHeader http.Header
	// Start is when the request arrived; the t atom prints Start+Duration
	// (when the line is written, as in Gunicorn) in Start's location.
	Start    time.Time
	Duration time.Duration
	// PID is printed by the p atom; 0 means gsup's own pid.
	PID int
	// Scheme is "http" or "https" ({wsgi.url_scheme}e); "" means "http".
	Scheme string

	// The request head's names filter (head.NamesOf), asked once.
	names  *head.Names
	looked bool
}

// field returns the request's values of a canonical field name.
func (e *Entry) field(n head.Name) []string {
	if !e.looked {
		e.names, e.looked = head.NamesOf(e.Request), true
	}
	return e.names.Lookup(e.Request.Header, n)
}

// Append appends the line for e, with its trailing newline, to dst and
// returns the extended slice. It does not allocate for the default format
// once dst has room (a Basic user name longer than 96 bytes is the
// exception), and it is safe for concurrent use.
func (f *Format) Append(dst []byte, e *Entry) []byte {
	if f.combined {
		return f.appendCombined(dst, e)
	}
	for i := range f.segs {
		s := &f.segs[i]
		dst = append(dst, s.pre...)
		start := len(dst)
		if s.conv == 'd' && s.kind != kUnknown {
			if n, ok := f.number(s.kind, e); ok {
				dst = appendInt(dst, n, s)
				continue
			}
		}
		dst = f.appendAtom(dst, s, e)
		if !s.simpleS {
			dst = shape(dst, start, s)
		}
	}
	dst = append(dst, f.tail...)
	return append(dst, '\n')
}

// appendCombined is Append for DefaultFormat,
// `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`, the
// atoms written in turn as appendAtom writes them (every access log that
// keeps Gunicorn's default; TestCombinedIsTheLoops).
func (f *Format) appendCombined(dst []byte, e *Entry) []byte {
	r := e.Request
	dst = appendOr(dst, e.RemoteAddr)
	if r == nil {
		dst = append(dst, " - - "...)
	} else {
		dst = append(dst, " - "...)
		dst = appendBasicUser(dst, e.field(head.Asked.Authorization))
		dst = append(dst, ' ')
	}
	dst = f.appendTime(dst, e.Start.Add(e.Duration))
	if r == nil {
		dst = append(dst, ` "-" `...)
	} else {
		dst = append(dst, ' ', '"')
		dst = appendEscaped(dst, r.Method)
		dst = append(dst, ' ')
		dst = appendEscaped(dst, rawURI(r))
		dst = append(dst, ' ')
		dst = appendEscaped(dst, r.Proto)
		dst = append(dst, '"', ' ')
	}
	if e.Status == 0 {
		dst = append(dst, '-')
	} else {
		dst = strconv.AppendInt(dst, int64(e.Status), 10)
	}
	dst = append(dst, ' ')
	if e.BytesSent < 0 {
		dst = append(dst, '-')
	} else {
		dst = strconv.AppendInt(dst, e.BytesSent, 10)
	}
	if r == nil {
		return append(dst, ` "-" "-"`+"\n"...)
	}
	dst = append(dst, ' ', '"')
	dst = appendJoined(dst, e.field(head.Asked.Referer))
	dst = append(dst, '"', ' ', '"')
	dst = appendJoined(dst, e.field(head.Asked.UserAgent))
	return append(dst, '"', '\n')
}

// number returns the value of a numeric atom.
func (f *Format) number(k kind, e *Entry) (int64, bool) {
	switch k {
	case kStatus:
		return int64(e.Status), e.Status != 0
	case kBytes:
		return e.BytesSent, e.BytesSent >= 0
	case kSeconds:
		return int64(e.Duration / time.Second), true
	case kMillis:
		return int64(e.Duration / time.Millisecond), true
	case kMicros:
		return int64(e.Duration / time.Microsecond), true
	}
	return 0, false
}

// appendAtom appends the escaped text of one atom, or "-" when it has no
// value.
func (f *Format) appendAtom(dst []byte, s *segment, e *Entry) []byte {
	r := e.Request
	switch s.kind {
	case kRemoteAddr:
		return appendOr(dst, e.RemoteAddr)
	case kIdent:
		return append(dst, '-')
	case kUser:
		if r == nil {
			return append(dst, '-')
		}
		return appendBasicUser(dst, e.field(head.Asked.Authorization))
	case kTime:
		return f.appendTime(dst, e.Start.Add(e.Duration))
	case kRequestLine:
		if r == nil {
			return append(dst, '-')
		}
		dst = appendEscaped(dst, r.Method)
		dst = append(dst, ' ')
		dst = appendEscaped(dst, rawURI(r))
		dst = append(dst, ' ')
		return appendEscaped(dst, r.Proto)
	case kMethod:
		if r == nil {
			return append(dst, '-')
		}
		return appendOr(dst, r.Method)
	case kPath:
		if r == nil || r.URL == nil {
			return append(dst, '-')
		}
		return appendEscaped(dst, r.URL.Path)
	case kQuery:
		if r == nil || r.URL == nil {
			return append(dst, '-')
		}
		return appendEscaped(dst, r.URL.RawQuery)
	case kProto:
		if r == nil {
			return append(dst, '-')
		}
		return appendOr(dst, r.Proto)
	case kStatus:
		if e.Status == 0 {
			return append(dst, '-')
		}
		return strconv.AppendInt(dst, int64(e.Status), 10)
	case kBytes, kBytesCLF:
		// Gunicorn prints "0" for an empty body in both (its test_logger
		// test_atoms_zero_bytes); CLF's "-" is only for an unknown count.
		if e.BytesSent < 0 {
			return append(dst, '-')
		}
		return strconv.AppendInt(dst, e.BytesSent, 10)
	case kReferer:
		if r == nil {
			return append(dst, '-')
		}
		return appendJoined(dst, e.field(head.Asked.Referer))
	case kUserAgent:
		if r == nil {
			return append(dst, '-')
		}
		return appendJoined(dst, e.field(head.Asked.UserAgent))
	case kSeconds:
		return strconv.AppendInt(dst, int64(e.Duration/time.Second), 10)
	case kMillis:
		return strconv.AppendInt(dst, int64(e.Duration/time.Millisecond), 10)
	case kMicros:
		return strconv.AppendInt(dst, int64(e.Duration/time.Microsecond), 10)
	case kDecimal:
		us := int64(e.Duration / time.Microsecond)
		dst = strconv.AppendInt(dst, us/1e6, 10)
		dst = append(dst, '.')
		frac := us % 1e6
		for d := int64(100000); d > 1 && frac < d; d /= 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, frac, 10)
	case kPID:
		pid := e.PID
		if pid == 0 {
			pid = f.pid
		}
		dst = append(dst, '<')
		dst = strconv.AppendInt(dst, int64(pid), 10)
		return append(dst, '>')
	case kReqHeader:
		if r == nil {
			return append(dst, '-')
		}
		return appendLast(dst, requestHeader(e, s.name))
	case kRespHeader:
		return appendLast(dst, e.ResponseHeader[s.text])
	case kEnv:
		return appendEnv(dst, s, e)
	}
	return append(dst, '-')
}

// timeText is the t atom's text for one second in one location.
type timeText struct {
	unix int64
	loc  *time.Location
	n    int
	b    [40]byte
}

// appendTime appends t as [02/Jan/2006:15:04:05 -0700], reusing the text
// of the last second formatted (one allocation per new second).
func (f *Format) appendTime(dst []byte, t time.Time) []byte {
	unix, loc := t.Unix(), t.Location()
	if c := f.lastTime.Load(); c != nil && c.unix == unix && c.loc == loc {
		return append(dst, c.b[:c.n]...)
	}
	c := &timeText{unix: unix, loc: loc}
	text := t.AppendFormat(c.b[:0], "[02/Jan/2006:15:04:05 -0700]")
	if len(text) > len(c.b) {
		return append(dst, text...) // a year past 9999: not worth caching
	}
	c.n = len(text)
	f.lastTime.Store(c)
	return append(dst, text...)
}

// requestHeader returns the values of a request header, including the ones
// net/http moves out of Request.Header.
func requestHeader(e *Entry, n head.Name) []string {
	r := e.Request
	switch n.S {
	case "Host":
		if r.Host == "" {
			return nil
		}
		return []string{r.Host}
	case "Transfer-Encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ", ")}
		}
	}
	return e.field(n)
}

func rawURI(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	if r.URL != nil {
		return r.URL.RequestURI()
	}
	return ""
}

func appendEnv(dst []byte, s *segment, e *Entry) []byte {
	r := e.Request
	switch s.env {
	case envProcess:
		if !s.envSet {
			return append(dst, '-')
		}
		return appendEscaped(dst, s.text)
	case envRemoteAddr:
		return appendOr(dst, e.RemoteAddr)
	case envRemotePort:
		return appendOr(dst, e.RemotePort)
	case envServerSoftware:
		return append(dst, "gsup"...)
	case envURLScheme:
		if e.Scheme == "" {
			return append(dst, "http"...)
		}
		return appendEscaped(dst, e.Scheme)
	}
	if r == nil {
		return append(dst, '-')
	}
	switch s.env {
	case envServerName, envServerPort:
		name, port := serverNamePort(r, e.Scheme)
		if s.env == envServerName {
			return appendOr(dst, name)
		}
		return appendOr(dst, port)
	case envServerProtocol:
		return appendOr(dst, r.Proto)
	case envRequestMethod:
		return appendOr(dst, r.Method)
	case envPathInfo:
		if r.URL == nil {
			return append(dst, '-')
		}
		return appendEscaped(dst, r.URL.Path)
	case envScriptName:
		return dst // always present and empty: gsup mounts apps at the root
	case envQueryString:
		if r.URL == nil {
			return append(dst, '-')
		}
		return appendEscaped(dst, r.URL.RawQuery)
	case envRawURI:
		return appendOr(dst, rawURI(r))
	case envContentType:
		return appendJoined(dst, e.field(head.Asked.ContentType))
	case envContentLength:
		return appendJoined(dst, requestHeader(e, head.Asked.ContentLength))
	case envHTTP:
		return appendJoined(dst, requestHeader(e, s.name))
	}
	return append(dst, '-')
}

// serverNamePort follows Gunicorn's SERVER_NAME and SERVER_PORT: the
// listener's address on TCP, else the Host header with the scheme's default
// port.
func serverNamePort(r *http.Request, scheme string) (string, string) {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return a.IP.String(), strconv.Itoa(a.Port)
	}
	host := r.Host
	if host == "" {
		return "", ""
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		return h, p
	}
	if scheme == "https" {
		return host, "443"
	}
	return host, "80"
}

// appendOr appends v escaped, or "-" when v is empty.
func appendOr(dst []byte, v string) []byte {
	if v == "" {
		return append(dst, '-')
	}
	return appendEscaped(dst, v)
}

// appendLast appends the last value, as Gunicorn's {name}i keeps the last
// field line of a repeated header.
func appendLast(dst []byte, vv []string) []byte {
	if len(vv) == 0 {
		return append(dst, '-')
	}
	return appendEscaped(dst, vv[len(vv)-1])
}

// appendJoined appends the values joined by ",", as Gunicorn's WSGI
// environ holds a repeated header, or "-" when there are none.
func appendJoined(dst []byte, vv []string) []byte {
	if len(vv) == 0 {
		return append(dst, '-')
	}
	for i, v := range vv {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEscaped(dst, v)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends v with `"` as `\"` (Gunicorn's SafeAtoms) and
// control bytes as \xHH.
func appendEscaped(dst []byte, v string) []byte {
	if !fieldbytes.Escaped(v) {
		return append(dst, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			dst = append(dst, '\\', '"')
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendBasicUser appends the user name of an "Authorization: Basic"
// header: the base64-decoded credentials up to the first ':'. As in
// Gunicorn, a header that is not Basic, not valid base64 or not UTF-8, or
// an empty name, prints "-". Gunicorn reads the WSGI environ, where repeated
// Authorization lines are joined with ",", so only a single line can decode.
func appendBasicUser(dst []byte, vv []string) []byte {
	if len(vv) != 1 {
		return append(dst, '-')
	}
	scheme, cred, ok := strings.Cut(vv[0], " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return append(dst, '-')
	}
	cred = strings.TrimSpace(cred)
	var buf [96]byte
	dec, ok := decodeBase64(buf[:0], cred)
	if !ok || !utf8.Valid(dec) {
		return append(dst, '-')
	}
	user := dec
	for i, c := range dec {
		if c == ':' {
			user = dec[:i]
			break
		}
	}
	if len(user) == 0 {
		return append(dst, '-')
	}
	return appendEscaped(dst, string(user))
}

// decodeBase64 decodes standard, padded base64 as Python's b64decode does
// by default, appending to dst (which grows only past its capacity).
func decodeBase64(dst []byte, s string) ([]byte, bool) {
	if len(s)%4 != 0 {
		return dst, false
	}
	for i := 0; i < len(s); i += 4 {
		var v uint32
		pad := 0
		for j := 0; j < 4; j++ {
			c := s[i+j]
			var d uint32
			switch {
			case 'A' <= c && c <= 'Z':
				d = uint32(c - 'A')
			case 'a' <= c && c <= 'z':
				d = uint32(c-'a') + 26
			case '0' <= c && c <= '9':
				d = uint32(c-'0') + 52
			case c == '+':
				d = 62
			case c == '/':
				d = 63
			case c == '=' && i+4 == len(s) && j >= 2:
				pad++
				continue
			default:
				return dst, false
			}
			if pad > 0 {
				return dst, false // data after padding
			}
			v |= d << (18 - 6*uint(j))
		}
		dst = append(dst, byte(v>>16))
		if pad < 2 {
			dst = append(dst, byte(v>>8))
		}
		if pad < 1 {
			dst = append(dst, byte(v))
		}
	}
	return dst, true
}

// appendInt formats n as Python's %d does with the segment's flags, width
// and precision.
func appendInt(dst []byte, n int64, s *segment) []byte {
	if s.width < 0 && s.prec < 0 && !s.plus && !s.space {
		return strconv.AppendInt(dst, n, 10)
	}
	var digits [24]byte
	u := uint64(n)
	if n < 0 {
		u = -u
	}
	ds := strconv.AppendUint(digits[:0], u, 10)
	var sign []byte
	switch {
	case n < 0:
		sign = []byte{'-'}
	case s.plus:
		sign = []byte{'+'}
	case s.space:
		sign = []byte{' '}
	}
	zeros := max(s.prec-len(ds), 0)
	pad := max(s.width-(len(sign)+zeros+len(ds)), 0)
	switch {
	case s.left:
	case s.zero && s.prec < 0:
		zeros += pad // "%05d": zeros after the sign
		pad = 0
	default:
		dst = appendSpaces(dst, pad)
		pad = 0
	}
	dst = append(dst, sign...)
	for ; zeros > 0; zeros-- {
		dst = append(dst, '0')
	}
	dst = append(dst, ds...)
	return appendSpaces(dst, pad)
}

// shape applies a %s, %r or %a segment's conversion, precision and width to
// the text appended at dst[start:].
func shape(dst []byte, start int, s *segment) []byte {
	if s.conv == 'r' || s.conv == 'a' {
		dst = repr(dst, start, s.conv == 'a')
	}
	if s.prec >= 0 {
		n, i := 0, start
		for i < len(dst) && n < s.prec {
			_, size := utf8.DecodeRune(dst[i:])
			i += size
			n++
		}
		dst = dst[:i]
	}
	if s.width > 0 {
		n := utf8.RuneCount(dst[start:])
		if n < s.width {
			pad := s.width - n
			if s.left {
				return appendSpaces(dst, pad)
			}
			end := len(dst)
			dst = appendSpaces(dst, pad)
			copy(dst[start+pad:], dst[start:end])
			for i := start; i < start+pad; i++ {
				dst[i] = ' '
			}
		}
	}
	return dst
}

// repr rewrites dst[start:] as Python's repr() of a str: quoted with ' (or
// with " when the text holds ' but no "), backslash escapes, and, for
// ascii(), bytes above 0x7f as \xHH.
func repr(dst []byte, start int, ascii bool) []byte {
	v := string(dst[start:])
	dst = dst[:start]
	q := byte('\'')
	if strings.IndexByte(v, '\'') >= 0 && strings.IndexByte(v, '"') < 0 {
		q = '"'
	}
	dst = append(dst, q)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == q || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20 || c == 0x7f || (ascii && c >= 0x80):
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, q)
}

func appendSpaces(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, ' ')
	}
	return dst
}
