package gcfloor

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"gsup/internal/testprog"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		floor, live, scan uint64
		want              int
	}{
		// a heap far under the floor: the runtime's own minimum (4 MiB
		// at 100) grows with the percent to the floor, and no further
		{16 * mib, 0, 0, 400},
		{16 * mib, 1 * mib, 1 * mib, 400},
		{32 * mib, 1 * mib, 1 * mib, 800},
		// live+scan*p/100 reaches the floor
		{16 * mib, 4 * mib, 6 * mib, 200},
		// the goal at 100 is the larger one: 100
		{16 * mib, 8 * mib, 8 * mib, 100},
		{16 * mib, 64 * mib, 70 * mib, 100},
		{16 * mib, 16 * mib, 17 * mib, 100},
	} {
		if got := percent(c.floor, c.live, c.scan); got != c.want {
			t.Errorf("percent(%d MiB floor, %d live, %d scan) = %d, want %d", c.floor/mib, c.live, c.scan, got, c.want)
		}
	}
}

// unsetGOGC runs the test as gsup runs when GOGC is not in its
// environment, at the runtime's percent of 100.
func unsetGOGC(t *testing.T) {
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	old := debug.SetGCPercent(base)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

var sink []byte

// cycles allocates n bytes in 8 KiB pieces that die at once and returns
// how many collections ran meanwhile.
func cycles(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	for range n / 8192 {
		sink = make([]byte, 8192)
	}
	sink = nil
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

func gcPercent() int { return int(read("/gc/gogc:percent")) }

// goal is the heap size at which the next collection is to end.
func goal() uint64 { return read("/gc/heap/goal:bytes") }

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

const mib = 1 << 20

func TestFloorSpacesCollections(t *testing.T) {
	unsetGOGC(t)
	runtime.GC()
	if g := goal(); g > 8*mib {
		t.Fatalf("before Set the heap goal is %d MiB, want the runtime's 4 MiB", g/mib)
	}

	stop := Set(64 * mib)
	defer stop()
	if g := goal(); g < 60*mib {
		t.Errorf("with a 64 MiB floor the heap goal is %d MiB", g/mib)
	}
	runtime.GC()
	// allocation racing the collector only makes fewer cycles than the
	// goals would: at 100, 256 MiB make about 60
	if n := cycles(256 * mib); n > 12 {
		t.Errorf("with a 64 MiB floor, 256 MiB allocated made %d collections, want 12 or fewer", n)
	}

	stop()
	runtime.GC()
	if p, g := gcPercent(), goal(); p != base || g > 8*mib {
		t.Errorf("after stop the percent is %d and the heap goal %d MiB, want %d and 4 MiB", p, g/mib, base)
	}
}

func TestFloorGivesWayToALargeHeap(t *testing.T) {
	unsetGOGC(t)
	stop := Set(16 * mib)
	defer stop()
	runtime.GC()
	testprog.Eventually(t, "a percent over 100 for a small heap", 10*time.Second, func() (bool, string) {
		runtime.GC()
		p := gcPercent()
		return p > base, fmt.Sprint(p)
	})

	held := make([][]byte, 64)
	for i := range held {
		held[i] = make([]byte, mib)
	}
	testprog.Eventually(t, "the percent back to 100 with 64 MiB live", 10*time.Second, func() (bool, string) {
		runtime.GC()
		p := gcPercent()
		return p == base, fmt.Sprint(p)
	})
	runtime.KeepAlive(held)
	held = nil

	testprog.Eventually(t, "a percent over 100 once the 64 MiB are gone", 10*time.Second, func() (bool, string) {
		runtime.GC()
		p := gcPercent()
		return p > base, fmt.Sprint(p)
	})
}

func TestGOGCInTheEnvironmentWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	old := debug.SetGCPercent(base)
	defer debug.SetGCPercent(old)
	stop := Set(64 * mib)
	defer stop()
	runtime.GC()
	if p, g := gcPercent(), goal(); p != base || g > 8*mib {
		t.Errorf("with GOGC=100 in the environment the percent is %d and the heap goal %d MiB, want %d and 4 MiB", p, g/mib, base)
	}
}
