package arbiter

import (
	"errors"
	"fmt"
	"slices"
	"syscall"

	"gsup/control"
	"gsup/procfile"
	"gsup/supervisor"
)

// backend is the running instance as the control API sees it.
type backend struct{ a *arbiter }

var _ control.Backend = backend{}

func (b backend) Status() ([]supervisor.Status, error) { return b.a.sup.Status() }

func (b backend) Scale(app, typ string, n int) error { return b.a.sup.Scale(app, typ, n) }

func (b backend) Restart(targets []string) ([]string, error) { return b.a.sup.Restart(targets) }

func (b backend) Stop(targets []string) ([]string, error) { return b.a.sup.Stop(targets) }

func (b backend) Signal(sig syscall.Signal, targets []string) ([]string, error) {
	return b.a.sup.Signal(sig, targets)
}

func (b backend) Lines(targets []string) ([]supervisor.Line, error) { return b.a.sup.Lines(targets) }

func (b backend) Follow(targets []string) (<-chan supervisor.Line, func(), error) {
	return b.a.sup.Follow(targets)
}

func (b backend) Subscribe() (<-chan supervisor.Event, func()) { return b.a.sup.Subscribe() }

// Reload is the arbiter's reload, in the caller's goroutine; a bad
// config is an invalid request (400).
func (b backend) Reload() error {
	err := b.a.reload()
	switch {
	case errors.Is(err, errInvalidConfig):
		return withKind(err, control.ErrInvalid)
	case errors.Is(err, supervisor.ErrRolledBack):
		return withKind(err, control.ErrConflict)
	}
	return err
}

// kindError marks an error with one of control's errors, which chooses
// the HTTP status; the message is the error's own.
type kindError struct{ err, kind error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func withKind(err, kind error) error { return &kindError{err: err, kind: kind} }

// Load implements control.Backend: it reads file as `gsup check` would,
// gives the app's types the port blocks after every other app's (a
// replaced app keeps its own when they still fit), and adds or replaces
// the app.
func (b backend) Load(file, app string) (string, error) {
	spec, err := procfile.Load(procfile.FileOptions(file, app, b.a.environ))
	if err != nil {
		return "", withKind(err, control.ErrInvalid)
	}
	apps, err := b.a.sup.Apps()
	if err != nil {
		return "", err
	}
	if err := placePorts(spec, apps); err != nil {
		return "", withKind(err, control.ErrInvalid)
	}
	if err := b.a.sup.Load(spec); err != nil {
		if errors.Is(err, supervisor.ErrRolledBack) {
			return "", withKind(fmt.Errorf("load failed: %w", err), control.ErrConflict)
		}
		return "", err
	}
	return spec.App, nil
}

// placePorts moves spec's port blocks (PortsPerType ports a type, in
// file order) so they do not overlap the blocks of the other apps: a
// replaced app keeps its base port when its blocks still fit there; else
// the app goes after the highest block in use.
func placePorts(spec *procfile.Spec, apps []supervisor.AppInfo) error {
	type span struct{ lo, hi int } // [lo, hi)
	var used []span
	base := -1
	for _, a := range apps {
		if a.Name == spec.App {
			base = a.Spec.BasePort
			continue
		}
		for _, p := range a.Spec.Processes {
			used = append(used, span{p.BasePort, p.BasePort + procfile.PortsPerType})
		}
	}
	n := len(spec.Processes)
	fits := func(b int) bool {
		for _, u := range used {
			if b < u.hi && u.lo < b+n*procfile.PortsPerType {
				return false
			}
		}
		return true
	}
	if base < 0 || !fits(base) {
		base = procfile.DefaultBasePort
		for _, u := range used {
			base = max(base, u.hi)
		}
	}
	if last := base + n*procfile.PortsPerType - 1; last > 65535 {
		return fmt.Errorf("no room for the port blocks of %s: they would end at %d, past 65535", spec.App, last)
	}
	spec.BasePort = base
	for i := range spec.Processes {
		spec.Processes[i].BasePort = base + procfile.PortsPerType*spec.Processes[i].Index
	}
	return nil
}

// Unload implements control.Backend.
func (b backend) Unload(app string) error {
	apps, err := b.a.sup.Apps()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(apps, func(a supervisor.AppInfo) bool { return a.Name == app })
	switch {
	case i < 0:
		return withKind(fmt.Errorf("no app %q", app), control.ErrNotFound)
	case apps[i].First:
		return withKind(fmt.Errorf("app %q is the first app; stop gsup instead", app), control.ErrConflict)
	}
	return b.a.sup.Unload(app)
}
