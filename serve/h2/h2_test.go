package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gsup/internal/testcert"
	"gsup/internal/testprog"
)

// wait bounds every wait for something that should happen at once.
const wait = 3 * time.Second

// base is the URL the Transport asks for: every dial goes to the test
// server whatever the host, and the certificate is for example.com.
const base = "https://example.com"

// testServer is a Server behind a real TLS listener on loopback that
// hands it every connection whose handshake chose h2.
type testServer struct {
	srv  *Server
	addr string
	ca   *testcert.CA
}

// startServer serves srv until the test ends; then it closes it and
// waits for every ServeConn to return.
func startServer(t *testing.T, srv *Server) *testServer {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Leaf("example.com")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				tc := tls.Server(c, conf)
				tc.SetDeadline(time.Now().Add(wait))
				if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != "h2" {
					tc.Close()
					return
				}
				tc.SetDeadline(time.Time{})
				srv.ServeConn(tc)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		wg.Wait()
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), ca: ca}
}

func (ts *testServer) clientTLS() *tls.Config {
	conf := ts.ca.ClientConfig("example.com")
	conf.NextProtos = []string{"h2"}
	return conf
}

// client returns an HTTP client on x/net's HTTP/2 Transport that dials
// the test server, and the count of its dials.
func (ts *testServer) client(t *testing.T) (*http.Client, *atomic.Int32) {
	dials := new(atomic.Int32)
	tr := &http2.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			dials.Add(1)
			d := tls.Dialer{Config: ts.clientTLS()}
			return d.DialContext(ctx, "tcp", ts.addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, dials
}

// get asks for path and returns the answer's status and body.
func get(t *testing.T, client *http.Client, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp := open(t, ctx, client, path)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// open sends GET path under ctx and returns the answer, its body closed
// when the test ends.
func open(t *testing.T, ctx context.Context, client *http.Client, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// rawFrame is a copy of a frame the server sent, or (Err set) the end
// of the connection.
type rawFrame struct {
	Type     http2.FrameType
	Stream   uint32
	Flags    http2.Flags
	Length   uint32 // the payload's length, padding included
	Data     []byte // DATA
	Fields   []hpack.HeaderField
	Code     http2.ErrCode // RST_STREAM, GOAWAY
	Last     uint32        // GOAWAY's last stream
	Incr     uint32        // WINDOW_UPDATE
	Settings []http2.Setting
	Ping     [8]byte
	Err      error
}

func (f rawFrame) ended() bool {
	return (f.Type == http2.FrameData || f.Type == http2.FrameHeaders) && f.Flags&0x1 != 0
}

func (f rawFrame) String() string {
	switch {
	case f.Err != nil:
		return "end of connection: " + f.Err.Error()
	case f.Type == http2.FrameRSTStream:
		return fmt.Sprintf("RST_STREAM stream=%d %v", f.Stream, f.Code)
	case f.Type == http2.FrameGoAway:
		return fmt.Sprintf("GOAWAY last=%d %v", f.Last, f.Code)
	case f.Type == http2.FrameHeaders:
		return fmt.Sprintf("HEADERS stream=%d end=%v %v", f.Stream, f.ended(), f.Fields)
	}
	return fmt.Sprintf("%v stream=%d flags=%v length=%d", f.Type, f.Stream, f.Flags, f.Length)
}

func copyFrame(f http2.Frame) rawFrame {
	h := f.Header()
	rf := rawFrame{Type: h.Type, Stream: h.StreamID, Flags: h.Flags, Length: h.Length}
	switch f := f.(type) {
	case *http2.DataFrame:
		rf.Data = bytes.Clone(f.Data())
	case *http2.MetaHeadersFrame:
		rf.Fields = slices.Clone(f.Fields)
	case *http2.RSTStreamFrame:
		rf.Code = f.ErrCode
	case *http2.GoAwayFrame:
		rf.Code, rf.Last = f.ErrCode, f.LastStreamID
	case *http2.WindowUpdateFrame:
		rf.Incr = f.Increment
	case *http2.SettingsFrame:
		f.ForeachSetting(func(s http2.Setting) error {
			rf.Settings = append(rf.Settings, s)
			return nil
		})
	case *http2.PingFrame:
		rf.Ping = f.Data
	}
	return rf
}

// rawClient is an HTTP/2 client driven frame by frame over a real TLS
// connection. A goroutine reads the server's frames into a queue and
// keeps the send windows the server gives (its WINDOW_UPDATEs and
// SETTINGS are not queued); the test writes frames and takes queued
// ones. Only the test's goroutine uses its methods.
type rawClient struct {
	t       *testing.T
	tc      *tls.Conn
	fr      *http2.Framer // the writing side
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	pending []rawFrame // taken from the queue, not asked for yet
	pings   byte

	mu      sync.Mutex
	queue   []rawFrame
	connWin int64            // what this client may still send on the connection
	win     map[uint32]int64 // and on each stream it opened
	initWin int64            // the server's SETTINGS_INITIAL_WINDOW_SIZE
	more    chan struct{}    // a frame was queued
	opened  chan struct{}    // a window grew
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// dialRaw connects to ts, sends the preface and settings, and returns
// once the server's SETTINGS have come (and have been acknowledged).
func dialRaw(t *testing.T, ts *testServer, settings ...http2.Setting) *rawClient {
	t.Helper()
	d := &net.Dialer{Timeout: wait}
	tc, err := tls.DialWithDialer(d, "tcp", ts.addr, ts.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	rc := &rawClient{t: t, tc: tc, fr: http2.NewFramer(tc, nil), connWin: 65535, initWin: 65535,
		win: map[uint32]int64{}, more: make(chan struct{}, 1), opened: make(chan struct{}, 1)}
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	rfr := http2.NewFramer(nil, tc)
	rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rfr.MaxHeaderListSize = 1 << 20
	done := make(chan struct{})
	go func() {
		defer close(done)
		rc.readLoop(rfr)
	}()
	t.Cleanup(func() {
		tc.Close()
		<-done
	})
	if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	rc.waitFor("the server's SETTINGS", func(f rawFrame) bool { return f.Type == http2.FrameSettings })
	if err := rc.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return rc
}

func (rc *rawClient) readLoop(fr *http2.Framer) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			rc.mu.Lock()
			rc.queue = append(rc.queue, rawFrame{Err: err})
			rc.mu.Unlock()
			notify(rc.more)
			return
		}
		rf := copyFrame(f)
		keep := true
		rc.mu.Lock()
		switch rf.Type {
		case http2.FrameWindowUpdate:
			keep = false
			if rf.Stream == 0 {
				rc.connWin += int64(rf.Incr)
			} else if _, ok := rc.win[rf.Stream]; ok {
				rc.win[rf.Stream] += int64(rf.Incr)
			}
			notify(rc.opened)
		case http2.FrameSettings:
			keep = !rf.Flags.Has(http2.FlagSettingsAck)
			for _, s := range rf.Settings {
				if s.ID == http2.SettingInitialWindowSize {
					delta := int64(s.Val) - rc.initWin
					rc.initWin = int64(s.Val)
					for id := range rc.win {
						rc.win[id] += delta
					}
				}
			}
			notify(rc.opened)
		}
		if keep {
			rc.queue = append(rc.queue, rf)
		}
		rc.mu.Unlock()
		if keep {
			notify(rc.more)
		}
	}
}

// take returns the next queued frame, waiting up to d (false: none
// came). The end of the connection stays queued.
func (rc *rawClient) take(d time.Duration) (rawFrame, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		rc.mu.Lock()
		if len(rc.queue) > 0 {
			f := rc.queue[0]
			if f.Err == nil {
				rc.queue = rc.queue[1:]
			}
			rc.mu.Unlock()
			return f, true
		}
		rc.mu.Unlock()
		select {
		case <-rc.more:
		case <-timer.C:
			return rawFrame{}, false
		}
	}
}

// waitFor returns the first frame that match accepts, among those put
// aside before and those still to come; it fails the test if the
// connection ends or fails first, or nothing matches within wait.
func (rc *rawClient) waitFor(what string, match func(rawFrame) bool) rawFrame {
	rc.t.Helper()
	for i, f := range rc.pending {
		if match(f) {
			rc.pending = slices.Delete(rc.pending, i, i+1)
			return f
		}
	}
	deadline := time.Now().Add(wait)
	for {
		f, ok := rc.take(time.Until(deadline))
		switch {
		case !ok:
			rc.t.Fatalf("no %s within %v", what, wait)
		case match(f):
			return f
		case f.Err != nil:
			rc.t.Fatalf("waiting for %s: %v", what, f)
		case f.Type == http2.FrameGoAway && f.Code != http2.ErrCodeNo:
			rc.t.Fatalf("waiting for %s, the server failed the connection: %v", what, f)
		}
		rc.pending = append(rc.pending, f)
	}
}

// frameOn returns the next frame on stream id.
func (rc *rawClient) frameOn(id uint32) rawFrame {
	rc.t.Helper()
	return rc.waitFor(fmt.Sprintf("frame on stream %d", id), func(f rawFrame) bool { return f.Err == nil && f.Stream == id })
}

// goAway returns the next GOAWAY.
func (rc *rawClient) goAway() rawFrame {
	rc.t.Helper()
	return rc.waitFor("GOAWAY", func(f rawFrame) bool { return f.Err == nil && f.Type == http2.FrameGoAway })
}

// quiet fails the test if, within d, the connection ends, a GOAWAY
// comes or a frame on stream id (if not 0).
func (rc *rawClient) quiet(id uint32, d time.Duration) {
	rc.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, ok := rc.take(time.Until(deadline))
		if !ok {
			return
		}
		if f.Err != nil || f.Type == http2.FrameGoAway || id != 0 && f.Stream == id {
			rc.t.Fatalf("expected nothing for %v, got %v", d, f)
		}
		rc.pending = append(rc.pending, f)
	}
}

// waitClosed waits for the server to end the connection.
func (rc *rawClient) waitClosed() {
	rc.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		f, ok := rc.take(time.Until(deadline))
		if !ok {
			rc.t.Fatalf("the connection is still open after %v", wait)
		}
		if f.Err != nil {
			return
		}
	}
}

// reqFields returns a request's pseudo-fields and extra.
func reqFields(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "https", ":authority", "example.com", ":path", path}, extra...)
}

// headers sends a header block of the name, value pairs in kv on id.
func (rc *rawClient) headers(id uint32, end bool, kv ...string) {
	rc.t.Helper()
	rc.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	rc.mu.Lock()
	if _, ok := rc.win[id]; !ok {
		rc.win[id] = rc.initWin
	}
	rc.mu.Unlock()
	block := rc.hbuf.Bytes()
	first := block[:min(len(block), 16384)]
	block = block[len(first):]
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		frag := block[:min(len(block), 16384)]
		block = block[len(frag):]
		err = rc.fr.WriteContinuation(id, len(block) == 0, frag)
	}
	if err != nil {
		rc.t.Fatalf("writing HEADERS: %v", err)
	}
}

func (rc *rawClient) get(id uint32, path string) {
	rc.t.Helper()
	rc.headers(id, true, reqFields("GET", path)...)
}

// reserve takes n bytes of send window on stream id, or (exact false)
// as many as there are up to n, once there is one; it fails the test if
// the server keeps the windows shut.
func (rc *rawClient) reserve(id uint32, n int, exact bool) int {
	rc.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		rc.mu.Lock()
		avail := min(rc.connWin, rc.win[id])
		if avail >= int64(n) || !exact && avail > 0 {
			m := min(avail, int64(n))
			rc.connWin -= m
			rc.win[id] -= m
			rc.mu.Unlock()
			return int(m)
		}
		cw, sw := rc.connWin, rc.win[id]
		rc.mu.Unlock()
		select {
		case <-rc.opened:
		case <-timer.C:
			rc.t.Fatalf("stream %d: the server kept its window shut for %v (connection window %d, stream window %d)", id, wait, cw, sw)
		}
	}
}

// send sends p as DATA on id, as the server's windows let it.
func (rc *rawClient) send(id uint32, p []byte, end bool) {
	rc.t.Helper()
	for len(p) > 0 || end {
		n := 0
		if len(p) > 0 {
			n = rc.reserve(id, min(len(p), 16384), false)
		}
		last := end && n == len(p)
		if err := rc.fr.WriteData(id, last, p[:n]); err != nil {
			rc.t.Fatalf("writing DATA: %v", err)
		}
		p = p[n:]
		if last {
			return
		}
	}
}

func (rc *rawClient) windowUpdate(id uint32, n uint32) {
	rc.t.Helper()
	if err := rc.fr.WriteWindowUpdate(id, n); err != nil {
		rc.t.Fatalf("writing WINDOW_UPDATE: %v", err)
	}
}

// ping sends a PING and waits for its answer: the server has taken
// every frame sent before.
func (rc *rawClient) ping() {
	rc.t.Helper()
	rc.pings++
	data := [8]byte{'s', 'y', 'n', 'c', rc.pings}
	if err := rc.fr.WritePing(false, data); err != nil {
		rc.t.Fatalf("writing PING: %v", err)
	}
	rc.waitFor("PING answer", func(f rawFrame) bool {
		return f.Err == nil && f.Type == http2.FramePing && f.Flags.Has(http2.FlagPingAck) && f.Ping == data
	})
}

// rawResponse is an answer as read from the frames of its stream.
type rawResponse struct {
	info    []string // 1xx statuses, in order
	status  string
	header  http.Header
	body    []byte
	trailer http.Header
	ended   bool // END_STREAM came
	reset   bool // RST_STREAM came, with code, before END_STREAM
	code    http2.ErrCode
}

func fieldsHeader(fields []hpack.HeaderField) http.Header {
	h := http.Header{}
	for _, f := range fields {
		if !strings.HasPrefix(f.Name, ":") {
			h.Add(f.Name, f.Value)
		}
	}
	return h
}

func status(fields []hpack.HeaderField) string {
	for _, f := range fields {
		if f.Name == ":status" {
			return f.Value
		}
	}
	return ""
}

// response reads the answer on stream id until END_STREAM or
// RST_STREAM, giving back the windows its DATA took.
func (rc *rawClient) response(id uint32) rawResponse {
	rc.t.Helper()
	var r rawResponse
	for {
		f := rc.frameOn(id)
		switch f.Type {
		case http2.FrameHeaders:
			switch s := status(f.Fields); {
			case r.status != "":
				r.trailer = fieldsHeader(f.Fields)
			case len(s) == 3 && s[0] == '1':
				r.info = append(r.info, s)
			default:
				r.status, r.header = s, fieldsHeader(f.Fields)
			}
		case http2.FrameData:
			r.body = append(r.body, f.Data...)
			if f.Length > 0 {
				rc.windowUpdate(0, f.Length)
				if !f.ended() {
					rc.windowUpdate(id, f.Length)
				}
			}
		case http2.FrameRSTStream:
			r.reset, r.code = true, f.Code
			return r
		}
		if f.ended() {
			r.ended = true
			return r
		}
	}
}

// expectOK reads the answer on id and fails the test unless it is a
// whole 200 with body want.
func (rc *rawClient) expectOK(id uint32, want string) {
	rc.t.Helper()
	r := rc.response(id)
	if r.status != "200" || !r.ended || string(r.body) != want {
		rc.t.Fatalf("stream %d: got status %q, body %q, ended %v, reset %v %v; want 200 %q", id, r.status, r.body, r.ended, r.reset, r.code, want)
	}
}

// pattern returns n bytes that repeat nowhere near a frame's length.
func pattern(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestConcurrentRequestsShareOneConnectionWithoutCrossTalk(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Echo", r.Header.Get("X-Id"))
		fmt.Fprintf(w, "%s %s %s", r.URL.Query().Get("id"), r.Header.Get("X-Id"), body)
	})})
	client, dials := ts.client(t)
	const total, parallel = 200, 50
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range total {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := strconv.Itoa(i)
			body := strings.Repeat("body"+id+";", 1+i*97%300)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", base+"/echo?id="+id, strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("X-Id", id)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if want := id + " " + id + " " + body; err != nil || resp.StatusCode != 200 || string(got) != want || resp.Header.Get("X-Echo") != id {
				t.Errorf("request %d: got %d %q (X-Echo %q, err %v), want 200 %q", i, resp.StatusCode, got, resp.Header.Get("X-Echo"), err, want)
			}
		})
	}
	wg.Wait()
	if n := dials.Load(); n != 1 {
		t.Errorf("the client dialled %d connections, want 1", n)
	}
}

func TestLargeResponseArrivesWholeWithinTheClientsWindows(t *testing.T) {
	const size = 3<<20 + 5 // not a multiple of a frame
	payload := pattern(size)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for p := payload; len(p) > 0; {
			n := min(len(p), 100_000)
			if _, err := w.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	})})

	t.Run("transport", func(t *testing.T) {
		client, _ := ts.client(t)
		_, body := get(t, client, "/big")
		if len(body) != size || body != string(payload) {
			t.Fatalf("got %d bytes (sha256 %s), want %d (sha256 %s)", len(body), sum([]byte(body)), size, sum(payload))
		}
	})

	t.Run("window 1000", func(t *testing.T) {
		rc := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		rc.get(1, "/big")
		streamWin, connWin := int64(1000), int64(65535) // what the server may send
		var body []byte
		code := ""
		for round := 0; ; {
			f := rc.frameOn(1)
			switch f.Type {
			case http2.FrameHeaders:
				code = status(f.Fields)
			case http2.FrameData:
				if f.Length > 16384 {
					t.Fatalf("a DATA frame of %d bytes, over the default SETTINGS_MAX_FRAME_SIZE", f.Length)
				}
				streamWin -= int64(f.Length)
				connWin -= int64(f.Length)
				if streamWin < 0 || connWin < 0 {
					t.Fatalf("after %d bytes the server sent past the window it had: stream window %d, connection window %d", len(body)+len(f.Data), streamWin, connWin)
				}
				body = append(body, f.Data...)
			default:
				t.Fatalf("unexpected %v", f)
			}
			if f.ended() {
				break
			}
			if streamWin == 0 {
				if round%50 == 0 {
					rc.quiet(1, 30*time.Millisecond) // the server waits for the window
				}
				grant := uint32(1 + round*7919%20011)
				rc.windowUpdate(1, grant)
				rc.windowUpdate(0, grant)
				streamWin += int64(grant)
				connWin += int64(grant)
				round++
			}
		}
		if code != "200" || !bytes.Equal(body, payload) {
			t.Fatalf("got status %q and %d bytes (sha256 %s), want 200 and %d (sha256 %s)", code, len(body), sum(body), size, sum(payload))
		}
	})
}

func TestStreamWithShutWindowIsResetAfterSendTimeout(t *testing.T) {
	const sendTimeout = 300 * time.Millisecond
	writeErr := make(chan error, 1)
	ts := startServer(t, &Server{SendTimeout: sendTimeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		chunk := make([]byte, 64<<10)
		for range 100 {
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})})
	rc := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	start := time.Now()
	rc.get(1, "/big")
	for {
		f := rc.frameOn(1)
		if f.Type == http2.FrameHeaders && !f.ended() {
			continue // the answer's fields may come: they take no window
		}
		if f.Type != http2.FrameRSTStream {
			t.Fatalf("got %v on a stream whose window is 0, want RST_STREAM", f)
		}
		if d := time.Since(start); d < sendTimeout {
			t.Fatalf("the stream was reset after %v, before SendTimeout (%v)", d, sendTimeout)
		}
		t.Logf("reset with %v", f.Code)
		break
	}
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("the handler wrote 6.4 MB into a window of 0 without an error")
		}
	case <-time.After(wait):
		t.Fatal("the handler's Write did not return")
	}
	// The connection goes on: with a window, another stream is answered.
	if err := rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}); err != nil {
		t.Fatal(err)
	}
	rc.get(3, "/small")
	rc.expectOK(3, "small")
}

// readBody reads r's body whole for a test handler; a failed read is
// answered 400 with its error, and ok is false.
func readBody(w http.ResponseWriter, r *http.Request) (b []byte, ok bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return b, true
}

func TestUploadsGetWholeAndUnreadBodiesGiveTheWindowBack(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			io.WriteString(w, "ignored")
			return
		}
		if b, ok := readBody(w, r); ok {
			fmt.Fprintf(w, "%d %s", len(b), sum(b))
		}
	})})

	t.Run("5 MiB", func(t *testing.T) {
		client, _ := ts.client(t)
		body := pattern(5 << 20)
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/upload", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %s", len(body), sum(body)); err != nil || string(got) != want {
			t.Fatalf("got %q (%v), want %q", got, err, want)
		}
	})

	t.Run("unread bodies", func(t *testing.T) {
		rc := dialRaw(t, ts)
		body := pattern(200 << 10)
		// 20 bodies of 200 KiB, 4 MB in all, through a connection window
		// of 1 MiB: every byte is sent (as a client does before it sees
		// the RST_STREAM that follows each answer), and the server has to
		// give the window back for what its handlers never read.
		for i := range uint32(20) {
			id := 1 + 2*i
			rc.headers(id, false, reqFields("POST", "/ignore", "content-length", strconv.Itoa(len(body)))...)
			rc.send(id, body, true)
		}
		for i := range uint32(20) {
			rc.expectOK(1+2*i, "ignored")
		}
		big := pattern(1<<20 + 1)
		rc.headers(41, false, reqFields("POST", "/upload")...)
		rc.send(41, big, true)
		rc.expectOK(41, fmt.Sprintf("%d %s", len(big), sum(big)))
	})
}

func TestClientResetCancelsTheHandlersContext(t *testing.T) {
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			io.WriteString(w, "ok")
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(2 * wait):
			cancelled <- errors.New("never cancelled")
		}
	})})
	client, dials := ts.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	open(t, ctx, client, "/wait")
	<-started
	at := time.Now()
	cancel() // the Transport sends RST_STREAM CANCEL
	select {
	case err := <-cancelled:
		if err == nil || time.Since(at) > time.Second {
			t.Fatalf("the handler's context ended with %v after %v", err, time.Since(at))
		}
	case <-time.After(wait):
		t.Fatal("the handler's context was not cancelled")
	}
	// The connection goes on serving.
	if code, body := get(t, client, "/ok"); code != 200 || body != "ok" {
		t.Fatalf("after the reset: got %d %q, want 200 ok", code, body)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the client dialled %d connections, want 1", n)
	}
}

func TestTrailersBothWays(t *testing.T) {
	const tail = "late value"
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s|%s", body, r.Trailer.Get("X-Req-Sum"))
		case "/announced":
			w.Header().Set("Trailer", "X-Sum")
			body := []byte("announced body")
			w.Write(body)
			w.Header().Set("X-Sum", sum(body))
		case "/prefixed":
			io.WriteString(w, "prefixed body")
			w.Header().Set(http.TrailerPrefix+"X-Late", tail)
		}
	})})
	client, _ := ts.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	t.Run("request", func(t *testing.T) {
		pr, pw := io.Pipe()
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/echo", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = http.Header{"X-Req-Sum": nil}
		go func() {
			io.WriteString(pw, "hello ")
			io.WriteString(pw, "world")
			req.Trailer.Set("X-Req-Sum", "abc123")
			pw.Close()
		}()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got, err := io.ReadAll(resp.Body); err != nil || string(got) != "hello world|abc123" {
			t.Fatalf("got %q (%v), want the body and the trailer %q", got, err, "hello world|abc123")
		}
	})

	for _, c := range []struct{ path, name, want, body string }{
		{"/announced", "X-Sum", sum([]byte("announced body")), "announced body"},
		{"/prefixed", "X-Late", tail, "prefixed body"},
	} {
		t.Run(c.path[1:], func(t *testing.T) {
			resp := open(t, ctx, client, c.path)
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != c.body {
				t.Fatalf("body %q (%v), want %q", body, err, c.body)
			}
			if got := resp.Trailer.Get(c.name); got != c.want {
				t.Errorf("trailer %s = %q, want %q (trailers %v)", c.name, got, c.want, resp.Trailer)
			}
			if got := resp.Header.Get(c.name); got != "" {
				t.Errorf("%s also came as a header field (%q): a trailer set after the handler wrote belongs in the trailers only", c.name, got)
			}
		})
	}
}

func TestFlushSendsWhatIsWrittenAtOnce(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "b")
	})})
	client, _ := ts.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp := open(t, ctx, client, "/stream")
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "a" {
		t.Fatalf("first byte %q (%v), want a", first, err) // a timeout here: the flush did not send it
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "b" {
		t.Fatalf("the rest: %q (%v), want b", rest, err)
	}
}

func TestShutdownSendsGoAwayAndFinishesStreamsInFlight(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
			io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	})}
	ts := startServer(t, srv)
	rc := dialRaw(t, ts)
	rc.get(1, "/slow")
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	g := rc.goAway()
	if g.Code != http2.ErrCodeNo || g.Last != 1 {
		t.Fatalf("got %v, want GOAWAY NO_ERROR naming stream 1", g)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
	default:
	}
	close(release)
	rc.expectOK(1, "done")
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Shutdown did not return once the stream ended")
	}
	rc.waitClosed()

	// A connection given to ServeConn now is closed at once.
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", ts.addr, ts.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	io.WriteString(tc, http2.ClientPreface)
	tc.SetReadDeadline(time.Now().Add(wait))
	n, err := tc.Read(make([]byte, 64))
	if err == nil || isTimeout(err) {
		t.Fatalf("a connection after Shutdown: read %d bytes, %v; want it closed", n, err)
	}
}

func TestIdleTimeoutClosesOnlyConnectionsWithoutStreams(t *testing.T) {
	const idle = 200 * time.Millisecond
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, &Server{IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
			io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	})})

	t.Run("idle", func(t *testing.T) {
		start := time.Now()
		rc := dialRaw(t, ts)
		if g := rc.goAway(); g.Code != http2.ErrCodeNo {
			t.Fatalf("got %v, want GOAWAY NO_ERROR", g)
		}
		if d := time.Since(start); d < idle {
			t.Fatalf("GOAWAY after %v, before IdleTimeout (%v)", d, idle)
		}
		rc.waitClosed()
	})

	t.Run("busy", func(t *testing.T) {
		rc := dialRaw(t, ts)
		rc.get(1, "/slow")
		<-started
		rc.quiet(0, 3*idle) // no GOAWAY, no close while the stream is open
		close(release)
		rc.expectOK(1, "done")
		// Idle again, it goes.
		if g := rc.goAway(); g.Code != http2.ErrCodeNo {
			t.Fatalf("got %v, want GOAWAY NO_ERROR", g)
		}
		rc.waitClosed()
	})
}

func TestHeadersOverMaxHeaderBytesGet431(t *testing.T) {
	const limit = 1024
	type refusal struct{ status, bytes int }
	refused := make(chan refusal, 4)
	var sawBig atomic.Bool
	ts := startServer(t, &Server{MaxHeaderBytes: limit,
		Refused: func(c net.Conn, status, n int) { refused <- refusal{status, n} },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k := range r.Header {
				if strings.HasPrefix(k, "X-Big") {
					sawBig.Store(true)
				}
			}
			io.WriteString(w, "ok")
		})})
	for _, c := range []struct {
		name   string
		fields []string
	}{
		{"many fields", []string{"x-big-1", strings.Repeat("a", 300), "x-big-2", strings.Repeat("b", 300),
			"x-big-3", strings.Repeat("c", 300), "x-big-4", strings.Repeat("d", 300)}},
		{"one field", []string{"x-big", strings.Repeat("e", 2*limit)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, ts)
			rc.headers(1, true, reqFields("GET", "/big", c.fields...)...)
			r := rc.response(1)
			if r.status != "431" || !r.ended {
				t.Fatalf("got status %q (ended %v, reset %v %v), want 431", r.status, r.ended, r.reset, r.code)
			}
			select {
			case got := <-refused:
				if got.status != http.StatusRequestHeaderFieldsTooLarge || got.bytes != len(r.body) {
					t.Errorf("Refused got %d, %d bytes; want 431, %d", got.status, got.bytes, len(r.body))
				}
			case <-time.After(wait):
				t.Error("Refused was not called")
			}
			rc.get(3, "/")
			rc.expectOK(3, "ok")
			if sawBig.Load() {
				t.Error("the handler saw the refused request")
			}
		})
	}
}

func TestMalformedRequestsAreStreamErrors(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	clEntered := make(chan struct{}, 1)
	clRead := make(chan error, 1)
	clRelease := make(chan struct{})
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/cl" {
			clEntered <- struct{}{}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				clRead <- nil
			} else {
				clRead <- fmt.Errorf("read %q without an error", b)
			}
			// Its context is cancelled already; it returns once the
			// test has seen the reset, as the client must see no answer.
			<-clRelease
			return
		}
		io.WriteString(w, "ok")
	})})
	release := sync.OnceFunc(func() { close(clRelease) })
	t.Cleanup(release)
	rc := dialRaw(t, ts)
	expectReset := func(id uint32, what string) {
		t.Helper()
		f := rc.frameOn(id)
		if f.Type != http2.FrameRSTStream || f.Code != http2.ErrCodeProtocol {
			t.Fatalf("%s: got %v, want RST_STREAM PROTOCOL_ERROR", what, f)
		}
	}
	id := uint32(1)
	for _, c := range []struct {
		name   string
		fields []string
	}{
		{"connection field", reqFields("GET", "/bad", "connection", "keep-alive")},
		{"TE other than trailers", reqFields("GET", "/bad", "te", "gzip")},
		{"no :path", []string{":method", "GET", ":scheme", "https", ":authority", "example.com"}},
	} {
		rc.headers(id, true, c.fields...)
		expectReset(id, c.name)
		id += 2
	}

	// Content-Length 5 and a body of 3: the handler has the request (its
	// fields are right) but not a body that ends well; RST after the body.
	rc.headers(id, false, reqFields("POST", "/cl", "content-length", "5")...)
	<-clEntered
	rc.send(id, []byte("abc"), true)
	expectReset(id, "content-length 5, body 3")
	select {
	case err := <-clRead:
		if err != nil {
			t.Errorf("the handler's body: %v", err)
		}
	case <-time.After(wait):
		t.Error("the handler's read did not end")
	}
	release() // its answer, if any, must not go out now
	id += 2

	rc.get(id, "/ok")
	rc.expectOK(id, "ok")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(paths, []string{"/cl", "/ok"}) {
		t.Errorf("the handler saw %q, want only /cl and /ok", paths)
	}
}

func TestHandlerPanicResetsOnlyItsStream(t *testing.T) {
	logged := &testprog.Buffer{}
	log := logrus.New()
	log.Out = logged
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, &Server{Log: log, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		case "/abort":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/slow":
			started <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok")
	})})
	rc := dialRaw(t, ts)
	rc.get(1, "/slow")
	<-started
	rc.get(3, "/panic")
	if r := rc.response(3); !r.reset || r.code != http2.ErrCodeInternal || r.status != "" {
		t.Fatalf("/panic: got status %q, reset %v %v; want RST_STREAM INTERNAL_ERROR", r.status, r.reset, r.code)
	}
	rc.get(5, "/abort")
	if r := rc.response(5); !r.reset || r.code != http2.ErrCodeInternal || r.ended {
		t.Fatalf("/abort: got status %q, body %q, ended %v, reset %v %v; want RST_STREAM INTERNAL_ERROR", r.status, r.body, r.ended, r.reset, r.code)
	}
	close(release)
	rc.expectOK(1, "ok")
	rc.get(7, "/ok")
	rc.expectOK(7, "ok")
	testprog.Eventually(t, "the panic logged", wait, func() (bool, string) {
		return strings.Contains(logged.String(), "boom"), logged.String()
	})
	if s := logged.String(); strings.Contains(s, "abort Handler") {
		t.Errorf("http.ErrAbortHandler was logged: %s", s)
	}
}

func TestRequestFieldsAsTheHandlerSeesThem(t *testing.T) {
	type seen struct {
		method, proto, host, remote, uri, path, query, cookie string
		major, minor                                          int
		hostField, tls                                        bool
		alpn                                                  string
		length                                                int64
		body                                                  string
	}
	got := make(chan seen, 2)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, proto: r.Proto, host: r.Host, remote: r.RemoteAddr, uri: r.RequestURI,
			path: r.URL.Path, query: r.URL.RawQuery, cookie: r.Header.Get("Cookie"), major: r.ProtoMajor,
			minor: r.ProtoMinor, tls: r.TLS != nil, length: r.ContentLength}
		_, s.hostField = r.Header["Host"]
		if r.TLS != nil {
			s.alpn = r.TLS.NegotiatedProtocol
		}
		b, _ := io.ReadAll(r.Body)
		s.body = string(b)
		got <- s
		io.WriteString(w, "ok")
	})})
	rc := dialRaw(t, ts)
	local := rc.tc.LocalAddr().String()

	rc.headers(1, true, reqFields("GET", "/p/a?q=1", "cookie", "a=1", "accept", "*/*", "cookie", "b=2")...)
	rc.expectOK(1, "ok")
	want := seen{method: "GET", proto: "HTTP/2.0", major: 2, minor: 0, host: "example.com", remote: local,
		uri: "/p/a?q=1", path: "/p/a", query: "q=1", cookie: "a=1; b=2", tls: true, alpn: "h2", length: 0}
	if s := <-got; s != want {
		t.Errorf("GET:\n got %+v\nwant %+v", s, want)
	}

	rc.headers(3, false, reqFields("POST", "/post")...)
	rc.send(3, []byte("xyz"), true)
	rc.expectOK(3, "ok")
	want = seen{method: "POST", proto: "HTTP/2.0", major: 2, host: "example.com", remote: local,
		uri: "/post", path: "/post", tls: true, alpn: "h2", length: -1, body: "xyz"}
	if s := <-got; s != want {
		t.Errorf("POST without content-length:\n got %+v\nwant %+v", s, want)
	}
}

func TestExpectContinueIsAnsweredOnTheFirstRead(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/noread" {
			io.WriteString(w, "not read")
			return
		}
		if b, ok := readBody(w, r); ok {
			fmt.Fprintf(w, "got %d", len(b))
		}
	})})
	rc := dialRaw(t, ts)

	rc.headers(1, false, reqFields("POST", "/read", "expect", "100-continue", "content-length", "5")...)
	f := rc.frameOn(1)
	if f.Type != http2.FrameHeaders || status(f.Fields) != "100" || f.ended() {
		t.Fatalf("got %v before sending the body, want HEADERS :status 100", f)
	}
	rc.send(1, []byte("hello"), true)
	r := rc.response(1)
	if r.status != "200" || string(r.body) != "got 5" || len(r.info) != 0 {
		t.Fatalf("got %v %q (informational %v), want 200 %q", r.status, r.body, r.info, "got 5")
	}

	// A handler that does not read: no 100, the final answer only.
	rc.headers(3, false, reqFields("POST", "/noread", "expect", "100-continue", "content-length", "5")...)
	r = rc.response(3)
	if len(r.info) != 0 || r.status != "200" || string(r.body) != "not read" {
		t.Fatalf("got informational %v, then %q %q; want only 200 %q", r.info, r.status, r.body, "not read")
	}
}

// A client may send frames on a stream before it sees the RST_STREAM
// that ended it: the server must ignore them (RFC 9113, 5.1), trailers
// included, not end the connection.
func TestLateFramesOnAStreamTheServerResetAreIgnored(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "quick")
	})})
	rc := dialRaw(t, ts)
	rc.headers(1, false, reqFields("POST", "/quick", "trailer", "x-t")...)
	rc.send(1, []byte("abc"), false)
	rc.expectOK(1, "quick")
	// The answer came before the body ended: the server resets the rest.
	if f := rc.frameOn(1); f.Type != http2.FrameRSTStream {
		t.Fatalf("got %v after the answer, want RST_STREAM", f)
	}
	rc.send(1, []byte("late data"), false)
	rc.headers(1, true, "x-t", "late trailer")
	rc.get(3, "/quick")
	rc.expectOK(3, "quick")
}

// Padding counts against both windows (RFC 9113, 6.1): the server must
// give it back to the stream as well as to the connection, or a padded
// body stalls.
func TestPaddedRequestBodyArrivesWhole(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	})})
	rc := dialRaw(t, ts)
	// 10,000 frames of 100 bytes and 255 of padding: 3.5 MB of window
	// for 1 MB of body.
	const frames, chunk = 10_000, 100
	pad := make([]byte, 255)
	rc.headers(1, false, reqFields("POST", "/count")...)
	data := pattern(chunk)
	for i := range frames {
		rc.reserve(1, chunk+1+len(pad), true)
		if err := rc.fr.WriteDataPadded(1, i == frames-1, data, pad); err != nil {
			t.Fatalf("writing DATA: %v", err)
		}
	}
	rc.expectOK(1, strconv.Itoa(frames*chunk))
}

// For a server request the Trailer map holds the announced keys with
// nil values until the body has been read to its end (net/http's
// contract), even when the trailers came before the handler read.
func TestRequestTrailersAppearAtTheEndOfTheBody(t *testing.T) {
	release := make(chan struct{})
	type seen struct {
		before   []string
		announce bool
		body     string
		after    string
	}
	got := make(chan seen, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		var s seen
		s.before, s.announce = r.Trailer["X-Req-Sum"]
		b, _ := io.ReadAll(r.Body)
		s.body, s.after = string(b), r.Trailer.Get("X-Req-Sum")
		got <- s
	})})
	rc := dialRaw(t, ts)
	rc.headers(1, false, reqFields("POST", "/t", "trailer", "x-req-sum")...)
	rc.send(1, []byte("abc"), false)
	rc.headers(1, true, "x-req-sum", "42")
	rc.ping() // the server has taken the trailers
	close(release)
	rc.expectOK(1, "")
	s := <-got
	if !s.announce || s.before != nil {
		t.Errorf("before the body was read: Trailer[X-Req-Sum] = %q (present %v), want present and nil", s.before, s.announce)
	}
	if s.body != "abc" || s.after != "42" {
		t.Errorf("after: body %q, trailer %q; want abc, 42", s.body, s.after)
	}
}

// A header block left unfinished (HEADERS without END_HEADERS, no
// CONTINUATION) ends the connection after ReadHeaderTimeout, also while
// another stream of it is open: the idle timeout does not apply then.
func TestUnfinishedHeaderBlockTimesOut(t *testing.T) {
	const headerWait = 200 * time.Millisecond
	started := make(chan struct{}, 1)
	ts := startServer(t, &Server{ReadHeaderTimeout: headerWait, IdleTimeout: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	})})
	rc := dialRaw(t, ts)
	rc.get(1, "/long") // open while the block trickles
	<-started
	rc.hbuf.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/"}} {
		rc.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	start := time.Now()
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: rc.hbuf.Bytes(), EndStream: true}); err != nil {
		t.Fatal(err)
	}
	rc.waitClosed()
	if d := time.Since(start); d < headerWait {
		t.Errorf("closed after %v, before ReadHeaderTimeout (%v)", d, headerWait)
	}
}

// A frame on an even-numbered stream, which only the server could open
// and never does, is a connection error (RFC 9113, 5.1.1), also below
// the highest stream the client opened.
func TestFramesOnEvenStreamsEndTheConnection(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})})
	rc := dialRaw(t, ts)
	rc.get(1, "/")
	rc.expectOK(1, "ok")
	rc.get(3, "/")
	rc.expectOK(3, "ok")
	rc.windowUpdate(2, 100)
	if g := rc.goAway(); g.Code != http2.ErrCodeProtocol {
		t.Fatalf("got %v, want GOAWAY PROTOCOL_ERROR", g)
	}
	rc.waitClosed()
}
