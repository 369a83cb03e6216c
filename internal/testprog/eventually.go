package testprog

import (
	"bytes"
	"sync"
	"time"
)

// Fataler is what Eventually fails: a *testing.T or *testing.B (any
// testing.TB), or a *testscript.TestScript in a script command.
type Fataler interface {
	Fatalf(format string, args ...any)
}

// Eventually calls cond until it reports done, and fails f (Fatalf, so
// from the test's own goroutine only) with what and what cond last
// reported ("last saw: ...", when not empty) once timeout has passed
// without. It is the one way tests
// here wait for something: never sleep to synchronise.
func Eventually(f Fataler, what string, timeout time.Duration, cond func() (done bool, last string)) {
	if h, ok := f.(interface{ Helper() }); ok {
		h.Helper()
	}
	ok, last := Poll(timeout, cond)
	switch {
	case ok:
	case last == "":
		f.Fatalf("%s: timed out after %v", what, timeout)
	default:
		f.Fatalf("%s: timed out after %v; last saw: %s", what, timeout, last)
	}
}

// Poll calls cond until it reports done (true) or timeout passes (false,
// with what cond last reported), for a caller that reports the failure
// itself. The first call is immediate; the pause between calls grows
// from 10ms to 100ms, and cond is called once more at the deadline.
func Poll(timeout time.Duration, cond func() (done bool, last string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	interval := 10 * time.Millisecond
	for {
		done, last := cond()
		if done {
			return true, ""
		}
		if time.Now().After(deadline) {
			return false, last
		}
		time.Sleep(min(interval, max(time.Until(deadline), time.Millisecond)))
		interval = min(interval*3/2, 100*time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for concurrent use: the output of a
// process or a logger that a test polls while it is being written.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
