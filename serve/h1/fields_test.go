package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gsup/serve/head"
)

// headLines reads a response head and returns its field lines, with the
// value of a Date field the server made replaced by "<date>".
func headLines(t *testing.T, br *bufio.Reader) (status string, fields []string) {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a head: %v (so far %q %q)", err, status, fields)
		}
		line = strings.TrimSuffix(line, "\r\n")
		switch {
		case status == "":
			status = line
		case line == "":
			return status, fields
		default:
			if strings.HasPrefix(line, "Date: ") && strings.HasSuffix(line, " GMT") && !strings.Contains(line, "1994") {
				line = "Date: <date>"
			}
			fields = append(fields, line)
		}
	}
}

// list is name, value, ... as fields.
func list(kv ...string) []head.Field {
	var fs []head.Field
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, head.Field{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

// A handler's fields given as a list (what the proxy does with an app's
// answer) are written after the header's own, in the list's order, with
// the framing and checks the header's fields get.
func TestWriteFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		own    http.Header // set in Header() before
		code   int
		fs     []head.Field
		body   string
		want   []string // the head's field lines
	}{
		{
			name: "in the list's order, after the header's own",
			own:  http.Header{"X-Own": {"1"}},
			code: 200,
			fs:   list("X-B", "2", "X-A", "1", "X-B", "3", "Content-Length", "4"),
			body: "body",
			want: []string{"Date: <date>", "X-Own: 1", "X-B: 2", "X-A: 1", "X-B: 3", "Content-Length: 4"},
		},
		{
			name: "a Date given is the only one",
			code: 200,
			fs:   list("Date", "Sun, 06 Nov 1994 08:49:37 GMT", "Content-Length", "2"),
			body: "ok",
			want: []string{"Date: Sun, 06 Nov 1994 08:49:37 GMT", "Content-Length: 2"},
		},
		{
			name: "no Content-Length given: the whole body's is added",
			code: 201,
			fs:   list("X-A", "1"),
			body: "made",
			want: []string{"Content-Length: 4", "Date: <date>", "X-A: 1"},
		},
		{
			name:   "HEAD keeps the Content-Length given",
			method: "HEAD",
			code:   200,
			fs:     list("Content-Length", "1234"),
			want:   []string{"Date: <date>", "Content-Length: 1234"},
		},
		{
			name: "no body for 304",
			code: 304,
			fs:   list("Etag", `"x"`),
			want: []string{"Date: <date>", `Etag: "x"`},
		},
		{
			name: "a value with a tab and non-ASCII bytes as it is",
			code: 200,
			fs:   list("X-Tab", "a\tb", "X-Name", "caf\xc3\xa9"),
			body: "x",
			want: []string{"Content-Length: 1", "Date: <date>", "X-Tab: a\tb", "X-Name: caf\xc3\xa9"},
		},
		{
			name: "a Content-Length in the header and one given are one field",
			own:  http.Header{"Content-Length": {"4"}},
			code: 200,
			fs:   list("Content-Length", "4"),
			body: "body",
			want: []string{"Content-Length: 4", "Date: <date>"},
		},
		{
			name: "Transfer-Encoding given goes through the header",
			code: 200,
			fs:   list("Transfer-Encoding", "chunked", "X-A", "1"),
			body: "body",
			want: []string{"Date: <date>", "Transfer-Encoding: chunked", "X-A: 1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.own {
					w.Header()[k] = v
				}
				w.(head.FieldWriter).WriteFields(tc.code, tc.fs)
				io.WriteString(w, tc.body)
			})})
			c, br := dial(t, addr)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			io.WriteString(c, method+" / HTTP/1.1\r\nHost: x\r\n\r\n")
			status, fields := headLines(t, br)
			if want := fmt.Sprintf("HTTP/1.1 %d %s", tc.code, http.StatusText(tc.code)); status != want {
				t.Errorf("status line %q; want %q", status, want)
			}
			if !slices.Equal(fields, tc.want) {
				t.Errorf("fields\n%q\nwant\n%q", fields, tc.want)
			}
			// The connection goes on: the next answer is whole and next.
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			chunked := slices.Contains(fields, "Transfer-Encoding: chunked")
			if method != "HEAD" && tc.code == 200 {
				if chunked {
					want := "4\r\nbody\r\n0\r\n\r\n"
					b := make([]byte, len(want))
					if _, err := io.ReadFull(br, b); err != nil || string(b) != want {
						t.Fatalf("chunked body %q, %v; want %q", b, err, want)
					}
				} else if _, err := br.Discard(len(tc.body)); err != nil {
					t.Fatal(err)
				}
			} else if tc.code == 201 {
				br.Discard(len(tc.body))
			}
			if _, again := headLines(t, br); !slices.Equal(again, fields) {
				t.Errorf("second answer's fields %q; want %q", again, fields)
			}
		})
	}
}

// Header() after WriteFields holds the fields given, before and after the
// head went out, and each is written once.
func TestWriteFieldsThenHeader(t *testing.T) {
	seen := make(chan []string, 2)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(head.FieldWriter).WriteFields(200, list("X-A", "1", "Content-Length", "2", "X-A", "2"))
		if r.URL.Path == "/flushed" {
			w.(http.Flusher).Flush()
		}
		seen <- w.Header()["X-A"]
		io.WriteString(w, "ok")
	})})
	for _, path := range []string{"/", "/flushed"} {
		c, br := dial(t, addr)
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		_, fields := headLines(t, br)
		if got := <-seen; !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("%s: Header()[X-A] %q; want [1 2]", path, got)
		}
		var xa, cl int
		for _, f := range fields {
			switch {
			case strings.HasPrefix(f, "X-A: "):
				xa++
			case strings.HasPrefix(f, "Content-Length: "):
				cl++
			}
		}
		if xa != 2 || cl != 1 {
			t.Errorf("%s: fields %q; want X-A twice and Content-Length once", path, fields)
		}
	}
}

// A Connection field given, before a Content-Length or after it, goes
// through the header: the connection closes after the answer, as the
// field says.
func TestWriteFieldsConnectionCloseGiven(t *testing.T) {
	for _, fs := range [][]head.Field{
		list("Connection", "close", "Content-Length", "2"),
		list("Content-Length", "2", "Connection", "close"),
	} {
		addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.(head.FieldWriter).WriteFields(200, fs)
			io.WriteString(w, "ok")
		})})
		c, br := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if body != "ok" || !resp.Close {
			t.Errorf("%v: body %q, close %v; want ok, and Connection: close", fs, body, resp.Close)
		}
		if n, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%v: after the answer, %q, %v; want the connection closed", fs, n, err)
		}
	}
}

// A Content-Length given bounds the body as one in the header does.
func TestWriteFieldsContentLengthBoundsTheBody(t *testing.T) {
	errs := make(chan error, 1)
	addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(head.FieldWriter).WriteFields(200, list("Content-Length", "4"))
		_, err := io.WriteString(w, "body and more")
		errs <- err
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := <-errs; !errors.Is(err, http.ErrContentLength) {
		t.Errorf("writing 13 bytes after a Content-Length of 4: %v; want %v", err, http.ErrContentLength)
	}
	// Nothing was written: the client waits for 4 bytes, and the
	// connection closes as the handler did not send them.
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err == nil || resp.ContentLength != 4 {
		t.Errorf("body %q, %v, Content-Length %d; want 4 announced and the connection cut", b, err, resp.ContentLength)
	}
}

// Every status line is "HTTP/1.1 code text", the text net/http's, or
// "status code N" for a code it has none for (as net/http writes it).
func TestStatusLines(t *testing.T) {
	var w response
	for code := 100; code <= 999; code++ {
		want := fmt.Sprintf("HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
		if http.StatusText(code) == "" {
			want = fmt.Sprintf("HTTP/1.1 %d status code %d\r\n", code, code)
		}
		if got := string(w.appendStatus(nil, code)); got != want {
			t.Fatalf("status %d: %q; want %q", code, got, want)
		}
	}
}

// Trailers are sent as net/http's server sends them: the names the
// Trailer field declared, with the values the header has when the handler
// returns, and keys with http.TrailerPrefix; a body with them is chunked
// even when it is whole.
func TestTrailers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter)
	}{
		{"declared in the header", func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}},
		{"declared in fields given", func(w http.ResponseWriter) {
			w.(head.FieldWriter).WriteFields(200, list("Trailer", "X-Sum"))
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := serveTest(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.handler(w)
			})})
			c, br := dial(t, addr)
			for range 2 { // and the connection goes on
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, body := readResponse(t, br, "GET")
				if body != "body" || resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 {
					t.Fatalf("body %q, length %d, transfer encoding %q; want a chunked body", body, resp.ContentLength, resp.TransferEncoding)
				}
				if got := resp.Trailer; got.Get("X-Sum") != "42" || got.Get("X-Late") != "late" || len(got) != 2 {
					t.Errorf("trailer %v; want X-Sum 42 and X-Late late", got)
				}
				if resp.Header.Get("X-Late") != "" || resp.Header.Get(http.TrailerPrefix+"X-Late") != "" {
					t.Errorf("header %v: a trailer key in the head", resp.Header)
				}
			}
		})
	}
}
