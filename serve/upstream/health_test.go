package upstream

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type sickCall struct {
	id     uint64
	hung   bool
	detail string
}

func sickRecorder() (SickFunc, <-chan sickCall) {
	ch := make(chan sickCall, 4)
	return func(id uint64, hung bool, detail string) { ch <- sickCall{id, hung, detail} }, ch
}

// An instance that answers 504s (no head within Timeout) max_fails
// times in a row leaves rotation and is reported once; an answer in
// between resets the count.
func TestPassiveHealthMaxFails(t *testing.T) {
	slow := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		w.Write([]byte("hello"))
	}))
	f, b := gsupFront(t, Options{Timeout: 100 * time.Millisecond}, slow)
	fn, calls := sickRecorder()
	b.SetHealth(2, 0, fn)
	for _, path := range []string{"/slow", "/", "/slow"} {
		if status, _, _ := get(t, f.URL+path); path == "/" && status != 200 || path != "/" && status != 504 {
			t.Fatalf("%s: %d", path, status)
		}
	}
	select {
	case c := <-calls:
		t.Fatalf("reported sick after a reset count: %+v", c)
	default:
	}
	get(t, f.URL+"/slow")
	c := waitFor(t, calls, "the sick instance")
	if c.id != 1 || c.hung || !strings.Contains(c.detail, "2 upstream failures in a row") {
		t.Errorf("sick: %+v", c)
	}
	if b.Len() != 0 {
		t.Errorf("the sick instance is still in rotation")
	}
}

// A request without a response byte within the hang timeout marks the
// instance hung at once, and a GET goes to another instance.
func TestHangTimeoutRetriesElsewhere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accepts, reads, never answers: a stopped process
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	good := startBackend(t, helloApp)
	f, b := gsupFront(t, Options{Timeout: 10 * time.Second}, ln.Addr().String())
	b.Add(2, good)
	fn, calls := sickRecorder()
	b.SetHealth(0, 200*time.Millisecond, fn)
	for range 2 {
		start := time.Now()
		if status, _, _ := get(t, f.URL); status != 200 || time.Since(start) > 5*time.Second {
			t.Fatalf("GET: %d after %v", status, time.Since(start))
		}
	}
	c := waitFor(t, calls, "the hung instance")
	if c.id != 1 || !c.hung || !strings.Contains(c.detail, "hang_timeout 200ms") {
		t.Errorf("sick: %+v", c)
	}
	if b.Len() != 1 {
		t.Errorf("rotation has %d instances, want 1", b.Len())
	}
}
