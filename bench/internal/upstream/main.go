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
//
// On SIGTERM or SIGINT it stops accepting, lets requests in flight finish
// (at most 3 s) and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
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

func handler(w http.ResponseWriter, r *http.Request) {
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
	default:
		requests.Add(1)
		http.NotFound(w, r)
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
}
