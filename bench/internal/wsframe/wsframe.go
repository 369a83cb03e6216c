// Package wsframe is the little of RFC 6455 that bench/ needs: the
// handshake's accept key and reading and writing single frames. The
// upstream app echoes frames with it and the soak client speaks it through
// gsup's front. Standard library only; no fragmentation, no extensions.
package wsframe

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Opcodes used here.
const (
	OpText  = 0x1
	OpClose = 0x8
	OpPing  = 0x9
	OpPong  = 0xA
)

// MaxPayload bounds what ReadFrame accepts.
const MaxPayload = 1 << 20

// AcceptKey is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Frame is one whole (FIN) frame.
type Frame struct {
	Op      byte
	Payload []byte
}

// ReadFrame reads one frame and unmasks its payload. A fragmented frame or
// a payload over MaxPayload is an error.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	if h[0]&0x80 == 0 {
		return Frame{}, errors.New("wsframe: fragmented frame")
	}
	op := h[0] & 0x0f
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("wsframe: payload of %d bytes", n)
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return Frame{}, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return Frame{}, err
	}
	if masked {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return Frame{Op: op, Payload: p}, nil
}

// AppendFrame appends a FIN frame to b; a non-nil mask (clients must mask)
// masks the payload with it.
func AppendFrame(b []byte, op byte, payload []byte, mask *[4]byte) []byte {
	b = append(b, 0x80|op)
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if mask == nil {
		return append(b, payload...)
	}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}
