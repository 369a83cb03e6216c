package testprog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// echoserver is an HTTP server that echoes the request (package comment).
func echoserver(p *prog) int {
	unix := p.Bool("unix", false, "listen on the UNIX socket $GSUP_SOCKET")
	addr := p.String("addr", "", "listen on this TCP `ADDR` (127.0.0.1:0 picks a port) instead")
	ready := p.String("ready", "", "write the listening address to `FILE` once listening")
	pidfile := p.String("pidfile", "", "write the pid to `FILE` once listening")
	notify := p.Bool("notify", false, "send READY=1 to $NOTIFY_SOCKET once listening")
	grace := p.Duration("grace", 10*time.Second, "longest graceful shutdown on TERM or INT")
	logRequests := p.Bool("log", false, "print one line per request to stdout")
	sick := p.String("sick", "", "answer 500 on /healthz while `FILE` exists")
	grow := p.Int("grow", 0, "allocate and keep `N` MiB more every second (a leak)")
	if _, ok := p.parse(0, 0); !ok {
		return 2
	}
	stop := notifyStop()
	ln, where, err := echoListener(*addr, *unix, p.stderr)
	if err != nil {
		return p.fail(err)
	}
	if *unix {
		// Go unlinks a socket it bound when the listener closes, but not
		// one bound through /proc/self/fd (see shortPath).
		defer os.Remove(where)
	}

	var outMu sync.Mutex
	logf := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(p.stdout, format, args...)
	}
	h := &echoHandler{port: os.Getenv("PORT"), ps: os.Getenv("PS"), pid: os.Getpid(), sick: *sick}
	if *grow > 0 {
		go leak(*grow)
	}
	var handler http.Handler = h
	if *logRequests {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			logf("%s %s %s\n", h.ps, r.Method, r.URL.RequestURI())
		})
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	logf("listening on %s\n", where)
	if err := writePidFile(*pidfile); err != nil {
		return p.fail(err)
	}
	if *ready != "" {
		if err := writeFileAtomic(*ready, []byte(where+"\n")); err != nil {
			return p.fail(err)
		}
	}
	if *notify {
		if err := sdNotify("READY=1"); err != nil {
			return p.fail(err)
		}
	}

	select {
	case err := <-served:
		return p.fail(err)
	case sig := <-stop:
		logf("echoserver stopping on %s\n", signalName(sig))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return p.fail(fmt.Errorf("graceful shutdown: %w", err))
	}
	logf("echoserver stopped\n")
	return 0
}

// echoListener picks the listener: addr if given; $GSUP_SOCKET with unix;
// else fd 3 when LISTEN_FDS is set for this pid; else 127.0.0.1:$PORT.
// It also returns the address to print.
func echoListener(addr string, unix bool, stderr io.Writer) (net.Listener, string, error) {
	switch {
	case addr != "":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", err
		}
		return ln, ln.Addr().String(), nil
	case unix:
		path := os.Getenv("GSUP_SOCKET")
		if path == "" {
			return nil, "", errors.New("-unix: GSUP_SOCKET is not set")
		}
		short, done, err := shortPath(path)
		if err != nil {
			return nil, "", err
		}
		defer done()
		ln, err := net.Listen("unix", short)
		if err != nil {
			return nil, "", fmt.Errorf("listen on GSUP_SOCKET %s: %w", path, err)
		}
		return ln, path, nil
	}
	if fds := os.Getenv("LISTEN_FDS"); fds != "" {
		pid := os.Getenv("LISTEN_PID")
		if pid == strconv.Itoa(os.Getpid()) {
			if fds != "1" {
				fmt.Fprintf(stderr, "echoserver: LISTEN_FDS=%s, serving fd 3 only\n", fds)
			}
			f := os.NewFile(3, "LISTEN_FDS")
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return nil, "", fmt.Errorf("LISTEN_FDS fd 3: %w", err)
			}
			where := ln.Addr().String()
			if where == "" {
				where = "fd:3"
			}
			return ln, where, nil
		}
		fmt.Fprintf(stderr, "echoserver: ignoring LISTEN_FDS=%s: LISTEN_PID=%q is not my pid %d\n", fds, pid, os.Getpid())
	}
	port := os.Getenv("PORT")
	if port == "" {
		return nil, "", errors.New("PORT is not set (and no -addr, -unix or LISTEN_FDS)")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, "", err
	}
	return ln, ln.Addr().String(), nil
}

// echoHandler answers every request with who served it and what arrived.
type echoHandler struct {
	port, ps string
	pid      int
	sick     string // /healthz answers 500 while this file exists
}

// leakHeld keeps what leak allocated reachable.
var leakHeld [][]byte

// leak allocates mib MiB every second, touching every page, for ever.
func leak(mib int) {
	for range time.Tick(time.Second) {
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		leakHeld = append(leakHeld, b)
	}
}

func (h *echoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/healthz" && h.sick != "":
		if _, err := os.Stat(h.sick); err == nil {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok\n")
	case strings.HasPrefix(path, "/status/"):
		code, err := strconv.Atoi(strings.TrimPrefix(path, "/status/"))
		if err != nil || code < 100 || code > 999 {
			http.Error(w, "bad status", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, h.describe(r))
	case strings.HasPrefix(path, "/sleep/"):
		ms, err := strconv.Atoi(strings.TrimPrefix(path, "/sleep/"))
		if err != nil || ms < 0 {
			http.Error(w, "bad duration", http.StatusBadRequest)
			return
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, h.describe(r))
	case path == "/stream":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Accel-Buffering", "no")
		rc := http.NewResponseController(w)
		for i := 1; i <= 5; i++ {
			if i > 1 {
				select {
				case <-time.After(50 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			if h.ps != "" {
				fmt.Fprintf(w, "chunk %d %s\n", i, h.ps)
			} else {
				fmt.Fprintf(w, "chunk %d\n", i)
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	case path == "/headers":
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s\nHost: %s\n", r.Method, r.URL.RequestURI(), r.Proto, r.Host)
		for _, k := range sortedKeys(r.Header) {
			for _, v := range r.Header[k] {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		io.WriteString(w, b.String())
	case strings.HasPrefix(path, "/file/"):
		// A file of its working directory, as the deployed release has it.
		data, err := os.ReadFile(filepath.Base(strings.TrimPrefix(path, "/file/")))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(data)
	case strings.HasPrefix(path, "/env/"):
		io.WriteString(w, os.Getenv(strings.TrimPrefix(path, "/env/"))+"\n")
	case path == "/exit":
		body := h.describe(r) + "exiting with status 3\n"
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
		// Flush puts the whole response in the kernel's send buffer;
		// closing the socket at exit still delivers it.
		http.NewResponseController(w).Flush()
		os.Exit(3)
	default:
		io.WriteString(w, h.describe(r))
	}
}

// forwardingHeader reports whether a request header is one a proxy sets
// or must strip, so the echo shows them all.
func forwardingHeader(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	return n == "forwarded" || strings.HasPrefix(n, "x-forwarded-") || n == "x-real-ip"
}

// describe is the body of an echo: the first line says which instance
// answered, the second what the request was, then one line per
// forwarding header as received (none when absent).
func (h *echoHandler) describe(r *http.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "PS=%s PORT=%s pid=%d path=%s", h.ps, h.port, h.pid, r.URL.Path)
	if r.URL.RawQuery != "" {
		fmt.Fprintf(&b, " query=%s", r.URL.RawQuery)
	}
	fmt.Fprintf(&b, "\nmethod=%s host=%s remote=%s proto=%s\n", r.Method, r.Host, r.RemoteAddr, r.Proto)
	keys := sortedKeys(r.Header)
	keys = slices.DeleteFunc(keys, func(k string) bool { return !forwardingHeader(k) })
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}
