package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Reason says why an instance was restarted or replaced; it is the
// reason label of gsup_process_restarts_total.
type Reason string

// The reasons.
const (
	ReasonExit        Reason = "exit"         // it exited on its own and was restarted
	ReasonHealth      Reason = "health"       // its active health check failed health_failures times in a row
	ReasonUpstream    Reason = "upstream"     // health_max_fails upstream failures in a row
	ReasonHang        Reason = "hang"         // a request got no response byte within hang_timeout
	ReasonMaxRSS      Reason = "max_rss"      // its resident memory passed max_rss
	ReasonMaxCPU      Reason = "max_cpu"      // its CPU stayed above max_cpu for guard_window
	ReasonMaxAge      Reason = "max_age"      // it ran for max_age (plus jitter)
	ReasonMaxRequests Reason = "max_requests" // it served max_requests requests
)

// Reasons lists every Reason, in a stable order.
var Reasons = []Reason{ReasonExit, ReasonHealth, ReasonUpstream, ReasonHang, ReasonMaxRSS, ReasonMaxCPU, ReasonMaxAge, ReasonMaxRequests}

// sick reports whether r takes the instance out of rotation at once: it
// cannot serve, so its replacement is not waited for.
func (r Reason) sick() bool { return r == ReasonHealth || r == ReasonUpstream || r == ReasonHang }

// Replace replaces the instance with the given ID (Event.ID) for reason:
// the rolling way when it is served (the new instance is ready before the
// old one is stopped), else stop-then-start. A sick reason (health,
// upstream, hang) takes a served instance out of rotation at once
// (EventSick); a hung one is stopped without waiting for its requests,
// and gets SIGKILL after its stop_timeout. detail is logged. Replace
// returns at once; an instance already being replaced is left alone.
func (s *Supervisor) Replace(id uint64, reason Reason, detail string) {
	s.post(func() {
		for _, inst := range s.insts {
			if inst.id == id {
				s.recycleLocked(inst, reason, detail)
				return
			}
		}
	})
}

// recycleLocked replaces inst for reason (see Replace).
func (s *Supervisor) recycleLocked(inst *instance, reason Reason, detail string) {
	if inst.remove || s.shutdown || inst.recycling != "" || inst.proc == nil ||
		(inst.state != StateRunning && inst.state != StateStarting) {
		return
	}
	if reason.sick() && (!inst.ready || s.os != nil && exited(inst.pid)) {
		// Failures the front saw because the instance died: its exit
		// restarts it, and requests wait for it.
		return
	}
	inst.recycling = reason
	inst.hung = reason == ReasonHang || reason == ReasonHealth && inst.hungProbe
	inst.t.count(inst.num, reason)
	msg := fmt.Sprintf("%s: %s", reason, detail)
	s.instLog(inst).WithField("reason", string(reason)).
		Warnf("%s is replaced (%s)", inst.name, detail)
	if reason.sick() {
		inst.health = "sick"
		ev := s.event(EventSick, inst)
		ev.Message = msg
		s.publish(ev)
	} else {
		ev := s.event(EventRecycling, inst)
		ev.Message = msg
		s.publish(ev)
	}
	if inst.served() {
		go func() {
			if err := s.replace([]*instance{inst}); err != nil {
				s.log.WithFields(inst.fields()).Errorf("replacing %s: %v", inst.name, err)
			}
		}()
		return
	}
	inst.restartAfter = true
	s.stopLocked(inst, false)
}

// count adds one restart of instance number num for reason.
func (t *ptype) count(num int, reason Reason) { bump(&t.restarts, num, reason) }

// countCheck counts one health check result of instance number num.
func (t *ptype) countCheck(num int, result string) { bump(&t.checks, num, result) }

// bump adds one to (*m)[num][k], making the maps as needed.
func bump[K comparable](m *map[int]map[K]int, num int, k K) {
	if *m == nil {
		*m = map[int]map[K]int{}
	}
	if (*m)[num] == nil {
		(*m)[num] = map[K]int{}
	}
	(*m)[num][k]++
}

// watchHealthLocked starts inst's active health checks once it is ready.
func (s *Supervisor) watchHealthLocked(inst *instance, p Proc) {
	h := inst.def.p.Health
	if h.Check == "" {
		return
	}
	inst.health = "ok"
	ctx, cancel := context.WithCancel(context.Background())
	inst.healthEnd = cancel
	addr, dir, env := inst.addr(), inst.dir(), inst.env
	failures := max(h.Failures, 1)
	go func() {
		tick := time.NewTicker(h.Interval)
		defer tick.Stop()
		failed := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pctx, end := context.WithTimeout(ctx, h.Timeout)
			err := s.check(pctx, h.Check, addr, dir, env)
			timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
			end()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				reset := failed > 0
				failed = 0
				s.post(func() {
					inst.t.countCheck(inst.num, "ok")
					if reset && inst.proc == p && inst.recycling == "" {
						inst.health = "ok"
					}
				})
				continue
			}
			if timedOut {
				err = fmt.Errorf("no answer within %v", h.Timeout)
			}
			failed++
			n := failed
			s.post(func() {
				inst.t.countCheck(inst.num, "failed")
				if inst.proc != p || inst.recycling != "" {
					return
				}
				inst.health = fmt.Sprintf("failing %d/%d", n, failures)
				inst.hungProbe = timedOut
				s.instLog(inst).
					Warnf("%s failed its health check %s (%d of %d): %v", inst.name, h.Check, n, failures, err)
				if n >= failures {
					s.recycleLocked(inst, ReasonHealth, fmt.Sprintf("health check %s failed %d times in a row: %v", h.Check, n, err))
				}
			})
		}
	}()
}

// check runs one active health check: "port" (connect), "http:/path"
// (a 2xx answer) or "exec:CMD" (exit 0, run in dir with env), bounded by
// ctx.
func check(ctx context.Context, mode, addr, dir string, env []string) error {
	if cmd, ok := strings.CutPrefix(mode, "exec:"); ok {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
		c.Dir, c.Env = dir, env
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
		c.WaitDelay = time.Second
		out, err := c.CombinedOutput()
		if err != nil && len(out) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(lastLine(out))))
		}
		return err
	}
	network, address := "tcp", addr
	if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", rest
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	path, ok := strings.CutPrefix(mode, "http:")
	if !ok {
		c, err := dial(ctx, "", "")
		if err == nil {
			c.Close()
		}
		return err
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	return checkHTTP(ctx, client, path, "gsup-health")
}

// lastLine is the last non-empty line of out.
func lastLine(out []byte) []byte {
	s := strings.TrimRight(string(out), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return []byte(s)
}
