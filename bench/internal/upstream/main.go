// Command upstream is the app behind every front of bench/http.sh: the
// smallest useful HTTP server, standard library only, so that what the
// benchmark sees is the front's cost and not the app's.
//
// Where it listens (first that applies):
//
//	-addr HOST:PORT   TCP
//	$GSUP_SOCKET      a UNIX socket at that path (gsup's listen = "unix")
//	$PORT             127.0.0.1:$PORT (gsup's default, foreman's rule)
//
// Routes:
//
//	/          "hello\n" (6 bytes, Content-Length set), the benchmarked route
//	/healthz   "ok\n", for readiness checks
//	/stats     "conns N\nrequests M\n": connections accepted and requests
//	           answered since start (/stats itself not counted), so a run can
//	           tell how many upstream connections a front opened
//	/1m        1 MiB (Content-Length set) written from memory in one write:
//	           the large response of http.sh's proxy-1m rows
//	POST /body reads the body, answers "LENGTH CRC32\n" (CRC-32 in hex): the
//	           upload of the upload-1m rows
//
// and, for bench/soak.sh (with POST /body):
//
//	/big?n=N     N bytes (at most 64 MiB) in 16 KiB writes, each flushed
//	/ws          a WebSocket that echoes text frames and answers a close
//
// With $SOAK_SEEN set, every request that carries X-Soak-Id appends
// "PID ID\n" to that file when its handler starts (one write(2), so the line
// is there even if the process is SIGKILLed a moment later): the soak tells
// a request lost in gsup from one in flight to an instance it killed.
//
// On SIGTERM or SIGINT it stops accepting, lets requests in flight and open
// WebSockets finish (at most 3 s) and exits 0.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gsup/bench/internal/wsframe"
)

var (
	conns    atomic.Int64
	requests atomic.Int64
)

var (
	helloBody   = []byte("hello\n")
	helloLength = []string{strconv.Itoa(len(helloBody))}
	textPlain   = []string{"text/plain; charset=utf-8"}
)

type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		conns.Add(1)
	}
	return c, err
}

var (
	seen    *os.File       // $SOAK_SEEN, or nil
	sockets sync.WaitGroup // open WebSockets, waited for at stop
)

func handler(w http.ResponseWriter, r *http.Request) {
	if seen != nil {
		if id := r.Header.Get("X-Soak-Id"); id != "" {
			_, _ = seen.WriteString(strconv.Itoa(os.Getpid()) + " " + id + "\n")
		}
	}
	h := w.Header()
	switch r.URL.Path {
	case "/":
		requests.Add(1)
		h["Content-Type"] = textPlain
		h["Content-Length"] = helloLength
		_, _ = w.Write(helloBody)
	case "/healthz":
		requests.Add(1)
		h["Content-Type"] = textPlain
		_, _ = w.Write([]byte("ok\n"))
	case "/stats":
		h["Content-Type"] = textPlain
		h["Cache-Control"] = []string{"no-store"}
		fmt.Fprintf(w, "conns %d\nrequests %d\n", conns.Load(), requests.Load())
	case "/1m":
		requests.Add(1)
		h["Content-Type"] = octetStream
		h["Content-Length"] = oneMiBLength
		_, _ = w.Write(oneMiB)
	case "/body":
		requests.Add(1)
		body(w, r)
	case "/big":
		requests.Add(1)
		big(w, r)
	case "/ws":
		requests.Add(1)
		echoSocket(w, r)
	default:
		requests.Add(1)
		http.NotFound(w, r)
	}
}

func body(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	sum := crc32.NewIEEE()
	n, err := io.Copy(sum, r.Body)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d %08x\n", n, sum.Sum32())
}

var chunk = []byte(strings.Repeat("0123456789abcdef", 1024))

var (
	oneMiB       = bytes.Repeat(chunk, (1<<20)/len(chunk))
	oneMiBLength = []string{strconv.Itoa(len(oneMiB))}
	octetStream  = []string{"application/octet-stream"}
)

func big(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 || n > 64<<20 {
		http.Error(w, "n: want 0 to 64 MiB", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	rc := http.NewResponseController(w)
	for n > 0 {
		c := chunk[:min(n, len(chunk))]
		if _, err := w.Write(c); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		n -= len(c)
	}
}

// echoSocket answers a WebSocket handshake and echoes text frames until the
// client closes (or 30 s pass without a frame).
func echoSocket(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "want a WebSocket handshake", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	sockets.Add(1)
	defer sockets.Done()
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wsframe.AcceptKey(key) + "\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	rd := bufio.NewReader(brw)
	var out []byte
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		f, err := wsframe.ReadFrame(rd)
		if err != nil {
			return
		}
		switch f.Op {
		case wsframe.OpClose:
			_, _ = conn.Write(wsframe.AppendFrame(out[:0], wsframe.OpClose, f.Payload, nil))
			return
		case wsframe.OpPing:
			out = wsframe.AppendFrame(out[:0], wsframe.OpPong, f.Payload, nil)
		default:
			out = wsframe.AppendFrame(out[:0], f.Op, f.Payload, nil)
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

func listen(addr string) (net.Listener, error) {
	if addr != "" {
		return net.Listen("tcp", addr)
	}
	if path := os.Getenv("GSUP_SOCKET"); path != "" {
		return net.Listen("unix", path)
	}
	if port := os.Getenv("PORT"); port != "" {
		return net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	}
	return nil, errors.New("nowhere to listen: give -addr, or set GSUP_SOCKET or PORT")
}

func main() {
	addr := flag.String("addr", "", "listen on this TCP address (default: $GSUP_SOCKET, else 127.0.0.1:$PORT)")
	flag.Parse()

	if path := os.Getenv("SOAK_SEEN"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "upstream:", err)
			os.Exit(1)
		}
		seen = f
	}
	ln, err := listen(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(countingListener{ln}) }()

	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "upstream: shutdown:", err)
	}
	done := make(chan struct{})
	go func() { sockets.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
