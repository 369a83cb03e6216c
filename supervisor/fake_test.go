package supervisor

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/procfile"
)

// fakeStarter is the process seam for state-machine tests: every Start
// makes a fakeProc the test drives.
type fakeStarter struct {
	mu      sync.Mutex
	nextPid int
	procs   []*fakeProc
	// onSignal decides what a process does with a signal; nil = exit on
	// TERM/INT/QUIT with status 0, die on KILL.
	onSignal func(p *fakeProc, sig syscall.Signal, group bool)
	// autoExit, when set, makes every process exit at once with it.
	autoExit *ExitStatus
	// errs are returned by the next Starts, one each, before any
	// process starts.
	errs []error
}

type fakeProc struct {
	name    string
	pid     int
	port    string
	argv    []string
	env     []string
	mu      sync.Mutex
	signals []syscall.Signal
	exitC   chan ExitStatus
	once    sync.Once
	start   time.Time
}

func (f *fakeStarter) Start(req StartRequest) (Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	f.nextPid++
	p := &fakeProc{name: req.Name, pid: 1000 + f.nextPid, argv: req.Argv, env: req.Env, exitC: make(chan ExitStatus, 1), start: time.Now()}
	for _, kv := range req.Env {
		if len(kv) > 5 && kv[:5] == "PORT=" {
			p.port = kv[5:]
		}
	}
	f.procs = append(f.procs, p)
	if f.autoExit != nil {
		p.exit(*f.autoExit)
	}
	return p, nil
}

func (f *fakeStarter) all() []*fakeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeProc(nil), f.procs...)
}

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) exit(st ExitStatus) { p.once.Do(func() { p.exitC <- st }) }

func (p *fakeProc) Signal(sig syscall.Signal, group bool) error {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	p.mu.Unlock()
	return nil
}

func (p *fakeProc) got() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.signals...)
}

func (p *fakeProc) Wait() ExitStatus { return <-p.exitC }

// signalling wraps a fakeStarter so procs react to signals.
type reactiveStarter struct {
	*fakeStarter
	react func(p *fakeProc, sig syscall.Signal) // sig 0: it was just started
}

func (r reactiveStarter) Start(req StartRequest) (Proc, error) {
	p, err := r.fakeStarter.Start(req)
	if err != nil {
		return nil, err
	}
	r.react(p.(*fakeProc), 0)
	return &reactiveProc{p.(*fakeProc), r.react}, nil
}

type reactiveProc struct {
	*fakeProc
	react func(p *fakeProc, sig syscall.Signal)
}

func (r *reactiveProc) Signal(sig syscall.Signal, group bool) error {
	r.fakeProc.Signal(sig, group)
	r.react(r.fakeProc, sig)
	return nil
}

// politeReact exits on TERM/INT/QUIT/KILL.
func politeReact(p *fakeProc, sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
		p.exit(ExitStatus{Code: 0})
	case syscall.SIGKILL:
		p.exit(ExitStatus{Code: -1, Signal: syscall.SIGKILL})
	}
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func testSpec(procs ...procfile.Process) *procfile.Spec {
	sp := &procfile.Spec{App: "app", Dir: "/", Env: map[string]string{}, BasePort: 5000}
	sp.Serve.Upstream = "web"
	for i, p := range procs {
		if p.Scale == 0 {
			p.Scale = 1
		}
		if p.Restart == "" {
			p.Restart = procfile.RestartAlways
		}
		if p.StopSignal == 0 {
			p.StopSignal = syscall.SIGTERM
		}
		if p.StopTimeout == 0 {
			p.StopTimeout = 10 * time.Second
		}
		if p.Ready == "" {
			p.Ready = "none"
		}
		if p.Command == "" {
			p.Command = "app"
		}
		p.Umask = -1
		p.Index = i
		p.BasePort = 5000 + 100*i
		sp.Processes = append(sp.Processes, p)
	}
	return sp
}

// runFake runs spec with starter in a goroutine; it returns the
// supervisor, its events, and a channel with Run's result.
func runFake(t *testing.T, starter Starter, spec *procfile.Spec) (*Supervisor, <-chan Event, <-chan error) {
	t.Helper()
	s := New(Config{Log: quietLog(), Stdout: io.Discard, Starter: starter})
	evs, cancel := s.Subscribe()
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), spec) }()
	return s, evs, done
}

// next returns the next event of one of the kinds (others are skipped).
func next(t *testing.T, evs <-chan Event, kinds ...EventKind) Event {
	t.Helper()
	for ev := range evs {
		for _, k := range kinds {
			if ev.Kind == k {
				return ev
			}
		}
	}
	t.Fatalf("events ended before %v", kinds)
	return Event{}
}

func TestCrashLoopBacksOffThenGoesFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{autoExit: &ExitStatus{Code: 1}}
		s, evs, done := runFake(t, st, testSpec(procfile.Process{Name: "worker"}))
		start := time.Now()
		var delays []time.Duration
		for {
			ev := next(t, evs, EventRestarting, EventFatal)
			if ev.Kind == EventFatal {
				break
			}
			delays = append(delays, ev.Delay)
		}
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}
		if len(delays) != len(want) {
			t.Fatalf("delays %v, want %v", delays, want)
		}
		for i := range want {
			if delays[i] != want[i] {
				t.Fatalf("delays %v, want %v", delays, want)
			}
		}
		if got := time.Since(start); got != 3100*time.Millisecond {
			t.Errorf("fatal after %v, want 3.1s of backoff", got)
		}
		if n := len(st.all()); n != 6 {
			t.Errorf("started %d times, want 6", n)
		}
		sts, _ := s.Status()
		if sts[0].State != StateFatal || sts[0].Restarts != 5 {
			t.Errorf("status %+v, want fatal after 5 restarts", sts[0])
		}
		// Fatal is not retried: nothing more starts however long we wait.
		time.Sleep(time.Hour)
		if n := len(st.all()); n != 6 {
			t.Errorf("started %d times after fatal, want 6", n)
		}
		// Until asked.
		if _, err := s.Restart([]string{"worker"}); err != nil {
			t.Fatal(err)
		}
		next(t, evs, EventStarted)
		s.Shutdown(StopGraceful)
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}

func TestLongRunningExitRestartsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{}
		s, evs, done := runFake(t, st, testSpec(procfile.Process{Name: "worker"}))
		for i := 0; i < 10; i++ {
			next(t, evs, EventStarted)
			time.Sleep(2 * time.Second)
			procs := st.all()
			procs[len(procs)-1].exit(ExitStatus{Code: 1})
			ev := next(t, evs, EventRestarting)
			if ev.Delay != 0 {
				t.Fatalf("restart %d delayed %v; a process that stayed up is restarted at once", i, ev.Delay)
			}
		}
		// A quick exit after long runs starts the backoff from the bottom.
		next(t, evs, EventStarted)
		procs := st.all()
		procs[len(procs)-1].exit(ExitStatus{Code: 1})
		if ev := next(t, evs, EventRestarting); ev.Delay != backoffMin {
			t.Fatalf("delay %v after a quick exit, want %v", ev.Delay, backoffMin)
		}
		s.Shutdown(StopGraceful)
		<-done
	})
}

func TestRestartPolicies(t *testing.T) {
	cases := []struct {
		policy  procfile.Restart
		status  ExitStatus
		restart bool
	}{
		{procfile.RestartAlways, ExitStatus{Code: 0}, true},
		{procfile.RestartAlways, ExitStatus{Code: 2}, true},
		{procfile.RestartOnFailure, ExitStatus{Code: 0}, false},
		{procfile.RestartOnFailure, ExitStatus{Code: 3}, true},
		{procfile.RestartOnFailure, ExitStatus{Code: -1, Signal: syscall.SIGSEGV}, true},
		{procfile.RestartNever, ExitStatus{Code: 3}, false},
		{procfile.RestartNever, ExitStatus{Code: 0}, false},
	}
	for _, c := range cases {
		t.Run(string(c.policy)+"/"+c.status.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStarter{}
				s, evs, done := runFake(t, st, testSpec(procfile.Process{Name: "job", Restart: c.policy}))
				next(t, evs, EventStarted)
				st.all()[0].exit(c.status)
				next(t, evs, EventExited)
				synctest.Wait()
				sts, _ := s.Status()
				restarted := sts != nil && sts[0].Restarts == 1
				if restarted != c.restart {
					t.Fatalf("restarted = %v, want %v (status %+v)", restarted, c.restart, sts)
				}
				if c.restart {
					s.Shutdown(StopGraceful)
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					return
				}
				// The only process exited for good: Run ends, with 1 for a failure.
				err := <-done
				if c.status.Success() != (err == nil) {
					t.Fatalf("Run = %v for %v", err, c.status)
				}
				if err != nil && !errors.Is(err, ErrFailed) {
					t.Fatalf("Run = %v, want ErrFailed", err)
				}
			})
		})
	}
}

func TestCriticalFatalStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeStarter{}
		st := reactiveStarter{base, politeReact}
		spec := testSpec(procfile.Process{Name: "web"}, procfile.Process{Name: "db", Critical: true})
		_, evs, done := runFake(t, st, spec)
		next(t, evs, EventStarted)
		next(t, evs, EventStarted)
		for i := 0; i < 6; i++ {
			synctest.Wait()
			for _, p := range base.all() {
				if p.name == "db.1" {
					p.exit(ExitStatus{Code: 1})
				}
			}
			next(t, evs, EventStarted, EventFatal)
		}
		err := <-done
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("Run = %v, want a failure", err)
		}
		web := base.all()[0]
		if got := web.got(); len(got) == 0 || got[0] != syscall.SIGTERM {
			t.Errorf("web got %v, want TERM", got)
		}
	})
}

func TestStopOrderAndKillAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeStarter{}
		var mu sync.Mutex
		var order []string
		react := func(p *fakeProc, sig syscall.Signal) {
			if sig == 0 {
				return
			}
			mu.Lock()
			order = append(order, p.name+":"+signalName(sig))
			mu.Unlock()
			switch {
			case sig == syscall.SIGKILL:
				p.exit(ExitStatus{Code: -1, Signal: sig})
			case p.name == "stubborn.1":
				// ignores TERM
			case sig == syscall.SIGTERM || sig == syscall.SIGINT:
				p.exit(ExitStatus{})
			}
		}
		spec := testSpec(procfile.Process{Name: "a"}, procfile.Process{Name: "stubborn", StopTimeout: 3 * time.Second}, procfile.Process{Name: "c", StopSignal: syscall.SIGINT})
		s, evs, done := runFake(t, reactiveStarter{base, react}, spec)
		for i := 0; i < 3; i++ {
			next(t, evs, EventStarted)
		}
		start := time.Now()
		s.Shutdown(StopGraceful)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("stop took %v, want the stubborn process's 3s stop_timeout; %v", d, order)
		}
		want := []string{"c.1:INT", "stubborn.1:TERM", "a.1:TERM", "stubborn.1:KILL"}
		mu.Lock()
		defer mu.Unlock()
		// Exits kill the leftovers of each group too (KILL after exit).
		var got []string
		for _, o := range order {
			if o == "a.1:KILL" || o == "c.1:KILL" {
				continue
			}
			got = append(got, o)
		}
		if len(got) < 4 {
			t.Fatalf("signals %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("signals %v, want %v", got, want)
			}
		}
	})
}

func TestRollingReloadStartsNewBeforeOldStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeStarter{}
		var mu sync.Mutex
		var log []string
		drained := map[string]bool{}
		react := func(p *fakeProc, sig syscall.Signal) {
			mu.Lock()
			if sig == 0 {
				log = append(log, "start "+p.name+" 127.0.0.1:"+p.port)
			} else {
				log = append(log, "signal "+p.name+":"+p.port+" "+signalName(sig))
			}
			mu.Unlock()
			politeReact(p, sig)
		}
		spec := testSpec(procfile.Process{Name: "web", Scale: 2}, procfile.Process{Name: "worker"})
		spec.Serve.Enabled = true
		// The front's rotation, as Rotation keeps it: it must never be
		// empty when an instance is drained.
		rotation := map[uint64]bool{}
		s := New(Config{Log: quietLog(), Stdout: io.Discard, Starter: reactiveStarter{base, react},
			Rotation: func(ev Event) {
				mu.Lock()
				defer mu.Unlock()
				switch ev.Kind {
				case EventReady:
					rotation[ev.ID] = true
				case EventDraining, EventStopping, EventExited, EventStopped:
					delete(rotation, ev.ID)
				}
			},
			Drain: func(ctx context.Context, ev Event) {
				mu.Lock()
				drained[ev.Addr] = true
				log = append(log, "drain "+ev.Addr)
				if len(rotation) == 0 {
					t.Errorf("draining %s with nothing else in rotation", ev.Instance)
				}
				mu.Unlock()
			}, DrainTimeout: time.Second})
		evs, cancel := s.Subscribe()
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Run(context.Background(), spec) }()
		for i := 0; i < 3; i++ {
			next(t, evs, EventReady)
		}
		spec2 := testSpec(procfile.Process{Name: "web", Scale: 2, Command: "app v2"}, procfile.Process{Name: "worker", Command: "w v2"})
		spec2.Serve.Enabled = true
		mu.Lock()
		log = nil
		mu.Unlock()
		if err := s.Reload(spec2); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := append([]string(nil), log...)
		mu.Unlock()
		want := []string{
			"start web.1 127.0.0.1:5002", "drain 127.0.0.1:5000", "signal web.1:5000 TERM", "signal web.1:5000 KILL",
			"start web.2 127.0.0.1:5000", "drain 127.0.0.1:5001", "signal web.2:5001 TERM", "signal web.2:5001 KILL",
			"signal worker.1:5100 TERM", "signal worker.1:5100 KILL", "start worker.1 127.0.0.1:5100",
		}
		if len(got) != len(want) {
			t.Fatalf("reload did\n%q\nwant\n%q", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("reload did\n%q\nwant\n%q", got, want)
			}
		}
		sts, _ := s.Status()
		if len(sts) != 3 {
			t.Fatalf("%d instances after reload, want 3: %+v", len(sts), sts)
		}
		s.Shutdown(StopGraceful)
		<-done
	})
}

func TestLineMatches(t *testing.T) {
	cases := []struct {
		name, target string
		want         bool
	}{
		{"web.1", "web", true},
		{"web.1", "web.1", true},
		{"web.1", "web.2", false},
		{"web.1", "shop", true},
		{"web.1", "shop/web", true},
		{"web.1", "shop/web.1", true},
		{"web.1", "billing", false},
		{"billing/web.1", "billing", true},
		{"billing/web.1", "billing/web", true},
		{"billing/web.1", "billing/web.1", true},
		{"billing/web.1", "web", false},
		{"worker.1", "web", false},
	}
	for _, c := range cases {
		if got := lineMatches(c.name, c.target, "shop"); got != c.want {
			t.Errorf("lineMatches(%q, %q) = %v, want %v", c.name, c.target, got, c.want)
		}
	}
}
