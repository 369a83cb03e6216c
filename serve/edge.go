package serve

import (
	"fmt"
	"io"
	"net/http"

	"gsup/procfile"
	"gsup/serve/compress"
	"gsup/serve/errpage"
	"gsup/serve/static"
	"gsup/serve/upstream"
)

// edge is what the front does around the proxy when the settings ask for
// it: static files before the app, X-Accel-Redirect and compression on
// the app's responses, error pages for gsup's own errors. Each part is an
// http.ResponseWriter-level component of its own package.
type edge struct {
	files *static.Files        // nil = no static folder
	comp  *compress.Compressor // nil = no compression
	pages *errpage.Pages       // nil = no error page
}

// newEdge opens the folders and reads the pages the settings name.
func newEdge(set procfile.Serve) (*edge, error) {
	e := &edge{}
	if len(set.ErrorPages) > 0 {
		p, err := errpage.Load(set.ErrorPages)
		if err != nil {
			return nil, fmt.Errorf("error_pages: %w", err)
		}
		e.pages = p
	}
	if set.Root != "" || len(set.Static) > 0 {
		o := static.Options{Root: set.Root, NotFound: e.pages.NotFound}
		for _, d := range set.Static {
			o.Dirs = append(o.Dirs, static.Dir{Prefix: d.Prefix, Path: d.Dir, Internal: d.Internal, CacheControl: d.CacheControl})
		}
		f, err := static.New(o)
		if err != nil {
			return nil, err
		}
		e.files = f
	}
	if len(set.Compress) > 0 {
		c, err := compress.New(set.Compress)
		if err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
		e.comp = c
	}
	return e, nil
}

// errorPage is the proxy's ErrorPage option.
func (e *edge) errorPage(w http.ResponseWriter, r *http.Request, code int) (int64, bool) {
	return e.pages.Write(w, r, code)
}

// enabled says whether the edge does anything.
func (e *edge) enabled() bool { return e.files.Enabled() || e.comp.Enabled() }

// close closes the static folders.
func (e *edge) close() {
	if e.files != nil {
		e.files.Close()
	}
}

// serveApp answers r from the static folders, or through the proxy with
// X-Accel-Redirect and compression around it; rec gets the status and
// the body bytes the client was sent, for the access log.
func (f *handling) serveApp(w http.ResponseWriter, r *http.Request, rec *upstream.Record) {
	e := f.edge
	if !e.enabled() {
		f.proxy.Serve(w, r, rec)
		return
	}
	cw := &counter{ResponseWriter: w}
	if e.files.Serve(cw, r) {
		rec.Status, rec.BytesSent = cw.status, cw.n
		if cw.cut {
			rec.Status, rec.ClientAbort = 499, true // the client went away, as the proxy records it
		}
		return
	}
	var pw http.ResponseWriter = cw
	var zw *compress.Writer
	if e.comp.Enabled() {
		zw = e.comp.Wrap(cw, r)
		pw = zw
	}
	if e.files.Enabled() {
		pw = e.files.Accel(pw, cw, r)
	}
	f.proxy.Serve(pw, r, rec)
	if zw != nil {
		zw.Close()
	}
	if cw.status != 0 && !rec.ClientAbort {
		rec.Status = cw.status // a file sent for X-Accel-Redirect
	}
	rec.BytesSent = cw.n
}

// counter notes the final status and the body bytes of a response, and
// whether writing to the client failed (cut); it passes files on to the
// connection's ReadFrom, so sendfile still works.
type counter struct {
	http.ResponseWriter
	status int
	n      int64
	cut    bool
}

func (c *counter) WriteHeader(code int) {
	if code >= 200 && c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *counter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	c.cut = c.cut || err != nil
	return n, err
}

func (c *counter) ReadFrom(src io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, src)
	}
	c.n += n
	c.cut = c.cut || err != nil
	return n, err
}

func (c *counter) Flush() { http.NewResponseController(c.ResponseWriter).Flush() }

func (c *counter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
