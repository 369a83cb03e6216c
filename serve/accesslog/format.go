package accesslog

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"gsup/serve/head"
)

// DefaultFormat is Gunicorn's default access_log_format (Apache's combined
// log format).
const DefaultFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`

// kind is what a segment of a compiled format prints.
type kind uint8

const (
	kNone kind = iota // the zero kind: every segment has another
	kRemoteAddr
	kIdent
	kUser
	kTime
	kRequestLine
	kMethod
	kPath
	kQuery
	kProto
	kStatus
	kBytes     // B
	kBytesCLF  // b
	kReferer   // f
	kUserAgent // a
	kSeconds   // T
	kMillis    // M
	kMicros    // D
	kDecimal   // L
	kPID
	kReqHeader  // {name}i
	kRespHeader // {name}o
	kEnv        // {name}e
	kUnknown
)

// single holds the one-letter atoms. Their names are case-sensitive, as in
// Gunicorn: %(H)s and %(h)s are different atoms.
var single = map[string]kind{
	"h": kRemoteAddr, "l": kIdent, "u": kUser, "t": kTime, "r": kRequestLine,
	"m": kMethod, "U": kPath, "q": kQuery, "H": kProto, "s": kStatus,
	"B": kBytes, "b": kBytesCLF, "f": kReferer, "a": kUserAgent,
	"T": kSeconds, "M": kMillis, "D": kMicros, "L": kDecimal, "p": kPID,
}

// numeric atoms are integers in Gunicorn (or are in gsup: the status), so
// %(x)d accepts them. The others are text, and %d on them is an error.
func (k kind) numeric() bool {
	switch k {
	case kStatus, kBytes, kSeconds, kMillis, kMicros:
		return true
	}
	return false
}

// envKind says where a {name}e atom takes its value.
type envKind uint8

const (
	envProcess envKind = iota // a snapshot of the process environment, taken by Compile
	envRemoteAddr
	envRemotePort
	envServerName
	envServerPort
	envServerProtocol
	envServerSoftware
	envRequestMethod
	envPathInfo
	envScriptName
	envQueryString
	envRawURI
	envContentType
	envContentLength
	envURLScheme
	envHTTP // HTTP_*: a request header
)

var environKeys = map[string]envKind{
	"remote_addr":     envRemoteAddr,
	"remote_port":     envRemotePort,
	"server_name":     envServerName,
	"server_port":     envServerPort,
	"server_protocol": envServerProtocol,
	"server_software": envServerSoftware,
	"request_method":  envRequestMethod,
	"path_info":       envPathInfo,
	"script_name":     envScriptName,
	"query_string":    envQueryString,
	"raw_uri":         envRawURI,
	"content_type":    envContentType,
	"content_length":  envContentLength,
	"wsgi.url_scheme": envURLScheme,
}

// segment is one atom of a compiled format, with the literal text
// before it.
type segment struct {
	pre  string // literal text before the atom
	kind kind
	// text is the canonical header name for kReqHeader, kRespHeader and
	// envHTTP, and the value for envProcess; name is text as a head.Name
	// for kReqHeader and envHTTP.
	text    string
	name    head.Name
	env     envKind
	envSet  bool // envProcess: the variable exists
	conv    byte // 's', 'r', 'a' or 'd'
	left    bool // '-' flag
	zero    bool // '0' flag
	plus    bool // '+' flag
	space   bool // ' ' flag
	width   int  // -1: none
	prec    int  // -1: none
	simpleS bool // %(x)s with no flags, width or precision
}

// Format is a compiled access_log_format. It is immutable and safe for
// concurrent use.
type Format struct {
	segs       []segment
	tail       string // literal text after the last atom
	pid        int    // os.Getpid() at Compile, for entries with PID 0
	lastTime   atomic.Pointer[timeText]
	respHeader bool // a segment is kRespHeader
	// combined: the format is DefaultFormat (Apache's combined log
	// format), which appendCombined writes without the atom loop.
	combined bool
}

// ReadsResponseHeader reports whether the format prints a response
// header field ({name}o): an Entry without a ResponseHeader prints "-"
// for it.
func (f *Format) ReadsResponseHeader() bool { return f.respHeader }

// Compile parses a Gunicorn access_log_format; "" means DefaultFormat.
//
// An unknown atom compiles and prints "-", as in Gunicorn. A malformed
// %-sequence is an error naming its byte position: an unclosed "%(", a "%"
// at the end, a "%" not followed by "%" or "(name)", a width or precision
// of "*", a conversion other than s, r, a, d, i or u, or %d on one of the
// text atoms (h l u t r m U q H b f a L p), which Gunicorn would fail to
// format for every request.
func Compile(format string) (*Format, error) {
	if format == "" {
		format = DefaultFormat
	}
	f := &Format{pid: os.Getpid()}
	var lit strings.Builder
	// Literal text goes in the atom after it (pre), or in f.tail at the
	// end: Append's loop runs once per atom.
	pending := ""
	flushLit := func() {
		if lit.Len() > 0 {
			pending += lit.String()
			lit.Reset()
		}
	}
	env := os.Environ()
	i := 0
	for i < len(format) {
		c := format[i]
		if c != '%' {
			j := strings.IndexByte(format[i:], '%')
			if j < 0 {
				j = len(format) - i
			}
			lit.WriteString(format[i : i+j])
			i += j
			continue
		}
		start := i
		i++
		if i >= len(format) {
			return nil, fmt.Errorf("access log format: incomplete %%-sequence at position %d", start)
		}
		if format[i] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		if format[i] != '(' {
			return nil, fmt.Errorf("access log format: %%-sequence without a (name) at position %d: write %%(name)s, or %%%% for a percent sign", start)
		}
		// The name runs to the matching ')', nesting as Python's does.
		i++
		nameStart, depth := i, 1
		for i < len(format) && depth > 0 {
			switch format[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
			i++
		}
		if depth > 0 {
			return nil, fmt.Errorf("access log format: unclosed %%( at position %d", start)
		}
		name := format[nameStart : i-1]
		seg := segment{width: -1, prec: -1}
		for ; i < len(format); i++ {
			switch format[i] {
			case '-':
				seg.left = true
				continue
			case '0':
				seg.zero = true
				continue
			case '+':
				seg.plus = true
				continue
			case ' ':
				seg.space = true
				continue
			case '#':
				continue
			}
			break
		}
		if i < len(format) && format[i] == '*' {
			return nil, fmt.Errorf("access log format: '*' width at position %d is not possible with a named atom", i)
		}
		if i < len(format) && isDigit(format[i]) {
			if seg.width, i = digits(format, i); seg.width > maxWidth {
				return nil, fmt.Errorf("access log format: width too large at position %d", start)
			}
		}
		if i < len(format) && format[i] == '.' {
			i++
			if i < len(format) && format[i] == '*' {
				return nil, fmt.Errorf("access log format: '*' precision at position %d is not possible with a named atom", i)
			}
			if seg.prec, i = digits(format, i); seg.prec > maxWidth {
				return nil, fmt.Errorf("access log format: precision too large at position %d", start)
			}
		}
		for i < len(format) && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L') {
			i++ // Python accepts and ignores C length modifiers
		}
		if i >= len(format) {
			return nil, fmt.Errorf("access log format: %%(%s) at position %d has no conversion (add s)", name, start)
		}
		conv := format[i]
		switch conv {
		case 's', 'r', 'a':
		case 'd', 'i', 'u':
			conv = 'd'
		default:
			return nil, fmt.Errorf("access log format: unsupported conversion %q at position %d (use s)", conv, i)
		}
		i++
		seg.conv = conv
		seg.simpleS = conv == 's' && !seg.left && !seg.zero && !seg.plus && !seg.space && seg.width < 0 && seg.prec < 0
		resolve(&seg, name, env)
		if conv == 'd' && seg.kind != kUnknown && seg.kind != kReqHeader &&
			seg.kind != kRespHeader && seg.kind != kEnv && !seg.kind.numeric() {
			return nil, fmt.Errorf("access log format: %%(%s)d at position %d: atom %q is text, use %%(%s)s", name, start, name, name)
		}
		flushLit()
		seg.pre, pending = pending, ""
		f.segs = append(f.segs, seg)
		f.respHeader = f.respHeader || seg.kind == kRespHeader
	}
	flushLit()
	f.tail = pending
	f.combined = format == DefaultFormat
	return f, nil
}

// resolve sets what the atom called name prints.
func resolve(seg *segment, name string, env []string) {
	if k, ok := single[name]; ok {
		seg.kind = k
		return
	}
	seg.kind = kUnknown
	// Gunicorn lower-cases every key that starts with "{", type letter
	// included, before looking it up.
	if !strings.HasPrefix(name, "{") || len(name) < 4 || name[len(name)-2] != '}' {
		return
	}
	inner := name[1 : len(name)-2]
	if inner == "" {
		return
	}
	switch name[len(name)-1] | 0x20 {
	case 'i':
		seg.kind = kReqHeader
		seg.text = http.CanonicalHeaderKey(inner)
		seg.name = head.NameOf(seg.text)
	case 'o':
		seg.kind = kRespHeader
		seg.text = http.CanonicalHeaderKey(inner)
	case 'e':
		seg.kind = kEnv
		lower := strings.ToLower(inner)
		if k, ok := environKeys[lower]; ok {
			seg.env = k
			return
		}
		if h, ok := strings.CutPrefix(lower, "http_"); ok && h != "" {
			seg.env = envHTTP
			seg.text = http.CanonicalHeaderKey(strings.ReplaceAll(h, "_", "-"))
			seg.name = head.NameOf(seg.text)
			return
		}
		seg.env = envProcess
		seg.text, seg.envSet = lookupEnv(env, inner)
	}
}

// lookupEnv finds a process environment variable by name: exactly, then
// upper-cased (Gunicorn's keys are lower-cased, environment names usually
// are not), then ignoring case.
func lookupEnv(env []string, name string) (string, bool) {
	upper := strings.ToUpper(name)
	var folded string
	found := false
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if k == name || k == upper {
			return v, true
		}
		if !found && strings.EqualFold(k, name) {
			folded, found = v, true
		}
	}
	return folded, found
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// maxWidth is the largest width or precision a format may give.
const maxWidth = 1 << 16

// digits reads the decimal number at format[i:] (a width or a precision)
// and returns it, or maxWidth+1 when it is larger than maxWidth, and the
// index after it.
func digits(format string, i int) (n, next int) {
	for ; i < len(format) && isDigit(format[i]); i++ {
		n = min(n*10+int(format[i]-'0'), maxWidth+1)
	}
	return n, i
}
