package supervisor

import (
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"gsup/procfile"
)

// brokenReact exits at once when the command says "broken", else
// behaves as politeReact.
func brokenReact(p *fakeProc, sig syscall.Signal) {
	if sig == 0 && strings.Contains(strings.Join(p.argv, " "), "broken") {
		p.exit(ExitStatus{Code: 1})
		return
	}
	politeReact(p, sig)
}

// running returns, by instance name, the command of every instance
// whose process runs, and checks that each name appears once.
func running(t *testing.T, s *Supervisor, st *fakeStarter) map[string]string {
	t.Helper()
	sts, err := s.Status()
	if err != nil {
		t.Fatal(err)
	}
	byPid := map[int]*fakeProc{}
	for _, p := range st.all() {
		byPid[p.pid] = p
	}
	out := map[string]string{}
	for _, x := range sts {
		if x.Pid == 0 {
			continue
		}
		if _, dup := out[x.Name]; dup {
			t.Errorf("%s runs twice: %+v", x.Name, sts)
		}
		argv := byPid[x.Pid].argv
		out[x.Name] = strings.TrimPrefix(argv[len(argv)-1], "exec ")
	}
	return out
}

// fakeProbe passes the readiness check of the latest process on addr's
// port at once, unless its command says "broken" or "hang": it never
// passes then.
func fakeProbe(st *fakeStarter) func(ctx context.Context, mode, addr string) bool {
	return func(ctx context.Context, mode, addr string) bool {
		var cmd string
		for _, p := range st.all() {
			if strings.HasSuffix(addr, ":"+p.port) {
				cmd = strings.Join(p.argv, " ")
			}
		}
		if strings.Contains(cmd, "broken") || strings.Contains(cmd, "hang") {
			<-ctx.Done()
			return false
		}
		return true
	}
}

func servedSpec(web, worker string) *procfile.Spec {
	sp := testSpec(procfile.Process{Name: "web", Scale: 2, Command: web, Ready: "port"},
		procfile.Process{Name: "worker", Command: worker, Ready: "port"})
	sp.Serve.Enabled = true
	return sp
}

func newServed(t *testing.T, st *fakeStarter) (*Supervisor, <-chan Event, chan error) {
	t.Helper()
	s := New(Config{Log: quietLog(), Stdout: io.Discard, Starter: reactiveStarter{st, brokenReact},
		Probe: fakeProbe(st), Rotation: func(Event) {}, Drain: func(context.Context, Event) {}, DrainTimeout: time.Second})
	evs, cancel := s.Subscribe()
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), servedSpec("web v1", "worker v1")) }()
	t.Cleanup(func() {
		s.Shutdown(StopForce)
		<-done
	})
	for range 3 {
		next(t, evs, EventReady)
	}
	return s, evs, done
}

func wantRunning(t *testing.T, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Fatalf("running %v, want %v", got, want)
	}
}

// A reload whose last step fails rolls back the steps already made: the
// web instances already replaced get the old command again, the stopped
// worker is started with its old command, and the old definition stays in
// force for later restarts. A fixed reload then applies.
func TestFailedReloadRollsBackReplacedInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{}
		s, evs, _ := newServed(t, st)
		v1 := map[string]string{"web.1": "web v1", "web.2": "web v1", "worker.1": "worker v1"}

		err := s.Reload(servedSpec("web v2", "worker broken"))
		if err == nil || !strings.Contains(err.Error(), "worker.1") || !strings.Contains(err.Error(), "exited") {
			t.Fatalf("reload with a broken worker: %v", err)
		}
		ev := next(t, evs, EventReloaded)
		if !strings.HasPrefix(ev.Message, "reload failed: ") {
			t.Errorf("reloaded event says %q", ev.Message)
		}
		wantRunning(t, running(t, s, st), v1)

		// A crash after the failed reload restarts the old command.
		sts, _ := s.Status()
		for _, p := range st.all() {
			if p.pid == sts[2].Pid {
				p.exit(ExitStatus{Code: 1})
			}
		}
		next(t, evs, EventRestarting)
		next(t, evs, EventStarted)
		wantRunning(t, running(t, s, st), v1)
		// So does scaling up.
		if err := s.Scale("", "web", 3); err != nil {
			t.Fatal(err)
		}
		next(t, evs, EventReady)
		v1["web.3"] = "web v1"
		wantRunning(t, running(t, s, st), v1)

		if err := s.Reload(servedSpec("web v3", "worker v3")); err != nil {
			t.Fatalf("fixed reload: %v", err)
		}
		for next(t, evs, EventStopped).Instance != "web.3" {
		}
		wantRunning(t, running(t, s, st), map[string]string{"web.1": "web v3", "web.2": "web v3", "worker.1": "worker v3"})
	})
}

// A served instance that exits before it is ready fails the reload at
// once, and one never ready fails it after ready_timeout: its predecessor
// never stopped and keeps serving, and it is restarted with the old
// command when it dies later.
func TestFailedRollingReloadKeepsOldServing(t *testing.T) {
	for _, tc := range []struct{ cmd, err string }{
		{"web broken", "web.1 (new) exited with status 1 before it was ready"},
		{"web hang", "web.1 (new) was not ready within 30s"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStarter{}
				s, evs, _ := newServed(t, st)
				v1 := map[string]string{"web.1": "web v1", "web.2": "web v1", "worker.1": "worker v1"}
				start := time.Now()
				err := s.Reload(servedSpec(tc.cmd, "worker v2"))
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("reload with %q: %v", tc.cmd, err)
				}
				if d := time.Since(start); tc.cmd == "web broken" && d > time.Second {
					t.Errorf("the failed reload took %v: it must not wait for the backoff", d)
				}
				wantRunning(t, running(t, s, st), v1)
				var old *fakeProc
				for _, p := range st.all() {
					if slices.Contains(p.argv, "exec web v1") && len(p.got()) == 0 {
						old = p
						break
					}
				}
				old.exit(ExitStatus{Code: -1, Signal: syscall.SIGKILL})
				next(t, evs, EventReady)
				wantRunning(t, running(t, s, st), v1)
			})
		})
	}
}
