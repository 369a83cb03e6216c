package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"gsup/internal/testprog"
)

// validResponses seed the garbage generator and the fuzz corpora.
var validResponses = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil close",
	"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 500 Internal Server Error\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\nContent-Length: 4\r\n\r\nboom",
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n",
	"HTTP/1.1 200 OK\nSet-Cookie: a=1\nSet-Cookie: b=2\ncontent-length: 1\n\nx",
}

// mutate applies a few random edits to s.
func mutate(r *rand.Rand, s string) string {
	b := []byte(s)
	for range 1 + r.IntN(4) {
		if len(b) == 0 {
			break
		}
		i := r.IntN(len(b))
		switch r.IntN(6) {
		case 0:
			b[i] = byte(r.IntN(256))
		case 1:
			special := "\r\n: \x00\t0f;,-"
			b = append(b[:i], append([]byte{special[r.IntN(len(special))]}, b[i:]...)...)
		case 2:
			b = b[:i]
		case 3:
			j := i + r.IntN(len(b)-i)
			b = append(b[:i], b[j:]...)
		case 4:
			j := i + r.IntN(len(b)-i)
			b = append(b[:j], append(append([]byte{}, b[i:j]...), b[j:]...)...)
		case 5:
			b = append(b[:i], append([]byte(strconv.Itoa(r.IntN(1<<20))), b[i:]...)...)
		}
	}
	return string(b)
}

// TestGarbageUpstream feeds the proxy random broken responses: every
// request must end (with some status, or a cut connection) within the
// proxy's timeouts, nothing may panic, and no goroutine may be left over.
func TestGarbageUpstream(t *testing.T) {
	const cases = 400
	r := rand.New(rand.NewPCG(1, 2))
	garbage := make([]string, cases)
	for i := range garbage {
		switch {
		case i%50 == 7:
			garbage[i] = "" // no answer: the proxy's timeout
		case i%10 == 3:
			random := make([]byte, r.IntN(300))
			for j := range random {
				random[j] = byte(r.IntN(256))
			}
			garbage[i] = string(random)
		default:
			garbage[i] = mutate(r, validResponses[r.IntN(len(validResponses))])
		}
	}
	before := runtime.NumGoroutine()
	t.Run("requests", func(t *testing.T) {
		addr := rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			req, ok := readRequest(br)
			if !ok {
				return
			}
			i, _ := strconv.Atoi(req.Header.Get("X-Case"))
			if garbage[i] == "" {
				io.Copy(io.Discard, br) // until the proxy gives up
				return
			}
			io.WriteString(c, garbage[i])
		})
		f, _ := gsupFront(t, Options{Timeout: 100 * time.Millisecond}, addr)
		c := client(t)
		c.Timeout = 5 * time.Second
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					method := "GET"
					if i%5 == 0 {
						method = "HEAD"
					}
					req, _ := http.NewRequest(method, f.URL, nil)
					req.Header.Set("X-Case", strconv.Itoa(i))
					if upgrade := i%9 == 0; upgrade {
						req.Header.Set("Connection", "Upgrade")
						req.Header.Set("Upgrade", "websocket")
					}
					resp, err := c.Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Errorf("case %d %q: the client timed out", i, garbage[i])
					}
				}
			})
		}
		for i := range cases {
			next <- i
		}
		close(next)
		wg.Wait()
		// Still serving.
		good := rawBackend(t, func(c net.Conn) {
			if _, ok := readRequest(bufio.NewReader(c)); ok {
				io.WriteString(c, validResponses[0])
			}
		})
		f2, _ := gsupFront(t, Options{}, good)
		if status, _, body := get(t, f2.URL); status != 200 || body != "hello" {
			t.Errorf("afterwards: %d %q", status, body)
		}
	})
	// Everything above has been closed: its goroutines must end.
	testprog.Eventually(t, "the goroutines to end", testTimeout, func() (bool, string) {
		buf := make([]byte, 1<<20)
		return runtime.NumGoroutine() <= before+2, fmt.Sprintf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	})
}

// FuzzResponseHead checks the hand-written head parser against
// http.ReadResponse: whatever it accepts, net/http accepts too, with the
// same status, end-to-end fields and framing.
func FuzzResponseHead(f *testing.F) {
	for _, s := range validResponses {
		f.Add([]byte(s))
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h respHead
		var err error
		h.raw, _, err = readRaw(bufio.NewReaderSize(bytes.NewReader(data), 16), nil)
		// A head read whole from the buffer is the same as one read line
		// by line.
		whole, _, werr := readRaw(bufio.NewReaderSize(bytes.NewReader(data), 4096), nil)
		if (err == nil) != (werr == nil) || err == nil && !bytes.Equal(h.raw, whole) {
			t.Fatalf("%q: by lines %q, %v; whole %q, %v", data, h.raw, err, whole, werr)
		}
		if err == nil {
			err = h.parse()
		}
		if err != nil {
			return
		}
		if bytes.Contains(bytes.ToLower(h.raw), []byte("trailer")) {
			return // net/http checks declared trailer names; not needed here
		}
		req, _ := http.NewRequest("GET", "http://x/", nil)
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(h.raw)), req)
		if rerr != nil {
			t.Fatalf("accepted %q; net/http: %v", h.raw, rerr)
		}
		if resp.StatusCode != h.status || resp.ProtoMinor != h.minor {
			t.Fatalf("%q: status %d/1.%d, net/http %d/1.%d", h.raw, h.status, h.minor, resp.StatusCode, resp.ProtoMinor)
		}
		ours := http.Header{}
		h.copyTo(ours)
		theirs := resp.Header.Clone()
		// net/http drops "Connection: close" from the response, so take
		// the names it lists from the head.
		var conn []string
		for _, f := range h.fields {
			if f.Name == "Connection" {
				conn = append(conn, f.Value)
			}
		}
		for _, v := range conn {
			for tok := range strings.SplitSeq(v, ",") {
				theirs.Del(strings.TrimSpace(tok))
			}
		}
		for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
			"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
			theirs.Del(k)
		}
		if fmt.Sprint(ours) != fmt.Sprint(theirs) {
			t.Fatalf("%q: fields\n%v\nnet/http\n%v", h.raw, ours, theirs)
		}
		// The list a head.FieldWriter is given holds what the map does,
		// in the head's order.
		listed := http.Header{}
		for _, f := range h.forwarded(nil) {
			listed[f.Name] = append(listed[f.Name], f.Value)
			// head.FieldWriter writes them as they are.
			if !httpguts.ValidHeaderFieldName(f.Name) || http.CanonicalHeaderKey(f.Name) != f.Name ||
				!httpguts.ValidHeaderFieldValue(f.Value) || strings.Trim(f.Value, " \t") != f.Value {
				t.Fatalf("%q: field %q: %q given to be written as it is", h.raw, f.Name, f.Value)
			}
		}
		if fmt.Sprint(listed) != fmt.Sprint(ours) {
			t.Fatalf("%q: fields as a list\n%v\nin a map\n%v", h.raw, listed, ours)
		}
		if h.status >= 200 && h.status != 204 && h.status != 304 {
			theirChunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
			if h.chunked != theirChunked || h.clen != resp.ContentLength {
				t.Fatalf("%q: chunked %v length %d, net/http %v %d", h.raw, h.chunked, h.clen, theirChunked, resp.ContentLength)
			}
			untilClose := !h.chunked && h.clen < 0
			if resp.Close && !h.close && !untilClose {
				t.Fatalf("%q: net/http would not reuse the connection", h.raw)
			}
		}
	})
}

// FuzzChunked checks the chunked decoder against net/http's: whatever it
// decodes, net/http decodes to the same bytes.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n"))
	f.Add([]byte("1\r\nx\r\n0\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cr chunkedReader
		cr.reset(bufio.NewReaderSize(bytes.NewReader(data), 16))
		ours, err := io.ReadAll(&cr)
		if err != nil {
			return
		}
		theirs, err := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(bytes.NewReader(data))))
		if err != nil || !bytes.Equal(ours, theirs) {
			t.Fatalf("%q: decoded %q; net/http %q, %v", data, ours, theirs, err)
		}
	})
}
