package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400},        // before the first cycle
		{1 * mb, 400},   // the bound
		{3 * mb, 400},   // 12/3 = 4
		{4 * mb, 300},   // 12/4
		{5 * mb, 225},   // 240, rounded down to a step
		{6 * mb, 200},   // 12/6
		{11 * mb, 100},  // 109, rounded down
		{12 * mb, 100},  // the floor reached: the default
		{500 * mb, 100}, // never below the default
	} {
		if got := Percent(c.live, Floor); got != c.want {
			t.Errorf("Percent(%d MB live) = %d, want %d", c.live/mb, got, c.want)
		}
	}
}

// currentPercent is the GOGC in force (SetGCPercent returns it).
func currentPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitPercent collects until the tuner (run by the finalizer goroutine
// after a cycle) has set want.
func waitPercent(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for currentPercent() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after 10 s of collections (live heap %d B), want %d",
				currentPercent(), readUint("/gc/heap/live:bytes"), want)
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // lets the finalizer goroutine run
	}
}

var sink [][]byte

func TestStartFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "") // so that the variable can be unset below and restored after
	unsetGOGC(t)
	before := currentPercent()
	stop := Start(Floor)
	defer stop()

	// A small live heap: the goal is kept a floor above it.
	sink = nil
	waitPercent(t, Percent(readUint("/gc/heap/live:bytes"), Floor))
	if p := currentPercent(); p <= 100 {
		t.Fatalf("GOGC %d with %d B live, want more than the default", p, readUint("/gc/heap/live:bytes"))
	}
	if live, goal := readUint("/gc/heap/live:bytes"), readUint("/gc/heap/goal:bytes"); goal < live+Floor*3/4 {
		t.Errorf("heap goal %d B with %d B live: less than the floor (%d B) above it", goal, live, Floor)
	}

	// A live heap past the floor: the default again.
	for range 48 {
		sink = append(sink, make([]byte, 1<<20))
	}
	waitPercent(t, 100)

	// And back when the heap is let go.
	sink = nil
	waitPercent(t, maxPercent)
	for range 48 {
		sink = append(sink, make([]byte, 1<<20))
	}
	waitPercent(t, 100)

	stop()
	sink = nil // a tuner still at work would want 400 now
	if p := currentPercent(); p != before {
		t.Errorf("GOGC %d after stop, want %d as before Start", p, before)
	}
	// A stopped tuner changes nothing more: its last sentinel's finalizer
	// runs and does nothing.
	debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)
	n := finalized.Load()
	deadline := time.Now().Add(10 * time.Second)
	for finalized.Load() == n {
		if time.Now().After(deadline) {
			t.Fatal("the last sentinel's finalizer did not run in 10 s of collections")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if p := currentPercent(); p != 150 {
		t.Errorf("GOGC %d after stop and collections, want 150 as set", p)
	}
}

func TestStartLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := currentPercent()
	stop := Start(Floor) // would set GOGC at once
	defer stop()
	if p := currentPercent(); p != before {
		t.Errorf("GOGC %d with GOGC=100 in the environment, want %d unchanged", p, before)
	}
}

// unsetGOGC removes GOGC from the environment for the test (t.Setenv
// before it restores the old value after).
func unsetGOGC(t *testing.T) {
	t.Helper()
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
}
