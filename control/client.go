package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"gsup/internal/unixsock"
	"gsup/supervisor"
)

// ErrNoInstance is wrapped by a Client's errors when nothing listens on
// the socket (no file there, or nobody accepting): "no running instance
// at PATH (start one with gsup start)".
var ErrNoInstance = errors.New("no running instance")

type noInstanceError struct {
	path  string
	err   error
	notes []string // runtime folders refused (Client.Registry)
}

func (e *noInstanceError) Error() string {
	msg := fmt.Sprintf("no running instance at %s (start one with gsup start)", e.path)
	for _, n := range e.notes {
		msg += "; " + n
	}
	return msg
}
func (e *noInstanceError) Is(target error) bool { return target == ErrNoInstance }
func (e *noInstanceError) Unwrap() error        { return e.err }

// APIError is an error answer of the server.
type APIError struct {
	Status  int    // HTTP status: 400, 404, 409, 413, 500...
	Message string // the server's "error"
}

func (e *APIError) Error() string { return e.Message }

// Client talks to a running gsup over its control socket. It needs no
// setup: each request dials the socket. Safe for concurrent use.
type Client struct {
	path string
	hc   *http.Client
	// logical and dirs find the registered socket (Registry).
	logical string
	dirs    []string
}

// NewClient returns a client of the control socket at path.
func NewClient(path string) *Client {
	c := &Client{path: path}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := unixsock.Dial(ctx, path)
			if err != nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
				return c.dialRegistry(ctx, err)
			}
			return conn, err
		},
		DisableCompression: true,
		MaxIdleConns:       2,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// do sends a request and returns the response when its status is 2xx;
// else the error (an *APIError when the server answered).
func (c *Client) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://gsup"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ni *noInstanceError
		if errors.As(err, &ni) {
			return nil, ni
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("control socket %s: %w", c.path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e ErrorResponse
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(data))
		if e.Error == "" {
			e.Error = resp.Status
		}
	}
	return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
}

// call sends in (nil = no body) and decodes the answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control socket %s: bad answer to %s: %w", c.path, path, err)
	}
	return nil
}

// Status returns every instance with its statistics (GET /v1/ps).
func (c *Client) Status(ctx context.Context) ([]Process, error) {
	var out PsResponse
	if err := c.call(ctx, http.MethodGet, "/v1/ps", nil, &out); err != nil {
		return nil, err
	}
	return out.Processes, nil
}

// Scale sets instance counts of app's types ("" = the first app) and
// returns the counts set.
func (c *Client) Scale(ctx context.Context, app string, counts map[string]int) (map[string]int, error) {
	var out ScaleRequest
	if err := c.call(ctx, http.MethodPost, "/v1/scale", ScaleRequest{App: app, Counts: counts}, &out); err != nil {
		return nil, err
	}
	return out.Counts, nil
}

// Restart restarts the targets and returns the instances restarted.
func (c *Client) Restart(ctx context.Context, targets []string) ([]string, error) {
	var out NamesResponse
	err := c.call(ctx, http.MethodPost, "/v1/restart", TargetsRequest{Targets: targets}, &out)
	return out.Names, err
}

// Stop stops the targets and returns the instances stopped.
func (c *Client) Stop(ctx context.Context, targets []string) ([]string, error) {
	var out NamesResponse
	err := c.call(ctx, http.MethodPost, "/v1/stop", TargetsRequest{Targets: targets}, &out)
	return out.Names, err
}

// Signal sends sig ("HUP", "SIGHUP", "1") to the targets' main processes
// and returns the signal's name and the instances signalled.
func (c *Client) Signal(ctx context.Context, sig string, targets []string) (string, []string, error) {
	var out NamesResponse
	err := c.call(ctx, http.MethodPost, "/v1/signal", SignalRequest{Signal: sig, Targets: targets}, &out)
	return out.Signal, out.Names, err
}

// Reload re-reads the config and replaces every instance; it returns when
// that is done.
func (c *Client) Reload(ctx context.Context) error {
	var out OKResponse
	return c.call(ctx, http.MethodPost, "/v1/reload", struct{}{}, &out)
}

// Load loads (or replaces) the app in file, an absolute path, and returns
// its name.
func (c *Client) Load(ctx context.Context, file, app string) (string, error) {
	var out AppRequest
	err := c.call(ctx, http.MethodPost, "/v1/load", LoadRequest{File: file, App: app}, &out)
	return out.App, err
}

// Unload stops and forgets an app.
func (c *Client) Unload(ctx context.Context, app string) error {
	var out AppRequest
	return c.call(ctx, http.MethodPost, "/v1/unload", AppRequest{App: app}, &out)
}

// Logs calls each with the recent lines of the targets (all when none),
// then, with follow, with every new line until ctx ends (it returns
// ctx's error), each returns an error (returned), or gsup goes away (nil).
func (c *Client) Logs(ctx context.Context, targets []string, follow bool, each func(supervisor.Line) error) error {
	q := url.Values{}
	for _, t := range targets {
		q.Add("target", t)
	}
	if follow {
		q.Set("follow", "1")
	}
	path := "/v1/logs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var l supervisor.Line
		err := dec.Decode(&l)
		switch {
		case err == nil:
			if err := each(l); err != nil {
				return err
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, io.EOF), follow && errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		}
		return fmt.Errorf("control socket %s: reading logs: %w", c.path, err)
	}
}

// Events calls each with every event from now on, until ctx ends (it
// returns ctx's error), each returns an error (returned), or gsup goes
// away (nil).
func (c *Client) Events(ctx context.Context, each func(supervisor.Event) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), MaxBody)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var ev supervisor.Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("control socket %s: bad event: %w", c.path, err)
			}
			data.Reset()
			if err := each(ev); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("control socket %s: reading events: %w", c.path, err)
	}
	return nil
}

// Get decodes the answer to GET path (such as "/v1/status") into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, out)
}
