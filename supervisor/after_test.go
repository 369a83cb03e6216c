package supervisor

import (
	"errors"
	"testing"
	"testing/synctest"

	"gsup/procfile"
)

// after = ["migrate"] where migrate runs once (restart = "never") waits
// for it to exit 0; a non-zero exit keeps the dependents from starting,
// and makes gsup fail when migrate is critical.
func TestAfterOneShotWaitsForSuccess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		critical bool
	}{{"success", 0, false}, {"failure", 1, false}, {"critical failure", 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStarter{}
				spec := testSpec(procfile.Process{Name: "migrate", Restart: procfile.RestartNever, Critical: tc.critical},
					procfile.Process{Name: "web", After: []string{"migrate"}})
				s, evs, done := runFake(t, reactiveStarter{st, politeReact}, spec)
				next(t, evs, EventStarted)
				synctest.Wait()
				if n := len(st.all()); n != 1 {
					t.Fatalf("%d processes started while migrate runs, want 1", n)
				}
				st.all()[0].exit(ExitStatus{Code: tc.code})
				next(t, evs, EventExited)
				synctest.Wait()
				started := len(st.all()) == 2
				if started != (tc.code == 0) {
					t.Fatalf("web started: %v after migrate exited %d", started, tc.code)
				}
				if tc.code == 0 {
					s.Shutdown(StopGraceful)
				}
				err := <-done
				if wantFail := tc.code != 0; errors.Is(err, ErrFailed) != wantFail {
					t.Errorf("Run: %v", err)
				}
			})
		})
	}
}
