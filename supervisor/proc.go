package supervisor

import (
	"fmt"
	"os"
	"syscall"

	"gsup/procfile"
)

// StartRequest is everything needed to start one instance's process.
type StartRequest struct {
	Name    string   // "web.1", for messages
	Argv    []string // argv[0] is an absolute path or found in PATH of Env
	Env     []string
	Dir     string
	Stdin   *os.File   // nil = /dev/null
	Stdout  *os.File   // write end of the output pipe (stdout and stderr); the starter does not close it
	Files   []*os.File // passed as fds 3.. (sockets)
	Cred    *syscall.Credential
	Setpgid bool
	Cgroup  *os.File // the open folder of a cgroup v2 the process starts in (CLONE_INTO_CGROUP); nil = gsup's
	// Terminal: Stdout is a pseudo-terminal's slave. The process starts a
	// session of its own (so also a group of its own, as with Setpgid)
	// with that terminal as its controlling terminal.
	Terminal bool
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code   int            // exit code; -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it, or 0
}

// Success reports an exit with status 0.
func (e ExitStatus) Success() bool { return e.Code == 0 && e.Signal == 0 }

func (e ExitStatus) String() string {
	if e.Signal != 0 {
		return "signal " + signalName(e.Signal)
	}
	return fmt.Sprintf("status %d", e.Code)
}

// Proc is one started process. Wait is called exactly once, from one
// goroutine; Signal may be called from any goroutine, also after Wait
// returned (the group may outlive its leader).
type Proc interface {
	Pid() int
	// Signal sends sig to the process, or to its whole process group.
	Signal(sig syscall.Signal, group bool) error
	// Wait blocks until the process exited and returns how.
	Wait() ExitStatus
}

// Starter starts processes. The real one forks from a dedicated OS thread;
// tests of the state machine use a fake.
type Starter interface {
	Start(req StartRequest) (Proc, error)
}

// signalName is "TERM" for SIGTERM.
func signalName(s syscall.Signal) string { return procfile.SignalName(s) }
