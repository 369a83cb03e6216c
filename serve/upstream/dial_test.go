package upstream

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"gsup/internal/rawsock"
)

// On one processor (TestMain has rawsock preferred), the connections to
// an app that closes each one after its answer are rawsock's from the
// second on; those to an app that keeps them stay net's, whose waits for
// an answer cost less.
func TestDialFollowsTheAppsHabit(t *testing.T) {
	closes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "ok")
	})
	for _, tc := range []struct {
		name    string
		app     http.Handler
		oneShot bool
	}{{"keeps", echoApp, false}, {"closes", closes, true}} {
		t.Run(tc.name, func(t *testing.T) {
			f, b := gsupFront(t, Options{}, startBackend(t, tc.app))
			for range 3 {
				if status, _, _ := get(t, f.URL); status != http.StatusOK {
					t.Fatalf("status %d", status)
				}
			}
			be := (*b.ring.Load())[0]
			if got := be.oneShot.Load(); got != tc.oneShot {
				t.Errorf("oneShot %v after three exchanges, want %v", got, tc.oneShot)
			}
			pc, err := be.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer pc.c.Close()
			if _, raw := pc.c.(*rawsock.Conn); raw != tc.oneShot {
				t.Errorf("the next dial gives a %T", pc.c)
			}
		})
	}
}

// An app that closed its connections, then keeps them (a reload to
// threaded workers on the same address): the rawsock connection it kept
// is closed rather than pooled, so that the connections kept for it are
// net's.
func TestDialFollowsAChangeOfHabit(t *testing.T) {
	var keep atomic.Bool
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !keep.Load() {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	})
	f, b := gsupFront(t, Options{}, startBackend(t, app))
	for range 3 {
		if status, _, _ := get(t, f.URL); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
	}
	be := (*b.ring.Load())[0]
	if !be.oneShot.Load() {
		t.Fatal("an app that closes every connection: oneShot is false")
	}
	keep.Store(true)
	for range 3 {
		if status, _, _ := get(t, f.URL); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
	}
	if be.oneShot.Load() {
		t.Error("an app that keeps its connections now: oneShot is still true")
	}
	pc := be.getIdle()
	if pc == nil {
		t.Fatal("no connection kept for an app that keeps them")
	}
	defer pc.c.Close()
	if _, raw := pc.c.(*rawsock.Conn); raw {
		t.Errorf("the connection kept for the app is rawsock's (%T); want net's", pc.c)
	}
}
