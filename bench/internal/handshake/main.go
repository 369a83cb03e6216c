// Command handshake measures new TLS handshakes per second: http.sh's
// tls-new rows. C workers, for D seconds, each in a loop: dial TCP, a full
// TLS handshake, one request with "Connection: close", the whole answer
// read (it must be a 200), close.
//
//	handshake [-c 50] [-d 10s] [-tls 1.2|1.3] [-curves X25519,P256] [-ca FILE] 127.0.0.1:8443
//
// Every connection has a tls.Config of its own and no ClientSessionCache,
// so no session is ever resumed (wrk and h2load resume the session of
// their previous connection, which makes their "Connection: close" runs
// resumed handshakes). Each connection checks ConnectionState().DidResume
// and counts the resumed ones: "resumed" must be 0.
//
// Output, key=value lines: handshakes (answered connections), errors,
// resumed, secs, handshakes_per_s, p50_ms and p99_ms (dial to the answer's
// last byte), the count per negotiated version (tls1.2=N, tls1.3=N) and
// per key exchange group (group.X25519=N, group.CurveP256=N, crypto/tls's
// names), first_error when there were
// errors.
//
// Without -ca the server's certificate is not checked (the bench makes a
// self-signed one per run); the handshake's signature still is.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// config is what one run does.
type config struct {
	addr     string        // HOST:PORT
	conns    int           // workers
	duration time.Duration // how long they start new connections
	timeout  time.Duration // for each connection, dial to answer
	path     string
	host     string // Host header and SNI
	version  uint16 // 0: both sides pick
	curves   []tls.CurveID
	roots    *x509.CertPool // nil: the certificate is not checked

	// cache, when set, is shared by every connection (so sessions are
	// resumed): only for the test that proves resumptions are counted
	cache tls.ClientSessionCache
}

// result is what a run measured.
type result struct {
	handshakes int
	errors     int
	resumed    int
	secs       float64
	versions   map[string]int
	groups     map[string]int
	lat        []time.Duration // per answered connection, sorted
	firstErr   error
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.conns, "c", 50, "connections at once (workers)")
	flag.DurationVar(&cfg.duration, "d", 10*time.Second, "start new connections for this long")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "each connection's limit, dial to the answer's end")
	flag.StringVar(&cfg.path, "path", "/", "the path asked for")
	flag.StringVar(&cfg.host, "host", "localhost", "Host header and TLS server name")
	version := flag.String("tls", "", "offer only this TLS `version` (1.2 or 1.3); empty: both sides pick")
	curves := flag.String("curves", "", "offer only these key exchange `groups` (comma-separated: X25519, X25519MLKEM768, P256, P384, P521); empty: Go's defaults")
	ca := flag.String("ca", "", "check the server's certificate against this PEM `file`")
	flag.Parse()
	if flag.NArg() != 1 || cfg.conns < 1 {
		fmt.Fprintln(os.Stderr, "usage: handshake [-c N] [-d DUR] [-tls 1.2|1.3] [-curves LIST] [-ca FILE] [-path P] [-host H] HOST:PORT")
		os.Exit(2)
	}
	cfg.addr = strings.TrimPrefix(flag.Arg(0), "https://")
	cfg.addr = strings.TrimSuffix(cfg.addr, "/")
	var err error
	if cfg.version, err = parseVersion(*version); err == nil {
		cfg.curves, err = parseCurves(*curves)
	}
	if err == nil && *ca != "" {
		cfg.roots, err = loadRoots(*ca)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		os.Exit(2)
	}
	res := run(context.Background(), cfg)
	res.print(os.Stdout)
	if res.handshakes == 0 {
		os.Exit(1)
	}
}

func parseVersion(s string) (uint16, error) {
	switch s {
	case "":
		return 0, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("-tls %q: want 1.2 or 1.3", s)
}

func parseCurves(s string) ([]tls.CurveID, error) {
	if s == "" {
		return nil, nil
	}
	known := map[string]tls.CurveID{}
	for _, c := range []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521, tls.X25519MLKEM768} {
		known[strings.TrimPrefix(strings.ToLower(c.String()), "curve")] = c
	}
	var ids []tls.CurveID
	for name := range strings.SplitSeq(s, ",") {
		c, ok := known[strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "curve")]
		if !ok {
			return nil, fmt.Errorf("-curves: unknown group %q", name)
		}
		ids = append(ids, c)
	}
	return ids, nil
}

func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no certificate in the file", file)
	}
	return pool, nil
}

// tlsConfig is a new config for one connection: nothing carries over from
// the connections before it.
func (c *config) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         c.host,
		RootCAs:            c.roots,
		InsecureSkipVerify: c.roots == nil,
		MinVersion:         max(c.version, tls.VersionTLS12),
		MaxVersion:         c.version,
		CurvePreferences:   c.curves,
		ClientSessionCache: c.cache,
	}
}

// run drives cfg.conns workers until cfg.duration is over (or ctx is
// done); connections in flight then are finished and counted.
func run(ctx context.Context, cfg config) result {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	req := "GET " + cfg.path + " HTTP/1.1\r\nHost: " + cfg.host + "\r\nConnection: close\r\n\r\n"
	parts := make([]result, cfg.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range parts {
		wg.Go(func() {
			p := &parts[i]
			p.versions, p.groups = map[string]int{}, map[string]int{}
			for ctx.Err() == nil {
				t0 := time.Now()
				st, err := once(cfg, req)
				if err != nil {
					p.errors++
					if p.firstErr == nil {
						p.firstErr = err
					}
					continue
				}
				p.lat = append(p.lat, time.Since(t0))
				p.handshakes++
				if st.DidResume {
					p.resumed++
				}
				p.versions[tls.VersionName(st.Version)]++
				p.groups[st.CurveID.String()]++
			}
		})
	}
	wg.Wait()
	total := result{secs: time.Since(start).Seconds(), versions: map[string]int{}, groups: map[string]int{}}
	for _, p := range parts {
		total.handshakes += p.handshakes
		total.errors += p.errors
		total.resumed += p.resumed
		total.lat = append(total.lat, p.lat...)
		for k, n := range p.versions {
			total.versions[k] += n
		}
		for k, n := range p.groups {
			total.groups[k] += n
		}
		if total.firstErr == nil {
			total.firstErr = p.firstErr
		}
	}
	slices.Sort(total.lat)
	return total
}

// once makes one connection: dial, handshake, one request, the whole
// answer, close.
func once(cfg config, req string) (tls.ConnectionState, error) {
	raw, err := net.DialTimeout("tcp", cfg.addr, cfg.timeout)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg.tlsConfig())
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(cfg.timeout))
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("handshake: %w", err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("answer: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return tls.ConnectionState{}, fmt.Errorf("answer body: %w", err)
	case resp.StatusCode != http.StatusOK:
		return tls.ConnectionState{}, errors.New("answer: " + resp.Status)
	}
	// read after the answer: a TLS 1.3 server's tickets arrive after the
	// handshake, and a resumption would show by now
	return c.ConnectionState(), nil
}

func (r result) print(w io.Writer) {
	ms := func(q float64) string {
		if len(r.lat) == 0 {
			return "none"
		}
		return fmt.Sprintf("%.3f", float64(r.lat[int(q*float64(len(r.lat)-1))].Microseconds())/1000)
	}
	rate := 0.0
	if r.secs > 0 {
		rate = float64(r.handshakes) / r.secs
	}
	fmt.Fprintf(w, "handshakes=%d\nerrors=%d\nresumed=%d\nsecs=%.2f\nhandshakes_per_s=%.0f\np50_ms=%s\np99_ms=%s\n",
		r.handshakes, r.errors, r.resumed, r.secs, rate, ms(0.50), ms(0.99))
	// "TLS 1.3" -> tls1.3=N; group.X25519MLKEM768=N
	for _, k := range slices.Sorted(maps.Keys(r.versions)) {
		fmt.Fprintf(w, "%s=%d\n", strings.ToLower(strings.ReplaceAll(k, " ", "")), r.versions[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.groups)) {
		fmt.Fprintf(w, "group.%s=%d\n", k, r.groups[k])
	}
	if r.firstErr != nil {
		fmt.Fprintf(w, "first_error=%s\n", strings.ReplaceAll(r.firstErr.Error(), "\n", " "))
	}
}
