package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// UpgradeResponse answers POST /v1/upgrade: the new binary passed its
// check and gsup (Pid) is handing over to it.
type UpgradeResponse struct {
	Pid  int    `json:"pid"`
	Path string `json:"path"` // the binary executed
	From string `json:"from"` // version running now
	To   string `json:"to"`   // version of the new binary, from its check
}

// VersionResponse answers GET /v1/version.
type VersionResponse struct {
	Version string    `json:"version"`
	Pid     int       `json:"pid"`
	Started time.Time `json:"started"` // when this binary took over the process
	// Upgrade is "" (none asked for), "in progress" or "failed: REASON".
	Upgrade string `json:"upgrade,omitempty"`
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, b Backend) {
	resp, err := b.Upgrade()
	if err != nil {
		writeBackendError(w, err)
		return
	}
	s.logf(r, "upgrade to %s (%s)", resp.Path, resp.To)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request, b Backend) {
	writeJSON(w, http.StatusOK, b.Version())
}

// Upgrade asks gsup to upgrade itself in place (POST /v1/upgrade), then
// waits until the new binary answers (success) or gsup reports the
// upgrade failed (an error saying why).
func (c *Client) Upgrade(ctx context.Context) (UpgradeResponse, VersionResponse, error) {
	var before, now VersionResponse
	if err := c.call(ctx, http.MethodGet, "/v1/version", nil, &before); err != nil {
		return UpgradeResponse{}, now, err
	}
	var resp UpgradeResponse
	if err := c.call(ctx, http.MethodPost, "/v1/upgrade", nil, &resp); err != nil {
		return resp, now, err
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		err := c.call(ctx, http.MethodGet, "/v1/version", nil, &now)
		switch {
		case err == nil && !now.Started.Equal(before.Started):
			return resp, now, nil
		case err == nil && strings.HasPrefix(now.Upgrade, "failed: "):
			return resp, now, errors.New(now.Upgrade)
		case err != nil && errors.Is(err, ErrNoInstance):
			return resp, now, fmt.Errorf("gsup (pid %d) is gone: %w", resp.Pid, err)
		}
		select {
		case <-ctx.Done():
			return resp, now, fmt.Errorf("waiting for the upgrade: %w", ctx.Err())
		case <-t.C:
		}
	}
}
