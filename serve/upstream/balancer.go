package upstream

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gsup/internal/rawsock"
)

// downFor is how long an instance whose connection was refused is passed
// over while other instances are available.
const downFor = time.Second

// epoch anchors monotonic timestamps kept as int64 nanoseconds.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// Balancer is the set of ready app instances. It picks the instance with the
// fewest requests in flight; ties go round in turn. All methods are safe for
// concurrent use; picking an instance takes no lock.
type Balancer struct {
	mu       sync.Mutex
	live     map[uint64]*backend // in rotation
	draining map[uint64]*backend // removed, with requests still in flight
	maxReq   int
	jitter   int
	onLimit  func(id uint64)
	health   atomic.Pointer[healthRule]

	ring atomic.Pointer[[]*backend] // copy of live, replaced on every change
	next atomic.Uint32

	expected atomic.Int32                  // instances starting or restarting (SetExpected)
	wake     atomic.Pointer[chan struct{}] // closed and replaced when an instance is added or expected changes
	holds    atomic.Pointer[HoldHook]
}

// HoldHook is told of each request held while no instance was in
// rotation: Begin when it starts waiting, End with how long it waited and
// whether an instance came (false: hold_timeout, or the client left).
// Calls come from the requests' own goroutines.
type HoldHook struct {
	Begin func()
	End   func(waited time.Duration, served bool)
}

// SetHoldHook sets the hook (nil: none).
func (b *Balancer) SetHoldHook(h *HoldHook) { b.holds.Store(h) }

// NewBalancer returns an empty balancer.
func NewBalancer() *Balancer {
	b := &Balancer{
		live:     make(map[uint64]*backend),
		draining: make(map[uint64]*backend),
	}
	b.ring.Store(new([]*backend))
	wake := make(chan struct{})
	b.wake.Store(&wake)
	return b
}

// limitRule is the max-requests setting of one instance.
type limitRule struct {
	n     int64
	fn    func(id uint64)
	fired atomic.Bool
}

// backend is one app instance and its idle connections.
type backend struct {
	id      uint64
	addr    string // as given to Add
	network string // "tcp" or "unix"
	address string
	host    string // Host header for requests that came without one
	// unix is address made once for dial, when it is a socket path.
	unix *net.UnixAddr
	// raw is address made once for a dial of rawsock's; nil for one
	// rawsock leaves to net.
	raw *rawsock.Addr

	inflight  atomic.Int64
	served    atomic.Int64
	limit     atomic.Pointer[limitRule]
	removed   atomic.Bool
	downUntil atomic.Int64 // monoNow() value; 0 when up
	fails     atomic.Int64 // upstream failures in a row
	sick      atomic.Bool  // taken out of rotation by a passive health check
	// oneShot: the app closed its last connection after one exchange
	// (Gunicorn's sync workers close every one); dial then connects by
	// rawsock where it is preferred.
	oneShot   atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once

	mu      sync.Mutex
	idle    []*pconn // LIFO: the most recently used on top
	closed  bool     // removed: connections put back are closed
	reaping bool     // reaper timer armed
	reaper  *time.Timer
}

func newBackend(id uint64, addr string) *backend {
	be := &backend{id: id, addr: addr, network: "tcp", address: addr, host: addr, drained: make(chan struct{})}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		be.network, be.address, be.host = "unix", path, "localhost"
		be.unix = &net.UnixAddr{Name: path, Net: "unix"}
	}
	be.raw, _ = rawsock.ResolveAddr(be.network, be.address)
	return be
}

// Add puts instance id, listening on addr ("127.0.0.1:5000" or
// "unix:/path"), into rotation. Adding an id that is already there with the
// same address does nothing; with another address, the old instance is
// removed (as by Remove) and the new one takes its place.
func (b *Balancer) Add(id uint64, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.live[id]; old != nil {
		if old.addr == addr {
			return
		}
		b.removeLocked(old)
	}
	be := newBackend(id, addr)
	if b.maxReq > 0 {
		be.limit.Store(b.ruleLocked())
	}
	b.live[id] = be
	b.publishLocked()
	b.sweepLocked()
	b.wakeLocked()
}

// SetExpected says how many instances are starting, restarting or
// backing off: while none is in rotation and n > 0, requests wait for
// one (up to Options.HoldTimeout) instead of failing.
func (b *Balancer) SetExpected(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int(b.expected.Swap(int32(n))) != n {
		b.wakeLocked()
	}
}

// wakeLocked wakes every request waiting in hold.
func (b *Balancer) wakeLocked() {
	wake := make(chan struct{})
	close(*b.wake.Swap(&wake))
}

// changed returns a channel closed at the next Add or change of the
// expected count; take it before looking at the rotation.
func (b *Balancer) changed() <-chan struct{} { return *b.wake.Load() }

// refusedGrace is how long a request that every instance in rotation
// refused waits for the rotation to change when no instance is expected:
// a refusal is how an instance that was just killed looks until gsup has
// reaped it (milliseconds), taken it out and counted its restart.
const refusedGrace = time.Second

// hold waits for changed (true) while an instance is expected; false at
// once when none is, or when ctx ends or until passes first. With refused,
// it waits for changed at most refusedGrace also when none is expected.
func (b *Balancer) hold(ctx context.Context, until time.Time, changed <-chan struct{}, refused bool) bool {
	if b.expected.Load() <= 0 {
		if !refused {
			return false
		}
		if g := time.Now().Add(refusedGrace); g.Before(until) {
			until = g
		}
	}
	d := time.Until(until)
	if d <= 0 {
		return false
	}
	if h := b.holds.Load(); h != nil {
		h.Begin()
		start := time.Now()
		served := b.wait(ctx, d, changed)
		h.End(time.Since(start), served)
		return served
	}
	return b.wait(ctx, d, changed)
}

// wait waits up to d for changed: true when it came.
func (b *Balancer) wait(ctx context.Context, d time.Duration, changed <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// Remove takes instance id out of rotation at once. Requests already sent to
// it continue; Drain waits for them. Its idle connections are closed, and so
// is every connection to it that becomes idle later. Unknown ids are ignored.
func (b *Balancer) Remove(id uint64) {
	b.mu.Lock()
	if be := b.live[id]; be != nil {
		b.removeLocked(be)
	}
	b.sweepLocked()
	b.mu.Unlock()
}

func (b *Balancer) removeLocked(be *backend) {
	delete(b.live, be.id)
	be.removed.Store(true)
	b.publishLocked()
	if be.inflight.Load() == 0 {
		be.markDrained()
	} else {
		b.draining[be.id] = be
	}
	be.closeIdle()
}

// sweepLocked forgets removed instances that have nothing in flight any more
// and were never drained explicitly.
func (b *Balancer) sweepLocked() {
	for id, be := range b.draining {
		select {
		case <-be.drained:
			delete(b.draining, id)
		default:
		}
	}
}

// Drain blocks until instance id has no request in flight or ctx ends, then
// closes its idle connections. It takes id out of rotation first if it is
// still there (normally Remove was called before). It returns at once for an
// unknown id, or one that had nothing in flight when it was removed.
func (b *Balancer) Drain(ctx context.Context, id uint64) {
	b.mu.Lock()
	be := b.live[id]
	if be != nil {
		b.removeLocked(be)
	} else {
		be = b.draining[id]
	}
	b.mu.Unlock()
	if be == nil {
		return
	}
	select {
	case <-be.drained:
		b.mu.Lock()
		if b.draining[id] == be {
			delete(b.draining, id)
		}
		b.mu.Unlock()
	case <-ctx.Done():
	}
	be.closeIdle()
}

// Len returns the number of instances in rotation.
func (b *Balancer) Len() int { return len(*b.ring.Load()) }

// SetMaxRequests makes the balancer call onLimit(id), once and on a
// goroutine of its own, when instance id has served max + rand(0..jitter)
// requests (both ends included; the draw is made per instance). Requests
// count when they reached the instance, at the time they complete. max <= 0
// turns the limit off. The setting applies to the instances in rotation
// (their counts are kept) and to those added later. The caller is expected
// to replace the instance: the balancer keeps it in rotation.
func (b *Balancer) SetMaxRequests(max, jitter int, onLimit func(id uint64)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.maxReq, b.jitter, b.onLimit = max, jitter, onLimit
	for _, be := range b.live {
		if max <= 0 || onLimit == nil {
			be.limit.Store(nil)
			continue
		}
		r := b.ruleLocked()
		be.limit.Store(r)
		if be.served.Load() >= r.n && r.fired.CompareAndSwap(false, true) {
			go r.fn(be.id)
		}
	}
}

func (b *Balancer) ruleLocked() *limitRule {
	if b.maxReq <= 0 || b.onLimit == nil {
		return nil
	}
	n := int64(b.maxReq)
	if b.jitter > 0 {
		n += rand.Int64N(int64(b.jitter) + 1)
	}
	return &limitRule{n: n, fn: b.onLimit}
}

func (b *Balancer) publishLocked() {
	ring := make([]*backend, 0, len(b.live))
	for _, be := range b.live {
		ring = append(ring, be)
	}
	b.ring.Store(&ring)
}

// tried is the set of instances a request has already failed on.
type tried struct {
	few  [4]*backend
	n    int
	more []*backend
}

func (t *tried) add(be *backend) {
	if t.n < len(t.few) {
		t.few[t.n] = be
		t.n++
		return
	}
	t.more = append(t.more, be)
}

func (t *tried) has(be *backend) bool {
	for i := 0; i < t.n; i++ {
		if t.few[i] == be {
			return true
		}
	}
	for _, x := range t.more {
		if x == be {
			return true
		}
	}
	return false
}

// pick returns the instance in rotation, not in skip, with the fewest
// requests in flight, and counts one more in flight on it; nil when there is
// none. Instances marked down are taken only when nothing else is left.
func (b *Balancer) pick(skip *tried) *backend {
	for {
		ring := *b.ring.Load()
		var best, bestDown *backend
		switch len(ring) {
		case 0:
			return nil
		case 1:
			if best = ring[0]; skip.has(best) {
				return nil
			}
		default:
			n := uint32(len(ring))
			start := b.next.Add(1)
			var now int64
			bestLoad, downLoad := int64(-1), int64(-1)
			for i := uint32(0); i < n; i++ {
				be := ring[(start+i)%n]
				if skip.has(be) {
					continue
				}
				load := be.inflight.Load()
				if d := be.downUntil.Load(); d != 0 {
					if now == 0 {
						now = monoNow()
					}
					if now < d {
						if downLoad < 0 || load < downLoad {
							bestDown, downLoad = be, load
						}
						continue
					}
				}
				if bestLoad < 0 || load < bestLoad {
					best, bestLoad = be, load
				}
			}
			if best == nil {
				best = bestDown
			}
			if best == nil {
				return nil
			}
		}
		best.inflight.Add(1)
		if !best.removed.Load() {
			return best
		}
		// Removed between loading the ring and counting the request:
		// back out so Drain cannot miss it, and look again.
		best.done(false)
	}
}

// done ends one request on be; counted says it reached the instance.
func (be *backend) done(counted bool) {
	if counted {
		n := be.served.Add(1)
		if r := be.limit.Load(); r != nil && n >= r.n && r.fired.CompareAndSwap(false, true) {
			go r.fn(be.id)
		}
	}
	if be.inflight.Add(-1) == 0 && be.removed.Load() {
		be.markDrained()
	}
}

func (be *backend) markDrained() { be.drainOnce.Do(func() { close(be.drained) }) }

func (be *backend) markDown()    { be.downUntil.Store(monoNow() + int64(downFor)) }
func (be *backend) markUp()      { be.downUntil.Store(0) }
func (be *backend) isDown() bool { return be.downUntil.Load() != 0 }
