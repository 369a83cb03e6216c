// Command web is a small HTTP app to run under gsup. It uses only the
// standard library and shows what an app needs to play well with it:
//
//   - it listens where gsup says: on the UNIX socket $GSUP_SOCKET when set
//     (listen = "unix"), else on fd 3 when LISTEN_FDS=1 and LISTEN_PID is
//     its own pid (sockets = [...], systemd's socket passing), else on
//     127.0.0.1:$PORT;
//   - it says READY=1 on $NOTIFY_SOCKET once listening (ready = "notify");
//   - on TERM it stops accepting, finishes the requests in flight (at most
//     5 seconds) and exits 0.
//
// Routes: / (hello), /slow?ms=N (answers after N milliseconds, 1000 by
// default), /stream (Server-Sent Events, five events 200ms apart), /echo
// (the request as received), /page (an HTML page of about 4 KiB, which
// gsup compresses when [serve] compress is on), /download (hands the file
// /protected/report.txt to gsup with X-Accel-Redirect: an app checks the
// user's right to it, then lets the front send it). One line per request
// goes to stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// shutdownTimeout bounds the graceful stop; keep it below gsup's
// stop_timeout (10s by default), after which gsup sends KILL.
const shutdownTimeout = 5 * time.Second

func main() {
	logger := log.New(os.Stdout, "", 0)
	if err := run(logger); err != nil {
		fmt.Fprintf(os.Stderr, "web: %v\n", err)
		os.Exit(1)
	}
}

func run(logger *log.Logger) error {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	ln, err := listen()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logRequests(logger, routes()),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Printf("listening on %s (pid %d)", ln.Addr(), os.Getpid())
	if err := notifyReady(); err != nil {
		return err
	}

	select {
	case err := <-served:
		return err
	case sig := <-stop:
		logger.Printf("got %v, finishing requests in flight", sig)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	logger.Printf("stopped")
	return nil
}

// listen returns the listener gsup (or systemd) prepared for this process.
func listen() (net.Listener, error) {
	if path := os.Getenv("GSUP_SOCKET"); path != "" {
		return net.Listen("unix", path)
	}
	if os.Getenv("LISTEN_FDS") == "1" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		f := os.NewFile(3, "LISTEN_FDS")
		defer f.Close()
		return net.FileListener(f)
	}
	port := os.Getenv("PORT")
	if port == "" {
		return nil, errors.New("PORT is not set (nor GSUP_SOCKET or LISTEN_FDS)")
	}
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
}

// notifyReady sends READY=1 to $NOTIFY_SOCKET, if set: one datagram on a
// unixgram socket (a name starting with '@' is in the abstract namespace,
// which net.Dial handles).
func notifyReady() error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s (pid %d)\n", os.Getenv("PS"), os.Getpid())
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms := 1000
		if v := r.URL.Query().Get("ms"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 60000 {
				http.Error(w, "ms: want 0 to 60000", http.StatusBadRequest)
				return
			}
			ms = n
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(w, "slept %d ms\n", ms)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		for i := 1; i <= 5; i++ {
			if i > 1 {
				select {
				case <-time.After(200 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d from %s\n\n", i, i, os.Getenv("PS"))
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html>\n<title>page</title>\n<h1>A page from %s</h1>\n", os.Getenv("PS"))
		for i := 1; i <= 60; i++ {
			fmt.Fprintf(w, "<p>Paragraph %d of a page long enough to be worth compressing.</p>\n", i)
		}
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Redirect", "/protected/report.txt")
		w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
		fmt.Fprintf(&b, "Host: %s\n", r.Host)
		fmt.Fprintf(&b, "RemoteAddr: %s\n", r.RemoteAddr)
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			for _, v := range r.Header[name] {
				fmt.Fprintf(&b, "%s: %s\n", name, v)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, b.String())
	})
	return mux
}

// logRequests writes one line per request once it is answered.
func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Printf("%s %s %d %dB %v from %s", r.Method, r.URL.RequestURI(), rec.status,
			rec.bytes, time.Since(start).Round(time.Microsecond), r.RemoteAddr)
	})
}

// recorder notes the status and size of a response. Unwrap lets
// http.ResponseController reach the real writer, so /stream can flush.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
