// Command soak is the traffic and chaos of bench/soak.sh: for -duration it
// sends mixed traffic to gsup's front, SIGKILLs one of its instances every
// -kill-every and sends gsup SIGHUP (a reload) every -hup-every, samples
// gsup's RSS and open fds every second, prints a table every -table and a
// summary at the end. Linux only, standard library only.
//
//	soak -addr 127.0.0.1:PORT -pid GSUP_PID -exe APP_PATH -seen FILE [flags]
//
// The traffic, each kind from its own goroutines:
//
//	get        keep-alive GET / (expects 200 "hello\n")
//	post       POST /body with 0-256 KiB (1 in 8: 1.5 MiB), checks length and CRC-32
//	abort      GET /big, then the client goes away: after 64 KiB of the body,
//	           right after the request, or with a reset (SO_LINGER 0)
//	ws         a WebSocket to /ws: 20 masked text frames echoed, then a close
//	slowbody   POST with Content-Length: 100 and 2 bytes sent, then nothing:
//	           gsup must answer 408 or close within -body-timeout (+ -slack)
//	slowloris  a request head trickled one byte a second: gsup must close it
//	           within -head-timeout (+ -slack)
//
// Every request to the app carries X-Soak-Id; the app (bench/internal/upstream
// with $SOAK_SEEN) appends "PID ID" to FILE when it receives one. A failed
// request is counted as in flight to a killed instance when an instance the
// soak SIGKILLed had received it, or when no instance logged it, gsup
// answered 502 (or, for a POST, cut the connection while the body was still
// being sent) and it was under way while a SIGKILLed instance was dying
// (from the signal until its process is gone, reaped by gsup): it sat unread in
// the dying instance's socket, and gsup, as nginx, does not send a request
// on to another instance once it has been sent. Every other failure is a
// lost request.
//
// Exit status: 0 when nothing was lost and no slow client was held past its
// bound, 1 otherwise, 2 on bad usage.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gsup/bench/internal/wsframe"
)

type kind int

const (
	kGet kind = iota
	kPost
	kAbort
	kWS
	kSlowBody
	kSlowloris
	nKinds
)

var kindNames = [nKinds]string{"get", "post", "abort", "ws", "slowbody", "slowloris"}

// failure is one request that did not get the answer it should have.
type failure struct {
	id    uint64
	kind  kind
	start time.Time
	d     time.Duration
	err   string
}

type tally struct {
	mu       sync.Mutex
	attempts [nKinds]int64
	ok       [nKinds]int64
	failed   []failure
	// how long the slow clients were held: sum and max
	heldSum, heldMax [nKinds]time.Duration
}

func (t *tally) add(k kind, id uint64, start time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.attempts[k]++
	if k == kSlowBody || k == kSlowloris {
		d := time.Since(start)
		t.heldSum[k] += d
		t.heldMax[k] = max(t.heldMax[k], d)
	}
	if err == nil {
		t.ok[k]++
		return
	}
	t.failed = append(t.failed, failure{id: id, kind: k, start: start, d: time.Since(start), err: err.Error()})
}

func (t *tally) snapshot() (ok, failed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range nKinds {
		ok += t.ok[k]
	}
	return ok, int64(len(t.failed))
}

type config struct {
	addr                   string
	gsupPid                int
	exe, seen              string
	duration, table        time.Duration
	killEvery, hupEvery    time.Duration
	bodyTimeout, headLimit time.Duration
	slack                  time.Duration
	workers                [nKinds]int
	getPause               time.Duration
}

var (
	nextID atomic.Uint64
	t0     = time.Now()
)

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "", "gsup's front, host:port")
	flag.IntVar(&c.gsupPid, "pid", 0, "gsup's pid: sampled, and sent SIGHUP")
	flag.StringVar(&c.exe, "exe", "", "the app's program; processes running it are the instances")
	flag.StringVar(&c.seen, "seen", "", "the file the app appends \"PID ID\" lines to")
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the traffic runs")
	flag.DurationVar(&c.table, "table", 10*time.Second, "a table row this often")
	flag.DurationVar(&c.killEvery, "kill-every", 5*time.Second, "SIGKILL an instance this often (0: never)")
	flag.DurationVar(&c.hupEvery, "hup-every", 13*time.Second, "SIGHUP gsup this often (0: never)")
	flag.DurationVar(&c.bodyTimeout, "body-timeout", 5*time.Second, "gsup's body_timeout")
	flag.DurationVar(&c.headLimit, "head-timeout", 10*time.Second, "gsup's bound on reading a request head")
	flag.DurationVar(&c.slack, "slack", 3*time.Second, "lateness allowed on those bounds (a busy machine)")
	flag.IntVar(&c.workers[kGet], "get", 4, "keep-alive GET clients")
	flag.DurationVar(&c.getPause, "get-pause", 2*time.Millisecond, "pause between two GETs of a client")
	flag.IntVar(&c.workers[kPost], "post", 2, "POST clients")
	flag.IntVar(&c.workers[kAbort], "abort", 1, "aborting clients")
	flag.IntVar(&c.workers[kWS], "ws", 1, "WebSocket clients")
	flag.IntVar(&c.workers[kSlowBody], "slowbody", 4, "stalled-body clients at once")
	flag.IntVar(&c.workers[kSlowloris], "slowloris", 4, "slowloris clients at once")
	flag.Parse()
	if c.addr == "" || c.gsupPid <= 0 || c.exe == "" || c.seen == "" {
		fmt.Fprintln(os.Stderr, "usage: soak -addr HOST:PORT -pid GSUP_PID -exe APP_PATH -seen FILE [flags]")
		os.Exit(2)
	}
	if abs, err := filepath.Abs(c.exe); err == nil {
		c.exe = abs
	}
	os.Exit(run(c))
}

func run(c config) int {
	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var t tally
	var wg sync.WaitGroup
	for k := range nKinds {
		for i := range c.workers[k] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// spread the starts, so the slow clients do not come in waves
				if !sleepCtx(ctx, time.Duration(i)*time.Second) {
					return
				}
				worker(ctx, c, k, &t)
			}()
		}
	}
	ch := &chaos{c: c, killed: map[int]*death{}}
	wg.Add(1)
	go func() { defer wg.Done(); ch.run(ctx) }()

	s := &sampler{pid: c.gsupPid}
	fmt.Printf("%7s %9s %7s %7s %7s %9s %6s %5s %5s %5s\n",
		"t", "served", "failed", "slow ok", "late", "RSS kB", "fds", "inst", "kills", "hups")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastRow := time.Now()
	gone := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		if !s.sample() {
			gone = true
			fmt.Printf("gsup (pid %d) is gone\n", c.gsupPid)
			cancel()
			break
		}
		if time.Since(lastRow) >= c.table-time.Second/2 {
			lastRow = time.Now()
			ok, failed := t.snapshot()
			sok, late := slowCounts(&t)
			kills, hups := ch.counts()
			fmt.Printf("%6.0fs %9d %7d %7d %7d %9d %6d %5d %5d %5d\n", time.Since(t0).Seconds(), ok-sok, failed-late,
				sok, late, s.last().rss, s.last().fds, len(instances(c.exe)), kills, hups)
		}
	}
	cancel()
	// the clients notice ctx at once or at their next deadline (the slow
	// ones hold at most head-timeout + slack)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(c.headLimit + c.slack + 5*time.Second):
		fmt.Println("note: some clients were still busy 5 s after their bounds; counted as they stood")
	}
	return report(c, &t, ch, s, gone)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func slowCounts(t *tally) (ok, late int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ok = t.ok[kSlowBody] + t.ok[kSlowloris]
	for _, f := range t.failed {
		if f.kind == kSlowBody || f.kind == kSlowloris {
			late++
		}
	}
	return ok, late
}

// ---- the clients --------------------------------------------------------------

func worker(ctx context.Context, c config, k kind, t *tally) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(k)))
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, ResponseHeaderTimeout: 60 * time.Second}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	var pause time.Duration
	switch k {
	case kGet:
		pause = c.getPause
	case kPost:
		pause = 20 * time.Millisecond
	case kAbort, kWS:
		pause = 100 * time.Millisecond
	case kSlowBody, kSlowloris:
		pause = 500 * time.Millisecond
	}
	for ctx.Err() == nil {
		id := nextID.Add(1)
		start := time.Now()
		var err error
		switch k {
		case kGet:
			err = doGet(ctx, cl, c.addr, id)
		case kPost:
			err = doPost(ctx, cl, c.addr, id, rng)
		case kAbort:
			err = doAbort(ctx, c.addr, id, rng.IntN(3))
		case kWS:
			err = doWS(ctx, c.addr, id, rng)
		case kSlowBody:
			err = doSlowBody(ctx, c, id)
		case kSlowloris:
			err = doSlowloris(ctx, c, id)
		}
		if errors.Is(err, errStopped) || (err != nil && ctx.Err() != nil && k != kSlowBody && k != kSlowloris) {
			return // cut by the end of the run: neither served nor lost
		}
		t.add(k, id, start, err)
		if !sleepCtx(ctx, pause) {
			return
		}
	}
}

var errStopped = errors.New("run over")

func newRequest(ctx context.Context, method, addr, path string, id uint64, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	req.Header.Set("X-Soak-Id", strconv.FormatUint(id, 10))
	return req
}

func doGet(ctx context.Context, cl *http.Client, addr string, id uint64) error {
	return exchange(cl, newRequest(ctx, http.MethodGet, addr, "/", id, nil), "hello\n")
}

func doPost(ctx context.Context, cl *http.Client, addr string, id uint64, rng *rand.Rand) error {
	n := rng.IntN(256 << 10)
	if rng.IntN(8) == 0 {
		n = 1536 << 10 // over buffer_body: streamed to the app
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	want := fmt.Sprintf("%d %08x\n", n, crc32.ChecksumIEEE(body))
	return exchange(cl, newRequest(ctx, http.MethodPost, addr, "/body", id, body), want)
}

// exchange sends req and wants a 200 with body want.
func exchange(cl *http.Client, req *http.Request, want string) error {
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return fmt.Errorf("status %d, reading the body: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != 200 || string(b) != want {
		return fmt.Errorf("status %d, body %.60q, want %q", resp.StatusCode, b, want)
	}
	return nil
}

func dial(ctx context.Context, addr string) (conn *net.TCPConn, release func(), err error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	tc := c.(*net.TCPConn)
	stop := context.AfterFunc(ctx, func() { _ = tc.SetDeadline(time.Now()) })
	return tc, func() { stop(); _ = tc.Close() }, nil
}

// doAbort: mode 0 reads the head and 64 KiB of the body and closes; mode 1
// closes right after sending the request; mode 2 reads the head and resets
// the connection.
func doAbort(ctx context.Context, addr string, id uint64, mode int) error {
	conn, release, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer release()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /big?n=%d HTTP/1.1\r\nHost: soak\r\nX-Soak-Id: %d\r\n\r\n", 32<<20, id); err != nil {
		return err
	}
	if mode == 1 {
		return nil
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("reading the head: %w", err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if mode == 2 {
		_ = conn.SetLinger(0)
		return nil
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 64<<10); err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	return nil
}

func doWS(ctx context.Context, addr string, id uint64, rng *rand.Rand) error {
	conn, release, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer release()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	var k [16]byte
	for i := range k {
		k[i] = byte(rng.Uint32())
	}
	key := base64.StdEncoding.EncodeToString(k[:])
	if _, err := fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nX-Soak-Id: %d\r\n\r\n", key, id); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsframe.AcceptKey(key) {
		return fmt.Errorf("handshake: status %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	var out []byte
	for i := range 20 {
		n := []int{5, 125, 300, 70000}[rng.IntN(4)]
		p := make([]byte, n)
		for j := range p {
			p[j] = 'a' + byte(rng.IntN(26))
		}
		mask := [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		out = wsframe.AppendFrame(out[:0], wsframe.OpText, p, &mask)
		if _, err := conn.Write(out); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		f, err := wsframe.ReadFrame(br)
		if err != nil {
			return fmt.Errorf("echo of frame %d: %w", i, err)
		}
		if f.Op != wsframe.OpText || !bytes.Equal(f.Payload, p) {
			return fmt.Errorf("echo of frame %d: opcode %d, %d bytes, want %d", i, f.Op, len(f.Payload), n)
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return errStopped
		}
	}
	mask := [4]byte{1, 2, 3, 4}
	if _, err := conn.Write(wsframe.AppendFrame(nil, wsframe.OpClose, []byte{0x03, 0xe8}, &mask)); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if f, err := wsframe.ReadFrame(br); err != nil || f.Op != wsframe.OpClose {
		return fmt.Errorf("close: no close frame back (%v)", err)
	}
	return nil
}

// waitClosed reads until the server closes the connection or limit passes;
// it returns how long that took and the status line, if one came.
func waitClosed(conn *net.TCPConn, limit time.Duration) (time.Duration, string, error) {
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(conn)
	d := time.Since(start)
	status, _, _ := strings.Cut(string(b), "\r\n")
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return d, status, ne
	}
	return d, status, nil // EOF or reset: closed
}

func doSlowBody(ctx context.Context, c config, id uint64) error {
	conn, release, err := dial(ctx, c.addr)
	if err != nil {
		return err
	}
	defer release()
	if _, err := fmt.Fprintf(conn, "POST /body HTTP/1.1\r\nHost: soak\r\nContent-Length: 100\r\nX-Soak-Id: %d\r\n\r\nab", id); err != nil {
		return err
	}
	limit := c.bodyTimeout + c.slack
	d, status, err := waitClosed(conn, limit)
	if err != nil {
		if ctx.Err() != nil && d < limit {
			return errStopped
		}
		return fmt.Errorf("stalled body still open after %s (status line %q)", d.Round(time.Millisecond), status)
	}
	if status != "" && !strings.Contains(status, " 408 ") {
		return fmt.Errorf("stalled body answered %q after %s", status, d.Round(time.Millisecond))
	}
	return nil
}

func doSlowloris(ctx context.Context, c config, id uint64) error {
	conn, release, err := dial(ctx, c.addr)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	closed := make(chan struct{})
	var d time.Duration
	var status string
	var werr error
	limit := c.headLimit + c.slack
	go func() {
		defer close(closed)
		d, status, werr = waitClosed(conn, limit)
	}()
	head := fmt.Sprintf("GET / HTTP/1.1\r\nHost: soak\r\nX-Soak-Id: %d\r\nX-Slow: %s", id, strings.Repeat("z", 200))
	for i := 0; i < len(head); i++ {
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			break // closed by gsup
		}
		select {
		case <-closed:
		case <-time.After(time.Second):
			continue
		}
		break
	}
	<-closed
	if werr != nil {
		if ctx.Err() != nil && time.Since(start) < limit {
			return errStopped
		}
		return fmt.Errorf("slowloris head still open after %s", d.Round(time.Millisecond))
	}
	if status != "" && !strings.Contains(status, " 408 ") && !strings.Contains(status, " 400 ") {
		return fmt.Errorf("slowloris head answered %q", status)
	}
	return nil
}

// ---- chaos ----------------------------------------------------------------------

type chaos struct {
	c      config
	mu     sync.Mutex
	killed map[int]*death
	hups   int
}

// death is when an instance was sent SIGKILL and when its process was
// seen gone (reaped); dead is zero until then.
type death struct{ at, dead time.Time }

func (ch *chaos) counts() (kills, hups int) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.killed), ch.hups
}

func (ch *chaos) run(ctx context.Context) {
	never := make(<-chan time.Time)
	kill, hup := never, never
	if ch.c.killEvery > 0 {
		t := time.NewTicker(ch.c.killEvery)
		defer t.Stop()
		kill = t.C
	}
	if ch.c.hupEvery > 0 {
		t := time.NewTicker(ch.c.hupEvery)
		defer t.Stop()
		hup = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kill:
			ps := instances(ch.c.exe)
			if len(ps) == 0 {
				continue
			}
			p := ps[rand.IntN(len(ps))]
			d := &death{at: time.Now()}
			if syscall.Kill(p, syscall.SIGKILL) == nil {
				ch.mu.Lock()
				ch.killed[p] = d
				ch.mu.Unlock()
				go ch.watch(p, d)
			}
		case <-hup:
			if syscall.Kill(ch.c.gsupPid, syscall.SIGHUP) == nil {
				ch.mu.Lock()
				ch.hups++
				ch.mu.Unlock()
			}
		}
	}
}

// watch polls until p is gone (at most 10 s) and notes when. Not the
// zombie state: the main thread of a Go program is a zombie while its
// other threads still exit, and its sockets are closed only after the last
// one; gsup reaps it within milliseconds of that.
func (ch *chaos) watch(p int, d *death) {
	stat := "/proc/" + strconv.Itoa(p) + "/stat"
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(stat); err != nil {
			break
		}
	}
	ch.mu.Lock()
	d.dead = time.Now()
	ch.mu.Unlock()
}

// instances are the pids running exe.
func instances(exe string) []int {
	ents, _ := os.ReadDir("/proc")
	var ps []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && l == exe {
			ps = append(ps, p)
		}
	}
	return ps
}

// ---- samples --------------------------------------------------------------------

type sample struct {
	at       time.Duration
	rss, fds int
}

type sampler struct {
	pid     int
	samples []sample
}

func (s *sampler) sample() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/status")
	if err != nil {
		return false
	}
	rss := 0
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(s.pid) + "/fd")
	if err != nil {
		return false
	}
	s.samples = append(s.samples, sample{at: time.Since(t0), rss: rss, fds: len(fds)})
	return true
}

func (s *sampler) last() sample {
	if len(s.samples) == 0 {
		return sample{}
	}
	return s.samples[len(s.samples)-1]
}

// ---- report ---------------------------------------------------------------------

func report(c config, t *tally, ch *chaos, s *sampler, gone bool) int {
	seenBy := readSeen(c.seen, t)
	ch.mu.Lock()
	killed := map[int]death{}
	for p, d := range ch.killed {
		killed[p] = *d
	}
	hups := ch.hups
	ch.mu.Unlock()

	var inKilled, lost [nKinds]int64
	var lostList []failure
	t.mu.Lock()
	defer t.mu.Unlock()
	unread := 0
	for _, f := range t.failed {
		hit := false
		for _, p := range seenBy[f.id] {
			if _, ok := killed[p]; ok {
				hit = true
			}
		}
		// a 502, or (a POST whose body was still going out) the connection
		// reset under the client: no other failure is excused this way
		unreadForm := strings.HasPrefix(f.err, "status 502") || (f.kind == kPost && !strings.HasPrefix(f.err, "status "))
		if !hit && len(seenBy[f.id]) == 0 && unreadForm {
			for _, k := range killed {
				dead := k.dead
				if dead.IsZero() {
					dead = time.Now()
				}
				if !f.start.After(dead) && !f.start.Add(f.d).Before(k.at) {
					hit = true
					unread++
					break
				}
			}
		}
		if hit {
			inKilled[f.kind]++
		} else {
			lost[f.kind]++
			lostList = append(lostList, f)
		}
	}
	fmt.Println()
	fmt.Printf("%-10s %9s %9s %14s %9s\n", "traffic", "attempts", "ok", "failed:killed", "failed:other")
	var served, fk, fo, slowOK, late int64
	for k := range nKinds {
		fmt.Printf("%-10s %9d %9d %14d %9d\n", kindNames[k], t.attempts[k], t.ok[k], inKilled[k], lost[k])
		if k == kSlowBody || k == kSlowloris {
			slowOK += t.ok[k]
			late += lost[k] + inKilled[k]
			continue
		}
		served += t.ok[k]
		fk += inKilled[k]
		fo += lost[k]
	}
	fmt.Printf("requests served %d, failed %d: %d in flight to a killed instance (%d of them not yet read by it), %d other (lost)\n",
		served, fk+fo, fk, unread, fo)
	fmt.Printf("slow clients (stalled bodies, slowloris heads) cut off in time: %d, held past their bound: %d\n", slowOK, late)
	for _, k := range []kind{kSlowBody, kSlowloris} {
		bound := c.bodyTimeout
		if k == kSlowloris {
			bound = c.headLimit
		}
		if n := t.attempts[k]; n > 0 {
			fmt.Printf("  %s held: mean %.1fs, max %.1fs (bound %s + %s)\n", kindNames[k],
				(t.heldSum[k] / time.Duration(n)).Seconds(), t.heldMax[k].Seconds(), bound, c.slack)
		}
	}
	fmt.Printf("chaos: %d instances SIGKILLed, %d SIGHUP reloads of gsup\n", len(killed), hups)
	sort.Slice(lostList, func(i, j int) bool { return lostList[i].start.Before(lostList[j].start) })
	for i, f := range lostList {
		if i == 20 {
			fmt.Printf("  ... %d more\n", len(lostList)-20)
			break
		}
		fmt.Printf("  lost: %s id=%d at %.1fs after %s: %s\n", kindNames[f.kind], f.id, f.start.Sub(t0).Seconds(),
			f.d.Round(time.Millisecond), f.err)
	}

	flat := true
	if n := len(s.samples); n > 0 {
		first, last := s.samples[0], s.samples[n-1]
		mr, mf := first, first
		for _, x := range s.samples {
			if x.rss > mr.rss {
				mr = x
			}
			if x.fds > mf.fds {
				mf = x
			}
		}
		// "flat": the last third of the run does not go above the middle
		// third by more than a margin (the first third is warm-up)
		third := max(n/3, 1)
		midR, midF, endR, endF := 0, 0, 0, 0
		for i, x := range s.samples {
			switch {
			case i >= n-third:
				endR, endF = max(endR, x.rss), max(endF, x.fds)
			case i >= third:
				midR, midF = max(midR, x.rss), max(midF, x.fds)
			}
		}
		if midR > 0 {
			flat = float64(endR) <= 1.15*float64(midR) && endF <= midF+16
		}
		fmt.Printf("gsup VmRSS kB: first %d, last %d, max %d (at %.0fs); middle third max %d, last third max %d\n",
			first.rss, last.rss, mr.rss, mr.at.Seconds(), midR, endR)
		fmt.Printf("gsup open fds: first %d, last %d, max %d (at %.0fs); middle third max %d, last third max %d\n",
			first.fds, last.fds, mf.fds, mf.at.Seconds(), midF, endF)
		fmt.Printf("RSS and fds flat (last third <= middle third: RSS +15%%, fds +16): %v\n", flat)
	}
	if gone || fo > 0 || late > 0 || !flat {
		return 1
	}
	return 0
}

// readSeen maps the ids of the failed requests to the pids that logged them.
func readSeen(path string, t *tally) map[uint64][]int {
	want := map[uint64]bool{}
	t.mu.Lock()
	for _, f := range t.failed {
		want[f.id] = true
	}
	t.mu.Unlock()
	out := map[uint64][]int{}
	f, err := os.Open(path)
	if err != nil {
		fmt.Printf("note: %v: failures cannot be told apart\n", err)
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ps, is, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		id, err1 := strconv.ParseUint(is, 10, 64)
		p, err2 := strconv.Atoi(ps)
		if err1 == nil && err2 == nil && want[id] {
			out[id] = append(out[id], p)
		}
	}
	return out
}
