package supervisor

import (
	"sync"
	"sync/atomic"
	"time"
)

// ringSize is how many recent lines each instance keeps for `gsup logs`.
const ringSize = 500

// Line is one line of a child's output.
type Line struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Text     string    `json:"text"`
}

// ring keeps an instance's most recent lines. Safe for concurrent use.
type ring struct {
	name  string
	hub   *lineHub
	mu    sync.Mutex
	lines []Line
	next  int
	full  bool
}

func (r *ring) add(t time.Time, text []byte) {
	l := Line{Time: t, Instance: r.name, Text: string(text)}
	r.mu.Lock()
	if r.lines == nil {
		r.lines = make([]Line, ringSize)
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % ringSize
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
	if r.hub != nil {
		r.hub.publish(l)
	}
}

// lineHub passes new lines to followers (`gsup logs -f`). A follower that
// cannot keep up loses lines rather than slowing the children down.
type lineHub struct {
	n    atomic.Int32
	mu   sync.Mutex
	subs map[chan Line]func(string) bool
}

func (h *lineHub) publish(l Line) {
	if h.n.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, want := range h.subs {
		if want(l.Instance) {
			select {
			case ch <- l:
			default:
			}
		}
	}
}

func (h *lineHub) follow(want func(string) bool) (<-chan Line, func()) {
	ch := make(chan Line, 1024)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan Line]func(string) bool{}
	}
	h.subs[ch] = want
	h.n.Add(1)
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.n.Add(-1)
			h.mu.Unlock()
		})
	}
}

// snapshot returns the kept lines, oldest first.
func (r *ring) snapshot() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Line(nil), r.lines[:r.next]...)
	}
	out := append([]Line(nil), r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}
