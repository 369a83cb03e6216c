package head

import (
	"net/http"
	"unsafe"
)

// Names is a filter of the field names of a request head, made by the
// connection layer as it parses the head: a name the filter does not
// hold is not in the request's header map, and Lookup spares the search
// for it. The front asks a request for some twenty names (framing,
// forwarding, the scheme fields, the access log's), most of them absent,
// and a search of a Go map for a name costs a hash of it and a probe
// (about 120 instructions in a map of up to 8 names): the filter
// answers most of them in a dozen.
//
// A filter speaks for the map it was sealed with, and only while the map
// has as many names as then: a field deleted since (gsup's handling
// deletes some) turns it off, and Lookup searches the map. Adding a name
// to a request's header map after the parse, while deleting another, is
// what it cannot see: nothing in gsup adds fields to a request's header.
type Names struct {
	bits [2]uint64
	n    int            // the map's names when sealed
	m    unsafe.Pointer // the map sealed with
	// Checked are the limits the connection layer checked the head's raw
	// bytes against as it read it (zero: none).
	Checked Limits
	// Head is the request head as the connection layer checked it, byte
	// by byte, against the grammar of a head (no control byte in a
	// value but a tab, no bare CR or LF); its field values are
	// substrings of it (InHead). "" when it gives none.
	Head string
}

// InHead reports whether v's bytes lie in s.Head (s may be nil): v is
// then a field value as the client sent it, or a part of one (a Go
// string cannot reach past the one it was cut from), and holds no CR,
// LF or other control byte but a tab. A value made or changed since
// lies elsewhere.
func (s *Names) InHead(v string) bool {
	if s == nil || len(s.Head) == 0 || len(v) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
	h := uintptr(unsafe.Pointer(unsafe.StringData(s.Head)))
	return h <= p && p-h <= uintptr(len(s.Head)-len(v))
}

// Limits are a request head's size limits, as httpcheck.Limits has them
// once normalised: the request line's bytes, the field lines, a field
// line's bytes with its CRLF.
type Limits struct{ RequestLine, Fields, FieldSize int }

// Covers reports whether s (which may be nil) says the head was checked
// against limits l or stricter ones.
func (s *Names) Covers(l Limits) bool {
	if s == nil || s.Checked.RequestLine == 0 {
		return false
	}
	c := s.Checked
	return c.RequestLine <= l.RequestLine && c.Fields <= l.Fields && c.FieldSize <= l.FieldSize
}

// Note puts a canonical name in the filter and reports whether it may
// have held it before (false is sure), with one hash of the name.
func (s *Names) Note(name string) (held bool) {
	w, b := nameBit(name)
	held = s.bits[w]&b != 0
	s.bits[w] |= b
	return held
}

// NoteName is Note for a Name, whose bit is worked out already.
func (s *Names) NoteName(n Name) (held bool) {
	held = s.bits[n.w&1]&n.b != 0
	s.bits[n.w&1] |= n.b
	return held
}

// Seal binds the filter to h, which holds the names added (and may hold
// fewer: h1 deletes the framing fields it takes out of the map).
func (s *Names) Seal(h http.Header) { s.n, s.m = len(h), mapOf(h) }

// Name is a canonical field name with its bit in the filter, worked out
// once (NameOf): the names the front asks of every request are package
// variables, so that Lookup only tests a bit.
type Name struct {
	S string // the name
	w int
	b uint64
}

// NameOf is name (canonical) as a Name.
func NameOf(name string) Name {
	w, b := nameBit(name)
	return Name{S: name, w: w, b: b}
}

// Lookup returns h[n.S], without searching h when s (which may be nil)
// speaks for h and does not hold the name.
func (s *Names) Lookup(h http.Header, n Name) []string {
	if s != nil && s.bits[n.w&1]&n.b == 0 && s.m == mapOf(h) && s.m != nil && len(h) == s.n {
		return nil
	}
	return h[n.S]
}

// Get is Lookup's first value, or "".
func (s *Names) Get(h http.Header, n Name) string {
	if vs := s.Lookup(h, n); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// mapOf is h's identity: a map value is a pointer to its header.
func mapOf(h http.Header) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&h)) }

// nameBit is the filter's bit for a name, from its length and four of
// its bytes (the first, the last, the middle one and the fourth from the
// end: names of one length differ most near their ends), multiplied and
// cut to one of 128. The multipliers give each of the names the front
// asks for, and of the names clients send most often, a bit of its own
// (TestAskedNamesHaveBitsOfTheirOwn).
func nameBit(name string) (word int, bit uint64) {
	n := len(name)
	if n == 0 {
		return 0, 1
	}
	x := uint32(n)*0x51c2ce3b ^ uint32(name[0])<<24 ^ uint32(name[n-1])<<16 ^ uint32(name[n/2])<<8 ^ uint32(name[max(n-4, 0)])
	x = (x * 0xff5bb5e5) >> 25
	return int(x >> 6), 1 << (x & 63)
}

// NamesKey is the context key under which a connection layer gives a
// request's Names: its request context's Value answers it with a
// *Names.
type NamesKey struct{}

// NamesOf returns the filter the connection layer made for r's head, or
// nil when it made none (Lookup then searches the map).
func NamesOf(r *http.Request) *Names {
	s, _ := r.Context().Value(NamesKey{}).(*Names)
	return s
}
