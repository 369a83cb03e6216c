package upstream

import (
	"math/bits"
	"sync"
)

// Byte buffers in power-of-two classes from 512 B to 64 MiB, for buffered
// request and response bodies and for copying.
const (
	minClass = 9
	maxClass = 26
	copySize = 32 << 10
)

var bufPools [maxClass - minClass + 1]sync.Pool

// getBuf returns a buffer of length n; hand it back with putBuf.
func getBuf(n int) *[]byte {
	c := bits.Len(uint(n-1)) - minClass
	if n <= 1<<minClass {
		c = 0
	}
	if c > maxClass-minClass {
		b := make([]byte, n)
		return &b
	}
	if v := bufPools[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<(c+minClass))
	return &b
}

func putBuf(bp *[]byte) {
	if bp == nil {
		return
	}
	n := cap(*bp)
	c := bits.Len(uint(n)) - 1 - minClass
	if n&(n-1) != 0 || c < 0 || c > maxClass-minClass {
		return
	}
	bufPools[c].Put(bp)
}
