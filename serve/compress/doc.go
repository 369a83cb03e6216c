// Package compress compresses the app's responses on their way to the
// client ([serve] compress, off by default as in nginx), and chooses a
// content coding from a request's Accept-Encoding (also for precompressed
// static files).
//
// A response is compressed when all of these hold: the client accepts
// one of the configured codings (q > 0), the request is not HEAD, the
// status is not 1xx, 204, 206 or 304, the app set no Content-Encoding
// and no Content-Range, its Cache-Control has no no-transform, its
// Content-Type is text-like (text/*, JSON, JavaScript, XML, SVG, ...)
// and its Content-Length is unknown (a stream) or at least MinLength.
// The response then loses its Content-Length, gets Content-Encoding and
// Vary: Accept-Encoding, and a strong ETag becomes weak (the bytes differ,
// the meaning does not). A response that is not compressed but could
// have been for another client still gets Vary: Accept-Encoding, so that
// caches keep the variants apart.
//
// Streams stay streams: each Flush of the wrapped writer flushes the
// encoder first, so that Server-Sent Events arrive as they are sent; a
// text/event-stream response is also flushed after every write.
//
// The writer depends only on http.ResponseWriter (and http.Flusher and
// Unwrap for streaming and hijacking through it): any connection layer
// can sit under it.
package compress
