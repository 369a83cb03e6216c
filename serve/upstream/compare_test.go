package upstream

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// echoApp answers with what it received: method, target, Host, the header
// fields, and the body's length and hash.
var echoApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\nHost: %s\n", r.Method, r.RequestURI, r.Proto, r.Host)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "Content-Length", "Transfer-Encoding", "X-Forwarded-For", "Accept-Encoding":
			// Framing may differ (small chunked bodies are buffered and
			// sent with a length); forwarding is up to Forward.
			continue
		}
		fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
	}
	sum := sha256.Sum256(body)
	fmt.Fprintf(&b, "body: %d %s\n", len(body), hex.EncodeToString(sum[:8]))
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, b.String())
})

// apps are the behaviours both fronts are compared on.
var apps = map[string]http.HandlerFunc{
	"/echo": echoApp,
	"/hello": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "6")
		w.Write(helloBody)
	},
	"/headers": func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/")
		h.Set("X-Multi", "one")
		h.Add("X-Multi", "two")
		h.Set("Cache-Control", "no-store")
		h.Set("Server", "app/1.0")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "created\n")
	},
	"/hop": func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop, keep-alive")
		h.Set("X-Hop", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "foo")
		h.Set("X-Keep", "1")
		io.WriteString(w, "hop\n")
	},
	"/chunked": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := range 40 {
			w.Write(bytes.Repeat([]byte{byte('a' + i%26)}, 1000))
			w.(http.Flusher).Flush()
		}
	},
	"/big": func(w http.ResponseWriter, r *http.Request) {
		body := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	},
	"/medium": func(w http.ResponseWriter, r *http.Request) {
		body := bytes.Repeat([]byte("x"), 300<<10)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	},
	"/empty": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "0")
	},
	"/204": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "1")
		w.WriteHeader(http.StatusNoContent)
	},
	"/304": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	},
	"/500": func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	},
	"/trailers": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum, X-Count")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "body with trailers\n")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set("X-Count", "3")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "late")
	},
	"/early-hints": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html></html>\n")
	},
	"/sse": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	},
	"/head": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		if r.Method != http.MethodHead {
			io.WriteString(w, "hello")
		}
	},
	"/raw-close":  rawResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Raw: 1\r\n\r\nread until close\n"),
	"/raw-http10": rawResponse("HTTP/1.0 200 OK\r\nContent-Length: 6\r\nX-Old: yes\r\n\r\nold!\r\n"),
	"/raw-lf":     rawResponse("HTTP/1.1 202 Accepted\nContent-Length: 3\nX-Bare-Lf: 1\n\nabc"),
	"/raw-lowercase": rawResponse("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-lower-case: v\r\n" +
		"content-length: 2\r\nconnection: close\r\n\r\nok"),
	"/raw-chunk-ext": rawResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;name=value\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
	"/raw-no-reason": rawResponse("HTTP/1.1 299\r\nContent-Length: 0\r\n\r\n"),
	"/raw-te-and-cl": rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\nabc\r\n0\r\n\r\n"),
}

// rawResponse writes resp as it is on the connection, then closes it.
func rawResponse(resp string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer c.Close()
		brw.WriteString(resp)
		brw.Flush()
	}
}

func appMux() *http.ServeMux {
	mux := http.NewServeMux()
	for path, h := range apps {
		mux.Handle(path, h)
	}
	return mux
}

// exchangeResult is what a client saw.
type exchangeResult struct {
	Status    int
	Header    http.Header
	Body      string
	Trailer   http.Header
	Interim   []string // 1xx responses: "103 Link=..."
	Err       string
	BodyBytes int
}

func (r exchangeResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %d err %q interim %q bodylen %d\n", r.Status, r.Err, r.Interim, r.BodyBytes)
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		fmt.Fprintf(&b, "  %s: %q\n", k, r.Header[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Trailer)) {
		fmt.Fprintf(&b, "  trailer %s: %q\n", k, r.Trailer[k])
	}
	if len(r.Body) < 2000 {
		fmt.Fprintf(&b, "  body %q\n", r.Body)
	}
	return b.String()
}

type testRequest struct {
	name    string
	method  string
	path    string
	header  map[string]string
	body    string
	chunked bool // send the body without a length
	// streamed: the app sends no length. A front may send the body
	// chunked or, if it has it all before net/http's buffer fills, with a
	// length.
	streamed bool
	// untyped: the app sends no Content-Type. ReverseProxy lets net/http
	// sniff one from the body (or not: it depends on when its first flush
	// happens); gsup adds none (TestNoSniffedContentType).
	untyped bool
}

func (tr testRequest) do(t *testing.T, c *http.Client, base string) exchangeResult {
	t.Helper()
	var body io.Reader
	if tr.body != "" {
		body = strings.NewReader(tr.body)
		if tr.chunked {
			body = io.MultiReader(body) // hides the length
		}
	}
	req, err := http.NewRequest(tr.method, base+tr.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tr.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	var res exchangeResult
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		res.Interim = append(res.Interim, fmt.Sprintf("%d %v", code, h))
		return nil
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := c.Do(req)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		res.Err = "body: " + err.Error()
	}
	res.Status, res.Header, res.Trailer, res.BodyBytes = resp.StatusCode, resp.Header, resp.Trailer, len(b)
	res.Body = string(b)
	if len(b) > 2000 {
		sum := sha256.Sum256(b)
		res.Body = hex.EncodeToString(sum[:])
	}
	res.Header.Del("Date")
	return res
}

var compareRequests = []testRequest{
	{name: "hello", method: "GET", path: "/hello"},
	{name: "headers", method: "GET", path: "/headers"},
	{name: "hop-by-hop response fields", method: "GET", path: "/hop"},
	{name: "chunked response", streamed: true, method: "GET", path: "/chunked"},
	{name: "big response", method: "GET", path: "/big"},
	{name: "medium response", method: "GET", path: "/medium"},
	{name: "empty", method: "GET", path: "/empty"},
	{name: "204", method: "GET", path: "/204"},
	{name: "304", method: "GET", path: "/304"},
	{name: "500", method: "GET", path: "/500"},
	{name: "trailers", streamed: true, method: "GET", path: "/trailers", header: map[string]string{"Te": "trailers"}},
	{name: "103 early hints", method: "GET", path: "/early-hints"},
	{name: "sse", streamed: true, method: "GET", path: "/sse"},
	{name: "head", method: "HEAD", path: "/head"},
	{name: "get head", method: "GET", path: "/head"},
	{name: "close-delimited", streamed: true, method: "GET", path: "/raw-close"},
	{name: "http/1.0 response", untyped: true, method: "GET", path: "/raw-http10"},
	{name: "bare LF head", untyped: true, method: "GET", path: "/raw-lf"},
	{name: "lower-case names", method: "GET", path: "/raw-lowercase"},
	{name: "chunk extension and trailer", streamed: true, untyped: true, method: "GET", path: "/raw-chunk-ext"},
	{name: "no reason phrase", method: "GET", path: "/raw-no-reason"},
	{name: "TE and CL", streamed: true, untyped: true, method: "GET", path: "/raw-te-and-cl"},
	{name: "not found", method: "GET", path: "/nope"},
	{name: "echo get", method: "GET", path: "/echo?a=1&b=%20x&c", header: map[string]string{
		"X-Custom": "v", "User-Agent": "test/1", "Accept": "*/*", "Cookie": "k=v",
	}},
	{name: "echo odd target", method: "GET", path: "/echo/a%2Fb/./c/../d?x=%2F&y="},
	{name: "echo host", method: "GET", path: "/echo", header: map[string]string{"Host": "app.example:8443"}},
	{name: "echo hop-by-hop request fields", method: "GET", path: "/echo", header: map[string]string{
		"Connection": "X-Foo, keep-alive", "X-Foo": "drop me", "X-Bar": "keep me", "Keep-Alive": "300",
		"Te": "trailers, deflate", "Proxy-Authorization": "Basic Zm9v", "Proxy-Connection": "keep-alive",
		"Upgrade": "h2c",
	}},
	{name: "echo forwarded fields", method: "GET", path: "/echo", header: map[string]string{
		"X-Forwarded-Host": "evil", "X-Forwarded-Proto": "https", "Forwarded": "for=1.2.3.4",
	}},
	{name: "echo post", method: "POST", path: "/echo", body: strings.Repeat("p", 1000),
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
	{name: "echo post empty", method: "POST", path: "/echo"},
	{name: "echo put chunked", method: "PUT", path: "/echo", body: strings.Repeat("c", 5000), chunked: true},
	{name: "echo post big", method: "POST", path: "/echo", body: strings.Repeat("B", 3<<20)},
	{name: "echo post big chunked", method: "POST", path: "/echo", body: strings.Repeat("C", 3<<20), chunked: true},
	{name: "echo delete", method: "DELETE", path: "/echo"},
	{name: "echo options star", method: "OPTIONS", path: "/echo"},
	{name: "echo patch", method: "PATCH", path: "/echo", body: "{}"},
}

// TestCompareWithReverseProxy sends the same requests through gsup's proxy
// and through httputil.ReverseProxy, to the same apps, and expects the same
// status, fields (hop-by-hop ones aside), body, trailers and 1xx responses.
func TestCompareWithReverseProxy(t *testing.T) {
	for _, transport := range []string{"tcp", "unix"} {
		t.Run(transport, func(t *testing.T) {
			var addr string
			if transport == "tcp" {
				addr = startBackend(t, appMux())
			} else {
				addr = startUnixBackend(t, appMux())
			}
			gsup, _ := gsupFront(t, Options{}, addr)
			ref := refFront(t, addr)
			c := client(t)
			for _, tr := range compareRequests {
				t.Run(tr.name, func(t *testing.T) {
					want := tr.do(t, c, ref.URL)
					ref.record(t)
					got := tr.do(t, c, gsup.URL)
					rec := gsup.record(t)
					if want.Err != "" || got.Err != "" {
						t.Errorf("errors: reverseproxy %q, gsup %q", want.Err, got.Err)
					}
					normalizeResult(&want, tr)
					normalizeResult(&got, tr)
					if got.String() != want.String() {
						t.Errorf("differs\ngsup:\n%s\nreverseproxy:\n%s", got, want)
					}
					if rec.Status != got.Status || rec.ClientAbort || rec.Upstream != addr {
						t.Errorf("record %+v, response status %d", rec, got.Status)
					}
					if tr.method != "HEAD" && rec.BytesSent != int64(got.BodyBytes) {
						t.Errorf("record BytesSent %d, client got %d", rec.BytesSent, got.BodyBytes)
					}
				})
			}
		})
	}
}

var hostLine = regexp.MustCompile(`Host: 127\.0\.0\.1:\d+`)

// normalizeResult drops what legitimately differs between the fronts.
func normalizeResult(r *exchangeResult, tr testRequest) {
	if tr.streamed {
		r.Header.Del("Content-Length")
	}
	if tr.untyped {
		r.Header.Del("Content-Type")
	}
	// The echo shows the app's view of the Host of the front it came
	// through; the fronts listen on different ports.
	r.Body = hostLine.ReplaceAllString(r.Body, "Host: 127.0.0.1:PORT")
	if r.Header.Get("Content-Type") == "text/plain" && r.Header.Get("Content-Length") != "" {
		if n := len(r.Body); n < 2000 {
			r.Header.Set("Content-Length", strconv.Itoa(n))
		}
	}
	// ReverseProxy rebuilds the Trailer declaration from the trailer
	// names, in map order; compare the set.
	if v := r.Header.Values("Trailer"); len(v) > 0 {
		var names []string
		for _, s := range v {
			for n := range strings.SplitSeq(s, ",") {
				names = append(names, textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(n)))
			}
		}
		sort.Strings(names)
		r.Header["Trailer"] = []string{strings.Join(names, ",")}
	}
}

// TestRequestTargetUnchanged checks that the request target goes through
// byte for byte, where ReverseProxy would clean up the query.
func TestRequestTargetUnchanged(t *testing.T) {
	got := make(chan string, 1)
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Host + " " + r.RequestURI
	}))
	f, _ := gsupFront(t, Options{}, addr)
	// (OPTIONS * never reaches a handler: net/http answers it.)
	for _, target := range []string{"/a%2fb/./c?q=%zz;x=1&&y", "/%7Euser?%", "//x//y"} {
		method := "GET"
		c, err := net.Dial("tcp", f.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: Example.COM:99\r\n\r\n", method, target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "Example.COM:99 " + target; resp.StatusCode != 200 || waitFor(t, got, "request") != want {
			t.Errorf("%s: status %d", target, resp.StatusCode)
		}
		f.record(t)
	}
}
