package supervisor

import (
	"sync"
	"time"
)

// EventKind says what happened to an instance or app.
type EventKind string

// The events the supervisor publishes.
const (
	EventStarted    EventKind = "started"    // a process was started (Pid set)
	EventReady      EventKind = "ready"      // the instance passed its readiness check
	EventDraining   EventKind = "draining"   // a served instance leaves rotation before it stops
	EventStopping   EventKind = "stopping"   // its stop signal was sent
	EventSick       EventKind = "sick"       // it failed its health checks or hung: out of rotation now, replaced (Message says why)
	EventRecycling  EventKind = "recycling"  // a guard or max_requests replaces it (Message says why)
	EventExited     EventKind = "exited"     // it exited on its own (Status set)
	EventStopped    EventKind = "stopped"    // it exited after we stopped it
	EventRestarting EventKind = "restarting" // it will be started again after Delay
	EventFatal      EventKind = "fatal"      // it kept crashing and is not retried until asked
	EventLoaded     EventKind = "loaded"     // an app was loaded or replaced
	EventUnloaded   EventKind = "unloaded"   // an app was removed
	EventReloading  EventKind = "reloading"  // a reload began
	EventReloaded   EventKind = "reloaded"   // a reload ended (Message says how)
)

// Event is one state change. Instance events carry the instance's
// identity; Addr is where a served instance listens ("127.0.0.1:5000" or
// "unix:/path").
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     EventKind     `json:"kind"`
	App      string        `json:"app,omitempty"`
	Type     string        `json:"type,omitempty"`
	Instance string        `json:"instance,omitempty"` // "web.1", or "app/web.1" for a loaded app
	ID       uint64        `json:"id,omitempty"`       // unique per instance object for gsup's lifetime
	Pid      int           `json:"pid,omitempty"`
	Addr     string        `json:"addr,omitempty"`
	Served   bool          `json:"served,omitempty"` // the instance belongs to the served type of the first app
	Status   string        `json:"status,omitempty"` // exit status ("status 1", "signal KILL")
	Code     int           `json:"code,omitempty"`
	Delay    time.Duration `json:"delay,omitempty"`
	Final    bool          `json:"final,omitempty"` // exited: it is not restarted (restart policy, or fatal)
	Message  string        `json:"message,omitempty"`
}

// broadcaster fans events out to subscribers. Each subscriber has an
// unbounded queue drained by its own goroutine, so a slow subscriber never
// blocks the supervisor.
type broadcaster struct {
	mu   sync.Mutex
	subs map[*subscriber]bool
}

type subscriber struct {
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	out    chan Event
	closed chan struct{}
}

func (b *broadcaster) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.mu.Lock()
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel of every event published from now on, in
// order, and a cancel function that closes it.
func (b *broadcaster) subscribe() (<-chan Event, func()) {
	s := &subscriber{wake: make(chan struct{}, 1), out: make(chan Event), closed: make(chan struct{})}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*subscriber]bool{}
	}
	b.subs[s] = true
	b.mu.Unlock()
	go s.run()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.closed)
		})
	}
}

func (s *subscriber) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, ev := range q {
			select {
			case s.out <- ev:
			case <-s.closed:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.closed:
			return
		}
	}
}
