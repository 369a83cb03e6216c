package httpcheck

import (
	"strings"
	"testing"
)

// scanAll feeds raw to a fresh scanner in pieces of size step (0: at once)
// and returns the status of the refusal (0 for none), the reason and the
// last event.
func scanAll(lim Limits, raw string, step int) (int, string, event) {
	s := newScanner(lim.normalize())
	b := []byte(raw)
	if step <= 0 {
		step = len(b)
	}
	for len(b) > 0 {
		n := min(step, len(b))
		k, ev := s.feed(b[:n])
		switch ev {
		case evRefuseHead, evRefuseBody:
			return s.status, s.reason, ev
		case evAwait:
			return 0, "", ev
		}
		if k != n {
			return -1, "feed consumed less than it was given", ev
		}
		b = b[n:]
	}
	return 0, "", evNone
}

var rawTests = []struct {
	name   string
	lim    Limits // zero: DefaultLimits
	raw    string
	status int
	reason string // part of the reason
	ev     event
}{
	// Fine.
	{name: "simple", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "empty lines before the request", raw: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "obs-text value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n"},
	{name: "HTAB in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX:\tabc\t\r\n\r\n"},
	{name: "special name bytes", raw: "GET / HTTP/1.1\r\nHost: a\r\nX.Custom|Pipe: ok\r\n\r\n"},
	{name: "underscore name (dropped later)", raw: "GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1\r\n\r\n"},
	{name: "non-ASCII target", raw: "GET /\xc3\xa0 HTTP/1.0\r\n\r\n"},
	{name: "content-length body", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "content-length OWS", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \t\r\n\r\nhello"},
	{name: "body that looks like a bad request", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 21\r\n\r\nGET\x00 / HTTP/1.1\r\n \r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "chunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunked upper-case coding", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n0\r\n\r\n"},
	{name: "chunked extensions", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5; some; parameters=stuff\r\nhello\r\n6 ; a = \"b \\\" c\" ;d\r\n world\r\n0\r\n\r\n"},
	{name: "chunked leading zeros, hex", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000A\r\n0123456789\r\n000\r\n\r\n"},
	{name: "chunked with trailers", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n"},
	{name: "chunk data that looks like framing", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n"},
	{name: "TE other than chunked: net/http answers 501", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\x00\x00garbage"},
	{name: "two TE lines: net/http answers 501", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n\x00"},
	{name: "pipelined", raw: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "HTTP/1.2 is 1.x", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n"},
	{name: "HTTP/2 preface passes", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00"},
	{name: "line at the limit", lim: Limits{RequestLine: 20}, raw: "GET /123456 HTTP/1.1\r\n\r\n"},
	{name: "field at the limit", lim: Limits{FieldSize: 8}, raw: "GET / HTTP/1.0\r\nX: 123\r\n\r\n"},
	{name: "fields at the limit", lim: Limits{Fields: 2}, raw: "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"},
	{name: "body at the limit", lim: Limits{Body: 5}, raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "chunked body at the limit", lim: Limits{Body: 5}, raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"},

	// Upgrades.
	{name: "websocket upgrade", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00", ev: evAwait},
	{name: "connect", raw: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03", ev: evAwait},
	{name: "upgrade without Connection: upgrade", raw: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "upgrade in HTTP/1.0 is ignored", raw: "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET\x00", status: 400, ev: evRefuseHead},
	{name: "connection token upgraded is not upgrade", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgraded\r\nUpgrade: x\r\n\r\nGET\x00", status: 400, ev: evRefuseHead},

	// Request line.
	{name: "request line too long", lim: Limits{RequestLine: 20}, raw: "GET /1234567 HTTP/1.1\r\n\r\n", status: 414, reason: "request line", ev: evRefuseHead},
	{name: "request line too long, no CRLF yet", lim: Limits{RequestLine: 20}, raw: "GET /" + strings.Repeat("a", 100), status: 414, ev: evRefuseHead},
	{name: "default request line limit", raw: "GET /" + strings.Repeat("a", 4094) + " HTTP/1.1\r\n\r\n", status: 414, ev: evRefuseHead},
	{name: "invalid method byte", raw: "GE:T / HTTP/1.1\r\n\r\n", status: 400, reason: "method", ev: evRefuseHead},
	{name: "NUL in method", raw: "GET\x00 / HTTP/1.1\r\n\r\n", status: 400, reason: "method", ev: evRefuseHead},
	{name: "non-ASCII method", raw: "GET\xdf / HTTP/1.1\r\n\r\n", status: 400, reason: "method", ev: evRefuseHead},
	{name: "two spaces", raw: "GET  / HTTP/1.1\r\n\r\n", status: 400, reason: "target", ev: evRefuseHead},
	{name: "no version", raw: "GET /\r\n\r\n", status: 400, ev: evRefuseHead},
	{name: "bare LF in request line", raw: "GET / HTTP/1.1\nHost: a\r\n\r\n", status: 400, reason: "bare LF", ev: evRefuseHead},
	{name: "bare CR in request line", raw: "GET / HTTP/1.1\rHost: a\r\n\r\n", status: 400, reason: "CR", ev: evRefuseHead},
	{name: "control byte in target", raw: "GET /a\x01b HTTP/1.1\r\n\r\n", status: 400, reason: "target", ev: evRefuseHead},
	{name: "version FTP", raw: "GET / FTP/1.1\r\n\r\n", status: 400, reason: "version", ev: evRefuseHead},
	{name: "version HTTP/111", raw: "GET / HTTP/111\r\n\r\n", status: 400, reason: "version", ev: evRefuseHead},
	{name: "version HTTP/0.99", raw: "GET / HTTP/0.99\r\n\r\n", status: 400, reason: "version", ev: evRefuseHead},
	{name: "version lower case", raw: "GET / http/1.1\r\n\r\n", status: 400, reason: "version", ev: evRefuseHead},
	{name: "version HTTP/2.0", raw: "GET / HTTP/2.0\r\n\r\n", status: 505, ev: evRefuseHead},
	{name: "version HTTP/0.9", raw: "GET / HTTP/0.9\r\n\r\n", status: 505, ev: evRefuseHead},

	// Header fields.
	{name: "obs-fold", raw: "GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: a\r\n\r\n", status: 400, reason: "folding", ev: evRefuseHead},
	{name: "white space before the first field", raw: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", status: 400, reason: "folding", ev: evRefuseHead},
	{name: "bare LF after a field", raw: "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", status: 400, reason: "bare LF", ev: evRefuseHead},
	{name: "bare LF ends the head", raw: "GET / HTTP/1.1\r\nHost: a\r\n\n", status: 400, reason: "bare LF", ev: evRefuseHead},
	{name: "bare CR in a value", raw: "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", status: 400, reason: "CR", ev: evRefuseHead},
	{name: "space before colon", raw: "GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\nxyz", status: 400, reason: "colon", ev: evRefuseHead},
	{name: "no colon", raw: "GET / HTTP/1.1\r\nHost\r\n\r\n", status: 400, reason: "name", ev: evRefuseHead},
	{name: "empty name", raw: "GET / HTTP/1.1\r\n: x\r\n\r\n", status: 400, reason: "name", ev: evRefuseHead},
	{name: "NUL in name", raw: "GET / HTTP/1.1\r\nba\x00z: bar\r\n\r\n", status: 400, reason: "name", ev: evRefuseHead},
	{name: "non-ASCII name", raw: "GET / HTTP/1.1\r\nContent-Length\xdf: 3\r\n\r\n", status: 400, reason: "name", ev: evRefuseHead},
	{name: "NUL in value", raw: "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", status: 400, reason: "control", ev: evRefuseHead},
	{name: "BEL in value", raw: "GET / HTTP/1.1\r\nX: a\x07b\r\n\r\n", status: 400, reason: "control", ev: evRefuseHead},
	{name: "DEL in value", raw: "GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", status: 400, reason: "control", ev: evRefuseHead},
	{name: "field too long", lim: Limits{FieldSize: 8}, raw: "GET / HTTP/1.0\r\nX: 1234\r\n\r\n", status: 431, reason: "too long", ev: evRefuseHead},
	{name: "field name too long", lim: Limits{FieldSize: 8}, raw: "GET / HTTP/1.0\r\nXXXXXXXX: 1\r\n\r\n", status: 431, ev: evRefuseHead},
	{name: "field too long, default", raw: "GET / HTTP/1.0\r\nX: " + strings.Repeat("y", 8186) + "\r\n\r\n", status: 431, ev: evRefuseHead},
	{name: "field size 0 means 8190", lim: Limits{FieldSize: 0}, raw: "GET / HTTP/1.0\r\nX: " + strings.Repeat("y", 8186) + "\r\n\r\n", status: 431, ev: evRefuseHead},
	{name: "too many fields", lim: Limits{Fields: 2}, raw: "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n", status: 431, reason: "too many", ev: evRefuseHead},

	// Framing.
	{name: "two Content-Length", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nxyz", status: 400, reason: "more than one Content-Length", ev: evRefuseHead},
	{name: "CL then TE", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, reason: "both", ev: evRefuseHead},
	{name: "TE then CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", status: 400, reason: "both", ev: evRefuseHead},
	{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, reason: "HTTP/1.0", ev: evRefuseHead},
	{name: "CL negative", raw: "POST / HTTP/1.0\r\nContent-Length: -1\r\n\r\n", status: 400, reason: "Content-Length", ev: evRefuseHead},
	{name: "CL plus sign", raw: "POST / HTTP/1.0\r\nContent-Length: +1\r\n\r\nx", status: 400, ev: evRefuseHead},
	{name: "CL minus zero", raw: "POST / HTTP/1.0\r\nContent-Length: -0\r\n\r\n", status: 400, ev: evRefuseHead},
	{name: "CL underscore", raw: "POST / HTTP/1.0\r\nContent-Length: 0_1\r\n\r\n", status: 400, ev: evRefuseHead},
	{name: "CL list", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", status: 400, ev: evRefuseHead},
	{name: "CL two numbers", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0 1\r\n\r\nx", status: 400, ev: evRefuseHead},
	{name: "CL empty", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", status: 400, reason: "empty", ev: evRefuseHead},
	{name: "CL word", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: bla\r\n\r\n", status: 400, ev: evRefuseHead},
	{name: "CL huge", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400, reason: "too large", ev: evRefuseHead},
	{name: "CL over the body limit", lim: Limits{Body: 4}, raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", status: 413, ev: evRefuseHead},

	// Chunked bodies.
	{name: "chunk size underscore", raw: chunkedHead + "6_0\r\n world\r\n0\r\n\r\n", status: 400, reason: "chunk size", ev: evRefuseBody},
	{name: "chunk size minus", raw: chunkedHead + "-5\r\nhello\r\n0\r\n\r\n", status: 400, reason: "chunk size", ev: evRefuseBody},
	{name: "chunk size plus", raw: chunkedHead + "+5\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk size leading space", raw: chunkedHead + " 0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk size trailing space", raw: chunkedHead + "0 \r\n\r\n", status: 400, reason: "extension", ev: evRefuseBody},
	{name: "chunk size empty", raw: chunkedHead + "\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk size missing before extension", raw: chunkedHead + " ;foo=bar\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk size bare LF", raw: chunkedHead + "5\n;\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk size too many digits", raw: chunkedHead + "00000000000000001\r\nx\r\n0\r\n\r\n", status: 400, reason: "too large", ev: evRefuseBody},
	{name: "chunk extension bare CR", raw: chunkedHead + "5;ext=val\rue\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk extension without name", raw: chunkedHead + "5;=x\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk extension empty value", raw: chunkedHead + "5;a=\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk extension control byte", raw: chunkedHead + "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk extension unterminated quote", raw: chunkedHead + "5;a=\"b\r\nhello\r\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "chunk line too long", raw: chunkedHead + "5;a=" + strings.Repeat("b", 5000) + "\r\nhello\r\n0\r\n\r\n", status: 400, reason: "too long", ev: evRefuseBody},
	{name: "chunk data without CRLF", raw: chunkedHead + "5\r\nhelloX\r\n0\r\n\r\n", status: 400, reason: "CRLF", ev: evRefuseBody},
	{name: "chunk data with bare CR", raw: chunkedHead + "5\r\nhello\r0\r\n\r\n", status: 400, reason: "CRLF", ev: evRefuseBody},
	{name: "chunk data with bare LF", raw: chunkedHead + "5\r\nhello\n0\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "trailer Content-Length", raw: chunkedHead + "0\r\nContent-Length: 99\r\n\r\n", status: 400, reason: "trailer", ev: evRefuseBody},
	{name: "trailer Host", raw: chunkedHead + "0\r\nHost: evil\r\n\r\n", status: 400, reason: "trailer", ev: evRefuseBody},
	{name: "trailer Transfer-Encoding", raw: chunkedHead + "0\r\ntransfer-encoding: chunked\r\n\r\n", status: 400, reason: "trailer", ev: evRefuseBody},
	{name: "trailer X-Forwarded-For", raw: chunkedHead + "0\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", status: 400, reason: "trailer", ev: evRefuseBody},
	{name: "trailer obs-fold", raw: chunkedHead + "0\r\nX: a\r\n b\r\n\r\n", status: 400, reason: "folding", ev: evRefuseBody},
	{name: "trailer control byte", raw: chunkedHead + "0\r\nX: a\x01\r\n\r\n", status: 400, ev: evRefuseBody},
	{name: "too many trailers", lim: Limits{Fields: 2}, raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", status: 431, ev: evRefuseBody},
	{name: "chunked over the body limit", lim: Limits{Body: 5}, raw: chunkedHead + "3\r\nhel\r\n3\r\nlo!\r\n0\r\n\r\n", status: 413, ev: evRefuseBody},

	// The names looked for are found in any case (the scanner keeps them
	// as sent and lowers only those of the lengths it looks for).
	{name: "mixed-case TE and CL", raw: "POST / HTTP/1.1\r\nHost: a\r\ncOnTeNt-LeNgTh: 3\r\nTRANSFER-ENCODING: chunked\r\n\r\n", status: 400, reason: "both", ev: evRefuseHead},
	{name: "two upper-case CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 3\r\nContent-length: 3\r\n\r\nabc", status: 400, reason: "more than one", ev: evRefuseHead},
	{name: "upper-case trailer HOST", raw: chunkedHead + "0\r\nHOST: evil\r\n\r\n", status: 400, reason: "trailer", ev: evRefuseBody},
	{name: "upper-case Connection upgrade", raw: "GET / HTTP/1.1\r\nHost: a\r\nCONNECTION: UPGRADE\r\nUPGRADE: websocket\r\n\r\n", ev: evAwait},

	// The next request on the connection is checked too.
	{name: "second request obs-fold", raw: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", status: 400, reason: "folding", ev: evRefuseHead},
	{name: "request after a CL body", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\nHost: a\r\n\r\n", status: 400, reason: "bare LF", ev: evRefuseHead},
	{name: "request after a chunked body", raw: chunkedHead + "2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400, reason: "colon", ev: evRefuseHead},
	{name: "request after a refused upgrade", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", ev: evAwait},
}

const chunkedHead = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

func TestScanner(t *testing.T) {
	for _, tt := range rawTests {
		lim := tt.lim
		if lim == (Limits{}) {
			lim = DefaultLimits
		}
		for _, step := range []int{0, 1, 2, 7} {
			status, reason, ev := scanAll(lim, tt.raw, step)
			if status != tt.status || ev != tt.ev || !strings.Contains(reason, tt.reason) {
				t.Errorf("%s (fed %d bytes at a time): got %d %q event %d, want %d %q event %d",
					tt.name, step, status, reason, ev, tt.status, tt.reason, tt.ev)
			}
		}
	}
}

// TestScannerCut checks that a refused head is cut before net/http can see
// it whole: the index returned is inside the refused request.
func TestScannerCut(t *testing.T) {
	first := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
	raw := first + "GET /2 HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"
	s := newScanner(DefaultLimits.normalize())
	n, ev := s.feed([]byte(raw))
	if ev != evRefuseHead || n <= len(first) || n >= len(raw)-4 {
		t.Fatalf("feed = %d, %d; want a cut inside the second head (after %d)", n, ev, len(first))
	}
	// A violation found at the end of the head (413) still cuts before the
	// final LF.
	raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n123456789"
	s = newScanner(Limits{Body: 5}.normalize())
	n, ev = s.feed([]byte(raw))
	if ev != evRefuseHead || raw[n] != '\n' || !strings.HasSuffix(raw[:n], "\r\n\r") {
		t.Fatalf("413 cut at %d (%q), want before the head's final LF", n, raw[:n])
	}
}

func TestScannerResume(t *testing.T) {
	up := "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
	for _, switched := range []bool{false, true} {
		s := newScanner(DefaultLimits.normalize())
		n, ev := s.feed([]byte(up + "\x00\x01"))
		if ev != evAwait || n != len(up) {
			t.Fatalf("feed = %d, %d; want evAwait at %d", n, ev, len(up))
		}
		s.resume(switched)
		n, ev = s.feed([]byte("\x00\x01"))
		if switched && (ev != evNone || n != 2) {
			t.Errorf("after a switch: feed = %d, %d; want passthrough", n, ev)
		}
		if !switched && ev != evRefuseHead {
			t.Errorf("after no switch: feed = %d, %d; want the bytes checked as a request", n, ev)
		}
	}
}

func TestLimitsNormalize(t *testing.T) {
	tests := []struct{ in, want Limits }{
		{Limits{}, Limits{RequestLine: 1 << 20, Fields: 32768, FieldSize: 8190}},
		{DefaultLimits, DefaultLimits},
		{Limits{RequestLine: 8190, Fields: 32769, FieldSize: -1, Body: -5}, Limits{RequestLine: 8190, Fields: 32768, FieldSize: 8190}},
		{Limits{RequestLine: 9000, Fields: -1, FieldSize: 20000}, Limits{RequestLine: 8190, Fields: 32768, FieldSize: 20000}},
		{Limits{RequestLine: -1, Fields: 5, FieldSize: 10, Body: 1}, Limits{RequestLine: 8190, Fields: 5, FieldSize: 10, Body: 1}},
	}
	for _, tt := range tests {
		if got := tt.in.normalize(); got != tt.want {
			t.Errorf("%+v.normalize() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if got, want := MaxHeaderBytes(DefaultLimits), 100*(8190+2)+4+4094+2; got != want {
		t.Errorf("MaxHeaderBytes(defaults) = %d, want %d", got, want)
	}
}

func FuzzScanner(f *testing.F) {
	for _, tt := range rawTests {
		f.Add([]byte(tt.raw), uint8(3))
	}
	f.Fuzz(func(t *testing.T, raw []byte, step uint8) {
		a, ra, ea := scanAll(DefaultLimits, string(raw), 0)
		b, rb, eb := scanAll(DefaultLimits, string(raw), int(step%16)+1)
		if a != b || ra != rb || ea != eb {
			t.Fatalf("at once: %d %q %d; in pieces of %d: %d %q %d", a, ra, ea, step%16+1, b, rb, eb)
		}
	})
}

func BenchmarkScannerHead(b *testing.B) {
	head := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Connection: keep-alive\r\nCookie: session=0123456789abcdef0123456789abcdef\r\n\r\n")
	s := newScanner(DefaultLimits.normalize())
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ev := s.feed(head); ev != evNone {
			b.Fatal(ev)
		}
	}
}

// A byte that is not a field-value byte is refused wherever it is in a
// long value (the value is run over eight bytes at a time), and a tab or
// an obs-text byte is let through wherever it is; so is a value of any
// length up to its end.
func TestValueBytesAtEveryPlace(t *testing.T) {
	for n := 1; n <= 40; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []byte{0x00, 0x01, 0x08, 0x0b, 0x1f, 0x7f, '\n', '\t', 0x80, 0xff, ' '} {
				v := []byte(strings.Repeat("v", n))
				v[at] = c
				raw := "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + string(v) + "\r\n\r\n"
				status, _, ev := scanAll(DefaultLimits, raw, 0)
				fine := c == '\t' || c == ' ' || c >= 0x80
				if fine && (status != 0 || ev != evNone) {
					t.Fatalf("value %q: got %d, event %d; want it let through", v, status, ev)
				}
				if !fine && (status != 400 || ev != evRefuseHead) {
					t.Fatalf("value %q: got %d, event %d; want 400", v, status, ev)
				}
			}
		}
	}
}
