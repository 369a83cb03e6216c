package static

import "net/http"

// Accel returns a writer for the app's response to r that honours
// X-Accel-Redirect: when the final response head carries one, the file it
// names is sent to raw (with the app's other header fields) instead of the
// app's body, which is then dropped; any other response goes to next.
// raw is the writer under next, so that files skip whatever next does to
// the app's responses (compression) and can still go out with sendfile.
func (f *Files) Accel(next, raw http.ResponseWriter, r *http.Request) *AccelWriter {
	return &AccelWriter{ResponseWriter: next, raw: raw, f: f, r: r}
}

// AccelWriter is the writer Accel returns.
type AccelWriter struct {
	http.ResponseWriter
	raw        http.ResponseWriter
	f          *Files
	r          *http.Request
	decided    bool
	redirected bool
}

// WriteHeader sends the file instead when the final head asks for it.
func (a *AccelWriter) WriteHeader(code int) {
	if code >= 200 && !a.decided {
		a.decided = true
		if uri := a.Header().Get("X-Accel-Redirect"); uri != "" {
			a.redirected = true
			a.f.ServeRedirect(a.raw, a.r, uri)
			return
		}
	}
	if !a.redirected {
		a.ResponseWriter.WriteHeader(code)
	}
}

// Write drops the app's body after a redirect.
func (a *AccelWriter) Write(p []byte) (int, error) {
	if !a.decided {
		a.WriteHeader(http.StatusOK)
	}
	if a.redirected {
		return len(p), nil
	}
	return a.ResponseWriter.Write(p)
}

// Redirected says whether a file was sent in place of the app's response.
func (a *AccelWriter) Redirected() bool { return a.redirected }

// Flush flushes the app's response (a file sent in its place is complete).
func (a *AccelWriter) Flush() {
	if !a.redirected {
		http.NewResponseController(a.ResponseWriter).Flush()
	}
}

// Unwrap gives http.ResponseController the writer under this one.
func (a *AccelWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }
