// Package upstream is the app-facing half of gsup's HTTP front: a balancer
// over the ready instances of the served process type, and a reverse proxy
// handler with its own pooled HTTP/1.1 client.
//
// # Why not httputil.ReverseProxy
//
// net/http's Transport hands every request between three goroutines
// (caller, readLoop, writeLoop); on one shared core that costs about a
// third more CPU per proxied request than this client, which does the whole
// exchange on the handler's goroutine: one write(2) for the request head and
// a buffered body, the response head parsed straight from the connection's
// bufio.Reader into the ResponseWriter's header map. Client aborts are
// watched with context.AfterFunc, not a goroutine. Only a streamed request
// body (larger than Options.BufferBody) gets a goroutine of its own, so that
// the upload and the response can overlap (full duplex), and an upgraded
// connection two, one per direction. ReverseProxy stays the reference
// behaviour in the tests; where this package differs on purpose, the tests
// say so (no sniffed Content-Type, the request target kept byte for byte,
// bytes sent with an upgrade request kept).
//
// # Balancer
//
// Instances are picked by fewest requests in flight, ties broken in turn.
// An instance whose connection was refused is passed over for a second
// unless no other is left. Remove takes an instance out of rotation at once;
// requests already on it finish, and Drain waits for them. A request in
// flight includes an upgraded (WebSocket) connection until it closes.
//
// # Connections
//
// Each instance has a LIFO stack of idle keep-alive connections (TCP or
// UNIX socket), closed after idleTimeout unused, which is kept below the 2 s
// keep-alive of Gunicorn's threaded workers. A request that cannot be
// replayed (not GET/HEAD/OPTIONS/TRACE, or with a body) first checks that
// its pooled connection has not been closed by the app. A request is tried
// on another connection only when nothing of it reached the app: the
// connection was refused, the request could not be written at all, or a
// reused connection failed before the first response byte for an idempotent
// request without a body.
//
// # Buffering
//
// Request bodies up to Options.BufferBody are read from the client before an
// instance is chosen (chunked ones too: they go on with a Content-Length), so
// a slow uploader holds no app instance. Responses with a Content-Length up
// to Options.BufferResponse are read from the app at full speed and the
// connection goes back to the pool before the client is written to.
// Anything else streams, flushed whenever the app has nothing more buffered:
// chunked or close-delimited responses, text/event-stream, long polls.
//
// # Failures
//
// No instance: 503 with Retry-After: 1. No response head within
// Options.Timeout: 504. Refused everywhere, a malformed head, a reset before
// the head: 502, logged at error level. A failure after the head went out
// cannot change the status: the client connection is cut (taken over and
// closed on HTTP/1, so ServeHTTP returns normally; elsewhere by a panic with
// http.ErrAbortHandler, as ReverseProxy does), and the Record keeps the
// status that was sent. A client that goes away cancels the upstream
// exchange (unless Options.IgnoreClientAbort), is recorded as 499 and logged
// at debug level.
package upstream
