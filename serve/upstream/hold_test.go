package upstream

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type result struct {
	status int
	body   string
	took   time.Duration
}

func getAsync(t *testing.T, url string) <-chan result {
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		resp, err := client(t).Get(url)
		if err != nil {
			ch <- result{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		ch <- result{status: resp.StatusCode, body: b.String(), took: time.Since(start)}
	}()
	return ch
}

// sendAsync sends a request with a small body; its result comes on the
// channel.
func sendAsync(t *testing.T, method, url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(method, url, strings.NewReader("body"))
		resp, err := client(t).Do(req)
		if err != nil {
			ch <- result{status: -1, body: err.Error()}
			return
		}
		resp.Body.Close()
		ch <- result{status: resp.StatusCode}
	}()
	return ch
}

// While an instance is expected (starting, restarting, backing off) and
// none is in rotation, a request waits for one instead of failing.
func TestHoldUntilAnInstanceIsReady(t *testing.T) {
	f, b := gsupFront(t, Options{HoldTimeout: 10 * time.Second})
	b.SetExpected(1)
	ch := getAsync(t, f.URL)
	select {
	case r := <-ch:
		t.Fatalf("answered %d before an instance was ready", r.status)
	case <-time.After(200 * time.Millisecond):
	}
	b.Add(1, startBackend(t, helloApp))
	if r := waitFor(t, ch, "the held request"); r.status != 200 {
		t.Errorf("held request: %d %q", r.status, r.body)
	}
}

// The hold is bounded by HoldTimeout (then 503 with Retry-After), and
// there is none when no instance is expected.
func TestHoldTimeoutAndNothingExpected(t *testing.T) {
	f, b := gsupFront(t, Options{HoldTimeout: 300 * time.Millisecond})
	b.SetExpected(1)
	start := time.Now()
	status, h, _ := get(t, f.URL)
	if d := time.Since(start); status != 503 || h.Get("Retry-After") == "" || d < 300*time.Millisecond {
		t.Errorf("after the hold: %d %v after %v", status, h, d)
	}
	b.SetExpected(0)
	start = time.Now()
	if status, _, _ := get(t, f.URL); status != 503 || time.Since(start) > 200*time.Millisecond {
		t.Errorf("nothing expected: %d after %v", status, time.Since(start))
	}
	// An instance stops being expected while a request waits: 503 at once.
	b.SetExpected(1)
	ch := getAsync(t, f.URL)
	time.Sleep(50 * time.Millisecond)
	b.SetExpected(0)
	if r := waitFor(t, ch, "the held request"); r.status != 503 || r.took > 250*time.Millisecond {
		t.Errorf("held, then nothing expected: %d after %v", r.status, r.took)
	}
}

// An idempotent request whose instance dies before any response byte
// is sent again to the next instance, even one that is not ready yet;
// a POST is not.
func TestRetryWhenTheInstanceDies(t *testing.T) {
	dies := rawBackend(t, func(c net.Conn) {
		readRequest(bufio.NewReader(c))
		c.Close()
	})
	for _, tc := range []struct {
		method string
		want   int
	}{{"GET", 200}, {"PUT", 200}, {"POST", 502}} {
		t.Run(tc.method, func(t *testing.T) {
			f, b := gsupFront(t, Options{HoldTimeout: 10 * time.Second}, dies)
			b.SetExpected(1)
			ch := sendAsync(t, tc.method, f.URL)
			// The instance died: it leaves rotation and restarts.
			time.Sleep(100 * time.Millisecond)
			b.Remove(1)
			b.Add(1, startBackend(t, helloApp))
			if r := waitFor(t, ch, "the request"); r.status != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.method, r.status, r.body, tc.want)
			}
		})
	}
}

// The only instance was just killed: it refuses connections before gsup
// has reaped it, taken it out of rotation and counted its restart. A
// request that met the refusal (nothing of it reached the app, whatever
// its method) waits for the restarted instance instead of a 502.
func TestHoldWhenTheOnlyInstanceJustDied(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			dead := ln.Addr().String()
			ln.Close()
			f, b := gsupFront(t, Options{HoldTimeout: 10 * time.Second}, dead)
			ch := sendAsync(t, method, f.URL)
			select {
			case r := <-ch:
				t.Fatalf("answered %d %s before gsup saw the instance die", r.status, r.body)
			case <-time.After(200 * time.Millisecond):
			}
			// gsup reaps it: out of rotation, restarting, then ready.
			b.Remove(1)
			b.SetExpected(1)
			b.Add(1, startBackend(t, helloApp))
			if r := waitFor(t, ch, "the request"); r.status != 200 {
				t.Errorf("%d %s, want 200", r.status, r.body)
			}
		})
	}
}

// The hold hook (metrics) is told when a request starts waiting, and how
// the wait ended: an instance came, or hold_timeout ran out.
func TestHoldHook(t *testing.T) {
	f, b := gsupFront(t, Options{HoldTimeout: 10 * time.Second})
	began := make(chan struct{}, 2)
	type end struct {
		waited time.Duration
		served bool
	}
	ended := make(chan end, 2)
	b.SetHoldHook(&HoldHook{
		Begin: func() { began <- struct{}{} },
		End:   func(d time.Duration, served bool) { ended <- end{d, served} },
	})
	b.SetExpected(1)
	ch := getAsync(t, f.URL)
	waitFor(t, began, "the hold to begin")
	b.Add(1, startBackend(t, helloApp))
	if r := waitFor(t, ch, "the held request"); r.status != 200 {
		t.Errorf("held request: %d %q", r.status, r.body)
	}
	if e := waitFor(t, ended, "the hold to end"); !e.served || e.waited <= 0 {
		t.Errorf("hold ended %+v, want served after a wait", e)
	}

	f2, b2 := gsupFront(t, Options{HoldTimeout: 100 * time.Millisecond})
	b2.SetHoldHook(&HoldHook{Begin: func() { began <- struct{}{} }, End: func(d time.Duration, served bool) { ended <- end{d, served} }})
	b2.SetExpected(1)
	if status, _, _ := get(t, f2.URL); status != 503 {
		t.Errorf("after hold_timeout: %d", status)
	}
	waitFor(t, began, "the second hold to begin")
	if e := waitFor(t, ended, "the second hold to end"); e.served || e.waited < 100*time.Millisecond {
		t.Errorf("hold ended %+v, want unserved after hold_timeout", e)
	}
}
