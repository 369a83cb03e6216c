package serve

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/internal/corpus"
	"gsup/internal/testprog"
	"gsup/procfile"
)

// Gunicorn's request corpus (shared/corpus/gunicorn-requests, read by
// gsup/internal/corpus) sent raw over TCP through the real front: a
// Server built as main builds it (listen with its PROXY protocol layer,
// h1 with httpcheck's Stream, httpcheck.Check, upstream's pooled proxy, the access
// log) in front of an app that is a real http.Server. Every case gets a
// front and an app of its own, with the limits Gunicorn's test for it sets
// (corpus.CaseLimits), and proxy_protocol = "auto" when Gunicorn's test
// turns it on (the case starts with a PROXY header, or the manifest says
// proxy_protocol=True: valid/pp_03 checks that a connection without a
// header is still served), else "off".
//
// A case is classified as serve/httpcheck's corpus test does
// (corpus.Result): refused when the front answered 4xx/5xx or closed the
// connection without answering; forwarded when the app answered at least
// one request, having read its body whole, and nothing was refused.
//
// The client half-closes only once the front has answered what it can
// (corpus.SendThen), as a client that waits for its responses does:
// net/http cancels a request's context when it reads end of file from the
// client, and the front then takes the client for gone (499) and does not
// forward the request.
//
// Required: every invalid case is refused by gsup itself (the app gets
// not one byte of it); every valid case is forwarded unless an RFC says
// otherwise (frontRefusals names the section for each); gsup refuses more
// invalid cases than nginx, haproxy and net/http.

// frontRefusals are the valid cases the front does not forward, with the
// RFC behind each: corpus.ValidRefusals (shared with httpcheck's test),
// and what the front's upstream layer adds to httpcheck's stand-in.
var frontRefusals = corpus.ValidRefusalsAnd(map[string]string{
	// RFC 9110 section 9.3.6: CONNECT asks the recipient to open a
	// tunnel to the target; it is meant for proxies, and an origin
	// server (which gsup is, to its clients) need not implement it.
	// gsup opens no tunnels: upstream answers 405 (TestConnectRefused).
	"valid/rfc9112_target_authority_connect_01": connectRefused,
	"valid/rfc9112_target_authority_ipv6_01":    connectRefused,
})

const connectRefused = "CONNECT: RFC 9110 section 9.3.6 (a tunnel, for proxies; an origin need not implement it): upstream answers 405"

// How long the client waits before it half-closes (connWatch.settle).
const (
	settleIdle  = 250 * time.Millisecond // the front's connection waits for a next request
	settleStuck = 2 * time.Second        // nothing moves: the front waits for bytes the case lacks
	caseTimeout = 15 * time.Second
)

// corpusApp is the app behind the front: it marks every request it
// answers with corpus.ForwardedHeader once it has read the body whole, and
// counts the bytes the front sent it, so that a request the app's own
// net/http refuses still counts as having reached the app.
type corpusApp struct {
	addr     string
	srv      *http.Server
	done     chan struct{}
	bytesIn  atomic.Int64 // read from the front, over every connection
	handled  atomic.Int32 // requests the handler saw
	inFlight atomic.Int32
}

func startCorpusApp() (*corpusApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &corpusApp{addr: ln.Addr().String(), done: make(chan struct{})}
	a.srv = &http.Server{
		Handler: a,
		// net/http would answer "OPTIONS *" itself, unseen by the handler.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            5 * time.Second,
		ErrorLog:                     log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(a.done)
		a.srv.Serve(countingListener{ln, &a.bytesIn})
	}()
	return a, nil
}

func (a *corpusApp) close() {
	a.srv.Close()
	<-a.done
}

func (a *corpusApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	a.handled.Add(1)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		w.Header().Set("Connection", "close")
		http.Error(w, "bad request body", http.StatusBadRequest)
		return
	}
	w.Header().Set(corpus.ForwardedHeader, "1")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// connWatch follows the state of the front's connection (one per case),
// through http.Server.ConnState.
type connWatch struct {
	mu      sync.Mutex
	state   http.ConnState
	seen    bool
	changed time.Time
}

func (w *connWatch) hook(_ net.Conn, st http.ConnState) {
	w.mu.Lock()
	w.state, w.seen, w.changed = st, true, time.Now()
	w.mu.Unlock()
}

// settle returns once the front has answered what it can: it closed the
// connection (readDone: the client read end of file; its state changes
// only once it has lingered for the client's own close), or the
// connection has been idle (waiting for another request: a pipelined
// one would make it active at once) for settleIdle, or nothing has moved
// for settleStuck while the app has no request in hand (the front waits
// for bytes the case does not have: a truncated body, an unended head),
// or limit passes.
func (w *connWatch) settle(app *corpusApp, readDone <-chan struct{}, limit time.Duration) {
	start := time.Now()
	for time.Since(start) < limit {
		select {
		case <-readDone:
			return
		default:
		}
		w.mu.Lock()
		st, seen, changed := w.state, w.seen, w.changed
		w.mu.Unlock()
		if !seen {
			changed = start
		}
		quiet := time.Since(changed)
		switch {
		case seen && (st == http.StateClosed || st == http.StateHijacked):
			return
		case seen && st == http.StateIdle && quiet >= settleIdle:
			return
		case quiet >= settleStuck && app.inFlight.Load() == 0:
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// corpusSettings are the front's settings for c: serve_test's defaults,
// with c's limits and PROXY mode, and an access log of statuses only.
// Nobody is trusted with forwarding headers (the defaults would trust the
// loopback test client): the corpus stands for requests from anyone.
func corpusSettings(c corpus.Case, dir string) procfile.Serve {
	set := defaults()
	set.ForwardedAllowIPs = nil
	set.ProxyProtocol = "off"
	if c.WantsProxyProtocol() {
		set.ProxyProtocol = "auto" // from 127.0.0.1, which the default proxy_allow_from allows
	}
	lim := corpus.LimitsFor(c)
	set.LimitRequestLine = lim.RequestLine
	set.LimitRequestFields = lim.Fields
	set.LimitRequestFieldSize = lim.FieldSize
	set.AccessLogfile = filepath.Join(dir, "access.log")
	set.AccessLogformat = "%(s)s"
	return set
}

// frontOutcome is what one case did through the real front.
type frontOutcome struct {
	res      corpus.Result
	proxy    string // the front's proxy_protocol
	appBytes int64  // bytes of the case the app received
	handled  int32  // requests the app's handler saw
	access   []int  // statuses in the access log (requests that reached ServeHTTP)
	log      string // the front's log, debug and up
}

// layers names the parts of the front that answered the case, from its
// log, its access log and the app's byte count: listen (a PROXY header
// refused), h1 (httpcheck's Stream: raw checks), httpcheck.Check
// (called by serve.go), upstream (an error status of its own, or 499: a
// client taken for gone), an error answer none of those logged, the app.
func (o frontOutcome) layers() string {
	var by []string
	clientErrs := 0
	for _, s := range o.res.Statuses {
		if s >= 400 {
			clientErrs++
		}
	}
	listen := strings.Count(o.log, "refused a connection from")
	raw := strings.Count(o.log, `msg="refused a request: `)
	check := strings.Count(o.log, "refused a request from")
	up, upAbort := 0, 0
	for _, s := range o.access {
		switch {
		case s == 499:
			upAbort++
		case s >= 400:
			up++
		}
	}
	up -= check // Check's refusals are logged as their status too
	if listen > 0 {
		by = append(by, "listen (PROXY)")
	}
	if raw > 0 {
		by = append(by, "h1 (Stream)")
	}
	if check > 0 {
		by = append(by, "httpcheck.Check (serve.go)")
	}
	if up > 0 {
		by = append(by, "upstream")
	}
	if upAbort > 0 {
		by = append(by, "upstream (client taken for gone: 499)")
	}
	if clientErrs > listen+raw+check+up {
		by = append(by, "unlogged")
	}
	if o.appBytes > 0 {
		by = append(by, "app")
	}
	if len(by) == 0 {
		return "-"
	}
	return strings.Join(by, " + ")
}

func (o frontOutcome) String() string {
	s := o.res.String()
	if o.proxy != "off" {
		s += " (PROXY " + o.proxy + ")"
	}
	return s + " by " + o.layers()
}

// runThroughFront sends c through a front and an app of its own, and
// returns once both are shut down, so that the logs and counts are whole.
func runThroughFront(c corpus.Case, dir string) (frontOutcome, error) {
	app, err := startCorpusApp()
	if err != nil {
		return frontOutcome{}, err
	}
	defer app.close()
	set := corpusSettings(c, dir)
	logs := &testprog.Buffer{}
	lg := logrus.New()
	lg.SetOutput(logs)
	lg.SetLevel(logrus.DebugLevel)
	lg.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	s, err := New(Config{Settings: set, Log: lg, Stdout: io.Discard})
	if err != nil {
		return frontOutcome{}, err
	}
	if _, err := s.Listen([]procfile.Bind{{Address: "127.0.0.1:0"}}, nil, ""); err != nil {
		return frontOutcome{}, err
	}
	watch := &connWatch{}
	s.connState = watch.hook
	s.Serve()
	s.Add(1, app.addr)
	res, err := corpus.SendThen(s.lns[0].Addr().String(), c.Raw, caseTimeout, func(readDone <-chan struct{}) {
		watch.settle(app, readDone, caseTimeout-time.Second)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := s.Shutdown(ctx); serr != nil && err == nil {
		err = fmt.Errorf("shutting the front down: %w", serr)
	}
	if err != nil {
		return frontOutcome{}, err
	}
	for app.inFlight.Load() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	o := frontOutcome{res: res, proxy: set.ProxyProtocol, appBytes: app.bytesIn.Load(), handled: app.handled.Load(), log: logs.String()}
	b, err := os.ReadFile(set.AccessLogfile)
	if err != nil {
		return frontOutcome{}, err
	}
	for _, f := range strings.Fields(string(b)) {
		st, err := strconv.Atoi(f)
		if err != nil {
			return frontOutcome{}, fmt.Errorf("access log line %q", f)
		}
		o.access = append(o.access, st)
	}
	return o, nil
}

// runDirect sends c to an app with no front: net/http alone, with no
// PROXY protocol support, half-closing at once as httpcheck's test does
// (the app's handler does not watch for a client going away).
func runDirect(c corpus.Case) (corpus.Result, error) {
	app, err := startCorpusApp()
	if err != nil {
		return corpus.Result{}, err
	}
	defer app.close()
	return corpus.Send(app.addr, c.Raw, caseTimeout)
}

func TestCorpusThroughFront(t *testing.T) {
	cases := corpus.Load(t)
	if testing.Short() {
		t.Skip("corpus: skipped in -short mode")
	}
	front := make([]frontOutcome, len(cases))
	direct := make([]corpus.Result, len(cases))
	errs := make([]error, len(cases))
	// Cases run side by side (each has its own front and app): those the
	// front must wait out (settleStuck) would take long one by one.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, c := range cases {
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if front[i], errs[i] = runThroughFront(c, dir); errs[i] == nil {
				direct[i], errs[i] = runDirect(c)
			}
		}()
	}
	wg.Wait()
	byID := map[string]frontOutcome{}
	for i, c := range cases {
		if errs[i] != nil {
			t.Fatalf("%s: %v", c.ID, errs[i])
		}
		byID[c.ID] = front[i]
	}
	directByID := map[string]corpus.Result{}
	for i, c := range cases {
		directByID[c.ID] = direct[i]
	}
	gs := corpus.Tally(cases, func(c corpus.Case) corpus.Verdict {
		r := byID[c.ID].res
		return corpus.Verdict{Refused: r.Refused(), Passed: r.Passed()}
	})
	ds := corpus.Tally(cases, func(c corpus.Case) corpus.Verdict {
		r := directByID[c.ID]
		return corpus.Verdict{Refused: r.Refused(), Passed: r.Passed()}
	})

	var tbl strings.Builder
	row := "%-48s %13d/%d %13d/%d"
	fmt.Fprintf(&tbl, "%-48s %16s %16s %21s\n", "front", "invalid refused", "valid forwarded", "compat-valid refused")
	fmt.Fprintf(&tbl, row+" %18d/%d\n", "gsup (serve.Server: the real front)", gs.Refused, gs.Invalid, gs.Forwarded, gs.Valid, gs.StrictRefused, gs.Compat)
	for _, p := range corpus.Peers {
		fmt.Fprintf(&tbl, row+"\n", p.Name, p.Refused, corpus.InvalidScored, p.Forwarded, corpus.ValidScored)
	}
	fmt.Fprintf(&tbl, row+" %18d/%d\n", "net/http alone (this harness, no PROXY support)", ds.Refused, ds.Invalid, ds.Forwarded, ds.Valid, ds.StrictRefused, ds.Compat)
	var rows []string
	for _, c := range cases {
		o := byID[c.ID]
		if why, ok := corpus.NotInScore[c.ID]; ok {
			rows = append(rows, fmt.Sprintf("  %-44s %-40s not scored: %s", c.ID, o, why))
		} else if c.Kind == "valid" && !o.res.Passed() {
			why, ok := frontRefusals[c.ID]
			if !ok {
				why = "NO RFC REASON"
			}
			rows = append(rows, fmt.Sprintf("  %-44s %-40s %s", c.ID, o, why))
		}
	}
	sort.Strings(rows)
	t.Logf("corpus through gsup's front:\n%s\nvalid cases not forwarded, and cases not scored (answer, layer, reason):\n%s",
		tbl.String(), strings.Join(rows, "\n"))

	if gs.Invalid != corpus.InvalidScored || gs.Valid != corpus.ValidScored {
		t.Errorf("%d invalid and %d valid cases scored, want %d and %d (manifest changed?)",
			gs.Invalid, gs.Valid, corpus.InvalidScored, corpus.ValidScored)
	}
	best, bestName := ds.Refused, "net/http alone (this harness)"
	for _, p := range corpus.Peers {
		if p.Refused > best {
			best, bestName = p.Refused, p.Name
		}
	}
	if gs.Refused <= best {
		t.Errorf("gsup refuses %d/%d invalid cases; it must beat %s's %d", gs.Refused, gs.Invalid, bestName, best)
	}
	if gs.StrictRefused != gs.Compat {
		t.Errorf("gsup refuses %d/%d cases that need Gunicorn compat switches, want all", gs.StrictRefused, gs.Compat)
	}
	for _, c := range cases {
		o := byID[c.ID]
		if strings.Contains(o.log, "http: panic serving") {
			t.Errorf("%s: the front panicked:\n%s", c.ID, o.log)
		}
		if _, excluded := corpus.NotInScore[c.ID]; excluded {
			continue
		}
		switch why, excused := frontRefusals[c.ID]; {
		case c.Kind == "invalid" && !o.res.Refused():
			t.Errorf("%s: invalid (Gunicorn: %s), not refused by gsup: %s", c.ID, c.Err, o)
		case c.Kind == "invalid" && o.appBytes > 0:
			t.Errorf("%s: invalid (Gunicorn: %s), and %d bytes of it reached the app: %s", c.ID, c.Err, o.appBytes, o)
		case c.Kind == "valid" && !o.res.Passed() && !excused:
			t.Errorf("%s: valid, not forwarded by gsup (%s), and no RFC reason in frontRefusals", c.ID, o)
		case c.Kind == "valid" && o.res.Passed() && excused:
			t.Errorf("%s: forwarded by gsup, but frontRefusals says %q: update the table", c.ID, why)
		case c.Kind == "valid" && o.res.Passed() && o.handled == 0:
			t.Errorf("%s: counted as forwarded, but the app's handler saw no request: %s", c.ID, o)
		}
	}
}
