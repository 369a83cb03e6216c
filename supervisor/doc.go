// Package supervisor turns a procfile.Spec into running process instances
// and keeps them running: it starts, watches, restarts, scales, reloads and
// stops them, and captures their output.
//
// # Ownership
//
// One goroutine (the loop started by Run) owns every instance and app.
// Everything else — exit watchers, timers, readiness probes, the control
// API, signals — asks it by posting a closure and, when it needs an answer,
// waiting for the closure to run. Methods whose names end in Locked run on
// that goroutine only.
//
// # Lifecycle of an instance
//
//	starting -> running (ready) -> stopping -> stopped
//	exited -> backoff -> starting        (restart policy allows)
//	exited                               (for good: never / on-failure with status 0)
//	fatal                                (more than 5 quick exits within 60 s)
//
// An instance is its whole process group: its command runs as
// `/bin/sh -c COMMAND` (with exec in front of a single simple command) in a
// group of its own, every stop signal goes to that group, and whatever is
// left in the group when the main process exits is killed before a restart.
// "Exited on its own" and "stopped by us" are kept apart: only the former
// counts against the restart policy.
//
// # Orphan safety
//
// Children are forked from one OS thread that lives as long as the
// supervisor, with a parent-death signal (SIGKILL): the kernel sends it when
// that thread dies. It reaches only the direct child, so a guard process
// (gsup re-executed, see GuardMain) holds the list of live instance groups
// on a pipe and kills them all when that pipe closes, even after SIGKILL of
// gsup.
//
// With cgroup v2, each start of an instance runs in a new cgroup below
// <gsup's cgroup>/gsup-PID, entered by clone3 (CLONE_INTO_CGROUP); when its
// main process exits the cgroup is killed whole and removed, and the guard
// kills and removes them all after gsup dies. A fresh cgroup per start is
// needed: the kernel kills a process cloned into a cgroup that was killed
// before. Without cgroups (or GSUP_CGROUP=off) gsup is the child subreaper:
// each start carries MarkerEnv, and adopted orphans whose start has ended
// are killed; every adopted orphan dies when gsup stops. Orphans are reaped
// by pid, never with a blind wait that would steal an exit status from
// exec.Cmd.Wait.
//
// A start that fails for want of gsup's own resources (EMFILE, ENFILE,
// EAGAIN, ENOMEM) is retried, never counted by the restart policy.
//
// # Pitfalls
//
// A grandchild that escapes its process group (setsid) and keeps the
// output pipe open keeps that instance's output reader alive; it is not
// waited for.
package supervisor
