package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/testprog"
	"gsup/serve/forward"
	"gsup/serve/head"
)

// startApp serves h over tcp or unix.
func startApp(t *testing.T, transport string, h http.Handler) string {
	if transport == "unix" {
		return startUnixBackend(t, h)
	}
	return startBackend(t, h)
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := client(t).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// dialRaw opens a plain connection to a front.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestNoSniffedContentType(t *testing.T) {
	addr := startBackend(t, rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html></html>\r\n"))
	f, _ := gsupFront(t, Options{}, addr)
	status, h, _ := get(t, f.URL)
	if status != 200 || h["Content-Type"] != nil {
		t.Errorf("status %d, Content-Type %q: a proxy must not add one", status, h["Content-Type"])
	}
}

// TestStreamingFlushed checks that each part of a streamed response reaches
// the client while the app is still holding the rest back.
func TestStreamingFlushed(t *testing.T) {
	for _, transport := range []string{"tcp", "unix"} {
		for _, tc := range []struct{ name, contentType, length string }{
			{"sse", "text/event-stream", ""},
			{"sse with length", "text/event-stream", "18"},
			{"chunked", "application/json", ""},
			{"long poll big length", "text/plain", "18"},
		} {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				next := make(chan struct{})
				addr := startApp(t, transport, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", tc.contentType)
					if tc.length != "" {
						w.Header().Set("Content-Length", tc.length)
					}
					io.WriteString(w, "data: 1\n\n")
					w.(http.Flusher).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
					io.WriteString(w, "data: 2\n\n")
				}))
				o := Options{}
				if tc.name == "long poll big length" {
					o.BufferResponse = 10
				}
				f, _ := gsupFront(t, o, addr)
				resp, err := client(t).Get(f.URL + "/events")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				for i, want := range []string{"data: 1\n", "\n", "data: 2\n", "\n"} {
					if i == 2 {
						close(next) // the first event arrived while the app held the second
					}
					line, err := br.ReadString('\n')
					if err != nil || line != want {
						t.Fatalf("line %d: %q, %v", i, line, err)
					}
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("after the events: %v", err)
				}
				if rec := f.record(t); rec.Status != 200 || rec.BytesSent != 18 {
					t.Errorf("record %+v", rec)
				}
			})
		}
	}
}

// wsApp answers an Upgrade: websocket request with 101, then echoes bytes
// until the client half-closes.
var wsApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-App: ws\r\n\r\n")
	brw.Flush()
	io.Copy(c, brw)
})

func TestUpgradeEcho(t *testing.T) {
	for _, transport := range []string{"tcp", "unix"} {
		addr := startApp(t, transport, wsApp)
		gsup, _ := gsupFront(t, Options{}, addr)
		ref := refFront(t, addr)
		for name, f := range map[string]*front{"gsup": gsup, "reverseproxy": ref} {
			t.Run(transport+"/"+name, func(t *testing.T) {
				c, br := dialRaw(t, f.Addr)
				// "early" comes in the same write as the head: it is
				// already in the front's buffer when it takes the
				// connection over. (ReverseProxy drops such bytes.)
				early := "early\n"
				if name != "gsup" {
					early = ""
				}
				io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"+early)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" ||
					resp.Header.Get("X-App") != "ws" || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
					t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
				}
				for _, msg := range []string{early, "ping\n", strings.Repeat("z", 100000) + "\n"} {
					if msg == "" {
						continue
					}
					if msg != early {
						io.WriteString(c, msg)
					}
					line, err := br.ReadString('\n')
					if err != nil || line != msg {
						t.Fatalf("echo: %d bytes, %v", len(line), err)
					}
				}
				c.(*net.TCPConn).CloseWrite()
				if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
					t.Errorf("after half close: %q, %v", rest, err)
				}
				if rec := f.record(t); name == "gsup" && (rec.Status != 101 || rec.BytesSent != 100012) {
					t.Errorf("record %+v", rec)
				}
			})
		}
	}
}

func TestUpgradeRefusedByApp(t *testing.T) {
	f, _ := gsupFront(t, Options{}, startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "no", http.StatusForbidden)
	})))
	c, br := dialRaw(t, f.Addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestExpectContinue(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bufferBody int64
		app        http.HandlerFunc
		want100    bool
		wantStatus int
		wantBody   string // part of the response body
	}{
		{"buffered: the front asks for the body", 0, echoApp, true, 200, "body: 100 "},
		{"streamed: the app asks for the body", 16, echoApp, true, 200, `Expect: ["100-continue"]`},
		{"streamed: the app refuses", 16, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "too big for me", http.StatusRequestEntityTooLarge)
		}, false, 413, "too big for me"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := gsupFront(t, Options{BufferBody: tc.bufferBody}, startBackend(t, tc.app))
			c, br := dialRaw(t, f.Addr)
			io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got100 := resp.StatusCode == 100; got100 != tc.want100 {
				t.Fatalf("first response %d", resp.StatusCode)
			}
			if tc.want100 {
				io.WriteString(c, strings.Repeat("b", 100))
				if resp, err = http.ReadResponse(br, nil); err != nil {
					t.Fatal(err)
				}
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
			if tc.bufferBody == 0 && strings.Contains(string(body), "Expect") {
				t.Errorf("Expect reached the app although the front had the body: %q", body)
			}
		})
	}
}

func TestNoInstance(t *testing.T) {
	f, b := gsupFront(t, Options{})
	status, h, _ := get(t, f.URL)
	if status != 503 || h.Get("Retry-After") != "1" {
		t.Errorf("%d %v", status, h)
	}
	if rec := f.record(t); rec.Status != 503 || rec.Upstream != "" {
		t.Errorf("record %+v", rec)
	}
	// Removed ones do not count.
	b.Add(7, startBackend(t, helloApp))
	if status, _, _ := get(t, f.URL); status != 200 {
		t.Errorf("with an instance: %d", status)
	}
	b.Remove(7)
	if status, _, _ := get(t, f.URL); status != 503 || b.Len() != 0 {
		t.Errorf("after Remove: %d, Len %d", status, b.Len())
	}
}

func TestTimeout(t *testing.T) {
	appSawCancel := make(chan struct{})
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the front gave up and closed the connection
		close(appSawCancel)
	}))
	logger, sink := newLogger()
	f, _ := gsupFront(t, Options{Timeout: 200 * time.Millisecond, Log: logger}, addr)
	status, _, _ := get(t, f.URL)
	if status != 504 {
		t.Errorf("status %d", status)
	}
	waitFor(t, appSawCancel, "the app to see the cancellation")
	if rec := f.record(t); rec.Status != 504 || rec.Upstream != addr {
		t.Errorf("record %+v", rec)
	}
	if sink.count(logrus.ErrorLevel) != 1 {
		t.Errorf("log:\n%s", sink.messages())
	}
}

// The answer's timeout on a kept app connection: the read deadline is
// moved only when the one in force ends more than a sixteenth of the
// timeout before the new one, so exchanges spread over more than the
// timeout all get their answers, and a hung one is answered 504 after
// the timeout, at most a sixteenth of it early.
func TestTimeoutOnAKeptConnection(t *testing.T) {
	const timeout = 400 * time.Millisecond
	var calls atomic.Int32
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		calls.Add(1)
		io.WriteString(w, "ok")
	}))
	f, _ := gsupFront(t, Options{Timeout: timeout}, addr)
	for i := range 10 {
		if status, _, _ := get(t, f.URL); status != 200 {
			t.Fatalf("exchange %d, %v after the first: status %d", i, time.Duration(i)*timeout/6, status)
		}
		time.Sleep(timeout / 6) // the exchanges span 1.5 times the timeout
	}
	start := time.Now()
	status, _, _ := get(t, f.URL+"/hang")
	took := time.Since(start)
	if status != 504 {
		t.Fatalf("a hung exchange: status %d", status)
	}
	if took < timeout-timeout/16 || took > timeout+3*time.Second {
		t.Errorf("a hung exchange was answered after %v; the timeout is %v", took, timeout)
	}
	if calls.Load() != 10 {
		t.Errorf("the app answered %d exchanges, want 10", calls.Load())
	}
}

// TestBadUpstream checks the 502 cases: the app dies, or answers with
// something that is not a valid HTTP/1.1 response head.
func TestBadUpstream(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"closes at once", ""},
		{"garbage", "HELLO WORLD\r\n\r\n"},
		{"reset mid-head", "HTTP/1.1 200 OK\r\nX-A: 1\r\n"},
		{"bad status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"HTTP/2 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"},
		{"two Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"unsupported Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"},
		{"folded field", "HTTP/1.1 200 OK\r\nX-A: 1\r\n more\r\nContent-Length: 0\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n"},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{"101 nobody asked for", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		{"too many 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\n", 11)},
		{"body shorter than its length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"},
		{"bad chunk size (buffered path not taken)", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawBackend(t, func(c net.Conn) {
				if _, ok := readRequest(bufio.NewReader(c)); ok {
					io.WriteString(c, tc.resp)
				}
			})
			logger, sink := newLogger()
			f, _ := gsupFront(t, Options{Log: logger}, addr)
			resp, err := client(t).Get(f.URL)
			rec := f.record(t)
			if strings.HasPrefix(tc.name, "bad chunk size") {
				// Streamed: the head went out, then the client
				// connection is cut.
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil || rec.Status != 200 {
					t.Errorf("err %v, record %+v", err, rec)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 502 || rec.Status != 502 || rec.ClientAbort {
					t.Errorf("status %d, record %+v", resp.StatusCode, rec)
				}
				if resp.Header.Get("X-A") != "" || resp.Header.Get("Link") != "" {
					t.Errorf("fields of the bad response leaked: %v", resp.Header)
				}
			}
			if sink.count(logrus.ErrorLevel) != 1 {
				t.Errorf("want one error logged:\n%s", sink.messages())
			}
		})
	}
}

// TestUpstreamDiesMidBody: once the head has gone out, the status cannot
// change; the client connection is cut so that the client sees a broken
// response, not a short one.
func TestUpstreamDiesMidBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp string
		o    Options
	}{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", Options{}},
		{"length, streamed", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", Options{BufferResponse: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawBackend(t, func(c net.Conn) {
				if _, ok := readRequest(bufio.NewReader(c)); ok {
					io.WriteString(c, tc.resp)
				}
			})
			logger, sink := newLogger()
			tc.o.Log = logger
			f, _ := gsupFront(t, tc.o, addr)
			resp, err := client(t).Get(f.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || err == nil || string(body) != "hello" {
				t.Errorf("status %d, body %q, err %v", resp.StatusCode, body, err)
			}
			if rec := f.record(t); rec.Status != 200 || rec.BytesSent != 5 || rec.ClientAbort {
				t.Errorf("record %+v", rec)
			}
			if f.panicked.Load() {
				t.Error("the handler panicked: an access log written after it would miss the request")
			}
			if sink.count(logrus.ErrorLevel) != 1 {
				t.Errorf("log:\n%s", sink.messages())
			}
		})
	}
}

// When the client connection cannot be taken over to cut it (HTTP/2),
// the handler is aborted with http.ErrAbortHandler: the Record given to
// Serve is filled all the same, for the access log written after it.
func TestRecordFilledWhenTheHandlerIsAborted(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn) {
		if _, ok := readRequest(bufio.NewReader(c)); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
		}
	})
	logger, _ := newLogger()
	b := NewBalancer()
	b.Add(1, addr)
	p := NewProxy(b, Options{Log: logger, Forward: stripForwarded, BufferResponse: -1})
	f := startFront(t, func(w http.ResponseWriter, r *http.Request, rec *Record) {
		p.Serve(struct{ http.ResponseWriter }{w}, r, rec) // no Hijack, no Unwrap
	})
	resp, err := client(t).Get(f.URL)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if rec := f.record(t); rec.Status != 200 || rec.BytesSent != 5 || rec.Upstream != addr {
		t.Errorf("record %+v; want status 200, 5 bytes sent, upstream %s", rec, addr)
	}
	if !f.panicked.Load() {
		t.Error("the handler returned: this test is for one aborted")
	}
}

// TestClientAbort: a client that goes away cancels the app's request,
// unless IgnoreClientAbort; either way the record says 499.
func TestClientAbort(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignore=%v", ignore), func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			release := make(chan struct{})
			appResult := make(chan string, 1)
			addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-r.Context().Done():
					appResult <- "cancelled"
				case <-release:
					io.WriteString(w, "done")
					appResult <- "finished"
				}
			}))
			logger, sink := newLogger()
			b := NewBalancer()
			b.Add(1, addr)
			p := NewProxy(b, Options{IgnoreClientAbort: ignore, Log: logger})
			frontSawAbort := make(chan struct{})
			var once sync.Once
			f := startFront(t, func(w http.ResponseWriter, r *http.Request, rec *Record) {
				context.AfterFunc(r.Context(), func() { once.Do(func() { close(frontSawAbort) }) })
				p.Serve(w, r, rec)
			})
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/slow", nil)
			errc := make(chan error, 1)
			go func() {
				resp, err := client(t).Do(req)
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			waitFor(t, arrived, "the request at the app")
			cancel()
			if err := waitFor(t, errc, "the client"); err == nil {
				t.Fatal("client request succeeded")
			}
			waitFor(t, frontSawAbort, "the front to see the client go")
			if ignore {
				close(release)
			}
			want := "cancelled"
			if ignore {
				want = "finished"
			}
			if got := waitFor(t, appResult, "the app"); got != want {
				t.Errorf("app: %s, want %s", got, want)
			}
			if rec := f.record(t); rec.Status != 499 || !rec.ClientAbort || rec.Upstream != addr {
				t.Errorf("record %+v", rec)
			}
			if sink.count(logrus.ErrorLevel) != 0 || sink.count(logrus.DebugLevel) == 0 {
				t.Errorf("want debug lines only:\n%s", sink.messages())
			}
			if !ignore {
				return
			}
			// The connection went back to the pool: the app answered in
			// full.
			if status, _, _ := get(t, f.URL); status != 200 {
				t.Errorf("next request: %d", status)
			}
		})
	}
}

func TestMaxBody(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		echoApp(w, r)
	}))
	f, _ := gsupFront(t, Options{MaxBody: 1000, BufferBody: 100}, addr)
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{"length under", 1000, false, 200},
		{"length over", 1001, false, 413},
		{"chunked under", 1000, true, 200},
		{"chunked over", 5000, true, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			var body io.Reader = strings.NewReader(strings.Repeat("x", tc.size))
			if tc.chunked {
				body = io.MultiReader(body)
			}
			resp, err := client(t).Post(f.URL+"/up", "text/plain", body)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || f.record(t).Status != tc.want {
				t.Errorf("status %d", resp.StatusCode)
			}
			if tc.name == "length over" && calls.Load() != before {
				t.Error("the app saw a request refused for its length")
			}
		})
	}
}

func TestBadRequestBody(t *testing.T) {
	var calls atomic.Int32
	f, _ := gsupFront(t, Options{}, startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
	})))
	c, br := dialRaw(t, f.Addr)
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || calls.Load() != 0 {
		t.Errorf("status %d, app calls %d", resp.StatusCode, calls.Load())
	}
}

// TestFullDuplex: a streamed body and the response run at once; each line
// the client sends comes back before it sends the next.
func TestFullDuplex(t *testing.T) {
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "text/plain")
		br := bufio.NewReader(r.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(w, "echo "+line)
			w.(http.Flusher).Flush()
		}
	}))
	for _, framing := range []string{"length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			f, _ := gsupFront(t, Options{BufferBody: 16}, addr)
			c, br := dialRaw(t, f.Addr)
			lines := []string{"one\n", "two\n", strings.Repeat("3", 40) + "\n", "four\n"}
			total := 0
			for _, l := range lines {
				total += len(l)
			}
			if framing == "length" {
				fmt.Fprintf(c, "POST /duplex HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total)
			} else {
				// The first piece is larger than BufferBody, so the
				// front stops buffering and streams.
				io.WriteString(c, "POST /duplex HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
				lines = append([]string{strings.Repeat("0", 20) + "\n"}, lines...)
			}
			var resp *http.Response
			var rb *bufio.Reader
			for i, l := range lines {
				if framing == "chunked" {
					fmt.Fprintf(c, "%x\r\n%s\r\n", len(l), l)
				} else {
					io.WriteString(c, l)
				}
				if i == 0 {
					var err error
					if resp, err = http.ReadResponse(br, nil); err != nil {
						t.Fatal(err)
					}
					rb = bufio.NewReader(resp.Body)
				}
				got, err := rb.ReadString('\n')
				if err != nil || got != "echo "+l {
					t.Fatalf("line %d: %q %v", i, got, err)
				}
			}
			if framing == "chunked" {
				io.WriteString(c, "0\r\n\r\n")
			}
			if rest, err := io.ReadAll(rb); err != nil || len(rest) != 0 {
				t.Errorf("end: %q %v", rest, err)
			}
			if rec := f.record(t); rec.Status != 200 {
				t.Errorf("record %+v", rec)
			}
		})
	}
}

func TestRetryOnRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	live := startBackend(t, echoApp)
	logger, sink := newLogger()
	f, b := gsupFront(t, Options{Log: logger}, dead, live)
	c := client(t)
	for i := range 10 {
		method := "GET"
		var body io.Reader
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("payload")
		}
		req, _ := http.NewRequest(method, f.URL, body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rec := f.record(t); resp.StatusCode != 200 || rec.Upstream != live {
			t.Errorf("%s: %d, record %+v", method, resp.StatusCode, rec)
		}
	}
	if sink.count(logrus.ErrorLevel) != 0 {
		t.Errorf("errors logged for a retried refusal:\n%s", sink.messages())
	}
	// Nothing left to try: 502.
	b.Remove(2)
	if status, _, _ := get(t, f.URL); status != 502 {
		t.Errorf("only a dead instance: %d", status)
	}
	if rec := f.record(t); rec.Status != 502 || rec.Upstream != dead || sink.count(logrus.ErrorLevel) != 1 {
		t.Errorf("record %+v, log:\n%s", rec, sink.messages())
	}
}

// TestRetryStaleConnection: the app closes each keep-alive connection after
// one response, without saying so. The next request finds a dead pooled
// connection; GET is retried, POST is sent on a fresh connection after
// the pool sees the close.
func TestRetryStaleConnection(t *testing.T) {
	closed := make(chan struct{}, 1)
	var accepted atomic.Int32
	addr := rawBackend(t, func(c net.Conn) {
		accepted.Add(1)
		if req, ok := readRequest(bufio.NewReader(c)); ok {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.Method), req.Method)
		}
		c.Close()
		closed <- struct{}{}
	})
	logger, sink := newLogger()
	f, _ := gsupFront(t, Options{Log: logger}, addr)
	c := client(t)
	for i := range 6 {
		method := []string{"GET", "POST", "HEAD"}[i%3]
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("not replayable")
		}
		req, _ := http.NewRequest(method, f.URL, body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || method != "HEAD" && string(got) != method {
			t.Errorf("%s: %d %q", method, resp.StatusCode, got)
		}
		f.record(t)
		waitFor(t, closed, "the app to close the connection")
	}
	if n := accepted.Load(); n != 6 {
		t.Errorf("%d connections for 6 requests", n)
	}
	if sink.count(logrus.ErrorLevel) != 0 {
		t.Errorf("log:\n%s", sink.messages())
	}
}

func TestConnectionReuse(t *testing.T) {
	for _, transport := range []string{"tcp", "unix"} {
		t.Run(transport, func(t *testing.T) {
			var conns atomic.Int32
			s := httptest.NewUnstartedServer(helloApp)
			s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					conns.Add(1)
				}
			}
			var addr string
			if transport == "unix" {
				dir, err := os.MkdirTemp("", "up")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				ln, err := net.Listen("unix", dir+"/s")
				if err != nil {
					t.Fatal(err)
				}
				s.Listener.Close()
				s.Listener = ln
				addr = "unix:" + dir + "/s"
			}
			s.Start()
			t.Cleanup(s.Close)
			if addr == "" {
				addr = s.Listener.Addr().String()
			}
			f, _ := gsupFront(t, Options{}, addr)
			c := client(t)
			for range 50 {
				resp, err := c.Get(f.URL)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				f.record(t)
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d upstream connections for 50 sequential requests", n)
			}
		})
	}
}

func TestNoHostHeader(t *testing.T) {
	addr := startBackend(t, echoApp)
	f, _ := gsupFront(t, Options{}, addr)
	c, br := dialRaw(t, f.Addr)
	io.WriteString(c, "GET /old HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "GET /old HTTP/1.1\nHost: "+addr+"\n") {
		t.Errorf("%q", body)
	}
}

func TestConnectRefused(t *testing.T) {
	f, _ := gsupFront(t, Options{}, startBackend(t, helloApp))
	c, br := dialRaw(t, f.Addr)
	io.WriteString(c, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 405 {
		t.Fatalf("%v %v", resp, err)
	}
}

// slowApp holds every request until released; it reports arrivals.
type slowApp struct {
	arrived chan struct{}
	release chan struct{}
}

func newSlowApp() *slowApp {
	return &slowApp{arrived: make(chan struct{}, 100), release: make(chan struct{})}
}

func (s *slowApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.arrived <- struct{}{}
	select {
	case <-s.release:
		io.WriteString(w, "slow")
	case <-r.Context().Done():
	}
}

// TestLeastInFlight: an instance holding a request gets no other while the
// other instance is idle.
func TestLeastInFlight(t *testing.T) {
	slow := newSlowApp()
	slowAddr := startBackend(t, slow)
	var fastCalls atomic.Int32
	fastAddr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fastCalls.Add(1)
		io.WriteString(w, "fast")
	}))
	f, _ := gsupFront(t, Options{}, slowAddr, fastAddr)
	c := client(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(slow.release)
	slowCount := 0
	for range 20 {
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			resp, err := c.Get(f.URL)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		select {
		case <-done:
		case <-slow.arrived:
			slowCount++
		case <-time.After(testTimeout):
			t.Fatal("request neither answered nor held")
		}
	}
	if slowCount > 1 || fastCalls.Load() < 19 {
		t.Errorf("slow instance got %d requests, fast %d", slowCount, fastCalls.Load())
	}
}

func TestPickFewestInFlight(t *testing.T) {
	b := NewBalancer()
	for id := uint64(1); id <= 4; id++ {
		b.Add(id, fmt.Sprintf("127.0.0.1:%d", id))
	}
	b.Add(2, "127.0.0.1:2") // idempotent
	if b.Len() != 4 {
		t.Fatalf("Len %d", b.Len())
	}
	var none tried
	// Load the instances unevenly: 1 has 3, 2 has 1, 3 and 4 have 2.
	load := map[uint64]int{1: 3, 2: 1, 3: 2, 4: 2}
	byID := map[uint64]*backend{}
	for _, be := range *b.ring.Load() {
		byID[be.id] = be
		be.inflight.Add(int64(load[be.id]))
	}
	for range 10 {
		be := b.pick(&none)
		if be.id != 2 {
			t.Fatalf("picked %d with %d in flight", be.id, be.inflight.Load()-1)
		}
		be.done(false)
	}
	// Ties go round: 3 and 4 share the next picks.
	byID[2].inflight.Add(5)
	seen := map[uint64]int{}
	for range 10 {
		be := b.pick(&none)
		seen[be.id]++
		be.done(false)
	}
	if seen[3] == 0 || seen[4] == 0 || seen[3]+seen[4] != 10 {
		t.Errorf("tie picks %v", seen)
	}
	// An instance marked down is taken only when nothing else is left.
	byID[3].markDown()
	byID[4].markDown()
	if be := b.pick(&none); be.id != 1 {
		t.Errorf("picked %d, want 1 (the others are down or busier)", be.id)
	} else {
		be.done(false)
	}
	var skip tried
	skip.add(byID[1])
	skip.add(byID[2])
	if be := b.pick(&skip); be == nil || be.id != 3 && be.id != 4 {
		t.Errorf("picked %v, want a down instance as the last resort", be)
	}
}

func TestDrain(t *testing.T) {
	slow := newSlowApp()
	slowAddr, closedConns := startBackendClosed(t, slow)
	f, b := gsupFront(t, Options{}, slowAddr)

	status := make(chan int, 1)
	go func() {
		resp, err := client(t).Get(f.URL)
		if err != nil {
			status <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	waitFor(t, slow.arrived, "the request at the app")

	other := startBackend(t, helloApp)
	b.Add(2, other)
	b.Remove(1)
	if b.Len() != 1 {
		t.Fatalf("Len %d after Remove", b.Len())
	}
	if code, _, _ := get(t, f.URL); code != 200 || f.record(t).Upstream != other {
		t.Errorf("new request after Remove: %d", code)
	}

	drained := make(chan struct{})
	go func() {
		b.Drain(context.Background(), 1)
		close(drained)
	}()
	select {
	case <-drained:
		t.Fatal("Drain returned with a request in flight")
	default:
	}
	close(slow.release)
	if code := waitFor(t, status, "the held request"); code != 200 {
		t.Errorf("held request: %d", code)
	}
	waitFor(t, drained, "Drain")
	waitFor(t, closedConns, "the drained instance's connection to close")
	if rec := f.record(t); rec.Upstream != slowAddr || rec.Status != 200 {
		t.Errorf("record %+v", rec)
	}

	// Unknown or already drained: at once.
	b.Drain(context.Background(), 1)
	b.Drain(context.Background(), 99)
}

func TestDrainGivesUp(t *testing.T) {
	slow := newSlowApp()
	f, b := gsupFront(t, Options{}, startBackend(t, slow))
	errc := make(chan error, 1)
	go func() {
		resp, err := client(t).Get(f.URL)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, slow.arrived, "the request at the app")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	b.Drain(ctx, 1) // also takes it out of rotation
	if ctx.Err() == nil || b.Len() != 0 {
		t.Errorf("Drain returned before its context ended (Len %d)", b.Len())
	}
	close(slow.release)
	if err := waitFor(t, errc, "the held request"); err != nil {
		t.Error(err)
	}
}

func TestMaxRequests(t *testing.T) {
	limits := make(chan uint64, 10)
	var calls atomic.Int32
	f, b := gsupFront(t, Options{}, startBackend(t, helloApp))
	b.SetMaxRequests(5, 0, func(id uint64) {
		calls.Add(1)
		limits <- id
	})
	for i := 1; i <= 12; i++ {
		if code, _, _ := get(t, f.URL); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
		f.record(t)
		switch {
		case i < 5 && len(limits) > 0:
			t.Fatalf("onLimit called after %d requests", i)
		case i == 5:
			if id := waitFor(t, limits, "onLimit"); id != 1 {
				t.Errorf("onLimit(%d)", id)
			}
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("onLimit called %d times", n)
	}
}

func TestMaxRequestsJitter(t *testing.T) {
	b := NewBalancer()
	b.SetMaxRequests(3, 4, func(uint64) {})
	seen := map[int64]bool{}
	for id := range uint64(300) {
		b.Add(id, "127.0.0.1:1")
	}
	for _, be := range *b.ring.Load() {
		n := be.limit.Load().n
		if n < 3 || n > 7 {
			t.Fatalf("limit %d outside 3..7", n)
		}
		seen[n] = true
	}
	if len(seen) != 5 {
		t.Errorf("limits drawn: %v", seen)
	}
	// A limit set while an instance has already served more fires at once.
	be := (*b.ring.Load())[0]
	be.served.Store(100)
	fired := make(chan uint64, 1)
	b.SetMaxRequests(10, 0, func(id uint64) { fired <- id })
	if id := waitFor(t, fired, "onLimit"); id != be.id {
		t.Errorf("onLimit(%d), want %d", id, be.id)
	}
}

func TestAddReplacesAddress(t *testing.T) {
	one := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "one") }))
	two := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "two") }))
	f, b := gsupFront(t, Options{}, one)
	if _, _, body := get(t, f.URL); body != "one" {
		t.Fatal(body)
	}
	b.Add(1, two)
	if _, _, body := get(t, f.URL); body != "two" || b.Len() != 1 {
		t.Errorf("after re-Add: %q, Len %d", body, b.Len())
	}
}

func TestRequestTrailers(t *testing.T) {
	got := make(chan string, 1)
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %v", body, r.Trailer)
	}))
	f, _ := gsupFront(t, Options{}, addr)
	c, br := dialRaw(t, f.Addr)
	io.WriteString(c, "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
		"4\r\nbody\r\n0\r\nX-Sum: 42\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if s := waitFor(t, got, "the app"); s != "body map[X-Sum:[42]]" {
		t.Errorf("app got %q", s)
	}
}

// TestIdleExpiry: pooled connections unused for idleTimeout are closed by
// the reaper, and never handed out.
func TestIdleExpiry(t *testing.T) {
	addr, closed := startBackendClosed(t, helloApp)
	f, b := gsupFront(t, Options{}, addr)
	age := func(be *backend) {
		be.mu.Lock()
		for _, pc := range be.idle {
			pc.idleAt -= int64(2 * idleTimeout)
		}
		be.mu.Unlock()
	}
	get(t, f.URL)
	be := (*b.ring.Load())[0]
	if n := be.idleCount(); n != 1 {
		t.Fatalf("%d idle connections", n)
	}
	age(be)
	be.reap()
	waitFor(t, closed, "the reaped connection to close")
	if n := be.idleCount(); n != 0 {
		t.Errorf("%d idle connections after reaping", n)
	}
	get(t, f.URL)
	age(be)
	if pc := be.getIdle(); pc != nil {
		t.Error("a stale connection was handed out")
	}
	waitFor(t, closed, "the stale connection to close")
}

// TestClientCutsStream: a client that goes away after the response head
// went out, before the response was complete (an event stream it
// closes), is recorded as 499, with the bytes it was sent; a response
// sent whole keeps its status.
func TestClientCutsStream(t *testing.T) {
	first := "data: first\n\n"
	gone := make(chan struct{})
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/whole" {
			io.WriteString(w, first)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	f, _ := gsupFront(t, Options{}, addr)
	for _, path := range []string{"/events", "/whole"} {
		c, err := net.Dial("tcp", f.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(first))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != first {
			t.Fatalf("%s: %q %v", path, got, err)
		}
		c.(*net.TCPConn).SetLinger(0) // a reset, as a closed browser tab
		c.Close()
		want := 499
		if path == "/whole" {
			want = 200
		} else {
			waitFor(t, gone, "the app's request cancelled")
		}
		if rec := f.record(t); rec.Status != want || rec.BytesSent != int64(len(first)) || rec.ClientAbort != (want == 499) {
			t.Errorf("%s: record %+v, want status %d", path, rec, want)
		}
	}
}

// TestUpstreamDiesMidRequestBody: a streamed request body (over
// BufferBody) whose instance dies before answering gets 502, as nginx
// answers when proxy_request_buffering is off: no byte of the response
// went out, so the client can be told. The request is not sent again
// (part of its body is gone).
func TestUpstreamDiesMidRequestBody(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var calls atomic.Int32
			addr := rawBackend(t, func(c net.Conn) {
				calls.Add(1)
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.CopyN(io.Discard, req.Body, 64<<10)
				c.(*net.TCPConn).SetLinger(0) // dies: unread bytes make a reset
			})
			logger, sink := newLogger()
			f, _ := gsupFront(t, Options{Log: logger, BufferBody: 1024}, addr)
			pr, pw := io.Pipe()
			go func() {
				chunk := bytes.Repeat([]byte("x"), 16<<10)
				for i := 0; i < 256; i++ { // 4 MiB, unless the answer comes first
					if _, err := pw.Write(chunk); err != nil {
						return
					}
				}
				pw.Close()
			}()
			defer pr.Close()
			req, _ := http.NewRequest("POST", f.URL+"/upload", pr)
			if !chunked {
				req.ContentLength = 256 * 16 << 10
			}
			resp, err := client(t).Do(req)
			if err != nil {
				t.Fatalf("the client got no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 502 {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			if rec := f.record(t); rec.Status != 502 || rec.ClientAbort || rec.Upstream != addr {
				t.Errorf("record %+v", rec)
			}
			if calls.Load() != 1 || sink.count(logrus.ErrorLevel) != 1 {
				t.Errorf("app calls %d, log:\n%s", calls.Load(), sink.messages())
			}
		})
	}
}

// An app that closes every connection (Gunicorn's sync workers) gets a new
// connection per request, whose buffers come from connections closed
// before: every answer must still be its own request's, whole, with
// requests at once, heads too large for the kept scratch, and answers
// larger than the read buffer.
func TestAppClosingEveryConnection(t *testing.T) {
	app := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		id := r.URL.Query().Get("id")
		n := len(r.Header.Get("X-Pad")) + len(id)*500
		io.WriteString(w, strings.Repeat(id+".", n/(len(id)+1)+1))
	}))
	f, _ := gsupFront(t, Options{}, app)
	c := client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("%d-%d", g, i)
				req, _ := http.NewRequest("GET", f.URL+"/?id="+id, nil)
				pad := strings.Repeat("p", (i%3)*900) // 0, 900 or 1800 bytes of head
				req.Header.Set("X-Pad", pad)
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				n := len(pad) + len(id)*500
				want := strings.Repeat(id+".", n/(len(id)+1)+1)
				if err != nil || resp.StatusCode != 200 || string(body) != want {
					errs <- fmt.Errorf("request %s: status %d, %d bytes (want %d), err %v", id, resp.StatusCode, len(body), len(want), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A value the Forward hook sets with CR or LF in it reaches the app as one
// field, with spaces in their place: it cannot add a field of its own.
func TestForwardValueWithNewlinesStaysOneField(t *testing.T) {
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hook=%q injected=%q", r.Header.Values("X-Hook"), r.Header.Values("Injected"))
	}))
	f, _ := gsupFront(t, Options{Forward: func(p *forward.Plan, _ forward.Source, _ *http.Request) {
		p.Set("X-Hook", "a\r\nInjected: 1")
		p.Add("X-Hook", "b\nInjected: 2")
		p.Add("X-Hook", "plain")
	}}, addr)
	status, _, body := get(t, f.URL)
	if want := `hook=["a  Injected: 1" "b Injected: 2" "plain"] injected=[]`; status != 200 || body != want {
		t.Errorf("the app saw %d %s, want 200 %s", status, body, want)
	}
}

// TestConnectIsBounded: a connect that the app never completes (its
// listen queue is full, so the kernel drops the connect's SYNs) ends at
// the dial's bound with a 502, and the front answers the next request.
func TestConnectIsBounded(t *testing.T) {
	old := dialTimeout
	dialTimeout = 300 * time.Millisecond
	t.Cleanup(func() { dialTimeout = old })
	_, port := testprog.ListenBacklog0(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Fill the queue: connects complete until one does not.
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	if !full {
		t.Fatal("the listen queue never filled")
	}
	logger, _ := newLogger()
	f, b := gsupFront(t, Options{Log: logger}, addr)
	start := time.Now()
	status, _, _ := get(t, f.URL)
	took := time.Since(start)
	if status != http.StatusBadGateway {
		t.Errorf("status %d, want 502", status)
	}
	if took < dialTimeout || took > dialTimeout+2*time.Second {
		t.Errorf("the answer took %v; the connect's bound is %v", took, dialTimeout)
	}
	if rec := f.record(t); rec.Status != 502 || rec.Upstream != addr {
		t.Errorf("record %+v", rec)
	}
	b.Remove(1)
	b.Add(2, startBackend(t, helloApp))
	if status, _, _ := get(t, f.URL); status != 200 {
		t.Errorf("next request: %d", status)
	}
}

// A value that lies in the head the connection layer checked goes to the
// app as it is; one a handler made or changed since is cleaned as the
// Forward hook's are, even beside values from the head: it cannot add a
// field of its own.
func TestChangedValueWithNewlinesStaysOneField(t *testing.T) {
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kept=%q changed=%q injected=%q", r.Header.Values("X-Kept"), r.Header.Values("X-Changed"), r.Header.Values("Injected"))
	}))
	b := NewBalancer()
	b.Add(1, addr)
	p := NewProxy(b, Options{Forward: stripForwarded})
	f := startFront(t, func(w http.ResponseWriter, r *http.Request, rec *Record) {
		raw := "GET / HTTP/1.1\r\nX-Kept: as sent\r\nX-Changed: was\r\n\r\n"
		i := strings.Index(raw, "as sent")
		names := &head.Names{Head: raw}
		r.Header["X-Kept"] = []string{raw[i : i+len("as sent")]}
		r.Header["X-Changed"] = []string{"a\r\nInjected: 1"}
		p.Serve(w, r.WithContext(context.WithValue(r.Context(), head.NamesKey{}, names)), rec)
	})
	status, _, body := get(t, f.URL)
	if want := `kept=["as sent"] changed=["a  Injected: 1"] injected=[]`; status != 200 || body != want {
		t.Errorf("the app saw %d %s, want 200 %s", status, body, want)
	}
}
