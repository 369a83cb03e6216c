package supervisor

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// probeInterval is how often a readiness probe retries.
const probeInterval = 20 * time.Millisecond

// probe waits until the instance at addr passes the check mode ("port" or
// "http:/path") or ctx ends; it reports whether it passed.
func probe(ctx context.Context, mode, addr string) bool {
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
	for {
		if client != nil {
			if checkHTTP(ctx, client, path) {
				return true
			}
		} else {
			d := net.Dialer{Timeout: time.Second}
			if c, err := d.DialContext(ctx, network, address); err == nil {
				c.Close()
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func checkHTTP(ctx context.Context, client *http.Client, path string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "gsup-ready")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
