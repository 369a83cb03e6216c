package compress

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// MinLength is the smallest Content-Length worth compressing (nginx's
// gzip_min_length is 20; below about 1 KiB the coding's own framing eats
// most of the gain).
const MinLength = 1024

// Codings are the content codings gsup compresses with, by their
// Accept-Encoding names, in the order it prefers them.
var Codings = []string{"zstd", "br", "gzip"}

// Check returns an error naming the first coding of list that gsup does
// not know, or a coding named twice.
func Check(list []string) error {
	for i, c := range list {
		if !slices.Contains(Codings, c) {
			return fmt.Errorf("unknown coding %q (want %s)", c, strings.Join(Codings, ", "))
		}
		if slices.Contains(list[:i], c) {
			return fmt.Errorf("coding %q is named twice", c)
		}
	}
	return nil
}

// Negotiate returns the coding of offered (in order of preference) that
// the Accept-Encoding value accept takes with the highest q value, or ""
// when it takes none of them. "*" stands for the codings it does not
// name, "x-gzip" for gzip; names are case-insensitive.
func Negotiate(accept string, offered []string) string {
	if accept == "" || len(offered) == 0 {
		return ""
	}
	best, bestQ := "", 0.0
	for _, c := range offered {
		if q := acceptQ(accept, c); q > bestQ {
			best, bestQ = c, q
		}
	}
	return best
}

// acceptQ is the q value accept gives coding (0 = not acceptable).
func acceptQ(accept, coding string) float64 {
	named, star := -1.0, -1.0
	for part := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "x-gzip" {
			name = "gzip"
		}
		if name != coding && name != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				} else {
					q = 0
				}
			}
		}
		if name == "*" {
			star = max(star, q)
		} else {
			named = max(named, q)
		}
	}
	switch {
	case named >= 0:
		return named
	case star >= 0:
		return star
	}
	return 0
}

// encoder is what the three codings' writers have in common.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

// zstdEncoder adapts *zstd.Encoder, whose Reset takes no error back.
type zstdEncoder struct{ *zstd.Encoder }

func (z zstdEncoder) Reset(w io.Writer) { z.Encoder.Reset(w) }

// Levels: fast ones, as the response is compressed while the client waits
// (nginx's gzip_comp_level is 1; brotli and zstd at these levels beat
// gzip -6 on size at a fraction of its time).
var pools = map[string]*sync.Pool{
	"gzip": {New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, 5)
		return w
	}},
	"br": {New: func() any { return brotli.NewWriterLevel(io.Discard, 4) }},
	"zstd": {New: func() any {
		w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		return zstdEncoder{w}
	}},
}

func getEncoder(coding string, dst io.Writer) encoder {
	e := pools[coding].Get().(encoder)
	e.Reset(dst)
	return e
}

// Compressor wraps response writers; the zero value compresses nothing.
type Compressor struct {
	codings []string
}

// New returns a Compressor using codings, in order of preference; an
// unknown coding is an error.
func New(codings []string) (*Compressor, error) {
	if err := Check(codings); err != nil {
		return nil, err
	}
	return &Compressor{codings: slices.Clone(codings)}, nil
}

// Enabled says whether any coding is configured.
func (c *Compressor) Enabled() bool { return c != nil && len(c.codings) > 0 }

// Wrap returns a writer that compresses the response to r written
// through it, when it qualifies (see the package documentation). The
// caller must call Close once the response is complete.
func (c *Compressor) Wrap(w http.ResponseWriter, r *http.Request) *Writer {
	cw := &Writer{ResponseWriter: w}
	if !c.Enabled() || r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		cw.decided = true
		return cw
	}
	cw.coding = Negotiate(r.Header.Get("Accept-Encoding"), c.codings)
	cw.offered = true
	return cw
}

// Writer is a response writer that compresses what is written through it
// when the response qualifies.
type Writer struct {
	http.ResponseWriter
	coding  string // negotiated; "" = the client takes none
	offered bool   // compression was possible for this request's method
	decided bool   // the final head went out
	enc     encoder
	sse     bool
}

// Coding is the content coding applied, or "" when none is.
func (w *Writer) Coding() string {
	if w.enc == nil {
		return ""
	}
	return w.coding
}

// WriteHeader decides, on the final status, whether to compress.
func (w *Writer) WriteHeader(code int) {
	if code < 200 || w.decided {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.decided = true
	h := w.ResponseWriter.Header()
	if w.offered && eligible(code, h) {
		AddVary(h)
		if w.coding != "" {
			h.Del("Content-Length")
			h.Set("Content-Encoding", w.coding)
			if et := h.Get("Etag"); strings.HasPrefix(et, `"`) {
				h.Set("Etag", "W/"+et)
			}
			w.sse = mediaType(h.Get("Content-Type")) == "text/event-stream"
			w.enc = getEncoder(w.coding, w.ResponseWriter)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(p []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc == nil {
		return w.ResponseWriter.Write(p)
	}
	n, err := w.enc.Write(p)
	if err == nil && w.sse {
		err = w.enc.Flush()
	}
	return n, err
}

// Flush sends what the encoder holds, then flushes the writer under it.
func (w *Writer) Flush() {
	if w.enc != nil {
		if w.enc.Flush() != nil {
			return
		}
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer under this one.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Close ends the compressed body, if any, and returns the encoder to its
// pool. The writer must not be used after.
func (w *Writer) Close() error {
	if w.enc == nil {
		return nil
	}
	err := w.enc.Close()
	w.enc.Reset(io.Discard)
	pools[w.coding].Put(w.enc)
	w.enc = nil
	return err
}

// eligible says whether a response with this status and header may be
// compressed at all (whatever the client accepts).
func eligible(code int, h http.Header) bool {
	switch code {
	case http.StatusNoContent, http.StatusPartialContent, http.StatusNotModified:
		return false
	}
	if h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" || !textLike(h.Get("Content-Type")) {
		return false
	}
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-transform") {
				return false
			}
		}
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < MinLength {
			return false
		}
	}
	return true
}

// AddVary adds Accept-Encoding to Vary unless it is there (or is "*").
func AddVary(h http.Header) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return
			}
		}
	}
	h.Add("Vary", "Accept-Encoding")
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// textLike says whether a Content-Type is worth compressing: text, and
// the structured text formats of the web. Images, audio, video, fonts in
// WOFF and archives are compressed already.
func textLike(ct string) bool {
	mt := mediaType(ct)
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/ecmascript", "application/x-javascript",
		"application/xml", "application/xhtml+xml", "application/rss+xml", "application/atom+xml",
		"application/ld+json", "application/manifest+json", "application/graphql-response+json",
		"application/wasm", "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon",
		"font/ttf", "font/otf", "application/vnd.ms-fontobject":
		return true
	}
	return strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")
}
