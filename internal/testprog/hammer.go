package testprog

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"
)

// hammer [-c N] [-for DUR] [-until FILE] [-n MAX] [-every DUR] [-unix PATH]
// [-status N] [-match REGEXP] [-ready FILE] URL
func hammer(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("hammer", stderr)
	workers := fs.Int("c", 2, "concurrent clients")
	dur := fs.Duration("for", 10*time.Second, "stop after this long at the latest")
	until := fs.String("until", "", "stop once `FILE` exists")
	maxReq := fs.Int("n", 100000, "stop after this many requests at the latest")
	every := fs.Duration("every", 2*time.Millisecond, "pause of each client between requests")
	unixPath := fs.String("unix", "", "connect to this UNIX socket `PATH` instead of the URL's host")
	status := fs.Int("status", 200, "the status every answer must have")
	match := fs.String("match", "", "a `REGEXP` every body must match")
	ready := fs.String("ready", "", "write `FILE` after the first good answer")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *workers < 1 {
		return usage(stderr, "hammer", "usage: hammer [-c N] [-for DUR] [-until FILE] [-unix PATH] [-status N] [-match RE] URL")
	}
	url := pos[0]
	var re *regexp.Regexp
	if *match != "" {
		if re, err = regexp.Compile("(?m)" + *match); err != nil {
			return usage(stderr, "hammer", "-match: %v", err)
		}
	}
	client := newHTTPClient(*unixPath, false)
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	stop := notifyStop()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if *until != "" {
		go func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := os.Stat(*until); err == nil {
						cancel()
						return
					}
				}
			}
		}()
	}

	var (
		mu        sync.Mutex
		sent, bad int
		failures  []string
		readyOnce sync.Once
	)
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				if sent >= *maxReq {
					mu.Unlock()
					return
				}
				sent++
				mu.Unlock()
				problem := hammerOnce(ctx, client, url, *status, re)
				if ctx.Err() != nil && problem != "" {
					// Cut short by the end of the run, not a failure.
					mu.Lock()
					sent--
					mu.Unlock()
					return
				}
				if problem != "" {
					mu.Lock()
					bad++
					if len(failures) < 5 {
						failures = append(failures, problem)
					}
					mu.Unlock()
				} else if *ready != "" {
					readyOnce.Do(func() { writeFileAtomic(*ready, []byte("ok\n")) })
				}
				select {
				case <-ctx.Done():
				case <-time.After(*every):
				}
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(stdout, "requests=%d ok=%d failed=%d\n", sent, sent-bad, bad)
	for _, f := range failures {
		fmt.Fprintf(stdout, "failure: %s\n", f)
	}
	if bad > 0 || sent == 0 {
		return 1
	}
	return 0
}

// hammerOnce makes one request and says what was wrong with it ("" = ok).
func hammerOnce(ctx context.Context, client *http.Client, url string, status int, re *regexp.Regexp) string {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Sprintf("status %d, reading body: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != status {
		return fmt.Sprintf("status %d: %.200q", resp.StatusCode, body)
	}
	if re != nil && !re.Match(body) {
		return fmt.Sprintf("body does not match %q: %.200q", re, body)
	}
	return ""
}

// newHTTPClient returns a client that never follows redirects and, with
// unixPath, connects to that socket whatever the URL's host.
func newHTTPClient(unixPath string, noKeepAlive bool) *http.Client {
	tr := &http.Transport{
		DisableKeepAlives:     noKeepAlive,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   16,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	if unixPath != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialUnix(ctx, "unix", unixPath)
		}
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
