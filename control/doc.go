// Package control is gsup's control API: HTTP with JSON bodies on a UNIX
// socket, and its client. The verbs `gsup ps`, `scale`, `restart`, `stop`,
// `signal`, `reload`, `load`, `unload` and `logs` are thin clients of it;
// docs/api.md lists every endpoint with its bodies and errors.
//
// The server only calls a Backend (main's running instance); it owns no
// process state. Listen binds the socket with its mode set by fchmod on
// the socket before bind (so no umask race lets anyone else connect), then
// chmods the path to exactly that mode; a stale socket is replaced, a live
// one is refused with ErrRunning. Close removes the socket file only while
// it is still the one Listen made (same inode).
//
// Every request that changes something is logged at info with the peer's
// uid and pid (SO_PEERCRED). Bodies are capped at 1 MiB. Errors are
// {"error": "..."} with 400 (bad request or bad config file), 404 (unknown
// target, type or app), 409 (refused in the current state, or gsup is
// stopping), 413 (body too large) or 500.
//
// Client needs no setup beyond the socket's path; when nothing listens
// there its errors wrap ErrNoInstance.
//
// Socket paths longer than a sockaddr_un allows (107 bytes) are used
// relative to the working directory when that is short enough, else
// refused with a clear error.
package control
