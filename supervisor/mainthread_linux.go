package supervisor

import (
	"os"
	"sync/atomic"
	"syscall"
)

// mainThread is the fork server ServeMainThread runs.
var mainThread struct {
	serving atomic.Bool
	forks   chan func()
}

// ServeMainThread runs run on a new goroutine and, until it returns,
// forks every child (and execs an in-place upgrade) on the calling
// goroutine, which must be the main goroutine locked to the process's
// main thread (main's init calls runtime.LockOSThread). A child's
// parent-death signal fires when the thread that forked it ends, and an
// execve ends every thread but the caller's: with forks and exec on the
// main thread, the children of this gsup and of the one before it
// survive an upgrade, and the next one. Called from any other thread, it
// just returns run().
func ServeMainThread(run func() int) int {
	if syscall.Gettid() != os.Getpid() || !mainThread.serving.CompareAndSwap(false, true) {
		return run()
	}
	mainThread.forks = make(chan func())
	done := make(chan int, 1)
	go func() { done <- run() }()
	for {
		select {
		case f := <-mainThread.forks:
			f()
		case code := <-done:
			return code
		}
	}
}
