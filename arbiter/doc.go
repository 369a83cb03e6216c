// Package arbiter is the running gsup: what Gunicorn calls its arbiter
// (the master). Run opens the control socket, the front's listeners and
// the children's sockets, starts the supervisor, keeps the front's
// rotation in step with the served instances, relays readiness to the
// service manager, and acts on what signals and the control API ask:
// stop, reload, reopen, scale.
//
// Start-up order matters: signals are caught by the caller before Run;
// the control socket is opened first, so a live gsup at the same path
// stops this one before it binds anything; every listener is opened
// before any process starts, so a bind that fails stops gsup with
// nothing started.
//
// A reload re-reads the config with the Options the instance was
// started with; a bad one is refused (reported once, here) and the
// running definition is kept.
package arbiter
