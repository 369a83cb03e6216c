package supervisor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
)

// GuardArg is the first argument that makes gsup run as the guard process
// (main dispatches it to GuardMain before parsing the command line).
const GuardArg = "__gsup_guard"

// guard is gsup's side of the guard process: it tells the guard which
// process groups are alive, and where gsup's cgroups are. The guard kills
// every listed group with SIGKILL when its stdin (this pipe) closes, which
// the kernel does when gsup exits for any reason, SIGKILL included, then
// kills every instance cgroup and removes gsup's cgroup subtree.
type guard struct {
	mu     sync.Mutex
	w      *os.File
	proc   *osProc // nil for a guard adopted at an upgrade
	pid    int
	exited chan struct{} // closed when the guard process has exited
}

// startGuard starts `self GuardArg` with a pipe on its stdin. The guard
// runs in a process group of its own, so signals to gsup's group (Ctrl-C
// on a terminal, supervisord's stopasgroup) do not kill it before it has
// done its work, and it has no parent-death signal: it must outlive gsup.
func startGuard(s *osStarter, self string, cg *cgroups) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer null.Close()
	p, err := s.startGuardProc(self, r, null)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("starting guard process: %w", err)
	}
	g := &guard{w: w, proc: p, pid: p.Pid(), exited: make(chan struct{})}
	go func() {
		p.Wait()
		close(g.exited)
	}()
	if cg != nil {
		_, _ = fmt.Fprintf(w, "c%s\n", cg.base)
	}
	return g, nil
}

func (s *osStarter) startGuardProc(self string, stdin, stdout *os.File) (*osProc, error) {
	req := StartRequest{Name: "guard", Argv: []string{self, GuardArg}, Env: []string{"PATH=/usr/bin:/bin"}, Stdin: stdin, Stdout: stdout, Setpgid: true}
	return s.start(req, false)
}

func (g *guard) send(op byte, pgid int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	_, _ = fmt.Fprintf(g.w, "%c%d\n", op, pgid)
}

func (g *guard) add(pgid int)    { g.send('+', pgid) }
func (g *guard) remove(pgid int) { g.send('-', pgid) }

// close ends the guard (it kills what is still listed) and waits for it.
func (g *guard) close() {
	if g == nil {
		return
	}
	g.w.Close()
	<-g.exited
}

// GuardMain is the guard process: it reads "+PGID" and "-PGID" lines, and
// "cPATH" naming gsup's cgroup subtree, from stdin. At end of input it
// sends SIGKILL to every group still listed, then kills the processes of
// every instance cgroup below PATH and removes the subtree. It returns
// the process's exit code.
func GuardMain(stdin io.Reader) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU)
	groups := map[int]bool{}
	base := ""
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 {
			continue
		}
		if line[0] == 'c' {
			base = line[1:]
			continue
		}
		pgid, err := strconv.Atoi(line[1:])
		if err != nil || pgid <= 1 {
			continue
		}
		switch line[0] {
		case '+':
			groups[pgid] = true
		case '-':
			delete(groups, pgid)
		}
	}
	for pgid := range groups {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if base != "" {
		removeCgroupTree(base)
	}
	return 0
}
