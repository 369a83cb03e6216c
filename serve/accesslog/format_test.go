package accesslog

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var start = time.Date(2026, time.November, 24, 10, 0, 0, 0, time.UTC)

// readRequest parses raw as net/http's server would (this package's
// tests cannot import testprog: it imports procfile, which imports this
// package).
func readRequest(t testing.TB, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("net/http refuses %q itself: %v", raw, err)
	}
	return r
}

func baseEntry(t testing.TB) *Entry {
	r := readRequest(t, "GET /my/path?foo=bar HTTP/1.1\r\n"+
		"Host: example.com:8080\r\n"+
		"Authorization: Basic YnJrMHY6\r\n"+ // "brk0v:", Gunicorn's test_logger value
		"Referer: http://example.com/from\r\n"+
		"User-Agent: curl/8.0\r\n"+
		"Accept: application/json\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\n"+
		"X-Forwarded-For: 10.0.0.1\r\n"+
		"Content-Type: text/plain\r\n"+
		"\r\n")
	return &Entry{
		Request:        r,
		RemoteAddr:     "127.0.0.1",
		RemotePort:     "51234",
		Status:         200,
		BytesSent:      1024,
		ResponseHeader: http.Header{"Content-Type": {"application/json"}},
		Start:          start,
		Duration:       1500 * time.Millisecond,
		PID:            4242,
		Scheme:         "http",
	}
}

// compile compiles format; tb fails on an error.
func compile(tb testing.TB, format string) *Format {
	tb.Helper()
	f, err := Compile(format)
	if err != nil {
		tb.Fatalf("Compile(%q): %v", format, err)
	}
	return f
}

func render(t *testing.T, format string, e *Entry) string {
	t.Helper()
	f := compile(t, format)
	line := string(f.Append(nil, e))
	if !strings.HasSuffix(line, "\n") {
		t.Fatalf("line %q has no trailing newline", line)
	}
	return strings.TrimSuffix(line, "\n")
}

func TestDefaultLine(t *testing.T) {
	e := baseEntry(t)
	got := render(t, "", e)
	want := `127.0.0.1 - brk0v [24/Nov/2026:10:00:01 +0000] "GET /my/path?foo=bar HTTP/1.1" 200 1024 "http://example.com/from" "curl/8.0"`
	if got != want {
		t.Errorf("default line\n got %s\nwant %s", got, want)
	}
	if got2 := render(t, DefaultFormat, e); got2 != got {
		t.Errorf("DefaultFormat gives %q, \"\" gives %q", got2, got)
	}
}

func TestDefaultLineMissingValues(t *testing.T) {
	e := &Entry{
		Request:   readRequest(t, "POST /x HTTP/1.0\r\n\r\n"),
		Status:    499,
		BytesSent: 0,
		Start:     start,
	}
	got := render(t, "", e)
	want := `- - - [24/Nov/2026:10:00:00 +0000] "POST /x HTTP/1.0" 499 0 "-" "-"`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestAtoms(t *testing.T) {
	t.Setenv("GSUP_ACCESSLOG_TEST", "from-env")
	tests := []struct {
		name   string
		format string
		edit   func(e *Entry)
		want   string
	}{
		{"h", "%(h)s", nil, "127.0.0.1"},
		{"h unix socket", "%(h)s", func(e *Entry) { e.RemoteAddr = "" }, "-"},
		{"h ipv6", "%(h)s", func(e *Entry) { e.RemoteAddr = "2001:db8::1" }, "2001:db8::1"},
		{"l", "%(l)s", nil, "-"},
		{"u basic", "%(u)s", nil, "brk0v"},
		{"u basic lower-case scheme", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "basic dXNlcjpwYXNz") }, "user"},
		{"u no colon", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "Basic dXNlcg==") }, "user"},
		{"u malformed (Gunicorn's test)", "%(u)s", func(e *Entry) {
			e.Request.Header.Set("Authorization", "Basic ixsTtkKzIpVTncfQjbBcnoRNoDfbnaXG")
		}, "-"},
		{"u bad base64", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "Basic !!!!") }, "-"},
		{"u bad padding", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "Basic dXNlcg") }, "-"},
		{"u empty user", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "Basic OnBhc3M=") }, "-"},
		{"u bearer", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "Bearer abc") }, "-"},
		{"u none", "%(u)s", func(e *Entry) { e.Request.Header.Del("Authorization") }, "-"},
		{"u quote escaped", "%(u)s", func(e *Entry) { e.Request.Header.Set("Authorization", "Basic YSJiOng=") }, `a\"b`},
		{"t utc", "%(t)s", func(e *Entry) { e.Duration = 0 }, "[24/Nov/2026:10:00:00 +0000]"},
		{"t is the end time", "%(t)s", func(e *Entry) { e.Duration = 61 * time.Second }, "[24/Nov/2026:10:01:01 +0000]"},
		{"t zone", "%(t)s", func(e *Entry) {
			e.Start = time.Date(2026, time.January, 2, 3, 4, 5, 0, time.FixedZone("", -(5*3600+1800)))
			e.Duration = 0
		}, "[02/Jan/2026:03:04:05 -0530]"},
		{"r", "%(r)s", nil, "GET /my/path?foo=bar HTTP/1.1"},
		{"r raw uri kept", "%(r)s", func(e *Entry) { e.Request = readRequest(t, "GET /a%20b//c?x=%22 HTTP/1.0\r\n\r\n") }, "GET /a%20b//c?x=%22 HTTP/1.0"},
		{"r absolute form", "%(r)s", func(e *Entry) {
			e.Request = readRequest(t, "GET http://example.com/foo?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
		}, "GET http://example.com/foo?q=1 HTTP/1.1"},
		{"m", "%(m)s", nil, "GET"},
		{"U", "%(U)s", nil, "/my/path"},
		{"U decoded", "%(U)s", func(e *Entry) { e.Request = readRequest(t, "GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n") }, "/a b"},
		{"q", "%(q)s", nil, "foo=bar"},
		{"q empty", "[%(q)s]", func(e *Entry) { e.Request = readRequest(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n") }, "[]"},
		{"H", "%(H)s", nil, "HTTP/1.1"},
		{"s", "%(s)s", nil, "200"},
		{"s 499", "%(s)s", func(e *Entry) { e.Status = 499 }, "499"},
		{"s none", "%(s)s", func(e *Entry) { e.Status = 0 }, "-"},
		{"B", "%(B)s", nil, "1024"},
		{"B zero", "%(B)s", func(e *Entry) { e.BytesSent = 0 }, "0"},
		{"B unknown", "%(B)s", func(e *Entry) { e.BytesSent = -1 }, "-"},
		{"b", "%(b)s", nil, "1024"},
		{"b zero (Gunicorn prints 0)", "%(b)s", func(e *Entry) { e.BytesSent = 0 }, "0"},
		{"b unknown", "%(b)s", func(e *Entry) { e.BytesSent = -1 }, "-"},
		{"f", "%(f)s", nil, "http://example.com/from"},
		{"f missing", "%(f)s", func(e *Entry) { e.Request.Header.Del("Referer") }, "-"},
		{"a", "%(a)s", nil, "curl/8.0"},
		{"a missing", "%(a)s", func(e *Entry) { e.Request.Header.Del("User-Agent") }, "-"},
		{"T", "%(T)s", nil, "1"},
		{"T after a day does not wrap", "%(T)s", func(e *Entry) { e.Duration = 25 * time.Hour }, "90000"},
		{"M", "%(M)s", nil, "1500"},
		{"D", "%(D)s", nil, "1500000"},
		{"D small", "%(D)s", func(e *Entry) { e.Duration = 250*time.Microsecond + 999 }, "250"},
		{"L", "%(L)s", nil, "1.500000"},
		{"L small", "%(L)s", func(e *Entry) { e.Duration = 250 * time.Microsecond }, "0.000250"},
		{"L zero", "%(L)s", func(e *Entry) { e.Duration = 0 }, "0.000000"},
		{"p", "%(p)s", nil, "<4242>"},
		{"request header", "%({accept}i)s", nil, "application/json"},
		{"request header any case", "%({ACCEPT}I)s", nil, "application/json"},
		{"request header repeated: last line", "%({x-forwarded-for}i)s", nil, "10.0.0.1"},
		{"request header host", "%({host}i)s", nil, "example.com:8080"},
		{"request header missing", "%({x-nope}i)s", nil, "-"},
		{"response header", "%({content-type}o)s", nil, "application/json"},
		{"response header missing", "%({x-nope}o)s", nil, "-"},
		{"env remote_addr", "%({remote_addr}e)s", nil, "127.0.0.1"},
		{"env remote_port", "%({REMOTE_PORT}e)s", nil, "51234"},
		{"env request_method", "%({request_method}e)s", nil, "GET"},
		{"env path_info", "%({path_info}e)s", nil, "/my/path"},
		{"env query_string", "%({query_string}e)s", nil, "foo=bar"},
		{"env raw_uri", "%({raw_uri}e)s", nil, "/my/path?foo=bar"},
		{"env server_protocol", "%({server_protocol}e)s", nil, "HTTP/1.1"},
		{"env server_name from Host", "%({server_name}e)s", nil, "example.com"},
		{"env server_port from Host", "%({server_port}e)s", nil, "8080"},
		{"env server_port default", "%({server_port}e)s", func(e *Entry) { e.Request.Host = "example.com" }, "80"},
		{"env server_port https default", "%({server_port}e)s", func(e *Entry) { e.Request.Host = "example.com"; e.Scheme = "https" }, "443"},
		{"env server from listener", "%({server_name}e)s:%({server_port}e)s", func(e *Entry) {
			ctx := context.WithValue(e.Request.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8000})
			e.Request = e.Request.WithContext(ctx)
		}, "10.1.2.3:8000"},
		{"env script_name", "[%({script_name}e)s]", nil, "[]"},
		{"env content_type", "%({content_type}e)s", nil, "text/plain"},
		{"env content_length missing", "%({content_length}e)s", nil, "-"},
		{"env http_ header joined", "%({http_x_forwarded_for}e)s", nil, "203.0.113.7,10.0.0.1"},
		{"env http_host", "%({http_host}e)s", nil, "example.com:8080"},
		{"env url scheme", "%({wsgi.url_scheme}e)s", func(e *Entry) { e.Scheme = "https" }, "https"},
		{"env process environment", "%({gsup_accesslog_test}e)s", nil, "from-env"},
		{"env missing", "%({gsup_accesslog_nope}e)s", nil, "-"},
		{"unknown atom", "%(zz)s", nil, "-"},
		{"unknown atom from Gunicorn's deploy doc", "%(l.md)s", nil, "-"},
		{"unknown brace kind", "%({accept}x)s", nil, "-"},
		{"percent", "100%% %(s)s", nil, "100% 200"},
		{"quote escaped", "%(a)s", func(e *Entry) { e.Request.Header.Set("User-Agent", `say "hi"`) }, `say \"hi\"`},
		{"control bytes escaped", "%({x-ctl}o)s", func(e *Entry) { e.ResponseHeader.Set("X-Ctl", "a\x01b\x7fc\nd") }, `a\x01b\x7fc\x0ad`},
		{"non-ASCII kept", "%({x-v}o)s", func(e *Entry) { e.ResponseHeader.Set("X-V", "café") }, "café"},
		{"width", "[%(s)5s]", nil, "[  200]"},
		{"width left", "[%(s)-5s]", nil, "[200  ]"},
		{"precision", "[%(U).3s]", nil, "[/my]"},
		{"width and precision", "[%(U)6.3s]", nil, "[   /my]"},
		{"d", "%(s)d %(B)d %(T)d %(M)d %(D)d", nil, "200 1024 1 1500 1500000"},
		{"d width", "[%(s)5d]", nil, "[  200]"},
		{"d zero pad", "[%(s)05d]", nil, "[00200]"},
		{"d left", "[%(s)-5d]", nil, "[200  ]"},
		{"d plus", "[%(s)+d]", nil, "[+200]"},
		{"d precision", "[%(T).3d]", nil, "[001]"},
		{"d unknown", "%(B)d", func(e *Entry) { e.BytesSent = -1 }, "-"},
		{"d header", "%({x-n}o)d", func(e *Entry) { e.ResponseHeader.Set("X-N", "12") }, "12"},
		{"r conversion", "%(m)r", nil, "'GET'"},
		{"nil request", "%(h)s %(r)s %(m)s %(U)s %(q)s %(H)s %(f)s %(a)s %(u)s %({accept}i)s %({path_info}e)s", func(e *Entry) {
			e.Request = nil
		}, "127.0.0.1 - - - - - - - - - -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := baseEntry(t)
			if tt.edit != nil {
				tt.edit(e)
			}
			if got := render(t, tt.format, e); got != tt.want {
				t.Errorf("%s\n got %q\nwant %q", tt.format, got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		format string
		pos    string
	}{
		{"%(h", "position 0"},
		{"abc %(h)", "position 4"},
		{"%(h)z", "position 4"},
		{"%s", "position 0"},
		{"x %", "position 2"},
		{"%(h)d", "position 0"},
		{"%(r)i", "position 0"},
		{"%(h)*s", "position 4"},
		{"%(h).*s", "position 5"},
		{"ab%(h)65537s", "width too large at position 2"},
		{"%(h).99999999999999999999s", "precision too large at position 0"},
		{"%(a(b)s", "position 0"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.format)
		if err == nil {
			t.Errorf("Compile(%q) = nil error, want one naming %s", tt.format, tt.pos)
			continue
		}
		if !strings.Contains(err.Error(), tt.pos) {
			t.Errorf("Compile(%q) = %v, want it to name %s", tt.format, err, tt.pos)
		}
	}
	// Nested parentheses are part of the name, as in Python.
	if _, err := Compile("%(a(b)c)s"); err != nil {
		t.Errorf("Compile nested name: %v", err)
	}
}

func TestAppendReusesBuffer(t *testing.T) {
	f := compile(t, "")
	e := baseEntry(t)
	buf := []byte("prefix|")
	buf = f.Append(buf, e)
	if !strings.HasPrefix(string(buf), "prefix|127.0.0.1 ") || strings.Count(string(buf), "\n") != 1 {
		t.Errorf("Append did not append one line: %q", buf)
	}
}

func TestAppendAllocs(t *testing.T) {
	f := compile(t, "")
	e := baseEntry(t)
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		buf = f.Append(buf[:0], e)
	})
	if allocs != 0 {
		t.Errorf("Append with the default format: %v allocations per line, want 0", allocs)
	}
}

func BenchmarkAppendDefault(b *testing.B) { benchAppend(b, "") }

func BenchmarkAppendRich(b *testing.B) {
	benchAppend(b, `%(h)s %(t)s "%(r)s" %(s)s %(b)s %(L)s %({x-forwarded-for}i)s %({content-type}o)s %({remote_port}e)s %(p)s`)
}

// benchAppend measures appending the base entry's line in format.
func benchAppend(b *testing.B, format string) {
	f := compile(b, format)
	e := baseEntry(b)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], e)
	}
	b.SetBytes(int64(len(buf)))
}

// The default format's line is written without the atom loop
// (appendCombined); it is the loop's line for every kind of entry: no
// request, each field absent, present, repeated, with bytes to escape, a
// Basic user that decodes or not, no status, an unknown byte count, IPv6
// and quoted client addresses.
func TestCombinedIsTheLoops(t *testing.T) {
	fast, loop := compile(t, ""), compile(t, "")
	if !fast.combined {
		t.Fatal("the default format is not written by appendCombined: this test checks nothing")
	}
	loop.combined = false
	heads := []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a?b=%22c%22&d=\"e\" HTTP/1.0\r\nReferer: http://r/\"q\"\r\nUser-Agent: ua \"x\"\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nReferer: one\r\nReferer: two\r\nUser-Agent: a\r\nUser-Agent: b\r\n\r\n",
		"GET /u HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
		"GET /u HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!\r\n\r\n",
		"GET /u HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n",
		"GET /u HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
		"GET /u HTTP/1.1\r\nHost: x\r\nAuthorization: basic IHVzZXIiOnA=\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://example.com/abs?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
	}
	var reqs []*http.Request
	for _, h := range heads {
		reqs = append(reqs, readRequest(t, h))
	}
	noURI := readRequest(t, heads[0])
	noURI.RequestURI = "" // as a request made in the process has it
	controls := readRequest(t, heads[0])
	controls.Header["User-Agent"] = []string{"\x01\x7f\"é"} // as a handler may set it
	controls.Method = "G\x00T"
	reqs = append(reqs, noURI, controls, nil)
	n := 0
	for _, r := range reqs {
		for _, addr := range []string{"", "192.0.2.1", "2001:db8::1", `a"b`} {
			for _, status := range []int{0, 200, 499} {
				for _, bytes := range []int64{-1, 0, 123456} {
					e := &Entry{Request: r, RemoteAddr: addr, RemotePort: "80", Status: status, BytesSent: bytes,
						Start: start, Duration: time.Duration(n) * time.Millisecond}
					want, got := string(loop.Append(nil, e)), string(fast.Append(nil, e))
					if got != want {
						t.Fatalf("entry %+v:\n got %q\nwant %q", e, got, want)
					}
					n++
				}
			}
		}
	}
}
