// Package gcfloor keeps Go's garbage collector from running every few
// megabytes while gsup's heap is small.
//
// At GOGC's percent (100) the collector starts a cycle each time the heap
// has grown by its live part, and at least every 4 MiB. A front whose live
// heap is a few megabytes then collects several times a second under load,
// and every cycle scans each goroutine's stack and the globals and makes
// the allocations around it help with the marking: about a tenth of the
// front's user time with a new client connection per request, with the
// stacks it shrank grown again. Set raises
// the percent so that no cycle starts before the heap reaches a floor, and
// lowers it back to 100 as soon as the live heap makes the usual goal the
// larger one: a big heap (10,000 idle connections) grows exactly as it
// would without a floor.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Default is gsup's floor: what the heap may reach before its first
// collection, and between two collections while its live part stays under
// about half of it.
const Default = 16 << 20

// minimum is the runtime's floor at a percent of 100: the goal is never
// under minimum*percent/100.
const minimum = 4 << 20

// base is the percent above the floor: GOGC's default.
const base = 100

var (
	mu     sync.Mutex
	active *floor
)

type floor struct {
	bytes   uint64
	stopped bool
	percent int
	samples []metrics.Sample
}

// Set starts keeping the collector's heap goal at bytes or above,
// recomputed after every cycle, and returns a function that stops it and
// puts the percent back to 100. A Set replaces the floor of a Set before
// it.
//
// When GOGC is in the environment, Set does nothing and its function does
// nothing: the operator has chosen. GOMEMLIMIT still bounds the heap with
// a floor in force; a limit under the floor wins.
func Set(bytes uint64) (stop func()) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return func() {}
	}
	f := &floor{bytes: bytes, percent: base, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	mu.Lock()
	if active != nil {
		active.stopLocked()
	}
	active = f
	f.adjustLocked()
	mu.Unlock()
	f.arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		f.stopLocked()
		if active == f {
			active = nil
		}
	}
}

// sentinel is allocated unreachable: the next cycle finds it dead and its
// cleanup runs after that cycle. It holds a pointer so that it is not one
// of the tiny allocations, which share a block and may never be freed.
type sentinel struct {
	_ *int
	_ [8]byte
}

// arm has f adjusted after the next collection, and armed again.
func (f *floor) arm() {
	runtime.AddCleanup(new(sentinel), func(f *floor) {
		mu.Lock()
		defer mu.Unlock()
		if f.stopped {
			return
		}
		f.adjustLocked()
		f.arm()
	}, f)
}

// adjustLocked sets the percent whose goal is the larger of the floor and
// the goal at 100, from the last cycle's live heap and scanned stacks and
// globals.
func (f *floor) adjustLocked() {
	metrics.Read(f.samples)
	live := f.samples[0].Value.Uint64()
	scan := live + f.samples[1].Value.Uint64() + f.samples[2].Value.Uint64()
	p := percent(f.bytes, live, scan)
	if p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
}

func (f *floor) stopLocked() {
	if f.stopped {
		return
	}
	f.stopped = true
	if f.percent != base {
		debug.SetGCPercent(base)
	}
}

// percent is the collector's percent whose heap goal is the larger of
// floor and the goal at 100, for a heap of live bytes after a cycle of
// which scan bytes (live heap, stacks and globals) are what the percent
// applies to. The runtime's goal at a percent p is the larger of
// live+scan*p/100 and 4 MiB*p/100, so p never goes past floor/4 MiB*100.
func percent(floor, live, scan uint64) int {
	if scan == 0 {
		scan = 1
	}
	p := base
	if live < floor {
		p = int((floor - live) * 100 / scan)
	}
	p = min(p, int(floor*100/minimum))
	return max(p, base)
}
