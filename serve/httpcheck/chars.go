package httpcheck

// Byte classes of RFC 9110 section 5.6 and RFC 9112 section 7.1.1.
const (
	cTchar  = 1 << iota // token character
	cField              // allowed in a field value: VCHAR, obs-text, SP, HTAB
	cHex                // HEXDIG
	cQdtext             // allowed unescaped in a quoted-string: qdtext
	cTarget             // allowed in a request-target as received: no CTL, SP or DEL
)

var class [256]uint8

func init() {
	for c := 0; c < 256; c++ {
		var k uint8
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			k |= cTchar
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			k |= cTchar
		}
		if (0x21 <= c && c <= 0x7e) || c >= 0x80 || c == ' ' || c == '\t' {
			k |= cField
		}
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			k |= cHex
		}
		if c == '\t' || c == ' ' || c == 0x21 || (0x23 <= c && c <= 0x5b) || (0x5d <= c && c <= 0x7e) || c >= 0x80 {
			k |= cQdtext
		}
		// Bytes above 0x7f are not URI characters either (RFC 3986), but
		// net/http, Gunicorn (valid/027) and nginx take them; they are
		// passed on as received.
		if c > 0x20 && c != 0x7f {
			k |= cTarget
		}
		class[c] = k
	}
}

func isTchar(c byte) bool { return class[c]&cTchar != 0 }

func hexVal(c byte) uint64 {
	switch {
	case c <= '9':
		return uint64(c - '0')
	case c <= 'F':
		return uint64(c-'A') + 10
	}
	return uint64(c-'a') + 10
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
