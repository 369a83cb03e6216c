package metrics

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sync"
	"time"

	"gsup/supervisor"
)

// Feed is what the status page reads: the instances, and the events
// from now on (the Supervisor).
type Feed interface {
	Source
	Subscribe() (<-chan supervisor.Event, func())
}

// Snapshot is what the status page and `gsup top` show (GET /v1/status
// on the control socket answers it as JSON).
type Snapshot struct {
	Time              time.Time          `json:"time"`
	RequestsPerSecond float64            `json:"requests_per_second"` // the front's, over the last 10 s
	P99Seconds        float64            `json:"p99_seconds"`         // 99th percentile duration, same window
	Instances         []Instance         `json:"instances"`
	Events            []supervisor.Event `json:"events"` // the recent ones, newest first
}

// Instance is one row of the status page: the newest instance of a name.
type Instance struct {
	App   string           `json:"app"`
	Type  string           `json:"type"`
	Name  string           `json:"name"` // "web.1", without its app
	Pid   int              `json:"pid"`  // 0 when not running
	State supervisor.State `json:"state"`
	Ready bool             `json:"ready"`
	// Health is "ok", "failing 1/3", "sick", "replaced: max_rss" (why it
	// is being replaced), or "-" without health checks.
	Health        string  `json:"health"`
	Restarts      int     `json:"restarts"`
	RSSBytes      int64   `json:"rss_bytes"`   // the whole instance, as the guards measure it
	CPUSeconds    float64 `json:"cpu_seconds"` // the whole instance
	CPUPercent    float64 `json:"cpu_percent"` // of one CPU, over the last few seconds
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// recentEvents is how many events a Board keeps.
const recentEvents = 20

// cpuWindow is the shortest span a CPU percentage is measured over: the
// guards measure CPU time once a second.
const cpuWindow = 3 * time.Second

// Board keeps what the status page shows: it reads the instances and the
// front's rates at each Snapshot, and keeps the recent events. Create it
// with NewBoard; safe for concurrent use.
type Board struct {
	m    *Metrics
	feed Feed
	done <-chan struct{} // the ctx of NewBoard ends

	mu      sync.Mutex
	events  []supervisor.Event // oldest first
	changed chan struct{}      // closed at the next event
	cpu     map[uint64]*cpuSample
}

type cpuSample struct {
	at  time.Time
	cpu float64
	pct float64
}

// NewBoard returns a Board of m's front and feed's instances; it keeps
// the events published from now until ctx ends.
func NewBoard(ctx context.Context, m *Metrics, feed Feed) *Board {
	b := &Board{m: m, feed: feed, done: ctx.Done(), changed: make(chan struct{}), cpu: map[uint64]*cpuSample{}}
	evs, cancel := feed.Subscribe()
	go func() {
		<-ctx.Done()
		cancel()
	}()
	go func() {
		for ev := range evs {
			b.mu.Lock()
			b.events = append(b.events, ev)
			if len(b.events) > recentEvents {
				b.events = b.events[len(b.events)-recentEvents:]
			}
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		}
	}()
	return b
}

// Snapshot returns what the page shows now.
func (b *Board) Snapshot() (Snapshot, error) {
	ps, err := b.feed.Status()
	if err != nil {
		return Snapshot{}, fmt.Errorf("status page: %w", err)
	}
	now := time.Now()
	rate, p99 := b.m.Front()
	s := Snapshot{Time: now, RequestsPerSecond: rate, P99Seconds: p99.Seconds(), Instances: []Instance{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.events) - 1; i >= 0; i-- {
		s.Events = append(s.Events, b.events[i])
	}
	if s.Events == nil {
		s.Events = []supervisor.Event{}
	}
	seen := map[uint64]bool{}
	for _, st := range Newest(ps) {
		in := Instance{App: st.App, Type: st.Type, Name: Label(st), Pid: st.Pid, State: st.State, Ready: st.Ready,
			Health: st.Health, Restarts: st.Restarts}
		switch {
		case st.Replacing != "":
			in.Health = "replaced: " + string(st.Replacing)
		case in.Health == "":
			in.Health = "-"
		}
		if st.Pid != 0 {
			in.RSSBytes, in.CPUSeconds = st.MemoryBytes, st.CPUSeconds
			in.UptimeSeconds = now.Sub(st.Started).Seconds()
			in.CPUPercent = b.cpuPercentLocked(st, now)
			seen[st.ID] = true
		}
		s.Instances = append(s.Instances, in)
	}
	for id := range b.cpu {
		if !seen[id] {
			delete(b.cpu, id)
		}
	}
	return s, nil
}

// cpuPercentLocked is the instance's CPU use since its previous sample,
// at least cpuWindow old; since its start the first time.
func (b *Board) cpuPercentLocked(st supervisor.Status, now time.Time) float64 {
	smp := b.cpu[st.ID]
	if smp == nil {
		smp = &cpuSample{at: now, cpu: st.CPUSeconds}
		if up := now.Sub(st.Started).Seconds(); up > 0 {
			smp.pct = 100 * st.CPUSeconds / up
		}
		b.cpu[st.ID] = smp
		return smp.pct
	}
	if dt := now.Sub(smp.at); dt >= cpuWindow {
		smp.pct = max(0, 100*(st.CPUSeconds-smp.cpu)/dt.Seconds())
		smp.at, smp.cpu = now, st.CPUSeconds
	}
	return smp.pct
}

// next is closed at the next event.
func (b *Board) next() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

//go:embed status.html
var pageFS embed.FS

var page = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"bytes":   FormatBytes,
	"uptime":  func(s float64) string { return FormatUptime(time.Duration(s * float64(time.Second))) },
	"millis":  func(s float64) string { return fmt.Sprintf("%.1f ms", s*1000) },
	"clock":   func(t time.Time) string { return t.Format("15:04:05") },
	"percent": func(p float64) string { return fmt.Sprintf("%.1f", p) },
}).ParseFS(pageFS, "status.html"))

// Page serves the status page (GET /): every instance and the recent
// events, rendered on the server; its script follows Events.
func (b *Board) Page() http.Handler {
	return b.serve("text/html; charset=utf-8", func(w io.Writer, s Snapshot) error { return page.Execute(w, s) })
}

// JSON answers the Snapshot as JSON (GET /v1/status on the control
// socket).
func (b *Board) JSON() http.Handler {
	return b.serve("application/json", func(w io.Writer, s Snapshot) error { return json.NewEncoder(w).Encode(s) })
}

// serve answers with write's rendering of a Snapshot, as ctype.
func (b *Board) serve(ctype string, write func(io.Writer, Snapshot) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := b.Snapshot()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		head(w, ctype)
		// An error here is the client's going away: the head is sent.
		_ = write(w, s)
	})
}

// head sets the headers of an answer of type ctype that is not to be
// cached.
func head(w http.ResponseWriter, ctype string) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// EventsEvery is how often Events sends a snapshot when nothing happens.
const EventsEvery = time.Second

// Events serves Server-Sent Events (GET /events): a "snapshot" event
// (the Snapshot as JSON) at once, at each supervisor event and every
// EventsEvery, until the client goes away or the Board's ctx ends.
func (b *Board) Events() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		head(w, "text/event-stream")
		w.Header().Set("X-Accel-Buffering", "no") // nginx in front: no buffering
		if r.Method == http.MethodHead {
			return
		}
		rc := http.NewResponseController(w)
		if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
			return
		}
		tick := time.NewTicker(EventsEvery)
		defer tick.Stop()
		for {
			next := b.next()
			s, err := b.Snapshot()
			if err != nil {
				return
			}
			data, err := json.Marshal(s)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", data); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-b.done:
				return
			case <-tick.C:
			case <-next:
			}
		}
	})
}

// FormatUptime: 42s, 5m03s, 2h05m, 3d04h.
func FormatUptime(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// FormatBytes: 812K, 12.3M, 1.2G (powers of 1024).
func FormatBytes(n int64) string {
	const k = 1024
	switch {
	case n < k*k:
		return fmt.Sprintf("%dK", (n+k-1)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1fM", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1fG", float64(n)/(k*k*k))
}
