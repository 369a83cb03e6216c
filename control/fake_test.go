package control

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"gsup/supervisor"
)

// fakeBackend is a Backend with two apps: the first with web.1, web.2
// and worker.1, and "billing" with billing/web.1. It records the calls.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string
	statuses []supervisor.Status
	lines    []supervisor.Line
	follow   chan supervisor.Line
	events   chan supervisor.Event

	followers int // live Follow subscriptions
	subs      int // live Subscribe subscriptions
	reloadErr error
}

func newFake(pid int) *fakeBackend {
	now := time.Now()
	st := func(app, typ, name string, pid, port int) supervisor.Status {
		s := supervisor.Status{ID: uint64(port), App: app, Type: typ, Name: name, Pid: pid, Port: port,
			State: supervisor.StateRunning, Since: now, Ready: true}
		if pid != 0 {
			s.Started = now.Add(-90 * time.Second)
		} else {
			s.State, s.Ready = supervisor.StateStopped, false
		}
		return s
	}
	return &fakeBackend{
		statuses: []supervisor.Status{
			st("app", "web", "web.1", pid, 5000),
			st("app", "web", "web.2", 0, 5001),
			st("app", "worker", "worker.1", 0, 5100),
			st("billing", "web", "billing/web.1", 0, 5200),
		},
		lines: []supervisor.Line{
			{Time: now.Add(-2 * time.Second), Instance: "web.1", Text: "old web"},
			{Time: now.Add(-time.Second), Instance: "worker.1", Text: "old worker"},
		},
		follow: make(chan supervisor.Line, 16),
		events: make(chan supervisor.Event, 16),
	}
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// match resolves targets the way the supervisor does.
func (f *fakeBackend) match(targets []string) ([]string, error) {
	var out []string
	for _, t := range targets {
		n := len(out)
		for _, s := range f.statuses {
			short := strings.TrimPrefix(s.Name, s.App+"/")
			if s.Name == t || (s.App == "app" && s.Type == t) || s.App == t || t == s.App+"/"+s.Type || t == s.App+"/"+short {
				if !slices.Contains(out, s.Name) {
					out = append(out, s.Name)
				}
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("no process matches %q: %w", t, supervisor.ErrNotFound)
		}
	}
	return out, nil
}

func (f *fakeBackend) Status() ([]supervisor.Status, error) {
	return slices.Clone(f.statuses), nil
}

func (f *fakeBackend) Scale(app, typ string, n int) error {
	if typ != "web" && typ != "worker" {
		return fmt.Errorf("no process type %q: %w", typ, ErrNotFound)
	}
	f.record("scale %s %s=%d", app, typ, n)
	return nil
}

func (f *fakeBackend) Restart(targets []string) ([]string, error) {
	names, err := f.match(targets)
	if err == nil {
		f.record("restart %v", names)
	}
	return names, err
}

func (f *fakeBackend) Stop(targets []string) ([]string, error) {
	names, err := f.match(targets)
	if err == nil {
		f.record("stop %v", names)
	}
	return names, err
}

func (f *fakeBackend) Signal(sig syscall.Signal, targets []string) ([]string, error) {
	names, err := f.match(targets)
	if err == nil {
		f.record("signal %d %v", sig, names)
	}
	return names, err
}

func (f *fakeBackend) Reload() error {
	f.record("reload")
	return f.reloadErr
}

func (f *fakeBackend) Load(file, app string) (string, error) {
	f.record("load %s %s", file, app)
	if app == "" {
		app = filepath.Base(filepath.Dir(file))
	}
	return app, nil
}

func (f *fakeBackend) Unload(app string) error {
	switch app {
	case "app":
		return fmt.Errorf("app %q is the first app; stop gsup instead: %w", app, ErrConflict)
	case "billing":
		f.record("unload %s", app)
		return nil
	}
	return fmt.Errorf("no app %q: %w", app, ErrNotFound)
}

func (f *fakeBackend) Lines(targets []string) ([]supervisor.Line, error) {
	if len(targets) == 0 {
		return slices.Clone(f.lines), nil
	}
	names, err := f.match(targets)
	if err != nil {
		return nil, err
	}
	var out []supervisor.Line
	for _, l := range f.lines {
		if slices.Contains(names, l.Instance) {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeBackend) Follow(targets []string) (<-chan supervisor.Line, func(), error) {
	if _, err := f.match(targets); err != nil {
		return nil, nil, err
	}
	return f.follow, f.hold(&f.followers), nil
}

// hold counts one more on n and returns the function that counts it off
// again, once.
func (f *fakeBackend) hold(n *int) func() {
	f.mu.Lock()
	*n++
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			*n--
			f.mu.Unlock()
		})
	}
}

func (f *fakeBackend) Subscribe() (<-chan supervisor.Event, func()) {
	return f.events, f.hold(&f.subs)
}

func (f *fakeBackend) live() (followers, subs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.followers, f.subs
}

// liveAre is a condition for testprog.Eventually: the backend has that
// many log followers and event subscribers (-1: any number).
func (f *fakeBackend) liveAre(followers, subs int) func() (bool, string) {
	return func() (bool, string) {
		n, m := f.live()
		return (followers < 0 || n == followers) && (subs < 0 || m == subs), fmt.Sprintf("%d followers, %d subscribers", n, m)
	}
}
