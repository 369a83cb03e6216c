package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// probeInterval is how often a readiness probe retries.
const probeInterval = 20 * time.Millisecond

// probe waits until the instance at addr passes the check mode ("port" or
// "http:/path") or ctx ends. It returns nil when it passed, else the
// error of the last attempt (ctx's error when there was none).
func probe(ctx context.Context, mode, addr string) error {
	network, address := "tcp", addr
	if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", rest
	}
	var client *http.Client
	path := ""
	if p, ok := strings.CutPrefix(mode, "http:"); ok {
		path = p
		client = &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, address)
				},
				DisableKeepAlives: true,
			},
			Timeout: time.Second,
		}
		defer client.CloseIdleConnections()
	}
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	var last error
	for {
		var err error
		if client != nil {
			err = checkHTTP(ctx, client, path, "gsup-ready")
		} else {
			d := net.Dialer{Timeout: time.Second}
			var c net.Conn
			if c, err = d.DialContext(ctx, network, address); err == nil {
				c.Close()
			}
		}
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-t.C:
		}
	}
}

func checkHTTP(ctx context.Context, client *http.Client, path, agent string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", agent)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
