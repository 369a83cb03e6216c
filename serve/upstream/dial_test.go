package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
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

// An app that answers "Connection: close" and closes (Gunicorn's sync
// workers) gets its connections ended by a reset once its answer is in
// whole: ended by a FIN, one side of each would wait in TIME_WAIT for a
// minute, a socket per request.
func TestClosingAppLeavesNoTimeWait(t *testing.T) {
	const body = "answered whole"
	app := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, ok := readRequest(br); !ok {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	})
	_, portText, _ := net.SplitHostPort(app)
	port, _ := strconv.Atoi(portText)
	// A socket of an earlier test may have had the port as its own before
	// the app listened on it, and still wait in TIME_WAIT: only new ones
	// count.
	before := timeWaits(t, port)
	f, _ := gsupFront(t, Options{}, app)
	const n = 20
	for i := range n {
		status, _, got := get(t, f.URL)
		if status != http.StatusOK || got != body {
			t.Fatalf("request %d: status %d, body %q", i, status, got)
		}
	}
	var added []string
	for s := range timeWaits(t, port) {
		if !before[s] {
			added = append(added, s)
		}
	}
	if len(added) != 0 {
		t.Errorf("after %d requests, %d sockets to or from the app's port are in TIME_WAIT (%s); want none", n, len(added), strings.Join(added, ", "))
	}
}

// timeWaits returns the IPv4 TCP sockets in TIME_WAIT with port at either
// end, each as its local and remote address (/proc/net/tcp).
func timeWaits(t *testing.T, port int) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	tw := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "06" { // 06: TCP_TIME_WAIT
			continue
		}
		for _, addr := range f[1:3] {
			_, hexPort, _ := strings.Cut(addr, ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				tw[f[1]+" "+f[2]] = true
				break
			}
		}
	}
	return tw
}
