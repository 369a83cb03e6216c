package rawsock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"gsup/internal/testprog"
)

// The heap stays a heap, and each entry knows its place, through random
// arms, re-arms and removals (on a heap of its own, whose timer is armed
// an hour away and never fires during the test).
func TestDeadlineHeap(t *testing.T) {
	q := &deadlines{}
	defer func() {
		if q.timer != nil {
			q.timer.Stop()
		}
	}()
	hs := make([]*half, 64)
	for i := range hs {
		hs[i] = &half{}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	in := 0
	for op := range 20000 {
		h := hs[rng.IntN(len(hs))]
		if h.pos != 0 && rng.IntN(3) == 0 {
			q.remove(h)
			in--
		} else {
			if h.pos == 0 {
				in++
			}
			q.add(h, int64(time.Hour)+rng.Int64N(1000), time.Hour)
		}
		if len(q.heap) != in {
			t.Fatalf("op %d: %d entries, want %d", op, len(q.heap), in)
		}
		for i, e := range q.heap {
			if e.pos != i+1 {
				t.Fatalf("op %d: entry %d says it is at %d", op, i, e.pos-1)
			}
			if i > 0 && q.heap[(i-1)/2].key > e.key {
				t.Fatalf("op %d: entry %d (%d) comes before its parent (%d)", op, i, e.key, q.heap[(i-1)/2].key)
			}
		}
	}
	for _, h := range hs {
		if h.pos != 0 {
			q.remove(h)
		}
	}
	if len(q.heap) != 0 {
		t.Fatalf("%d entries left after every one was removed", len(q.heap))
	}
}

// Connections that each wait under a deadline a minute away and close
// (an app's connection per request, waiting for its answer) arm the one
// runtime timer at most once between them, and leave nothing in the heap.
func TestDeadlinesArmTheTimerOnce(t *testing.T) {
	arms := timers.arms.Load()
	for i := range 100 {
		srv, _ := pair(t, "tcp")
		srv.SetReadDeadline(time.Now().Add(time.Minute))
		errc := startRead(srv)
		testprog.Eventually(t, "the read to wait", 5*time.Second, func() (bool, string) { return srv.rd.waiting.Load(), "" })
		srv.Close()
		readEnds(t, errc, net.ErrClosed, 5*time.Second, fmt.Sprintf("connection %d: a read at Close", i))
		timers.mu.Lock()
		pos := srv.rd.pos
		timers.mu.Unlock()
		if pos != 0 {
			t.Fatalf("connection %d: its deadline is still in the heap after Close", i)
		}
	}
	if n := timers.arms.Load() - arms; n > 1 {
		t.Errorf("100 connections waiting under a deadline a minute away armed the runtime timer %d times; want 1 at most", n)
	}
}

// Deadlines armed in any order pass in theirs: each waiting read ends at
// its deadline, not before; a deadline an hour away ends nothing; the
// deadlines of connections closed before theirs passed (taken out of the
// middle of the heap) end nothing but their own reads, with net.ErrClosed.
func TestDeadlinesPassInOrder(t *testing.T) {
	type waiter struct {
		c    *Conn
		cli  net.Conn
		when time.Time // zero: an hour away
		errc <-chan error
	}
	start := time.Now()
	var short, long, closed []*waiter
	offsets := rand.Perm(12)
	for _, k := range offsets {
		srv, cli := pair(t, "tcp")
		w := &waiter{c: srv, cli: cli, when: start.Add(time.Duration(40+20*k) * time.Millisecond)}
		srv.SetReadDeadline(w.when)
		short = append(short, w)
		if k%4 == 0 {
			srv, cli := pair(t, "tcp")
			srv.SetReadDeadline(time.Now().Add(time.Hour))
			long = append(long, &waiter{c: srv, cli: cli})
			srv, cli = pair(t, "tcp")
			srv.SetReadDeadline(start.Add(time.Duration(50+20*k) * time.Millisecond))
			closed = append(closed, &waiter{c: srv, cli: cli})
		}
	}
	all := append(append(append([]*waiter{}, short...), long...), closed...)
	for _, w := range all {
		w.errc = startRead(w.c)
	}
	for _, w := range all {
		testprog.Eventually(t, "the reads to wait", 5*time.Second, func() (bool, string) { return w.c.rd.waiting.Load(), "" })
	}
	for _, w := range closed {
		w.c.Close()
	}
	for _, w := range closed {
		readEnds(t, w.errc, net.ErrClosed, 5*time.Second, "a read closed before its deadline")
	}
	for i, w := range short {
		select {
		case err := <-w.errc:
			if now := time.Now(); !errors.Is(err, os.ErrDeadlineExceeded) || now.Before(w.when) {
				t.Errorf("read %d: %v at %v, want a timeout at its deadline, %v", i, err, now.Sub(start), w.when.Sub(start))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("read %d: still waiting 10 s after its deadline", i)
		}
	}
	for i, w := range long {
		select {
		case err := <-w.errc:
			t.Fatalf("read %d under a deadline an hour away ended: %v", i, err)
		default:
		}
		w.cli.Write([]byte("x"))
		if err := <-w.errc; err != nil {
			t.Errorf("read %d under a deadline an hour away: %v, want the byte", i, err)
		}
	}
}
