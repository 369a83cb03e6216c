package h2

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gsup/internal/testprog"
)

// FuzzServeConn decodes its input into the frames of an HTTP/2 client
// (decodeScript), sends them over loopback TCP to this package's Server
// and to net/http's HTTP/2 server, each behind the same recording
// handler, and checks that gsup's server:
//   - never panics, and ends each case in bounded time: it answers the
//     PING that follows the frames (when net/http does), ServeConn returns
//     and every handler it started returns once the client has closed;
//   - sends only frames a client's framer accepts;
//   - keeps every connection net/http keeps;
//   - delivers every request net/http delivered with a body read whole,
//     as net/http delivered it (method, target, Host, fields, body,
//     trailers), and delivers no request net/http refused;
//
// but for the differences in fuzzAllowed, each with its reason.
func FuzzServeConn(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		runScript(t, decodeScript(in))
	})
}

// fuzzAllowed lists where gsup's server may differ from net/http's; the
// checks name the entry they rely on (allowed panics on a name not here).
var fuzzAllowed = map[string]string{
	"host-field": "net/http leaves the Host field in r.Header; gsup moves it into r.Host only, " +
		"as net/http's HTTP/1 server does",
	"expect-field": "net/http removes an Expect naming 100-continue from r.Header, gsup leaves it; " +
		"both send the 100 on the first read",
	"trailer-names": "of the names the Trailer field announces (r.Trailer's keys), net/http drops " +
		"Content-Length, Transfer-Encoding and Trailer and keeps an empty one; gsup keeps the former " +
		"(their values are checked apart) and drops the empty one",
	"unannounced-trailers": "when the Trailer field announced any name, net/http also puts the trailer " +
		"fields it did not announce into r.Trailer; gsup keeps only the announced ones, as net/http " +
		"does when none was announced",
	"forbidden-trailer-dropped": "a trailer field that may not be a trailer (httpguts.ValidTrailerHeader) " +
		"and was not announced: net/http resets the stream, gsup drops the field (it hands over only " +
		"announced trailers); one gsup hands to the handler is not allowed",
	"content-length-syntax": "a Content-Length that is not one decimal number, or fields that differ: gsup " +
		"refuses the request as malformed (RFC 9110 8.6: a proxy must not forward it); net/http takes the " +
		"first value, or 0",
	"content-length-no-body": "HEADERS with END_STREAM and a Content-Length above 0: malformed to gsup " +
		"(RFC 9113 8.1.1: it must equal the sum of the DATA payloads), an empty body to net/http",
	"te-empty": "a TE field with an empty value: gsup refuses it (RFC 9113 8.2.2 allows only \"trailers\"), " +
		"net/http lets it through",
	"te-repeated": "several TE fields, each \"trailers\": net/http answers 400, gsup takes them (RFC 9113 " +
		"8.2.2 asks only that none hold another value)",
	"scheme": "a :scheme other than http or https: net/http refuses the request, gsup serves it " +
		"(RFC 9113 8.3.1 does not restrict the scheme)",
	"userinfo": "user information in :authority (or the Host field in its place): net/http refuses the " +
		"request (RFC 9113 8.3.1), gsup " +
		"delivers it and serve's handling layer answers 400 (httpcheck.Check, RFC 9110 4.2.4)",
	"reset-drops-body": "a stream reset (by the client, or by both servers) after its END_STREAM: gsup " +
		"drops what its handler had not read yet (the answer cannot go out), net/http lets the handler " +
		"read it",
	"conn-end-drops-body": "a connection that ends on its own (an error on a later frame) while a handler " +
		"has not read the whole body: gsup drops what was unread, net/http lets the handler read it",
	"reused-id": "HEADERS reusing the id of a stream reset for a malformed header block: net/http's " +
		"framer error leaves the id unopened and it serves the reuse; gsup counts the stream opened " +
		"(RFC 9113 5.1.1) and ignores frames that may have crossed its RST_STREAM (5.4.2)",
	"net-ended": "net/http ended the connection (or never answered the final PING) before a frame " +
		"gsup went on to serve: net/http never judged what followed",
	"client-goaway": "after the client's GOAWAY either server may close the connection once no stream is " +
		"open, before or after it answers the final PING",
	"headers-after-end": "HEADERS on a stream after the client's END_STREAM on it: a stream error while " +
		"the stream is half-closed (remote), a connection error once the server has ended it too " +
		"(RFC 9113 5.1); which, depends on how soon a server's own answer (431, 400) ends the stream, " +
		"in either server",
	"priority-update": "a PRIORITY_UPDATE on a stream other than 0, naming stream 0 or under 4 bytes ends " +
		"gsup's connection (RFC 9218 7.1, which x/net's framer applies); the older copy of the framer in " +
		"net/http ignores the frame as of an unknown type",
	"preface-settings": "the client's preface followed by a frame other than its SETTINGS: gsup ends the " +
		"connection (RFC 9113 3.4: the preface carries the client's settings); net/http takes a SETTINGS " +
		"ACK as the acknowledgement of its own, and resets the stream of a header block its framer " +
		"refuses (a pseudo-header twice) before it looks at what the first frame was",
}

func allowed(name string) string {
	if _, ok := fuzzAllowed[name]; !ok {
		panic("fuzzAllowed has no " + name)
	}
	return name
}

// The bounds of one case, 6.5 s in all: a fuzzing worker gives up on a
// case after 10 s, silently. A case ends in a few milliseconds unless a
// server stalls.
const (
	fuzzRun    = 2 * time.Second        // for the answer to the final PING
	fuzzSettle = time.Second            // for gsup's handlers to take the body bytes that came
	fuzzEnd    = 2 * time.Second        // for ServeConn and gsup's handlers to return after the close
	fuzzJudge  = 500 * time.Millisecond // for net/http to show a request gsup served
	fuzzNetEnd = time.Second            // for net/http's handlers to finish
)

// net/http's header limit; gsup's is net/http's effective one (what
// net/http announces and its framer applies: 10 fields of 32 bytes more).
const (
	fuzzNetHeaderBytes  = 8 << 10
	fuzzGsupHeaderBytes = fuzzNetHeaderBytes + 10*32
)

// fuzzMarker is the final PING's payload; no PING of a script carries it.
var fuzzMarker = [8]byte{'h', '2', 'f', 'u', 'z', 'z', 0, 1}

// script is what a fuzz input decodes to: the bytes the client sends,
// and what a check needs to know of them.
type script struct {
	wire              []byte
	quick             bool                           // handlers return once they have read the body (else: when the request ends)
	requests          map[uint32][]*sentRequest      // the structured HEADERS that opened each stream
	trailers          map[uint32][]hpack.HeaderField // the fields of later HEADERS on each stream
	reset             map[uint32]bool                // streams the client reset
	goAway            bool                           // the client sent GOAWAY
	noPrefaceSettings bool                           // the preface is followed by a frame other than SETTINGS (an ACK counts as other)
	badPrioUpd        bool                           // a malformed PRIORITY_UPDATE (RFC 9218 7.1)
	lateHeader        bool                           // HEADERS on a stream the client had ended
	frames            []string                       // the frames, for messages
	headersOn         map[uint32]int                 // HEADERS-type frames per stream
	rawHeaders        bool                           // a raw HEADERS frame or raw bytes: requests the script cannot know
	fieldsFirst       map[uint32]bool                // the stream's first HEADERS was fields alone (opTrailers), before any request on it
}

// sentRequest is a request as the client encoded it.
type sentRequest struct {
	fields []hpack.HeaderField
	end    bool // END_STREAM on its HEADERS
}

func (s *script) String() string { return strings.Join(s.frames, "\n") }

// The operations of a script. An input is a configuration byte, then
// operations: a byte whose low nibble is the operation and high nibble
// its flags, and the operation's arguments. Bytes past the end read as 0.
const (
	opRequest      = iota // HEADERS opening a stream: sid, method, scheme, authority, path, layout, fields
	opTrailers            // HEADERS on an open stream: stream, fields
	opData                // stream, length, [pad], [payload]
	opContinuation        // stream, fields or a fragment
	opRSTStream           // stream, code
	opWindowUpdate        // stream, increment
	opSettings            // n, n × (id, value)
	opPing                // 8 bytes
	opPriority            // stream, dependency, weight
	opGoAway              // last stream, code
	opRawFrame            // type, flags, stream, length, payload
	opRawBytes            // length, bytes (only with every flag set)
	// the other kinds: opData
)

// Flags (the high nibble of an operation's byte).
const (
	// opRequest, opTrailers
	hEnd   = 0x10 // END_STREAM
	hSplit = 0x20 // the block split over CONTINUATION frames
	hOpen  = 0x40 // no END_HEADERS on its last frame
	hPrio  = 0x80 // padding and priority: pad length, dependency, weight
	// opData
	dEnd   = 0x10
	dPad   = 0x20 // a pad length follows the length
	dInput = 0x40 // the payload comes from the input (else a pattern)
	dLong  = 0x80 // the length counts 64 bytes (255: 16384, 254: 16385)
	// opContinuation
	cEnd    = 0x10 // END_HEADERS
	cFields = 0x20 // the fragment encodes fields (else: a fragment from the input)
	// opSettings, opPing
	fAck = 0x10
	// opPriority
	prExclusive = 0x10
)

// The configuration byte.
const (
	cfgQuick      = 0x01 // handlers return at once where that keeps the case deterministic
	cfgNoSettings = 0x02 // no SETTINGS after the preface
)

// A stream argument: an opened stream (0: the last, n: the n-th, cycling)
// or one of these.
const (
	sidZero  = 0xff
	sidEven  = 0xfe // an even id: a stream only the server could open
	sidIdle  = 0xfd // the next id, not opened yet
	sidInput = 0xfc // 4 bytes of the input
)

// A request's sid argument (modulo 5).
const (
	newNext  = 0
	newReuse = 1 // the id of the last stream opened
	newSkip  = 2 // an id beyond the next
	newEven  = 3
)

// The layout argument of a request: pseudo-header fields left out, put
// twice or late.
const (
	noMethod    = 0x01
	noScheme    = 0x02
	noAuthority = 0x04
	noPath      = 0x08
	twoPaths    = 0x10
	lateAuth    = 0x20 // :authority after the regular fields
	noTag       = 0x40 // no x-fuzz-stream field
	withProto   = 0x80 // :protocol (extended CONNECT, offered by neither server)
)

// Limits that keep a case within both servers' resources: under 250
// streams and under the 1 MiB receive windows, which the client never
// waits for.
const (
	maxOps      = 300
	maxRequests = 100
	dataBudget  = 512 << 10
)

// fuzzed marks a string read from the input; big one of 64 × a byte 'v's.
const (
	fuzzed = "\x00fuzzed"
	big    = "\x00big"
)

// tagField names each request with its stream, so that the records of
// the two servers pair up.
const tagField = "x-fuzz-stream"

var (
	fuzzMethods     = []string{"GET", "POST", "PUT", "HEAD", "OPTIONS", "CONNECT", "DELETE", fuzzed}
	fuzzSchemes     = []string{"https", "http", "", "ftp", fuzzed}
	fuzzAuthorities = []string{"example.com", "example.com:8443", "", "user@example.com", fuzzed}
	fuzzPaths       = []string{"/", "/a/b?c=d", "*", "", "http://example.com/abs", "/%zz", fuzzed}
	fuzzFields      = [][2]string{
		{"accept", "*/*"},
		{"user-agent", "fuzz/1"},
		{"content-type", "text/plain"},
		{"content-length", "0"},
		{"content-length", "3"},
		{"content-length", "9"},
		{"content-length", fuzzed},
		{"cookie", "a=1"},
		{"cookie", "b=2"},
		{"host", "example.org"},
		{"host", fuzzed},
		{"te", "trailers"},
		{"te", "gzip"},
		{"te", ""},
		{"connection", "close"},
		{"keep-alive", "5"},
		{"proxy-connection", "keep-alive"},
		{"transfer-encoding", "chunked"},
		{"upgrade", "h2c"},
		{"trailer", "x-t"},
		{"trailer", "x-t, x-u"},
		{"trailer", fuzzed},
		{"trailer", "authorization, x-t"},
		{"trailer", "content-length"},
		{"authorization", "secret"},
		{"expect", "100-continue"},
		{"x-t", fuzzed},
		{"x-u", "u"},
		{"x-big", big},
		{fuzzed, fuzzed},
		{":path", "/late"},
		{"X-Upper", "v"},
		{"x-empty", ""},
		{tagField, "1"},
	}
	fuzzIncrements = []uint32{1, 100, 16384, 65535, 1 << 20, 0, 1<<31 - 1, 1<<31 - 1 - 65535}
	fuzzSettingIDs = []http2.SettingID{http2.SettingHeaderTableSize, http2.SettingEnablePush,
		http2.SettingMaxConcurrentStreams, http2.SettingInitialWindowSize, http2.SettingMaxFrameSize,
		http2.SettingMaxHeaderListSize, 8 /* ENABLE_CONNECT_PROTOCOL */, 0x99}
	fuzzSettingValues = []uint32{0, 1, 100, 4096, 16384, 65535, 1 << 20, 1<<24 - 1, 1<<31 - 1, 1 << 31}
)

// decoder turns an input into a script.
type decoder struct {
	in       []byte
	s        *script
	wire     bytes.Buffer
	fr       *http2.Framer
	hbuf     bytes.Buffer
	enc      *hpack.Encoder
	next     uint32          // the next stream id a request takes
	opened   []uint32        // the streams requests opened
	ended    map[uint32]bool // the streams the client ended
	requests int
	data     int // flow-controlled DATA bytes
}

func (d *decoder) byte() byte {
	if len(d.in) == 0 {
		return 0
	}
	b := d.in[0]
	d.in = d.in[1:]
	return b
}

func (d *decoder) take(n int) []byte {
	n = min(n, len(d.in))
	b := d.in[:n]
	d.in = d.in[n:]
	return b
}

func (d *decoder) str() string { return string(d.take(int(d.byte()))) }

func (d *decoder) u32() uint32 {
	var v uint32
	for _, c := range d.take(4) {
		v = v<<8 | uint32(c)
	}
	return v
}

func (d *decoder) pick(table []string) string { return d.value(table[int(d.byte())%len(table)]) }

func (d *decoder) value(v string) string {
	switch v {
	case fuzzed:
		return d.str()
	case big:
		return strings.Repeat("v", 64*int(d.byte()))
	}
	return v
}

func (d *decoder) stream(b byte) uint32 {
	switch b {
	case sidZero:
		return 0
	case sidEven:
		return d.next + 1
	case sidIdle:
		return d.next
	case sidInput:
		return d.u32() & (1<<31 - 1)
	}
	switch {
	case len(d.opened) == 0:
		return 1
	case b == 0:
		return d.opened[len(d.opened)-1]
	}
	return d.opened[int(b-1)%len(d.opened)]
}

// fields reads a count (up to 16) and that many fields of fuzzFields.
func (d *decoder) fields(out []hpack.HeaderField) []hpack.HeaderField {
	for range d.byte() % 17 {
		e := fuzzFields[int(d.byte())%len(fuzzFields)]
		name := d.value(e[0])
		out = append(out, hpack.HeaderField{Name: name, Value: d.value(e[1])})
	}
	return out
}

func (d *decoder) log(format string, args ...any) {
	d.s.frames = append(d.s.frames, fmt.Sprintf(format, args...))
}

// decodeScript decodes an input (see the op constants).
func decodeScript(in []byte) *script {
	d := &decoder{in: in, next: 1, ended: map[uint32]bool{}, s: &script{requests: map[uint32][]*sentRequest{}, trailers: map[uint32][]hpack.HeaderField{},
		reset: map[uint32]bool{}, headersOn: map[uint32]int{}, fieldsFirst: map[uint32]bool{}}}
	d.fr = http2.NewFramer(&d.wire, nil)
	d.fr.AllowIllegalWrites = true
	d.enc = hpack.NewEncoder(&d.hbuf)
	d.wire.WriteString(http2.ClientPreface)
	cfg := d.byte()
	if cfg&cfgNoSettings == 0 {
		d.fr.WriteSettings()
	}
	for n := 0; len(d.in) > 0 && n < maxOps; n++ {
		b := d.byte()
		if cfg&cfgNoSettings != 0 && n == 0 && (b&0x0f != opSettings || b&fAck != 0) {
			d.s.noPrefaceSettings = true
		}
		d.op(b&0x0f, b&0xf0)
	}
	d.fr.WritePing(false, fuzzMarker)
	s := d.s
	s.wire = d.wire.Bytes()
	s.quick = cfg&cfgQuick != 0 && !s.rawHeaders
	for _, n := range s.headersOn {
		if n > 1 {
			// A frame on a stream whose handler may have returned
			// meets a closed stream or an open one by chance.
			s.quick = false
		}
	}
	return s
}

func (d *decoder) op(kind, flags byte) {
	switch kind {
	case opRequest:
		d.request(flags)
	case opTrailers:
		id := d.stream(d.byte())
		hf := d.fields(nil)
		if d.s.headersOn[id] == 0 {
			d.s.fieldsFirst[id] = true
		}
		d.headersOn(id, flags&hEnd != 0)
		d.s.trailers[id] = append(d.s.trailers[id], hf...)
		d.block(id, flags, hf)
		d.log("HEADERS %d %s %v", id, flagNames(flags, "end", "split", "open", "prio"), hf)
	case opData:
		id := d.stream(d.byte())
		n := int(d.byte())
		if flags&dLong != 0 {
			switch n {
			case 255:
				n = 16384
			case 254:
				n = 16385 // over the frame size both servers take
			default:
				n *= 64
			}
		}
		var pad []byte
		if flags&dPad != 0 {
			pad = make([]byte, d.byte())
		}
		var data []byte
		if flags&dInput != 0 {
			data = d.take(n)
		} else {
			data = make([]byte, n)
			for i := range data {
				data[i] = 'a' + byte(i%26)
			}
		}
		cost := len(data)
		if flags&dPad != 0 {
			cost += 1 + len(pad)
		}
		if d.data+cost > dataBudget {
			return
		}
		d.data += cost
		d.ended[id] = d.ended[id] || flags&dEnd != 0
		d.fr.WriteDataPadded(id, flags&dEnd != 0, data, pad) // pad is nil unless PADDED
		d.log("DATA %d %s len=%d pad=%d", id, flagNames(flags, "end", "pad", "input", "long"), len(data), len(pad))
	case opContinuation:
		id := d.stream(d.byte())
		var frag []byte
		if flags&cFields != 0 {
			hf := d.fields(nil)
			d.hbuf.Reset()
			for _, f := range hf {
				d.enc.WriteField(f)
			}
			frag = bytes.Clone(d.hbuf.Bytes())
			if rs := d.s.requests[id]; len(rs) > 0 {
				rs[len(rs)-1].fields = append(rs[len(rs)-1].fields, hf...)
			}
			d.log("CONTINUATION %d %s %v", id, flagNames(flags, "end_headers", "fields"), hf)
		} else {
			frag = []byte(d.str())
			d.log("CONTINUATION %d %s %q", id, flagNames(flags, "end_headers", "fields"), frag)
		}
		d.fr.WriteContinuation(id, flags&cEnd != 0, frag)
	case opRSTStream:
		id := d.stream(d.byte())
		code := http2.ErrCode(d.byte() % 16)
		d.s.reset[id] = true
		d.fr.WriteRSTStream(id, code)
		d.log("RST_STREAM %d %v", id, code)
	case opWindowUpdate:
		id := d.stream(d.byte())
		i := int(d.byte()) % (len(fuzzIncrements) + 1)
		incr := d.u32Or(i, fuzzIncrements)
		d.fr.WriteWindowUpdate(id, incr)
		d.log("WINDOW_UPDATE %d %d", id, incr)
	case opSettings:
		if flags&fAck != 0 {
			d.fr.WriteSettingsAck()
			d.log("SETTINGS ack")
			return
		}
		var ss []http2.Setting
		for range d.byte() % 7 {
			id := fuzzSettingIDs[int(d.byte())%len(fuzzSettingIDs)]
			if raceEnabled && id == http2.SettingHeaderTableSize {
				// net/http's server (Go 1.26) changes its HPACK encoder's
				// table size on its serve goroutine while an asynchronous
				// HEADERS write uses the encoder: the race detector stops
				// the run on the reference server's race. Both servers
				// get an unknown setting instead.
				id = 0x99
			}
			i := int(d.byte()) % (len(fuzzSettingValues) + 1)
			ss = append(ss, http2.Setting{ID: id, Val: d.u32Or(i, fuzzSettingValues)})
		}
		d.fr.WriteSettings(ss...)
		d.log("SETTINGS %v", ss)
	case opPing:
		var data [8]byte
		copy(data[:], d.take(8))
		if data == fuzzMarker {
			data[0] ^= 1
		}
		d.fr.WritePing(flags&fAck != 0, data)
		d.log("PING %s %x", flagNames(flags, "ack"), data)
	case opPriority:
		id := d.stream(d.byte())
		p := d.priority(id)
		p.Exclusive = flags&prExclusive != 0
		d.fr.WritePriority(id, p)
		d.log("PRIORITY %d %+v", id, p)
	case opGoAway:
		var last uint32
		switch b := d.byte(); b {
		case 0:
		case 1:
			last = d.next - 2
		case 2:
			last = 1<<31 - 1
		default:
			last = uint32(b)
		}
		code := http2.ErrCode(d.byte() % 16)
		d.s.goAway = true
		d.fr.WriteGoAway(last, code, nil)
		d.log("GOAWAY last=%d %v", last, code)
	case opRawFrame:
		typ, fl := http2.FrameType(d.byte()), http2.Flags(d.byte())
		id := d.stream(d.byte())
		payload := d.take(int(d.byte()))
		switch typ {
		case http2.FrameData:
			if d.data+len(payload) > dataBudget {
				return
			}
			d.data += len(payload)
			d.ended[id] = d.ended[id] || fl.Has(http2.FlagDataEndStream)
		case http2.FrameHeaders:
			d.headersOn(id, fl.Has(http2.FlagHeadersEndStream))
			d.s.rawHeaders = true
		case http2.FramePushPromise:
			d.s.rawHeaders = true
		case http2.FrameRSTStream:
			d.s.reset[id] = true
		case http2.FrameGoAway:
			d.s.goAway = true
		case 0x10: // PRIORITY_UPDATE
			if id != 0 || len(payload) < 4 || binary.BigEndian.Uint32(payload)&(1<<31-1) == 0 {
				d.s.badPrioUpd = true
			}
		}
		d.fr.WriteRawFrame(typ, fl, id, payload)
		d.log("raw %v flags=%#x stream=%d %x", typ, fl, id, payload)
	case opRawBytes:
		if flags != 0xf0 {
			// Bytes that cut a frame short stall both servers until
			// fuzzRun: rarely.
			d.op(opData, flags)
			return
		}
		b := d.take(int(d.byte() % 64))
		d.wire.Write(b)
		d.s.rawHeaders = true
		d.log("raw bytes %x", b)
	default:
		d.op(opData, flags)
	}
}

// u32Or returns table[i], or 4 bytes of the input for i past the table.
func (d *decoder) u32Or(i int, table []uint32) uint32 {
	if i < len(table) {
		return table[i]
	}
	return d.u32()
}

func (d *decoder) priority(id uint32) http2.PriorityParam {
	var p http2.PriorityParam
	switch dep := d.byte(); dep % 3 {
	case 1:
		p.StreamDep = id // on itself: a stream error
	case 2:
		p.StreamDep = d.stream(dep / 3)
	}
	p.Weight = d.byte()
	return p
}

// headersOn counts a HEADERS frame on id, end if it ends the stream.
func (d *decoder) headersOn(id uint32, end bool) {
	d.s.headersOn[id]++
	d.s.lateHeader = d.s.lateHeader || d.ended[id]
	d.ended[id] = d.ended[id] || end
}

// request writes a HEADERS frame (and CONTINUATIONs) opening a stream.
func (d *decoder) request(flags byte) {
	if d.requests >= maxRequests {
		return
	}
	d.requests++
	id := d.next
	switch d.byte() % 5 {
	case newReuse:
		if len(d.opened) > 0 {
			id = d.opened[len(d.opened)-1]
		}
	case newSkip:
		id = d.next + 2
	case newEven:
		id = d.next + 1
	}
	method, scheme, authority, path := d.pick(fuzzMethods), d.pick(fuzzSchemes), d.pick(fuzzAuthorities), d.pick(fuzzPaths)
	layout := d.byte()
	var hf []hpack.HeaderField
	add := func(when bool, name, value string) {
		if when {
			hf = append(hf, hpack.HeaderField{Name: name, Value: value})
		}
	}
	add(layout&noMethod == 0, ":method", method)
	add(layout&noScheme == 0, ":scheme", scheme)
	add(layout&(noAuthority|lateAuth) == 0, ":authority", authority)
	add(layout&noPath == 0, ":path", path)
	add(layout&twoPaths != 0, ":path", path)
	add(layout&withProto != 0, ":protocol", "websocket")
	add(layout&noTag == 0, tagField, strconv.FormatUint(uint64(id), 10))
	hf = d.fields(hf)
	if layout&(noAuthority|lateAuth) == lateAuth {
		hf = append(hf, hpack.HeaderField{Name: ":authority", Value: authority})
	}
	if id%2 == 1 && id >= d.next {
		d.next = id + 2
		d.opened = append(d.opened, id)
	}
	d.headersOn(id, flags&hEnd != 0)
	d.s.requests[id] = append(d.s.requests[id], &sentRequest{fields: hf, end: flags&hEnd != 0})
	d.block(id, flags, hf)
	d.log("HEADERS %d %s %v", id, flagNames(flags, "end", "split", "open", "prio"), hf)
}

// block encodes hf and writes it on id as HEADERS and, split or over
// 16 KiB, CONTINUATIONs.
func (d *decoder) block(id uint32, flags byte, hf []hpack.HeaderField) {
	d.hbuf.Reset()
	for _, f := range hf {
		d.enc.WriteField(f)
	}
	blk := d.hbuf.Bytes()
	var frags [][]byte
	for len(blk) > 0 {
		n := min(len(blk), 16384)
		if flags&hSplit != 0 {
			n = min(n, max(1, len(blk)/2))
		}
		frags = append(frags, blk[:n])
		blk = blk[n:]
	}
	if len(frags) == 0 {
		frags = [][]byte{nil}
	}
	p := http2.HeadersFrameParam{StreamID: id, BlockFragment: frags[0], EndStream: flags&hEnd != 0,
		EndHeaders: len(frags) == 1 && flags&hOpen == 0}
	if flags&hPrio != 0 {
		p.PadLength = d.byte()
		p.Priority = d.priority(id)
	}
	d.fr.WriteHeaders(p)
	for i, frag := range frags[1:] {
		d.fr.WriteContinuation(id, i == len(frags)-2 && flags&hOpen == 0, frag)
	}
}

func flagNames(flags byte, names ...string) string {
	var out []string
	for i, n := range names {
		if flags&(0x10<<i) != 0 {
			out = append(out, n)
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// seen is a request as a handler saw it.
type seen struct {
	tag    uint32 // the x-fuzz-stream field, 0 if none or unclear
	method string
	uri    string
	host   string
	length int64
	header http.Header

	// Set once the body is read (under the recorder's mu).
	done    bool
	body    string
	err     error
	trailer http.Header // r.Trailer once the body is read to its end
}

// recorder is the handler both servers run: it records the request,
// sends the answer's HEADERS (while the connection takes frames), reads
// the body to its end, then returns (quick) or waits for the request to
// end, and answers "ok".
type recorder struct {
	quick  bool
	wake   chan struct{} // notified as a handler enters, reads, returns
	mu     sync.Mutex
	inside int // handlers in ServeHTTP
	seen   []*seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := &seen{method: r.Method, uri: r.RequestURI, host: r.Host, length: r.ContentLength, header: r.Header.Clone()}
	if v := r.Header[http.CanonicalHeaderKey(tagField)]; len(v) == 1 {
		if n, err := strconv.ParseUint(v[0], 10, 31); err == nil {
			s.tag = uint32(n)
		}
	}
	rec.mu.Lock()
	rec.inside++
	rec.seen = append(rec.seen, s)
	rec.mu.Unlock()
	notify(rec.wake)
	defer func() {
		rec.mu.Lock()
		rec.inside--
		rec.mu.Unlock()
		notify(rec.wake)
	}()
	if r.Method != http.MethodHead {
		// net/http ends a HEAD answer at its first flush and resets the
		// body not yet received.
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
	}
	body, err := io.ReadAll(notifyingReader{r.Body, rec.wake})
	var trailer http.Header
	if err == nil {
		// Not before: net/http fills the map as the trailers come.
		trailer = r.Trailer.Clone()
	}
	rec.mu.Lock()
	s.done, s.body, s.err, s.trailer = true, string(body), err, trailer
	rec.mu.Unlock()
	notify(rec.wake)
	if !rec.quick {
		<-r.Context().Done()
	}
	io.WriteString(w, "ok")
}

// notifyingReader notifies wake after each read: the test waits for a
// handler to take what its stream holds.
type notifyingReader struct {
	r    io.Reader
	wake chan struct{}
}

func (nr notifyingReader) Read(p []byte) (int, error) {
	n, err := nr.r.Read(p)
	notify(nr.wake)
	return n, err
}

// records returns copies of the records, by tag: a handler may still
// finish one.
func (rec *recorder) records() map[uint32][]*seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := map[uint32][]*seen{}
	for _, s := range rec.seen {
		if s.tag != 0 {
			c := *s
			out[s.tag] = append(out[s.tag], &c)
		}
	}
	return out
}

func (rec *recorder) settled() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.inside > 0 {
		return false
	}
	for _, s := range rec.seen {
		if !s.done {
			return false
		}
	}
	return true
}

// fuzzClient is one client connection: a goroutine reads what the server
// sends and notes what a check needs.
type fuzzClient struct {
	c    net.Conn
	wake chan struct{} // notified as the server's frames come
	end  chan struct{} // closed once the final PING is answered or the connection ends
	read chan struct{} // closed when the reading goroutine returns

	mu     sync.Mutex
	acked  bool // the final PING was answered: the server took every frame
	closed bool // the server ended the connection before (or sent GOAWAY with an error)
	byUs   bool // the client closed it
	goAway *http2.GoAwayFrame
	rst    map[uint32]http2.ErrCode
	status map[uint32]string // the first final status of each stream
	bad    error             // what the client's framer refused
}

func dialFuzz(t *testing.T, addr string, wire []byte, wake chan struct{}) *fuzzClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fuzzClient{c: c, wake: wake, end: make(chan struct{}), read: make(chan struct{}),
		rst: map[uint32]http2.ErrCode{}, status: map[uint32]string{}}
	go fc.readLoop()
	go func() {
		c.SetWriteDeadline(time.Now().Add(fuzzRun))
		c.Write(wire) // a server that ends the connection early leaves the rest unwritten
	}()
	return fc
}

func (fc *fuzzClient) readLoop() {
	defer close(fc.read)
	fr := http2.NewFramer(nil, fc.c)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 1 << 24
	ended := false
	finish := func() {
		if !ended {
			ended = true
			close(fc.end)
		}
	}
	for {
		f, err := fr.ReadFrame()
		fc.mu.Lock()
		if err != nil {
			if !fc.byUs {
				fc.closed = !fc.acked
				// A server closing with unread bytes sends RST.
				if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					fc.bad = err
				}
			}
			fc.mu.Unlock()
			notify(fc.wake)
			finish()
			return
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() && f.Data == fuzzMarker {
				fc.acked = true
				finish()
			}
		case *http2.GoAwayFrame:
			if fc.goAway == nil {
				fc.goAway = &http2.GoAwayFrame{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}
			}
			if f.ErrCode != http2.ErrCodeNo && !fc.acked {
				// Neither server takes a frame after it (net/http
				// closes a second later).
				fc.closed = true
				finish()
			}
		case *http2.RSTStreamFrame:
			if _, ok := fc.rst[f.StreamID]; !ok {
				fc.rst[f.StreamID] = f.ErrCode
			}
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); !strings.HasPrefix(s, "1") {
				if _, ok := fc.status[f.StreamID]; !ok {
					fc.status[f.StreamID] = s
				}
			}
		}
		fc.mu.Unlock()
		notify(fc.wake)
	}
}

// wait waits for the final PING's answer or the end of the connection,
// up to fuzzRun after start; false if neither came.
func (fc *fuzzClient) wait(start time.Time) bool {
	select {
	case <-fc.end:
		return true
	case <-time.After(time.Until(start.Add(fuzzRun))):
		return false
	}
}

func (fc *fuzzClient) close() {
	fc.mu.Lock()
	fc.byUs = true
	fc.mu.Unlock()
	fc.c.Close()
	<-fc.read
}

// judged reports whether the server took stream id's HEADERS into
// account: it took every frame, or its GOAWAY names a stream at or
// after id.
func (fc *fuzzClient) judged(id uint32) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.acked || fc.goAway != nil && fc.goAway.LastStreamID >= id
}

// failed reports whether the server sent GOAWAY with an error.
func (fc *fuzzClient) failed() bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.goAway != nil && fc.goAway.ErrCode != http2.ErrCodeNo
}

// answered reports whether the server answered stream id (a status or a
// reset).
func (fc *fuzzClient) answered(id uint32) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_, st := fc.status[id]
	_, rst := fc.rst[id]
	return st || rst
}

func (fc *fuzzClient) String() string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var s string
	switch {
	case fc.acked:
		s = "took every frame"
	case fc.closed:
		s = "ended the connection"
	default:
		s = "stalled"
	}
	if fc.goAway != nil {
		s += fmt.Sprintf(" (GOAWAY last=%d %v)", fc.goAway.LastStreamID, fc.goAway.ErrCode)
	}
	return s
}

// gatedConn holds the server's first read until the test has found the
// connection's state: ServeConn registers it before that read.
type gatedConn struct {
	net.Conn
	gate    chan struct{}
	reading chan struct{} // closed at the first read
	once    sync.Once
}

func (g *gatedConn) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.reading) })
	<-g.gate
	return g.Conn.Read(p)
}

// serving returns the connection s serves, once ServeConn has it.
func serving(s *Server) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc := range s.conns {
		return sc
	}
	return nil
}

// unreadBody reports whether a stream of sc holds body bytes its handler
// has not read: closing the connection now would drop them (the
// "conn-end-drops-body" difference) where the case did not end it.
func unreadBody(sc *conn) bool {
	sc.mu.Lock()
	var pipes []*pipe
	for _, st := range sc.streams {
		if st.body != nil {
			pipes = append(pipes, st.body)
		}
	}
	sc.mu.Unlock()
	for _, p := range pipes {
		p.mu.Lock()
		n := len(p.buf) - p.off
		p.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

func handlers(sc *conn) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.handlers
}

// runScript sends s to both servers and checks what they did.
func runScript(t *testing.T, s *script) {
	wake := make(chan struct{}, 1) // a handler or a client's reader did something
	grec := &recorder{quick: s.quick, wake: wake}
	nrec := &recorder{quick: s.quick, wake: wake}

	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer gln.Close()
	gsrv := &Server{Handler: grec, MaxHeaderBytes: fuzzGsupHeaderBytes}
	gated := &gatedConn{gate: make(chan struct{}), reading: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := gln.Accept()
		if err != nil {
			close(gated.reading)
			return
		}
		gated.Conn = c
		gsrv.ServeConn(gated)
	}()

	nln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	// net/http configured as gsup's layer is: the same limits, and
	// "OPTIONS *" handed to the handler as gsup's front does (net/http
	// answers it itself otherwise).
	nsrv := &http.Server{Handler: nrec, Protocols: &protocols, MaxHeaderBytes: fuzzNetHeaderBytes,
		DisableGeneralOptionsHandler: true,
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams, MaxReadFrameSize: 16384,
			MaxReceiveBufferPerConnection: connWindow, MaxReceiveBufferPerStream: streamWindow},
		ErrorLog: log.New(io.Discard, "", 0)}
	nserved := make(chan struct{})
	go func() {
		defer close(nserved)
		nsrv.Serve(nln)
	}()
	defer func() {
		nsrv.Close()
		<-nserved
	}()

	start := time.Now()
	gc := dialFuzz(t, gln.Addr().String(), s.wire, wake)
	nc := dialFuzz(t, nln.Addr().String(), s.wire, wake)
	<-gated.reading
	sc := serving(gsrv)
	if sc == nil {
		t.Fatal("ServeConn reads a connection it has not registered")
	}
	close(gated.gate)
	gEnded, nEnded := gc.wait(start), nc.wait(start)

	// gsup's handlers take what came before the client closes: the close
	// would drop it.
	settled := waitUntil(wake, fuzzSettle, func() bool { return !unreadBody(sc) })
	gc.close()
	end := time.Now().Add(fuzzEnd)
	select {
	case <-served:
	case <-time.After(fuzzEnd):
		t.Fatalf("ServeConn did not return within %v of the client's close\nframes:\n%s", fuzzEnd, s)
	}
	waitUntil(wake, time.Until(end), grec.settled)
	if ok, _ := testprog.Poll(time.Until(end), func() (bool, string) { return handlers(sc) == 0, "" }); !ok {
		t.Fatalf("%d handlers still running %v after the client closed\nframes:\n%s", handlers(sc), fuzzEnd, s)
	}
	gsrv.Close()
	grecs := grec.records()

	ck := &checker{t: t, s: s, gc: gc, nc: nc, settled: settled}
	// A request gsup served that net/http has not shown to its handler
	// yet, and may not refuse: the handler may not have started.
	waitUntil(wake, fuzzJudge, func() bool {
		nrecs := nrec.records()
		for id, g := range grecs {
			if len(nrecs[id]) < len(g) && ck.missingInNet(id) == "" {
				return false
			}
		}
		return true
	})
	nc.close()
	if !nc.failed() {
		// After an error GOAWAY net/http lets its handlers' requests run
		// a second more: their records stay unfinished, unknown.
		waitUntil(wake, fuzzNetEnd, nrec.settled)
	}
	nrecs := nrec.records()
	if gc.bad != nil {
		ck.fail("gsup sent what a client's framer refuses: %v", gc.bad)
	}
	switch {
	case nc.acked && !gc.acked && ck.connExcuse() == "":
		ck.fail("gsup %v where net/http %v", gc, nc)
	case nEnded && !gEnded:
		ck.fail("gsup did not take the frames within %v", fuzzRun)
	}
	ck.compare(grecs, nrecs)
}

// waitUntil waits for cond, checking it whenever wake fires, up to d.
func waitUntil(wake chan struct{}, d time.Duration, cond func() bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-timer.C:
			return cond()
		}
	}
	return true
}

// checker compares the records of one case.
type checker struct {
	t       *testing.T
	s       *script
	gc, nc  *fuzzClient
	settled bool // gsup's handlers had taken every body byte before the close
}

func (ck *checker) fail(format string, args ...any) {
	ck.t.Helper()
	ck.t.Fatalf("%s\ngsup: %v; net/http: %v\nframes:\n%s", fmt.Sprintf(format, args...), ck.gc, ck.nc, ck.s)
}

func (ck *checker) compare(grecs, nrecs map[uint32][]*seen) {
	ck.t.Helper()
	ids := map[uint32]bool{}
	for id := range grecs {
		ids[id] = true
	}
	for id := range nrecs {
		ids[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		g, n := grecs[id], nrecs[id]
		for i := range max(len(g), len(n)) {
			switch {
			case i >= len(g):
				if n[i].done && n[i].err == nil && ck.missingInGsup(id, n[i]) == "" {
					ck.fail("stream %d: net/http delivered %s\nbody %s; gsup did not", id, head(n[i], false), ck.body(n[i], id, false))
				}
			case i >= len(n):
				if ck.missingInNet(id) == "" {
					ck.fail("stream %d: gsup delivered %s; net/http did not", id, head(g[i], true))
				}
			default:
				ck.pair(id, g[i], n[i])
			}
		}
	}
}

func (ck *checker) pair(id uint32, g, n *seen) {
	ck.t.Helper()
	if gh, nh := head(g, true), head(n, false); gh != nh {
		ck.fail("stream %d: the handlers saw\ngsup:     %s\nnet/http: %s", id, gh, nh)
	}
	switch {
	case !n.done:
		// unknown: see runScript
	case n.err == nil && g.err != nil:
		if ck.gsupBodyFailed(id, g) == "" {
			ck.fail("stream %d: net/http read the body whole (%s), gsup's failed: %v", id, ck.body(n, id, false), g.err)
		}
	case n.err != nil && g.err == nil:
		if ck.netBodyFailed(id, g) == "" {
			ck.fail("stream %d: gsup read the body whole (%s), net/http's failed: %v", id, ck.body(g, id, true), n.err)
		}
	case n.err == nil:
		if gb, nb := ck.body(g, id, true), ck.body(n, id, false); gb != nb {
			ck.fail("stream %d: the bodies differ\ngsup:     %s\nnet/http: %s", id, gb, nb)
		}
	}
}

// connExcuse returns why gsup may have ended the connection where
// net/http did not ("": no reason).
func (ck *checker) connExcuse() string {
	switch {
	case ck.s.noPrefaceSettings:
		return allowed("preface-settings")
	case ck.s.badPrioUpd:
		return allowed("priority-update")
	case ck.s.lateHeader:
		return allowed("headers-after-end")
	case ck.s.goAway:
		return allowed("client-goaway")
	}
	return ""
}

// missingInGsup returns why gsup may not have delivered the request n
// that net/http delivered on stream id with its body whole ("": no
// reason).
func (ck *checker) missingInGsup(id uint32, n *seen) string {
	if !ck.gc.judged(id) {
		return ck.connExcuse()
	}
	if (len(ck.s.requests[id]) > 1 || ck.s.fieldsFirst[id]) && ck.gc.answered(id) {
		return allowed("reused-id")
	}
	for _, r := range ck.s.requests[id] {
		if why := gsupRefuses(r); why != "" {
			return why
		}
	}
	return ""
}

// gsupRefuses returns the listed difference by which gsup refuses a
// request net/http takes.
func gsupRefuses(r *sentRequest) string {
	var cl, te []string
	for _, f := range r.fields {
		switch f.Name {
		case "content-length":
			cl = append(cl, f.Value)
		case "te":
			te = append(te, f.Value)
		}
	}
	if len(cl) > 0 {
		n, err := strconv.ParseUint(cl[0], 10, 63)
		switch {
		case err != nil || slices.ContainsFunc(cl, func(v string) bool { return v != cl[0] }):
			return allowed("content-length-syntax")
		case r.end && n > 0:
			return allowed("content-length-no-body")
		}
	}
	if slices.Contains(te, "") {
		return allowed("te-empty")
	}
	return ""
}

// missingInNet returns why net/http may not have delivered the request
// gsup delivered on stream id ("": no reason).
func (ck *checker) missingInNet(id uint32) string {
	if !ck.nc.judged(id) {
		return allowed("net-ended")
	}
	for _, r := range ck.s.requests[id] {
		var scheme, authority, host string
		te := 0
		for _, f := range r.fields {
			switch f.Name {
			case ":scheme":
				scheme = f.Value
			case ":authority":
				authority = f.Value
			case "host":
				host = cmp.Or(host, f.Value)
			case "te":
				te++
			}
		}
		authority = cmp.Or(authority, host)
		switch {
		case scheme != "http" && scheme != "https" && slices.ContainsFunc(r.fields, func(f hpack.HeaderField) bool {
			return f.Name == ":method" && f.Value != "CONNECT"
		}):
			return allowed("scheme")
		case strings.Contains(authority, "@") && (scheme == "http" || scheme == "https"):
			return allowed("userinfo")
		case te > 1:
			return allowed("te-repeated")
		}
	}
	return ""
}

// netBodyFailed returns why net/http's handler may have failed to read
// a body gsup's read whole on stream id ("": no reason).
func (ck *checker) netBodyFailed(id uint32, g *seen) string {
	if !ck.nc.acked {
		return allowed("net-ended") // before the body's end, maybe
	}
	forbidden := func(name string) bool { return !httpguts.ValidTrailerHeader(http.CanonicalHeaderKey(name)) }
	for k, vv := range g.trailer {
		if len(vv) > 0 && forbidden(k) {
			return "" // handed over
		}
	}
	if slices.ContainsFunc(ck.s.trailers[id], func(f hpack.HeaderField) bool { return forbidden(f.Name) }) {
		return allowed("forbidden-trailer-dropped")
	}
	return ""
}

// gsupBodyFailed returns why gsup's handler may have failed to read a
// body net/http's read whole ("": no reason).
func (ck *checker) gsupBodyFailed(id uint32, g *seen) string {
	ck.nc.mu.Lock()
	_, netReset := ck.nc.rst[id]
	netFailed := ck.nc.goAway != nil && ck.nc.goAway.ErrCode != http2.ErrCodeNo
	ck.nc.mu.Unlock()
	switch {
	case errors.Is(g.err, errClientReset) && ck.s.reset[id]:
		return allowed("reset-drops-body")
	case errors.Is(g.err, errStreamReset) && (netReset || netFailed):
		return allowed("reset-drops-body")
	case errors.Is(g.err, errConnClosed) && (!ck.gc.acked || !ck.settled):
		return allowed("conn-end-drops-body")
	}
	return ""
}

// head describes what a handler saw before the body, less the listed
// differences.
func head(s *seen, gsup bool) string {
	h := s.header.Clone()
	if !gsup {
		delete(h, "Host") // allowed("host-field")
	}
	if httpguts.HeaderValuesContainsToken(h["Expect"], "100-continue") {
		delete(h, "Expect") // allowed("expect-field")
	}
	var fields []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fields = append(fields, fmt.Sprintf("%s=%q", k, h[k]))
	}
	return fmt.Sprintf("%s %q host=%q length=%d fields=[%s]", s.method, s.uri, s.host, s.length,
		strings.Join(fields, " "))
}

// body describes the body a handler read on stream id and the trailers
// read with it: for gsup, r.Trailer but for the announced names it keeps
// and net/http drops, not sent; for net/http, the names announced less
// the empty one (allowed("trailer-names")), and not the trailers it did
// not announce (allowed("unannounced-trailers")).
func (ck *checker) body(s *seen, id uint32, gsup bool) string {
	if s.err != nil {
		return "error: " + s.err.Error()
	}
	announced := ck.s.announced(id)
	var tr []string
	for _, k := range slices.Sorted(maps.Keys(s.trailer)) {
		v := s.trailer[k]
		switch {
		case gsup && v == nil && (k == "Content-Length" || k == "Transfer-Encoding" || k == "Trailer"):
		case gsup, k != "" && slices.Contains(announced, k):
			tr = append(tr, fmt.Sprintf("%s=%q", k, v))
		}
	}
	return fmt.Sprintf("%q trailers=[%s]", s.body, strings.Join(tr, " "))
}

// announced returns the trailer names the requests on stream id
// announced, as net/http reads them (httpcommon.NewServerRequest).
func (s *script) announced(id uint32) []string {
	var out []string
	for _, r := range s.requests[id] {
		for _, f := range r.fields {
			if f.Name != "trailer" {
				continue
			}
			for k := range strings.SplitSeq(f.Value, ",") {
				switch k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k)); k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
				default:
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// fuzzSeeds are meaningful scripts, in the input's language.
func fuzzSeeds() [][]byte {
	at := func(table []string, v string) byte {
		i := slices.Index(table, v)
		if i < 0 {
			panic("no " + v)
		}
		return byte(i)
	}
	// field encodes a field of fuzzFields; a fuzzed name or value takes
	// its string from fuzzedStrs, in order.
	field := func(name, value string, fuzzedStrs ...string) []byte {
		i := slices.Index(fuzzFields, [2]string{name, value})
		if i < 0 {
			panic("no field " + name + ": " + value)
		}
		b := []byte{byte(i)}
		for _, v := range fuzzedStrs {
			if value == big {
				b = append(b, v...) // a count of 64 bytes
			} else {
				b = append(append(b, byte(len(v))), v...)
			}
		}
		return b
	}
	req := func(flags, sid byte, method, path string, layout byte, fields ...[]byte) []byte {
		b := []byte{opRequest | flags, sid, at(fuzzMethods, method), at(fuzzSchemes, "https"),
			at(fuzzAuthorities, "example.com"), at(fuzzPaths, path), layout, byte(len(fields))}
		return append(b, slices.Concat(fields...)...)
	}
	get := req(hEnd, newNext, "GET", "/", 0)
	data := func(flags, sid, n byte, rest ...byte) []byte {
		return append([]byte{opData | flags, sid, n}, rest...)
	}
	setting := func(id http2.SettingID, v uint32) []byte {
		return []byte{byte(slices.Index(fuzzSettingIDs, id)), byte(slices.Index(fuzzSettingValues, v))}
	}
	cat := func(cfg byte, parts ...[]byte) []byte { return append([]byte{cfg}, slices.Concat(parts...)...) }

	var many, storm [][]byte
	for i := range 60 {
		if i%3 == 0 {
			many = append(many, req(0, newNext, "POST", "/a/b?c=d", 0, field("content-length", "3")),
				data(dEnd, 0, 3))
		} else {
			many = append(many, get)
		}
	}
	for i := range 40 {
		storm = append(storm, []byte{opWindowUpdate, sidZero, byte(i % 5)},
			[]byte{opWindowUpdate, 0, byte(i % 5)})
	}
	return [][]byte{
		cat(0, get),
		cat(0, req(0, newNext, "POST", "/a/b?c=d", 0, field("content-length", "9")),
			data(0, 0, 3), data(dPad, 0, 3, 10), data(dEnd|dInput, 0, 3, 'x', 'y', 'z')),
		cat(0, req(0, newNext, "PUT", "/a/b?c=d", 0, field("trailer", "x-t"), field("content-type", "text/plain")),
			data(0, 0, 5), []byte{opTrailers | hEnd, 0, 1}, field("x-t", fuzzed, "v1"), get),
		cat(0, req(0, newNext, "POST", "/", 0, field("content-length", "9")), data(0, 0, 3),
			[]byte{opRSTStream, 0, byte(http2.ErrCodeCancel)}, get,
			req(0, newNext, "POST", "/", 0), data(dEnd, 0, 4), []byte{opRSTStream, 0, byte(http2.ErrCodeCancel)}),
		cat(cfgQuick, []byte{opSettings, 1}, setting(http2.SettingMaxFrameSize, 1<<24-1), slices.Concat(many...)),
		cat(0, []byte{opSettings, 1}, setting(http2.SettingInitialWindowSize, 0), get,
			req(0, newNext, "POST", "/", 0), slices.Concat(storm...),
			[]byte{opSettings, 2}, setting(http2.SettingInitialWindowSize, 65535), setting(http2.SettingHeaderTableSize, 0),
			[]byte{opPriority, 0, 2, 16}, []byte{opPing, 1, 2, 3, 4, 5, 6, 7, 8}, data(dEnd, 0, 1)),
		cat(0,
			req(hEnd, newNext, "GET", "/", 0, field("connection", "close")),
			req(hEnd, newNext, "GET", "/", 0, field("te", "gzip")),
			req(hEnd, newNext, "GET", "/", noPath),
			req(hEnd, newNext, "GET", "/", 0, field("X-Upper", "v")),
			req(hEnd, newNext, "GET", "/", 0, field("content-length", fuzzed, "1x")),
			req(hEnd, newNext, "GET", "/", 0, field("x-big", big, "\x82")),
			req(hEnd|hSplit, newNext, "GET", "/a/b?c=d", 0, field("cookie", "a=1"), field("cookie", "b=2"),
				field("host", "example.org")),
			req(hOpen, newNext, "POST", "/", 0, field("expect", "100-continue")),
			[]byte{opContinuation | cEnd | cFields, 0, 1}, field("accept", "*/*"), data(dEnd, 0, 2),
			[]byte{opRawFrame, 0x20, 0, 0, 2, 'h', 'i'},
			get),
	}
}
