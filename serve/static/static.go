package static

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"gsup/serve/compress"
)

// Dir is a folder served under a URL prefix.
type Dir struct {
	Prefix       string // URL prefix, starting and ending with '/' ("/static/")
	Path         string // folder
	Internal     bool   // only X-Accel-Redirect reaches it
	CacheControl string // Cache-Control of its files; "" = none
}

// Options say what a Files serves.
type Options struct {
	Root string // folder tried before the app for GET and HEAD; "" = none
	Dirs []Dir
	// NotFound writes gsup's 404 (an error page); nil = a plain-text one.
	NotFound func(w http.ResponseWriter, r *http.Request)
}

// folder is an open Dir.
type folder struct {
	Dir
	root  *os.Root
	cache fileCache
}

// Files serves the folders of Options. Create with New.
type Files struct {
	root     *folder   // nil = no root
	dirs     []*folder // longest prefix first
	notFound func(w http.ResponseWriter, r *http.Request)
}

// New opens the folders; one that cannot be opened is an error naming it.
func New(o Options) (*Files, error) {
	f := &Files{notFound: o.NotFound}
	if f.notFound == nil {
		f.notFound = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "404 page not found", http.StatusNotFound)
		}
	}
	open := func(d Dir) (*folder, error) {
		r, err := os.OpenRoot(d.Path)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("static folder: %w", err)
		}
		return &folder{Dir: d, root: r}, nil
	}
	if o.Root != "" {
		fo, err := open(Dir{Prefix: "/", Path: o.Root})
		if err != nil {
			return nil, err
		}
		f.root = fo
	}
	for _, d := range o.Dirs {
		fo, err := open(d)
		if err != nil {
			return nil, err
		}
		f.dirs = append(f.dirs, fo)
	}
	slices.SortStableFunc(f.dirs, func(a, b *folder) int { return len(b.Prefix) - len(a.Prefix) })
	return f, nil
}

// Close closes the folders.
func (f *Files) Close() error {
	var errs []error
	for _, fo := range append(f.dirs, f.root) {
		if fo != nil {
			fo.cache.close()
			errs = append(errs, fo.root.Close())
		}
	}
	return errors.Join(errs...)
}

// Enabled says whether any folder is served.
func (f *Files) Enabled() bool { return f != nil && (f.root != nil || len(f.dirs) > 0) }

// prefixed returns the folder whose prefix starts p, or nil.
func (f *Files) prefixed(p string) *folder {
	for _, fo := range f.dirs {
		if strings.HasPrefix(p, fo.Prefix) {
			return fo
		}
	}
	return nil
}

// Serve answers r when it is the folders' to answer: any request under a
// prefix (a 404 when its file is missing or refused, a 405 for methods
// other than GET and HEAD), and a GET or HEAD naming a regular file under
// root. It reports whether it answered; when not, the request is the
// app's.
func (f *Files) Serve(w http.ResponseWriter, r *http.Request) bool {
	if !f.Enabled() {
		return false
	}
	if fo := f.prefixed(r.URL.Path); fo != nil {
		switch {
		case fo.Internal:
			f.notFound(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		default:
			f.serveFrom(w, r, fo, r.URL)
		}
		return true
	}
	if f.root == nil || r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	name, ok := relName(r.URL, "/", false)
	if !ok {
		return false
	}
	e, err := f.root.cache.get(f.root.root, name)
	if err != nil {
		return false
	}
	defer f.root.cache.put(e)
	f.root.send(w, r, e, name)
	return true
}

// serveFrom serves the file u names under fo, or gsup's 404.
func (f *Files) serveFrom(w http.ResponseWriter, r *http.Request, fo *folder, u *url.URL) {
	name, ok := relName(u, fo.Prefix, true)
	if !ok {
		f.notFound(w, r)
		return
	}
	e, err := fo.cache.get(fo.root, name)
	if err != nil {
		f.notFound(w, r)
		return
	}
	defer fo.cache.put(e)
	fo.send(w, r, e, name)
}

// ServeRedirect answers r with the file uri names (an X-Accel-Redirect
// value: a path under one of the prefixes, internal or not, percent-encoded
// as a URL path), keeping the header fields already in w except those that
// describe the app's body. The client's conditional and Range fields apply
// to the file.
func (f *Files) ServeRedirect(w http.ResponseWriter, r *http.Request, uri string) {
	h := w.Header()
	for _, k := range []string{"X-Accel-Redirect", "X-Accel-Buffering", "X-Accel-Charset", "X-Accel-Expires", "X-Accel-Limit-Rate",
		"Content-Length", "Content-Encoding", "Content-Range", "Etag", "Last-Modified", "Accept-Ranges", "Transfer-Encoding"} {
		delete(h, k)
	}
	if ct := h["Content-Type"]; len(ct) == 0 || ct[0] == "" {
		delete(h, "Content-Type") // the app did not say: by extension
	}
	u, err := url.Parse(uri)
	var fo *folder
	if err == nil {
		fo = f.prefixed(u.Path)
	}
	if fo == nil {
		f.notFound(w, r)
		return
	}
	r2 := *r
	if r.Method != http.MethodHead {
		r2.Method = http.MethodGet
	}
	f.serveFrom(w, &r2, fo, u)
}

// relName returns the file name, relative to a folder, that u's path
// names under prefix, or false when the path must be refused (see the
// package documentation). With dirIndex, a path ending in '/' names the
// index.html of that directory.
func relName(u *url.URL, prefix string, dirIndex bool) (string, bool) {
	p, ok := strings.CutPrefix(u.Path, prefix)
	if !ok {
		return "", false
	}
	if raw := strings.ToLower(u.EscapedPath()); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	if p == "" || strings.HasSuffix(p, "/") {
		if !dirIndex {
			return "", false
		}
		p += "index.html"
	}
	for i, seg := range strings.Split(p, "/") {
		if seg == "" || seg[0] == '.' && !(i == 0 && seg == ".well-known") {
			return "", false
		}
	}
	return p, true
}

// openRegular opens name under root when it is a regular file (after
// symlinks that stay inside root).
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	file, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := file.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", name)
	}
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	return file, fi, nil
}

// siblings are the precompressed files' extensions by coding.
var siblings = map[string]string{"zstd": ".zst", "br": ".br", "gzip": ".gz"}

// send answers r with e (named name under fo), or with a precompressed
// sibling the client accepts.
func (fo *folder) send(w http.ResponseWriter, r *http.Request, e *openFile, name string) {
	h := w.Header()
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = e.ctype
	}
	if fo.CacheControl != "" && h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", fo.CacheControl)
	}
	if accept := r.Header.Get("Accept-Encoding"); accept != "" {
		offered := slices.Clone(compress.Codings)
		for {
			coding := compress.Negotiate(accept, offered)
			if coding == "" {
				break
			}
			offered = slices.DeleteFunc(offered, func(c string) bool { return c == coding })
			z, err := fo.cache.get(fo.root, name+siblings[coding])
			if err != nil {
				continue
			}
			defer fo.cache.put(z)
			compress.AddVary(h)
			h.Set("Content-Encoding", coding)
			e, name = z, name+siblings[coding]
			break
		}
	}
	h["Etag"] = e.etag
	if plain(r) && fo.sendWhole(w, r, e, name) {
		return
	}
	// Conditional and Range requests, through http.ServeContent: a small
	// file read from the cached one with pread, a larger one from a file
	// of its own (its offset moves) so that it goes out with sendfile.
	var content io.ReadSeeker = io.NewSectionReader(e.file, 0, e.fi.Size())
	if e.fi.Size() > smallFile {
		if file, err := fo.cache.own(fo.root, name, e); err == nil {
			defer fo.cache.disown(e, file)
			content = file
		}
	}
	http.ServeContent(w, r, "", e.fi.ModTime(), content)
}

// smallFile is the size up to which a file is read into memory (pread on
// the cached file) rather than sent with sendfile.
const smallFile = 32 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}

var acceptRanges = []string{"bytes"}

// plain reports whether r asks for the whole file, unconditionally: the
// answer is always 200 with the file.
func plain(r *http.Request) bool {
	for _, k := range []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	return true
}

// sendWhole answers r with the whole file e, as http.ServeContent would
// (same header fields) without its seeks: a small file is read from the
// cached file into memory, a larger one sent with sendfile from an open
// file of its own (sendfile moves the offset). It reports false,
// having written nothing, when the file changed under the cache.
func (fo *folder) sendWhole(w http.ResponseWriter, r *http.Request, e *openFile, name string) bool {
	size := e.fi.Size()
	var buf *[]byte
	var file *os.File
	if r.Method != http.MethodHead {
		if size <= smallFile {
			buf = smallBufs.Get().(*[]byte)
			defer smallBufs.Put(buf)
			if n, _ := e.file.ReadAt((*buf)[:size], 0); int64(n) != size {
				return false
			}
		} else {
			f, err := fo.cache.own(fo.root, name, e)
			if err != nil {
				return false
			}
			defer fo.cache.disown(e, f)
			file = f
		}
	}
	h := w.Header()
	if e.lastMod != nil {
		h["Last-Modified"] = e.lastMod
	}
	h["Accept-Ranges"] = acceptRanges
	if _, ok := h["Content-Encoding"]; !ok {
		h["Content-Length"] = e.length
	}
	w.WriteHeader(http.StatusOK)
	switch {
	case buf != nil:
		w.Write((*buf)[:size])
	case file != nil:
		// The head goes out first, so that net/http's ReadFrom hands the
		// whole file to sendfile (it reads the first 512 bytes itself
		// while the head is still unsent).
		http.NewResponseController(w).Flush()
		io.CopyN(w, file, size) // the writer's ReadFrom: sendfile
	}
	return true
}
