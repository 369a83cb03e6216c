// Package static serves files from folders the way nginx does in front of
// an app: [serve] root is nginx's `root` + `try_files $uri @app` (a GET or
// HEAD naming a regular file under it is answered here, anything else goes
// on to the app), and each [serve.static] prefix is a URL prefix served
// only from its folder (a missing file is a 404 from gsup; the app never
// sees the request). A prefix marked internal answers only X-Accel-Redirect
// (an app's response header naming a file to send in its place), as
// nginx's `internal` locations do.
//
// # Never a byte outside the folder
//
// Each folder is opened once as an os.Root: every file is opened through
// it, so neither "..", nor a symlink whose target leaves the folder, can
// reach anything outside (the kernel-level checks of os.Root, not string
// tests). Before that, a request path is refused when it has an encoded
// slash (%2f) or backslash, a NUL or other control byte, a backslash, or a
// segment starting with '.' (dotfiles such as .env and .git, "." and "..";
// /.well-known/ excepted, for ACME and security.txt). Directories are
// served only through an index.html under a prefix, for a path ending in
// '/'. Under root, anything refused or missing goes to the app; under a
// prefix it is a 404. A symlink whose target stays inside the folder is
// followed, as nginx does: the folder's owner put it there, and the rules
// above apply to the URL, not to where the link points.
//
// # Responses
//
// Content-Type comes from the file's extension (application/octet-stream
// when unknown: never sniffed); ETag (nginx's: mtime and size in hex) and
// Last-Modified with 304 for If-None-Match and If-Modified-Since, Range
// with 206 and 416, and Cache-Control as configured per prefix, come
// through http.ServeContent. A precompressed sibling (name.br, name.zst,
// name.gz, as nginx's gzip_static) is sent instead, with Content-Encoding
// and its own ETag, when the client accepts its coding; a file with
// siblings always gets Vary: Accept-Encoding. Files go to the connection
// with sendfile when the writer under the handler can (io.ReaderFrom).
//
// # Open files
//
// Each folder keeps the files it served open, with their stat results and
// header values, for a second (see cache.go). A plain GET or HEAD for one
// of them costs no open, stat or close, and does not go through
// http.ServeContent: a file up to 32 KiB is read with one pread and
// written after the head, a larger one goes out with sendfile from an
// open file kept for it. Conditional and Range requests still go through
// http.ServeContent.
//
// The package depends only on http.ResponseWriter and *http.Request, so
// any connection layer can sit under it.
package static
