package arbiter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"gsup/metrics"
	"gsup/serve/listen"
)

// serveMetrics opens [serve] metrics_bind, if set, and serves GET
// /metrics (and the status page) there until ctx ends. Nothing on it
// changes anything; requests to it are neither counted nor access-logged.
// It returns the address it listens on ("" when none).
func (a *arbiter) serveMetrics(ctx context.Context, addr string, h http.Handler) (string, error) {
	if addr == "" {
		return "", nil
	}
	ln, err := listen.TCP(addr)
	if err != nil {
		return "", fmt.Errorf("metrics_bind: %w", err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		a.log.Warnf("metrics_bind %s is not a loopback address: whoever reaches it sees every instance and the front's traffic", addr)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Errorf("metrics_bind: %v", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	a.log.WithField("addr", ln.Addr().String()).Infof("metrics and status page on http://%s/", ln.Addr())
	return ln.Addr().String(), nil
}

// readOnly answers the metrics_bind's routes: GET (and HEAD) only; the
// status page at / and its events.
func readOnly(m *metrics.Metrics, b *metrics.Board) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("GET /{$}", b.Page())
	mux.Handle("GET /events", b.Events())
	return mux
}
