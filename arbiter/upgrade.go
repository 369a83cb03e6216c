package arbiter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"gsup/control"

	"gsup/internal/handoff"
	"gsup/procfile"
	"gsup/serve"
	"gsup/supervisor"
)

// CheckArg is the first argument of the check mode an upgrade runs the
// new binary in before it executes it (main dispatches it to CheckMain).
const CheckArg = "__gsup_upgrade_check"

// handoffFormat is the version of Handoff; a binary that does not know
// it fails its check, and the upgrade is refused.
const handoffFormat = 1

// Upgrade timings: the check's limit, how long busy keep-alive
// connections get to take their last answer (with Connection: close)
// before idle ones are closed, and how long control requests get.
const (
	checkTimeout    = 10 * time.Second
	keepAliveSettle = 500 * time.Millisecond
	controlGrace    = 2 * time.Second
)

// Handoff is the running gsup's state handed across an in-place upgrade
// (systemd's daemon-reexec is the model). Descriptor numbers (…FD)
// survive the exec.
type Handoff struct {
	Format    int              `json:"format"`
	From      string           `json:"from"` // version of the gsup that wrote it
	Args      []string         `json:"args"` // gsup's command line, kept for the next upgrade
	Environ   []string         `json:"environ"`
	Options   procfile.Options `json:"options"`
	Control   string           `json:"control"`
	ControlFD int              `json:"control_fd"`
	// ControlFile is Control's file, symlinks resolved at bind ("" from
	// a gsup that did not say: Control).
	ControlFile string `json:"control_file,omitempty"`
	// ControlAlso are the control sockets bound besides Control (its
	// registry, its path where it leads after a deploy).
	ControlAlso []control.AlsoFD     `json:"control_also,omitempty"`
	Listeners   []ListenerHandoff    `json:"listeners,omitempty"` // the front's
	Sockets     []ListenerHandoff    `json:"sockets,omitempty"`   // [socket.NAME], for children
	Supervisor  *supervisor.Snapshot `json:"supervisor"`
}

// ListenerHandoff is one listening socket.
type ListenerHandoff struct {
	FD     int    `json:"fd"`
	Name   string `json:"name"`
	Scheme string `json:"scheme,omitempty"`
	Path   string `json:"path,omitempty"` // a UNIX socket file gsup removes at exit
}

// TakeHandoff returns the state of the gsup this process replaced, or
// nil when it was started normally.
func TakeHandoff() (*Handoff, error) {
	var h Handoff
	ok, err := handoff.Take(&h)
	if !ok || err != nil {
		return nil, err
	}
	if err := h.valid(); err != nil {
		return nil, err
	}
	return &h, nil
}

func (h *Handoff) valid() error {
	if h.Format != handoffFormat {
		return fmt.Errorf("upgrade state format %d; this gsup reads format %d", h.Format, handoffFormat)
	}
	if h.Supervisor == nil || len(h.Supervisor.Apps) == 0 || h.Supervisor.Apps[0].Spec == nil {
		return errors.New("upgrade state: no app")
	}
	return nil
}

// CheckMain is the check mode: it reads the state the running gsup
// would hand over (without descriptors) from stdin, says whether this
// binary can take it over, and prints its version. It returns the exit
// code.
func CheckMain(stdin io.Reader, stdout, stderr io.Writer, version string) int {
	var h Handoff
	err := handoff.Decode(stdin, &h)
	if err == nil {
		err = h.valid()
	}
	if err != nil {
		fmt.Fprintf(stderr, "gsup %s: %v\n", version, err)
		return 1
	}
	fmt.Fprintln(stdout, version)
	return 0
}

// refusedError is a refused upgrade: a conflict for the control API.
type refusedError struct{ err error }

func (e *refusedError) Error() string        { return "upgrade refused: " + e.err.Error() }
func (e *refusedError) Unwrap() error        { return e.err }
func (e *refusedError) Is(target error) bool { return target == control.ErrConflict }

// upgradeState is what the arbiter knows of upgrades.
type upgradeState struct {
	mu      sync.Mutex
	running bool
	status  string // "", "in progress", "failed: ..."
}

// Upgrade implements signals.Target (USR2): upgrade in the background;
// the outcome is logged.
func (a *arbiter) Upgrade() {
	go func() { _, _ = a.upgrade() }()
}

// upgrade checks gsup's binary in check mode and, when it passes, hands
// over to it in the background. An error (wrapping control.ErrConflict)
// says why it is refused; gsup then runs on as it was.
func (a *arbiter) upgrade() (control.UpgradeResponse, error) {
	resp := control.UpgradeResponse{Pid: os.Getpid(), Path: a.self, From: a.version}
	refuse := func(err error) (control.UpgradeResponse, error) {
		a.log.Errorf("upgrade refused, gsup %s keeps running: %v", a.version, err)
		a.metrics.Upgrade(false)
		return resp, &refusedError{err}
	}
	a.up.mu.Lock()
	if a.up.running {
		a.up.mu.Unlock()
		return refuse(errors.New("an upgrade is in progress"))
	}
	a.up.running, a.up.status = true, "in progress"
	a.up.mu.Unlock()
	fail := func(err error) (control.UpgradeResponse, error) {
		a.up.mu.Lock()
		a.up.running, a.up.status = false, "failed: "+err.Error()
		a.up.mu.Unlock()
		return refuse(err)
	}
	release, err := a.sup.HoldRollouts()
	if err != nil {
		return fail(err)
	}
	to, err := a.checkBinary()
	if err != nil {
		release()
		return fail(err)
	}
	resp.To = to
	a.log.Infof("upgrading gsup %s to %s (%s) in place", a.version, to, a.self)
	a.metrics.Upgrade(true)
	go a.handOver(release)
	return resp, nil
}

// checkBinary runs gsup's binary in check mode with the state it would
// take over, and returns the version it prints.
func (a *arbiter) checkBinary() (string, error) {
	apps, err := a.sup.Apps()
	if err != nil {
		return "", err
	}
	h := a.handoff(&supervisor.Snapshot{})
	for _, app := range apps {
		h.Supervisor.Apps = append(h.Supervisor.Apps, supervisor.AppSnapshot{Spec: app.Spec, First: app.First})
	}
	fd, err := handoff.Write(h)
	if err != nil {
		return "", err
	}
	stdin, err := handoff.File(fd, "check state")
	if err != nil {
		handoff.Discard(fd)
		return "", err
	}
	defer stdin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, a.self, CheckArg)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	cmd.Env = a.environ
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String() + out.String())
		if msg != "" {
			return "", fmt.Errorf("%s %s: %w: %s", a.self, CheckArg, err, msg)
		}
		return "", fmt.Errorf("%s %s: %w", a.self, CheckArg, err)
	}
	v := strings.TrimSpace(out.String())
	if v == "" || strings.Contains(v, "\n") {
		return "", fmt.Errorf("%s %s: printed %q, not a version", a.self, CheckArg, v)
	}
	return v, nil
}

// handoff is the arbiter's part of the state.
func (a *arbiter) handoff(snap *supervisor.Snapshot) *Handoff {
	return &Handoff{Format: handoffFormat, From: a.version, Args: a.args, Environ: a.environ,
		Options: a.opts, Control: a.ctl.Path(), ControlFile: a.ctl.File(), ControlFD: -1, Supervisor: snap}
}

// handOver finishes what cannot cross execve (requests in flight on the
// front and the control socket), then execs gsup's binary in this
// process. It returns only when the exec failed: gsup then serves on.
func (a *arbiter) handOver(release func()) {
	a.notify.Reloading()
	var wg sync.WaitGroup
	if a.srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), a.grace)
			defer cancel()
			if err := a.srv.Pause(ctx, min(keepAliveSettle, a.grace/2)); err != nil {
				a.log.Warnf("requests still in flight after %v were cut off", a.grace)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), controlGrace)
		defer cancel()
		a.ctl.Pause(ctx)
	}()
	wg.Wait()
	err := a.sup.Exec(a.self, a.args, a.prepareExec)
	// Still here: the exec did not happen.
	a.log.Errorf("upgrade failed, gsup %s keeps running: %v", a.version, err)
	if a.srv != nil {
		a.srv.Resume()
	}
	a.ctl.Resume()
	release()
	a.up.mu.Lock()
	a.up.running, a.up.status = false, "failed: "+err.Error()
	a.up.mu.Unlock()
	_, status, _ := a.sup.Summary()
	a.notify.Ready(status)
}

// prepareExec completes the supervisor's snapshot with the arbiter's
// sockets and writes it for the new binary (supervisor.Exec's prepare).
func (a *arbiter) prepareExec(snap *supervisor.Snapshot) ([]string, []int, func(), error) {
	h := a.handoff(snap)
	var keep []int
	fd, err := a.ctl.FD()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("control socket: %w", err)
	}
	h.ControlFD = fd
	keep = append(keep, fd)
	if h.ControlAlso, err = a.ctl.AlsoFDs(); err != nil {
		return nil, nil, nil, err
	}
	for _, also := range h.ControlAlso {
		keep = append(keep, also.FD)
	}
	if a.srv != nil {
		for _, l := range a.srv.Listeners() {
			fd, err := l.FD()
			if err != nil {
				return nil, nil, nil, err
			}
			h.Listeners = append(h.Listeners, ListenerHandoff{FD: fd, Name: l.Name, Scheme: l.Scheme, Path: l.Path})
			keep = append(keep, fd)
		}
	}
	for name, f := range a.sockets {
		fd, err := handoff.FD(f)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("socket %s: %w", name, err)
		}
		h.Sockets = append(h.Sockets, ListenerHandoff{FD: fd, Name: name})
		keep = append(keep, fd)
	}
	mfd, err := handoff.Write(h)
	if err != nil {
		return nil, nil, nil, err
	}
	keep = append(keep, mfd)
	return handoff.Environ(os.Environ(), mfd), keep, func() { handoff.Discard(mfd) }, nil
}

// adoptSockets makes the children's inherited sockets of h.
func adoptSockets(h *Handoff) (map[string]*os.File, error) {
	sockets := map[string]*os.File{}
	for _, s := range h.Sockets {
		f, err := handoff.File(s.FD, "socket "+s.Name)
		if err != nil {
			return nil, err
		}
		sockets[s.Name] = f
	}
	return sockets, nil
}

// Upgrade is the control API's POST /v1/upgrade.
func (b backend) Upgrade() (control.UpgradeResponse, error) { return b.a.upgrade() }

// Version is the control API's GET /v1/version.
func (b backend) Version() control.VersionResponse {
	b.a.up.mu.Lock()
	defer b.a.up.mu.Unlock()
	return control.VersionResponse{Version: b.a.version, Pid: os.Getpid(), Started: b.a.started, Upgrade: b.a.up.status}
}

// resume is Run in the process of the gsup it replaced: it adopts the
// control socket, the listeners, the children's sockets and the
// processes, with their state, instead of opening and starting them.
func (a *arbiter) resume(ctx context.Context, cfg Config) error {
	h, spec := cfg.Handoff, cfg.Spec
	ctl, err := control.Inherit(h.ControlFD, h.Control, h.ControlFile, spec.ControlMode)
	if err != nil {
		return err
	}
	a.ctl = ctl
	defer ctl.Close()
	for _, also := range h.ControlAlso {
		if err := ctl.InheritAlso(also); err != nil {
			return err
		}
	}
	ctl.Allow(spec.ControlAllow)
	if spec.Serve.Enabled {
		a.srv, err = serve.New(a.frontConfig(spec, cfg))
		if err != nil {
			return err
		}
		defer a.srv.Close()
		for _, l := range h.Listeners {
			if err := a.srv.AdoptFD(l.FD, l.Name, l.Scheme, l.Path); err != nil {
				return err
			}
		}
		// The rotation is filled before the first connection waiting in
		// the backlog is accepted.
		for id, addr := range h.Supervisor.ReadyServed() {
			a.srv.Add(id, addr)
			a.expected[id] = true
		}
		a.srv.SetExpected(len(a.expected))
	}
	if a.sockets, err = adoptSockets(h); err != nil {
		return err
	}
	a.log.WithFields(logrus.Fields{"from": h.From, "to": a.version}).Infof("gsup %s took over from gsup %s (pid %d) for %s", a.version, h.From, os.Getpid(), spec.App)
	return a.run(ctx, cfg, h.Supervisor)
}
