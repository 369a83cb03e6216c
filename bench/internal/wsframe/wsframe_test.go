package wsframe

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// RFC 6455, section 1.3
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptKey = %q", got)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, n := range []int{0, 5, 125, 126, 300, 65535, 65536, 70000} {
		p := []byte(strings.Repeat("x", n))
		for _, m := range []*[4]byte{nil, &mask} {
			b := AppendFrame(nil, OpText, p, m)
			f, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)))
			if err != nil || f.Op != OpText || !bytes.Equal(f.Payload, p) {
				t.Errorf("%d bytes, masked %v: op %d, %d bytes, %v", n, m != nil, f.Op, len(f.Payload), err)
			}
		}
	}
	// RFC 6455, section 5.7: a masked "Hello"
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})))
	if err != nil || string(f.Payload) != "Hello" {
		t.Errorf("RFC example: %q, %v", f.Payload, err)
	}
}
