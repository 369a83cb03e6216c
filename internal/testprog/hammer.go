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

// hammer sends requests from concurrent clients and checks every answer.
func hammer(p *prog) int {
	workers := p.Int("c", 2, "concurrent clients")
	dur := p.Duration("for", 10*time.Second, "stop after this long at the latest")
	until := p.String("until", "", "stop once `FILE` exists")
	maxReq := p.Int("n", 100000, "stop after this many requests at the latest")
	every := p.Duration("every", 2*time.Millisecond, "pause of each client between requests")
	unixPath := p.String("unix", "", "connect to this UNIX socket `PATH` instead of the URL's host")
	status := p.Int("status", 200, "the status every answer must have")
	match := p.String("match", "", "a `REGEXP` every body must match")
	ready := p.String("ready", "", "write `FILE` after the first good answer")
	pos, ok := p.parse(1, 1)
	if !ok {
		return 2
	}
	if *workers < 1 {
		return p.usage()
	}
	url := pos[0]
	var re *regexp.Regexp
	if *match != "" {
		var err error
		if re, err = regexp.Compile("(?m)" + *match); err != nil {
			return p.usagef("-match: %v", err)
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
	fmt.Fprintf(p.stdout, "requests=%d ok=%d failed=%d\n", sent, sent-bad, bad)
	for _, f := range failures {
		fmt.Fprintf(p.stdout, "failure: %s\n", f)
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
