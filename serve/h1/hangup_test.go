package h1

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"gsup/internal/testprog"
)

func TestHangUpsProbe(t *testing.T) {
	const conns = 2000
	s := &Server{Handler: http.HandlerFunc(echo), IdleTimeout: 75 * time.Second, parkAfter: time.Millisecond}
	addr := serveRaw(t, s)
	var cs []net.Conn
	for range conns {
		c, br := dial(t, addr)
		get(t, c, br, "/")
		cs = append(cs, c)
	}
	waitParked(t, s, conns)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, c := range cs {
		c.Close()
	}
	testprog.Eventually(t, "all closed", 10*time.Second, func() (bool, string) {
		s.mu.Lock()
		n := s.conns.n
		s.mu.Unlock()
		return n == 0, fmt.Sprint(n)
	})
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("StackSys %d -> %d, HeapSys-Released %d -> %d, Sys %d -> %d, HeapAlloc %d -> %d", m0.StackSys, m1.StackSys, m0.HeapSys-m0.HeapReleased, m1.HeapSys-m1.HeapReleased, m0.Sys, m1.Sys, m0.HeapAlloc, m1.HeapAlloc)
}
