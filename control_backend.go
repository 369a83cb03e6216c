package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"gsup/control"
	"gsup/procfile"
	"gsup/supervisor"
)

// controlBackend is the running instance as the control API sees it
// (gsup's own Stop and Reload are signals.Target's).
type controlBackend struct{ g *gsup }

var _ control.Backend = controlBackend{}

func (b controlBackend) Status() ([]supervisor.Status, error) { return b.g.sup.Status() }

func (b controlBackend) Scale(app, typ string, n int) error { return b.g.sup.Scale(app, typ, n) }

func (b controlBackend) Restart(targets []string) ([]string, error) {
	return b.g.sup.Restart(targets)
}

func (b controlBackend) Stop(targets []string) ([]string, error) { return b.g.sup.Stop(targets) }

func (b controlBackend) Signal(sig syscall.Signal, targets []string) ([]string, error) {
	return b.g.sup.Signal(sig, targets)
}

func (b controlBackend) Lines(targets []string) ([]supervisor.Line, error) {
	return b.g.sup.Lines(targets)
}

func (b controlBackend) Follow(targets []string) (<-chan supervisor.Line, func(), error) {
	return b.g.sup.Follow(targets)
}

func (b controlBackend) Subscribe() (<-chan supervisor.Event, func()) { return b.g.sup.Subscribe() }

// Reload is reloadConfig, in the caller's goroutine; a bad config is an
// invalid request (400).
func (b controlBackend) Reload() error {
	err := b.g.reloadConfig()
	var ee *exitError
	if errors.As(err, &ee) && ee.code == exitUsage {
		return withKind(err, control.ErrInvalid)
	}
	return err
}

// kindError marks an error with one of control's errors, which chooses
// the HTTP status; the message is the error's own.
type kindError struct{ err, kind error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func withKind(err, kind error) error { return &kindError{err: err, kind: kind} }

// loadOptions are the procfile.Options of `gsup load FILE`: file's folder
// is the app's, a .toml file is a config, anything else a Procfile.
func loadOptions(file, app string) procfile.Options {
	opts := procfile.Options{Dir: filepath.Dir(file), App: app, Environ: os.Environ()}
	if strings.EqualFold(filepath.Ext(file), ".toml") {
		opts.Config = filepath.Base(file)
	} else {
		opts.Procfile = filepath.Base(file)
	}
	return opts
}

// Load implements control.Backend: it reads file as `gsup check` would,
// gives the app's types the port blocks after every other app's (a
// replaced app keeps its own when they still fit), and adds or replaces
// the app.
func (b controlBackend) Load(file, app string) (string, error) {
	spec, err := procfile.Load(loadOptions(file, app))
	if err != nil {
		return "", withKind(err, control.ErrInvalid)
	}
	apps, err := b.g.sup.Apps()
	if err != nil {
		return "", err
	}
	if err := placePorts(spec, apps); err != nil {
		return "", withKind(err, control.ErrInvalid)
	}
	if err := b.g.sup.Load(spec); err != nil {
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
func (b controlBackend) Unload(app string) error {
	apps, err := b.g.sup.Apps()
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
	return b.g.sup.Unload(app)
}
