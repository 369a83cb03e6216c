package upstream

import (
	"fmt"
	"time"
)

// SickFunc is told, once per instance and on a goroutine of its own, that
// instance id was taken out of rotation because it failed: hung says a
// request got no response byte within the hang timeout, detail says what
// happened. The caller is expected to replace the instance.
type SickFunc func(id uint64, hung bool, detail string)

// healthRule is the passive health setting.
type healthRule struct {
	maxFails int64
	hang     time.Duration
	fn       SickFunc
}

// SetHealth turns passive health checks on: maxFails upstream failures
// in a row on one instance (connect errors, a timed out or reset exchange
// before the response head; 0 = off), or one request without a response
// byte for hang (0 = off; only when hang is not longer than
// Options.Timeout, which then gives its 504 at hang), take the instance
// out of rotation at once and call fn. A response head resets the count.
func (b *Balancer) SetHealth(maxFails int, hang time.Duration, fn SickFunc) {
	if fn == nil || maxFails <= 0 && hang <= 0 {
		b.health.Store(nil)
		return
	}
	b.health.Store(&healthRule{maxFails: int64(maxFails), hang: hang, fn: fn})
}

// failed counts an upstream failure of be; hung marks a hang.
func (b *Balancer) failed(be *backend, hung bool, detail string) {
	r := b.health.Load()
	if r == nil {
		return
	}
	n := be.fails.Add(1)
	switch {
	case hung:
		detail = fmt.Sprintf("no response byte within hang_timeout %v", r.hang)
	case r.maxFails > 0 && n >= r.maxFails:
		detail = fmt.Sprintf("%d upstream failures in a row, the last: %s", n, detail)
	default:
		return
	}
	if !be.sick.CompareAndSwap(false, true) {
		return
	}
	b.Remove(be.id)
	go r.fn(be.id, hung, detail)
}

// answered resets be's failure count.
func (be *backend) answered() {
	if be.fails.Load() != 0 {
		be.fails.Store(0)
	}
}

// hangLimit is the hang timeout when it decides a request's deadline
// (set and not longer than timeout), else 0.
func (b *Balancer) hangLimit(timeout time.Duration) time.Duration {
	if r := b.health.Load(); r != nil && r.hang > 0 && r.hang <= timeout {
		return r.hang
	}
	return 0
}
