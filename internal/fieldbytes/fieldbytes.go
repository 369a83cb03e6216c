// Package fieldbytes looks at the bytes of HTTP field values and log
// atoms eight at a time, for the checks made on every request: whether a
// value holds a control byte, or a byte that an access log escapes. A
// value without one, the common case, is then copied whole.
package fieldbytes

import (
	"encoding/binary"
	"unsafe"
)

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// word is s[i:i+8] as a little-endian number, in one load.
func word(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:i+8]), 8))
}

// str is b as a string, without a copy, for the checks below only.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// below reports whether a byte of x is below 0x20.
func below(x uint64) bool { return (x-0x20*ones)&^x&highs != 0 }

// has reports whether a byte of x is c.
func has(x uint64, c byte) bool {
	y := x ^ uint64(c)*ones
	return (y-ones)&^y&highs != 0
}

// Controls reports whether s holds a control byte: one below 0x20 (a
// tab, CR and LF among them) or DEL. The last eight bytes of s, when it
// has eight, are looked at together whatever the eights before them.
func Controls(s string) bool {
	if len(s) < 8 {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(s)-8; i += 8 {
		if x := word(s, i); below(x) || has(x, 0x7f) {
			return true
		}
	}
	x := word(s, len(s)-8)
	return below(x) || has(x, 0x7f)
}

// ControlsAt reports whether the eight bytes of b at i hold a control
// byte or DEL (b must have them).
func ControlsAt(b []byte, i int) bool {
	x := binary.LittleEndian.Uint64(b[i : i+8])
	return below(x) || has(x, 0x7f)
}

// ControlsIn is Controls for a byte slice.
func ControlsIn(b []byte) bool { return Controls(str(b)) }

// Escaped reports whether s holds a byte that an access log writes
// escaped: a control byte or '"'.
func Escaped(s string) bool {
	if len(s) < 8 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == 0x7f || c == '"' {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(s)-8; i += 8 {
		if x := word(s, i); below(x) || has(x, 0x7f) || has(x, '"') {
			return true
		}
	}
	x := word(s, len(s)-8)
	return below(x) || has(x, 0x7f) || has(x, '"')
}

// EscapedIn is Escaped for a byte slice.
func EscapedIn(b []byte) bool { return Escaped(str(b)) }

// Trimmed reports whether s neither starts nor ends with a byte that
// strings.TrimSpace could take away: ASCII white space, or the first or
// last byte of a multi-byte character (Unicode white space is one).
func Trimmed(s string) bool {
	if s == "" {
		return true
	}
	a, z := s[0], s[len(s)-1]
	return ' ' < a && a < 0x80 && ' ' < z && z < 0x80
}
