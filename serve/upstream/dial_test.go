package upstream

import (
	"io"
	"net/http"
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
