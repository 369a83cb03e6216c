package metrics

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"gsup/internal/testprog"
	"gsup/supervisor"
)

// fakeFeed is a Feed whose events the test publishes.
type fakeFeed struct {
	fakeSource
	events chan supervisor.Event
}

func (f fakeFeed) Subscribe() (<-chan supervisor.Event, func()) { return f.events, func() {} }

func newBoard(t *testing.T) (*Board, chan supervisor.Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := New()
	started := time.Now().Add(-90 * time.Second)
	evs := make(chan supervisor.Event)
	feed := fakeFeed{fakeSource{
		{ID: 1, App: "shop", Type: "web", Name: "web.1", Pid: os.Getpid(), State: supervisor.StateRunning, Ready: true,
			Started: started, Health: "ok", MemoryBytes: 30 << 20, CPUSeconds: 9, Restarts: 2},
		// web.2 being replaced: the newest of one name is shown.
		{ID: 2, App: "shop", Type: "web", Name: "web.2", Pid: os.Getpid(), State: supervisor.StateRunning, Ready: true,
			Started: started, Health: "sick", Replacing: supervisor.ReasonHealth},
		{ID: 4, App: "shop", Type: "web", Name: "web.2", Pid: os.Getpid(), State: supervisor.StateStarting,
			Started: time.Now(), Replacing: supervisor.ReasonHealth},
		{ID: 3, App: "billing", Type: "worker", Name: "billing/worker.1", State: supervisor.StateBackoff, Restarts: 5},
		{ID: 5, App: "shop", Type: "clock", Name: "clock.1", State: supervisor.StateFatal, Restarts: 7},
	}, evs}
	for range 100 {
		m.Begin()
		m.End("GET", 200, 0, 10, 20*time.Millisecond, time.Now())
	}
	return NewBoard(ctx, m, feed), evs
}

// The first HTML answer names every instance with its state, health,
// restarts and resources, and the front's rate and p99: the page needs
// no script to be read.
func TestStatusPageHTML(t *testing.T) {
	b, evs := newBoard(t)
	evs <- supervisor.Event{Time: time.Now(), Kind: supervisor.EventSick, Instance: "web.2", Message: "health check http:/healthz failed 3 times in a row: status <500>"}
	testprog.Eventually(t, "the event kept", 10*time.Second, func() (bool, string) {
		s, err := b.Snapshot()
		return err == nil && len(s.Events) == 1, "not yet"
	})
	w := httptest.NewRecorder()
	b.Page().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	body := w.Body.String()
	for _, want := range []string{
		`data-app="shop" data-instance="web.1" data-state="running"`,
		`data-app="shop" data-instance="web.2" data-state="starting"`,
		`data-app="billing" data-instance="worker.1" data-state="backoff"`,
		`data-app="shop" data-instance="clock.1" data-state="fatal"`,
		`<span class="state state-running">running</span>`,
		`<span class="state state-fatal">fatal</span>`,
		`<td>web.1</td>`, `<td>worker.1</td>`, `<td>clock.1</td>`,
		`<td class="bad">replaced: health</td>`,
		`<td class="num">30.0M</td>`,
		`<td class="num">10.0</td>`, // 9 CPU seconds over 90 s
		`<td class="num">1m30s</td>`,
		`<b id="rps">10.0</b>`,
		`<b id="p99">20.0 ms</b>`,
		`<td class="kind-sick">sick</td><td>web.2</td><td class="msg">health check http:/healthz failed 3 times in a row: status &lt;500&gt;</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := strings.Count(body, "data-instance="); n != 4 {
		t.Errorf("%d instance rows, want 4 (one per name)", n)
	}
}

// GET /events sends the snapshot at once, then at each event.
func TestStatusEvents(t *testing.T) {
	b, evs := newBoard(t)
	srv := httptest.NewServer(b.Events())
	defer srv.Close()
	head, err := http.Head(srv.URL) // answered at once, without a body
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() Snapshot {
		t.Helper()
		kind := ""
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if k, ok := strings.CutPrefix(l, "event: "); ok {
					kind = k
				}
				if d, ok := strings.CutPrefix(l, "data: "); ok {
					if kind != "snapshot" {
						t.Fatalf("event %q", kind)
					}
					var s Snapshot
					if err := json.Unmarshal([]byte(d), &s); err != nil {
						t.Fatal(err)
					}
					return s
				}
			case <-deadline:
				t.Fatal("no snapshot within 10s")
			}
		}
	}
	s := next()
	var names []string
	for _, in := range s.Instances {
		names = append(names, in.App+"/"+in.Name+":"+string(in.State))
	}
	if got, want := strings.Join(names, " "), "shop/web.1:running shop/web.2:starting billing/worker.1:backoff shop/clock.1:fatal"; got != want {
		t.Errorf("instances %s, want %s", got, want)
	}
	if len(s.Events) != 0 {
		t.Errorf("events %v before any", s.Events)
	}
	evs <- supervisor.Event{Time: time.Now(), Kind: supervisor.EventExited, Instance: "clock.1", Status: "status 1"}
	for {
		s = next()
		if len(s.Events) > 0 {
			break
		}
	}
	if e := s.Events[0]; e.Kind != supervisor.EventExited || e.Instance != "clock.1" {
		t.Errorf("event %+v", e)
	}
}

// ps, top and the status page show sizes and uptimes alike.
func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 42 * time.Second: "42s", 5*time.Minute + 3*time.Second: "5m03s",
		2*time.Hour + 5*time.Minute: "2h05m", 76 * time.Hour: "3d04h",
	} {
		if got := FormatUptime(d); got != want {
			t.Errorf("FormatUptime(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{1: "1K", 812 << 10: "812K", 12<<20 + 300<<10: "12.3M", 3 << 30: "3.0G"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
