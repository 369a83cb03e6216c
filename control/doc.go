// Package control is gsup's control API: HTTP with JSON bodies on a UNIX
// socket, and its client. The verbs `gsup ps`, `scale`, `restart`, `stop`,
// `signal`, `reload`, `load`, `unload`, `logs` and `top` are thin clients of it;
// docs/api.md lists every endpoint with its bodies and errors.
//
// The server only calls a Backend (main's running instance); it owns no
// process state. Listen binds the socket with gsup/internal/unixsock: its
// mode is set by fchmod on the socket before bind (so no umask race lets
// anyone else connect), a stale socket is replaced, a live one is refused
// with ErrRunning, a symlink or any other file is refused and left alone,
// and Close removes the socket file only while it is still the one Listen
// made (same inode). Paths longer than a sockaddr_un holds are bound and
// dialed through their folder.
//
// The mode decides who may connect; every request is then checked against
// the peer's credentials (SO_PEERCRED, SO_PEERGROUPS): root, gsup's own
// uid and the users and groups given to Allow (control_allow) are
// answered, anyone else gets 403 and one warning line with uid, gid and
// pid fields. Routes are http.ServeMux patterns ("POST /v1/scale"), so a
// wrong method gets the mux's 405 with Allow and an unknown path its 404.
//
// Every request that changes something is logged at info with the peer's
// uid, gid and pid as fields. http.Server's own messages (accept errors)
// go to gsup's log as warnings. Bodies are capped at 1 MiB. Errors are
// {"error": "..."} with 400 (bad request or bad config file), 403 (a peer
// not allowed), 404 (unknown target, type or app), 409 (refused in the
// current state, or gsup is stopping), 413 (body too large) or 500.
//
// Register also binds the socket in gsup's runtime folder under a name
// derived from its path, and Follow binds the path again where a switched
// symlink makes it lead (registry.go): both are the same server, with
// the same checks.
//
// Client needs no setup beyond the socket's path; when nothing listens
// there (and, with Registry, not in the runtime folders either) its
// errors wrap ErrNoInstance.
package control
