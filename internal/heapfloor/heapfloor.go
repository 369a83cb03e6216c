// Package heapfloor lets the collector wait for some garbage before it
// runs, when little of the heap is live.
//
// With Go's default (GOGC=100) a cycle starts once the heap has grown by
// as much as is live. The front's live heap is small (2-4 MB with a few
// hundred connections) and every request leaves garbage, so under load
// the collector runs many times a second, each time scanning every
// goroutine's stack: 5 to 12 % of the front's CPU in bench/http.sh's
// profiles. Start raises the growth allowed to keep the heap goal at
// least Floor above the live heap, up to GOGC=400, and goes back towards
// the default as the live heap grows past Floor: the memory this costs is
// bounded by Floor, not by the heap. A GOGC in gsup's environment is the
// operator's choice, and Start then leaves the collector alone.
package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Floor is how far above the live heap the heap goal is kept, at least.
const Floor = 12 << 20

// maxPercent bounds the GOGC Start sets: the runtime's smallest heap goal
// is 4 MB × GOGC/100, so at 400 it is 16 MB, about Floor above a small
// live heap.
const maxPercent = 400

// step rounds the GOGC Start sets, so that a live heap that moves a
// little from cycle to cycle does not change it each time.
const step = 25

// Percent is the GOGC that keeps the heap goal about floor bytes above a
// live heap of live bytes: 100 (the default) once live reaches floor,
// never more than 400.
func Percent(live, floor uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := floor * 100 / live
	p = p / step * step
	return int(min(max(p, 100), maxPercent))
}

var (
	mu        sync.Mutex
	running   *tuner
	finalized atomic.Int64 // sentinels' finalizers run, for tests
)

type tuner struct {
	floor   uint64
	stopped atomic.Bool
	percent int // the GOGC last set
	samples []metrics.Sample
}

// sentinel is garbage from the moment it is made: its finalizer runs
// after the next cycle, and makes the next one. Its pointer and size keep
// it out of the tiny allocator, whose blocks are freed together.
type sentinel struct {
	t *tuner
	_ [2]uint64
}

// Start begins keeping the heap goal floor bytes above the live heap,
// after each collection, and returns what stops it (the collector then
// has the GOGC it had before Start). It does nothing (and its stop does
// nothing) when GOGC is set in the environment, or when it already runs.
func Start(floor uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	if running != nil {
		return func() {}
	}
	t := &tuner{floor: floor, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	running = t
	t.percent = Percent(t.live(), floor)
	before := debug.SetGCPercent(t.percent)
	t.arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if running != t {
			return
		}
		running = nil
		t.stopped.Store(true)
		debug.SetGCPercent(before)
	}
}

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		mu.Lock()
		defer mu.Unlock()
		finalized.Add(1)
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

// live is the heap the last cycle found live (0 before the first).
func (t *tuner) live() uint64 {
	metrics.Read(t.samples)
	if s := t.samples[0]; s.Value.Kind() == metrics.KindUint64 {
		return s.Value.Uint64()
	}
	return 0
}

// tune sets GOGC for the live heap of the last cycle.
func (t *tuner) tune() {
	if p := Percent(t.live(), t.floor); p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
}
