package supervisor

import (
	"time"

	"gsup/procfile"
)

// Restart policy constants (DESIGN.md "Configuration file").
const (
	backoffMin    = 100 * time.Millisecond // first delay after a quick exit
	backoffMax    = 30 * time.Second       // delays double up to this
	quickUptime   = time.Second            // an exit before this is "quick"; after it the restart is immediate
	flapWindow    = 60 * time.Second       // quick exits are counted within this window
	flapMaxQuick  = 5                      // more quick exits than this within flapWindow: fatal
	maxLineLength = 64 << 10               // longer output lines are split into pieces of this size
)

// decision is what the restart policy says after an instance exited on its
// own.
type decision int

const (
	decideDone    decision = iota // exited for good
	decideRestart                 // restart after delay (0 = at once)
	decideFatal                   // flapping: give up until asked
)

// restartState is the per-instance memory of the restart policy.
type restartState struct {
	backoff time.Duration // next delay after a quick exit; 0 = backoffMin
	quick   []time.Time   // times of quick exits within flapWindow
}

// decide applies policy to an exit with the given success and uptime at
// time now, updating st. The returned delay is meaningful for
// decideRestart only.
func (st *restartState) decide(policy procfile.Restart, success bool, uptime time.Duration, now time.Time) (decision, time.Duration) {
	switch policy {
	case procfile.RestartNever:
		return decideDone, 0
	case procfile.RestartOnFailure:
		if success {
			return decideDone, 0
		}
	}
	if uptime >= quickUptime {
		// It stayed up: restart at once, as runit does, and forget the past.
		st.backoff = 0
		st.quick = st.quick[:0]
		return decideRestart, 0
	}
	kept := st.quick[:0]
	for _, t := range st.quick {
		if now.Sub(t) < flapWindow {
			kept = append(kept, t)
		}
	}
	st.quick = append(kept, now)
	if len(st.quick) > flapMaxQuick {
		return decideFatal, 0
	}
	delay := st.backoff
	if delay == 0 {
		delay = backoffMin
	}
	st.backoff = min(delay*2, backoffMax)
	return decideRestart, delay
}

// reset forgets past exits (after an explicit restart).
func (st *restartState) reset() {
	st.backoff = 0
	st.quick = st.quick[:0]
}
