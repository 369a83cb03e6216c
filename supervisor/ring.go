package supervisor

import (
	"sync"
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
	mu    sync.Mutex
	lines []Line
	next  int
	full  bool
	tail  func(Line) // called with each new line (live followers); may be nil
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
	tail := r.tail
	r.mu.Unlock()
	if tail != nil {
		tail(l)
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
