package static

import (
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"sync"
	"time"
)

// The open-file cache, nginx's open_file_cache: a folder keeps the files
// it served open, with their stat results and the header values made
// from them, for cacheValid; after that the next request for the name
// checks it again with a stat through the folder's os.Root and keeps the
// entry only when it names the same file (device and inode), with the
// same size and modification time. Names that are missing or not regular
// files are remembered for the same time. A file replaced by rename is
// served whole, old or new, never a mix: an entry holds the old file
// open until its last request is done. At most cacheMax names per
// folder; when full, some are dropped at random.
const (
	cacheValid = time.Second
	cacheMax   = 512
	idleOpens  = 2
)

// errNotServed is a name the cache remembers as missing or not a regular file.
var errNotServed = errors.New("missing or not a regular file")

// openFile is a cache entry: an open regular file, or a name that is not one.
type openFile struct {
	file    *os.File // nil: not served
	fi      fs.FileInfo
	checked time.Time
	refs    int  // requests using file
	dropped bool // out of the cache: file is closed when refs drops to 0
	// more opens of the file, for sendfile (which moves the offset: one
	// request at a time each), at most idleOpens
	idle []*os.File

	// header values, each a one-element slice shared by the responses
	// (header maps replace values, never change them in place); lastMod
	// is nil for a file without a modification time
	ctype, etag, lastMod, length []string
}

// fileCache is a folder's open-file cache.
type fileCache struct {
	mu sync.Mutex
	m  map[string]*openFile
}

// get returns the open file name under root, which the caller gives back
// with put, or an error when it is not one to serve.
func (c *fileCache) get(root *os.Root, name string) (*openFile, error) {
	now := time.Now()
	c.mu.Lock()
	e := c.m[name]
	if e != nil && now.Sub(e.checked) < cacheValid {
		defer c.mu.Unlock()
		if e.file == nil {
			return nil, errNotServed
		}
		e.refs++
		return e, nil
	}
	c.mu.Unlock()
	if e != nil && e.file != nil {
		if fi, err := root.Stat(name); err == nil && os.SameFile(fi, e.fi) && fi.Size() == e.fi.Size() && fi.ModTime().Equal(e.fi.ModTime()) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !e.dropped {
				e.checked = now
				e.refs++
				return e, nil
			}
		}
	}
	file, fi, err := openRegular(root, name)
	ne := &openFile{checked: now}
	if err == nil {
		ne.file, ne.fi = file, fi
		ne.headers(name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[name]; old != nil {
		c.drop(name, old)
	}
	if len(c.m) >= cacheMax {
		n := 0
		for k, v := range c.m { // map order: random enough
			c.drop(k, v)
			if n++; n == cacheMax/8 {
				break
			}
		}
	}
	if c.m == nil {
		c.m = make(map[string]*openFile)
	}
	c.m[name] = ne
	if err != nil {
		return nil, err
	}
	ne.refs++
	return ne, nil
}

// put gives back a file get returned.
func (c *fileCache) put(e *openFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.dropped && e.refs == 0 {
		e.file.Close()
	}
}

// drop takes e out of the cache (c.mu held).
func (c *fileCache) drop(name string, e *openFile) {
	delete(c.m, name)
	e.dropped = true
	if e.file != nil && e.refs == 0 {
		e.file.Close()
	}
	for _, f := range e.idle {
		f.Close()
	}
	e.idle = nil
}

// own returns a file of e's own, at offset 0, opened again under root
// when no idle one is left; the caller gives it back with disown.
func (c *fileCache) own(root *os.Root, name string, e *openFile) (*os.File, error) {
	c.mu.Lock()
	var f *os.File
	if n := len(e.idle); n > 0 {
		f, e.idle = e.idle[n-1], e.idle[:n-1]
	}
	c.mu.Unlock()
	if f != nil {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			return f, nil
		}
		f.Close()
	}
	f, fi, err := openRegular(root, name)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, e.fi) || fi.Size() != e.fi.Size() || !fi.ModTime().Equal(e.fi.ModTime()) {
		f.Close()
		return nil, errors.New("changed since cached")
	}
	return f, nil
}

// disown gives back a file own returned.
func (c *fileCache) disown(e *openFile, f *os.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.dropped || len(e.idle) >= idleOpens {
		f.Close()
		return
	}
	e.idle = append(e.idle, f)
}

// close drops every entry; files in use are closed when their requests end.
func (c *fileCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		c.drop(k, v)
	}
}

// headers works out the header values of e, the file name names.
func (e *openFile) headers(name string) {
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	e.ctype = []string{ct}
	e.etag = []string{etag(e.fi)}
	if mt := e.fi.ModTime(); !mt.IsZero() && !mt.Equal(time.Unix(0, 0)) {
		e.lastMod = []string{mt.UTC().Format(http.TimeFormat)}
	}
	e.length = []string{strconv.FormatInt(e.fi.Size(), 10)}
}

// etag is nginx's ETag of a file: mtime and size in hex.
func etag(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.ModTime().Unix(), 16) + "-" + strconv.FormatInt(fi.Size(), 16) + `"`
}
