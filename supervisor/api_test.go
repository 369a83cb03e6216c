package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"gsup/procfile"
)

// states returns "name state" for every instance, in Status order.
func states(t *testing.T, s *Supervisor) []string {
	t.Helper()
	sts, err := s.Status()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, st := range sts {
		out = append(out, st.Name+" "+string(st.State))
	}
	return out
}

func wantStates(t *testing.T, s *Supervisor, want ...string) {
	t.Helper()
	if got := states(t, s); !slices.Equal(got, want) {
		t.Errorf("instances %q, want %q", got, want)
	}
}

func TestScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{}
		s, evs, done := runFake(t, reactiveStarter{st, politeReact}, testSpec(procfile.Process{Name: "worker"}))
		next(t, evs, EventStarted)
		if err := s.Scale("", "worker", 3); err != nil {
			t.Fatal(err)
		}
		next(t, evs, EventStarted)
		next(t, evs, EventStarted)
		synctest.Wait()
		wantStates(t, s, "worker.1 running", "worker.2 running", "worker.3 running")

		// Surplus instances go, highest numbers first; the rest stay.
		if err := s.Scale("", "worker", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		wantStates(t, s, "worker.1 running")
		// TERM, then KILL for whatever its group still holds.
		procs := st.all()
		for i, p := range procs {
			want := []syscall.Signal(nil)
			if i > 0 {
				want = []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}
			}
			if !slices.Equal(p.got(), want) {
				t.Errorf("%s (pid %d) got %v, want %v", p.name, p.pid, p.got(), want)
			}
		}
		for _, bad := range []struct {
			app, typ string
			n        int
		}{{"", "nope", 1}, {"billing", "worker", 1}, {"", "worker", -1}} {
			if err := s.Scale(bad.app, bad.typ, bad.n); err == nil {
				t.Errorf("Scale(%q, %q, %d) accepted", bad.app, bad.typ, bad.n)
			}
		}
		s.Shutdown(StopGraceful)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := s.Scale("", "worker", 2); !errors.Is(err, ErrStopped) {
			t.Errorf("Scale after Run returned %v, want ErrStopped", err)
		}
	})
}

func TestStopThenRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{}
		s, evs, done := runFake(t, reactiveStarter{st, politeReact},
			testSpec(procfile.Process{Name: "web", Scale: 2}, procfile.Process{Name: "worker"}))
		for range 3 {
			next(t, evs, EventStarted)
		}
		names, err := s.Stop([]string{"web.2", "worker"})
		if err != nil || !slices.Equal(names, []string{"web.2", "worker.1"}) {
			t.Fatalf("Stop = %q, %v", names, err)
		}
		// Stopped instances stay stopped, however long.
		time.Sleep(time.Hour)
		wantStates(t, s, "web.1 running", "web.2 stopped", "worker.1 stopped")
		if n := len(st.all()); n != 3 {
			t.Errorf("%d processes started, want 3", n)
		}
		if _, err := s.Stop([]string{"nope"}); err == nil {
			t.Error("Stop of an unknown target accepted")
		}
		// Restart starts a stopped instance again.
		names, err = s.Restart([]string{"worker.1"})
		if err != nil || !slices.Equal(names, []string{"worker.1"}) {
			t.Fatalf("Restart = %q, %v", names, err)
		}
		next(t, evs, EventStarted)
		synctest.Wait()
		wantStates(t, s, "web.1 running", "web.2 stopped", "worker.1 running")
		s.Shutdown(StopGraceful)
		<-done
	})
}

// groupStarter records, for every signal, whether it went to the group.
type groupStarter struct {
	*fakeStarter
	mu   sync.Mutex
	sent []string // "web.1 HUP main" / "web.1 TERM group"
}

type groupProc struct {
	*fakeProc
	g *groupStarter
}

func (g *groupStarter) Start(req StartRequest) (Proc, error) {
	p, err := g.fakeStarter.Start(req)
	if err != nil {
		return nil, err
	}
	return &groupProc{p.(*fakeProc), g}, nil
}

func (p *groupProc) Signal(sig syscall.Signal, group bool) error {
	p.g.mu.Lock()
	to := "main"
	if group {
		to = "group"
	}
	p.g.sent = append(p.g.sent, fmt.Sprintf("%s %s %s", p.name, signalName(sig), to))
	p.g.mu.Unlock()
	politeReact(p.fakeProc, sig)
	return nil
}

func TestSignalReachesTheMainProcessOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &groupStarter{fakeStarter: &fakeStarter{}}
		s, evs, done := runFake(t, g, testSpec(procfile.Process{Name: "web", Scale: 2}, procfile.Process{Name: "worker"}))
		for range 3 {
			next(t, evs, EventStarted)
		}
		names, err := s.Signal(syscall.SIGHUP, []string{"web"})
		if err != nil || !slices.Equal(names, []string{"web.1", "web.2"}) {
			t.Fatalf("Signal = %q, %v", names, err)
		}
		s.Shutdown(StopGraceful)
		<-done
		g.mu.Lock()
		defer g.mu.Unlock()
		// HUP to each web's main process; stop signals (TERM, then KILL
		// for what the group still holds) to whole groups.
		want := []string{"web.1 HUP main", "web.2 HUP main"}
		if !slices.Equal(g.sent[:2], want) {
			t.Errorf("signals %q, want %q first", g.sent, want)
		}
		for _, sent := range g.sent[2:] {
			if name, _, _ := strings.Cut(sent, " "); !slices.Contains([]string{name + " TERM group", name + " KILL group"}, sent) {
				t.Errorf("at stop: %q, want TERM to the group", sent)
			}
		}
	})
}

func TestLoadAndUnload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{}
		s, evs, done := runFake(t, reactiveStarter{st, politeReact}, testSpec(procfile.Process{Name: "web"}))
		next(t, evs, EventStarted)
		billing := testSpec(procfile.Process{Name: "jobs", Scale: 2})
		billing.App = "billing"
		if err := s.Load(billing); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		wantStates(t, s, "web.1 running", "billing/jobs.1 running", "billing/jobs.2 running")
		apps, err := s.Apps()
		if err != nil || len(apps) != 2 || !apps[0].First || apps[1].Name != "billing" {
			t.Fatalf("Apps = %+v, %v", apps, err)
		}
		// An app's instances answer to APP and APP/TYPE.
		if names, err := s.Restart([]string{"billing/jobs"}); err != nil || len(names) != 2 {
			t.Errorf("Restart(billing/jobs) = %q, %v", names, err)
		}
		if err := s.Unload("app"); err == nil {
			t.Error("the first app was unloaded")
		}
		if err := s.Unload("nope"); err == nil {
			t.Error("an unknown app was unloaded")
		}
		if err := s.Unload("billing"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		wantStates(t, s, "web.1 running")
		s.Shutdown(StopGraceful)
		<-done
	})
}

func TestSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{}
		// Processes that stop only at SIGKILL, after stop_timeout: the
		// stop is still going on when Summary is asked below.
		stubborn := func(p *fakeProc, sig syscall.Signal) {
			if sig == syscall.SIGKILL {
				p.exit(ExitStatus{Code: -1, Signal: syscall.SIGKILL})
			}
		}
		s, evs, done := runFake(t, reactiveStarter{st, stubborn},
			testSpec(procfile.Process{Name: "web", Scale: 2}, procfile.Process{Name: "worker"}))
		for range 3 {
			next(t, evs, EventReady)
		}
		ready, status, err := s.Summary()
		if err != nil || !ready || status != "web 2/2 ready, worker 1/1 ready" {
			t.Errorf("Summary = %v, %q, %v", ready, status, err)
		}
		// An instance that is gone makes the whole not ready.
		st.all()[2].exit(ExitStatus{Code: 1})
		next(t, evs, EventExited)
		ready, status, _ = s.Summary()
		if ready || status != "web 2/2 ready, worker 0/1 ready" {
			t.Errorf("after worker exited: Summary = %v, %q", ready, status)
		}
		s.Shutdown(StopGraceful)
		if ready, status, _ := s.Summary(); ready || status != "stopping" {
			t.Errorf("while stopping: Summary = %v, %q", ready, status)
		}
		<-done
	})
}

func TestReplace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var log []string
		react := func(p *fakeProc, sig syscall.Signal) {
			mu.Lock()
			if sig == 0 {
				log = append(log, "start "+p.name)
			} else {
				log = append(log, signalName(sig)+" "+p.name)
			}
			mu.Unlock()
			politeReact(p, sig)
		}
		spec := testSpec(procfile.Process{Name: "web"}, procfile.Process{Name: "worker"})
		spec.Serve.Enabled = true
		s, evs, done := runFake(t, reactiveStarter{&fakeStarter{}, react}, spec)
		ids := map[string]uint64{}
		for range 2 {
			ev := next(t, evs, EventReady)
			ids[ev.Instance] = ev.ID
		}
		mu.Lock()
		log = nil
		mu.Unlock()
		// A served instance: the new one first, then the old one stops.
		s.Replace(ids["web.1"], ReasonMaxRequests, "test")
		next(t, evs, EventStopped)
		// Any other: stop, then start.
		s.Replace(ids["worker.1"], ReasonMaxRequests, "test")
		next(t, evs, EventStarted)
		synctest.Wait()
		mu.Lock()
		got := slices.Clone(log)
		mu.Unlock()
		want := []string{"start web.1", "TERM web.1", "KILL web.1", "TERM worker.1", "KILL worker.1", "start worker.1"}
		if !slices.Equal(got, want) {
			t.Errorf("Replace did %q, want %q", got, want)
		}
		s.Shutdown(StopGraceful)
		<-done
	})
}

// talkingStarter's processes write "hello from NAME" on their output.
type talkingStarter struct{ *fakeStarter }

func (t talkingStarter) Start(req StartRequest) (Proc, error) {
	p, err := t.fakeStarter.Start(req)
	if err == nil {
		fmt.Fprintf(req.Stdout, "hello from %s\n", req.Name)
	}
	return p, err
}

func TestFollowAndLines(t *testing.T) {
	st := &fakeStarter{}
	s := New(Config{Log: quietLog(), Stdout: io.Discard, Starter: talkingStarter{st}})
	spec := testSpec(procfile.Process{Name: "web"}, procfile.Process{Name: "worker"})
	ch, cancel, err := s.Follow(nil) // before Run: every instance, later ones included
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), spec) }()
	got := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case l := <-ch:
			got[l.Instance+": "+l.Text] = true
		case <-timeout:
			t.Fatalf("followed only %v", got)
		}
	}
	for _, want := range []string{"web.1: hello from web.1", "worker.1: hello from worker.1"} {
		if !got[want] {
			t.Errorf("followed %v, want %q", got, want)
		}
	}
	lines, err := s.Lines([]string{"worker"})
	if err != nil || len(lines) != 1 || lines[0].Text != "hello from worker.1" {
		t.Errorf("Lines(worker) = %+v, %v", lines, err)
	}
	if _, _, err := s.Follow([]string{"nope"}); err == nil {
		t.Error("Follow of an unknown target accepted")
	}
	for _, p := range st.all() {
		p.exit(ExitStatus{})
	}
	s.Shutdown(StopGraceful)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
