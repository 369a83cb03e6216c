// Package errpage holds the pages gsup sends for the errors it produces
// itself ([serve] error_pages: 502 when the app failed, 503 when no
// instance is ready, 504 when it did not answer in time, 404 for a file
// missing under a static prefix, ...), as nginx's error_page does for its
// own. The files are read once, when the configuration is loaded: a page
// is served from memory and never depends on the disk at the moment
// things go wrong. An app's own error responses are never replaced.
package errpage

import (
	"fmt"
	"maps"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

type page struct {
	body        []byte
	contentType string
}

// Pages are the error pages by status. The zero value has none.
type Pages struct {
	pages map[int]page
}

// Load reads the files named by status; a file that cannot be read is an
// error naming it.
func Load(files map[int]string) (*Pages, error) {
	p := &Pages{pages: map[int]page{}}
	for _, code := range slices.Sorted(maps.Keys(files)) {
		body, err := os.ReadFile(files[code])
		if err != nil {
			return nil, fmt.Errorf("error page %d: %w", code, err)
		}
		ct := mime.TypeByExtension(filepath.Ext(files[code]))
		if ct == "" {
			ct = "text/html; charset=utf-8"
		}
		p.pages[code] = page{body: body, contentType: ct}
	}
	return p, nil
}

// Has says whether there is a page for code.
func (p *Pages) Has(code int) bool {
	if p == nil {
		return false
	}
	_, ok := p.pages[code]
	return ok
}

// Write answers with the page of code, over the header fields already set
// in w (Retry-After, Connection), and returns the body bytes written; it
// reports false, writing nothing, when there is no page for code.
func (p *Pages) Write(w http.ResponseWriter, r *http.Request, code int) (int64, bool) {
	if !p.Has(code) {
		return 0, false
	}
	pg := p.pages[code]
	h := w.Header()
	h.Set("Content-Type", pg.contentType)
	h.Set("Content-Length", strconv.Itoa(len(pg.body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	h.Del("Etag")
	h.Del("Last-Modified")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return 0, true
	}
	n, _ := w.Write(pg.body)
	return int64(n), true
}

// NotFound writes the 404 page, or a plain-text 404 when there is none.
func (p *Pages) NotFound(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.Write(w, r, http.StatusNotFound); !ok {
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}
