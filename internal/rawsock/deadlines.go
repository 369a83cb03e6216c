package rawsock

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadlines holds the directions whose deadline is armed, in a heap by
// when it passes, and one runtime timer for the first of them.
//
// A runtime timer per waiting direction costs, at each wait under a
// deadline that does not pass, the timer's arming and its stop at the
// close: the runtime's timer lock and heap each time, and a wake-up of
// its poller when the timer comes first. Behind an app that closes each
// connection (Gunicorn's sync workers), every answer's read waits so.
// Here such a wait costs a push on this heap and a removal at its close;
// the runtime timer moves only for a deadline earlier than the one it is
// armed for, and when it fires it expires what is due and is armed again
// for the next (nginx keeps its timers in one tree the same way, and
// sleeps in epoll_wait until the first).
type deadlines struct {
	mu    sync.Mutex
	heap  []*half // by key; h.pos is h's index + 1
	timer *time.Timer
	at    int64 // when timer fires (monoOf); 0: not armed
	// arms counts the runtime timer's armings (for tests).
	arms atomic.Int64
}

var timers deadlines

// add arms h's deadline: at is when it passes (monoOf), d from now.
// h.dmu is held; add takes q.mu after it (fire takes q.mu alone, and
// h.dmu only once q.mu is let go).
func (q *deadlines) add(h *half, at int64, d time.Duration) {
	q.mu.Lock()
	h.key = at
	if h.pos == 0 {
		q.heap = append(q.heap, h)
		h.pos = len(q.heap)
		q.up(h.pos - 1)
	} else {
		q.fix(h.pos - 1)
	}
	if q.at == 0 || at < q.at {
		q.at = at
		q.arms.Add(1)
		if q.timer == nil {
			q.timer = time.AfterFunc(d, q.fire)
		} else {
			q.timer.Reset(d)
		}
	}
	q.mu.Unlock()
}

// remove disarms h's deadline, if it is in the heap. The runtime timer
// stays armed: when it fires with nothing due, it is armed for the first
// deadline then, if any.
func (q *deadlines) remove(h *half) {
	q.mu.Lock()
	if h.pos != 0 {
		q.removeAt(h.pos - 1)
	}
	q.mu.Unlock()
}

// fire runs when the runtime timer fires: it takes the deadlines that
// have passed out of the heap, arms the timer for the next, and expires
// their directions (each looks at its deadline again: one moved later
// is armed anew).
func (q *deadlines) fire() {
	var buf [16]*half
	due := buf[:0]
	now := monoNow()
	q.mu.Lock()
	q.at = 0
	for len(q.heap) > 0 && q.heap[0].key <= now {
		due = append(due, q.heap[0])
		q.removeAt(0)
	}
	if len(q.heap) > 0 {
		q.at = q.heap[0].key
		q.arms.Add(1)
		q.timer.Reset(time.Duration(q.at - now))
	}
	q.mu.Unlock()
	for _, h := range due {
		h.expire()
	}
}

// removeAt takes the i-th entry out of the heap (q.mu held).
func (q *deadlines) removeAt(i int) {
	last := len(q.heap) - 1
	h := q.heap[i]
	if i != last {
		q.swap(i, last)
	}
	q.heap[last] = nil
	q.heap = q.heap[:last]
	h.pos = 0
	if i != last {
		q.fix(i)
	}
}

// fix moves the i-th entry to its place after its key changed.
func (q *deadlines) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q *deadlines) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if q.heap[p].key <= q.heap[i].key {
			return
		}
		q.swap(i, p)
		i = p
	}
}

// down moves the i-th entry down; it reports whether it moved.
func (q *deadlines) down(i int) bool {
	start, n := i, len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.heap[r].key < q.heap[l].key {
			c = r
		}
		if q.heap[i].key <= q.heap[c].key {
			break
		}
		q.swap(i, c)
		i = c
	}
	return i > start
}

func (q *deadlines) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].pos, q.heap[j].pos = i+1, j+1
}
