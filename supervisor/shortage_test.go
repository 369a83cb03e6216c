package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"gsup/procfile"
)

// gsupShort is how a spawn fails when gsup itself is out of a resource.
func gsupShort() []error {
	return []error{
		&os.PathError{Op: "open", Path: os.DevNull, Err: syscall.EMFILE},
		os.NewSyscallError("pipe2", syscall.EMFILE),
		&os.PathError{Op: "fork/exec", Path: "/bin/sh", Err: syscall.EAGAIN},
		&os.PathError{Op: "fork/exec", Path: "/bin/sh", Err: syscall.ENOMEM},
		os.NewSyscallError("pipe2", syscall.ENFILE),
	}
}

func TestSpawnFailuresOfGsupAreRetriedNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var errs []error
		for range 4 {
			errs = append(errs, gsupShort()...)
		}
		st := &fakeStarter{errs: errs}
		log, hook := test.NewNullLogger()
		s := New(Config{Log: log, Stdout: io.Discard, Starter: st})
		evs, cancel := s.Subscribe()
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Run(context.Background(), testSpec(procfile.Process{Name: "web"})) }()
		defer stopped(s)
		start := time.Now()
		ev := next(t, evs, EventStarted, EventFatal, EventExited)
		if ev.Kind != EventStarted {
			t.Fatalf("after %d failures that were gsup's, got %s, want the instance started", len(errs), ev.Kind)
		}
		// Retries back off, but not to the app's 30 s: gsup's resources
		// usually come back quickly.
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("started after %v of retries", d)
		}
		sts, _ := s.Status()
		if sts[0].State != StateRunning || sts[0].Restarts != 0 {
			t.Errorf("status %+v, want running with no restarts counted", sts[0])
		}
		// Each failure is reported as gsup's own, with its errno.
		var lines int
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && e.Data["errno"] != nil {
				lines++
			}
		}
		if lines != len(errs) {
			t.Errorf("%d warnings naming an errno, want %d: %v", lines, len(errs), hook.AllEntries())
		}
		last := hook.AllEntries()
		for _, e := range last {
			if e.Data["errno"] == "EAGAIN" {
				if msg, _ := e.String(); !strings.Contains(msg, "gsup is short of resources") {
					t.Errorf("log line %q does not say the failure is gsup's", msg)
				}
				break
			}
		}
		// An app that exits at once still goes fatal as before: only
		// gsup's failures are exempt.
		st.mu.Lock()
		st.autoExit = &ExitStatus{Code: 1}
		st.mu.Unlock()
		st.all()[0].exit(ExitStatus{Code: 1})
		next(t, evs, EventFatal)
		s.Shutdown(StopGraceful)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestAppSpawnFailureStillCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var errs []error
		for range 10 {
			errs = append(errs, &os.PathError{Op: "fork/exec", Path: "/nonexistent", Err: syscall.ENOENT})
		}
		st := &fakeStarter{errs: errs}
		s, evs, done := runFake(t, st, testSpec(procfile.Process{Name: "web"}))
		next(t, evs, EventFatal)
		sts, _ := s.Status()
		if sts[0].State != StateFatal {
			t.Errorf("status %+v, want fatal", sts[0])
		}
		s.Shutdown(StopGraceful)
		<-done
	})
}

// A readiness check that fails because gsup cannot open a socket is not
// the app's failure: the instance is retried, never fatal, and ready once
// gsup has fds again.
func TestReadyCheckFailingForGsupIsNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var short atomic.Bool
		short.Store(true)
		st := reactiveStarter{&fakeStarter{}, politeReact}
		s := New(Config{Log: quietLog(), Stdout: io.Discard, Starter: st})
		s.probe = func(ctx context.Context, mode, addr string) error {
			if short.Load() {
				<-ctx.Done()
				return fmt.Errorf("dial tcp %s: %w", addr, os.NewSyscallError("socket", syscall.EMFILE))
			}
			return nil
		}
		evs, cancel := s.Subscribe()
		defer cancel()
		done := make(chan error, 1)
		spec := testSpec(procfile.Process{Name: "web", Ready: "port", ReadyTimeout: time.Second})
		go func() { done <- s.Run(context.Background(), spec) }()
		defer stopped(s)
		for i := 0; i < 10; i++ {
			ev := next(t, evs, EventStarted, EventFatal)
			if ev.Kind == EventFatal {
				t.Fatalf("fatal after %d readiness checks gsup could not make", i)
			}
		}
		short.Store(false)
		next(t, evs, EventReady)
		sts, _ := s.Status()
		if sts[0].State != StateRunning || sts[0].Restarts != 0 {
			t.Errorf("status %+v, want running with no restarts counted", sts[0])
		}
		s.Shutdown(StopGraceful)
		if err := <-done; err != nil && !errors.Is(err, ErrFailed) {
			t.Fatal(err)
		}
	})
}

// stopped forces s to stop and waits for Run to end, so a test that
// failed half-way leaves nothing running in its bubble.
func stopped(s *Supervisor) {
	s.Shutdown(StopForce)
	<-s.quit
}
