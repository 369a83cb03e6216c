package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"gsup/internal/testprog"
	"gsup/supervisor"
)

type fakeSource []supervisor.Status

func (f fakeSource) Status() ([]supervisor.Status, error) { return f, nil }

func scrape(t *testing.T, m *Metrics, accept string) (string, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Result().Body)
	return string(body), w.Result().Header.Get("Content-Type")
}

func sample() *Metrics {
	m := New()
	started := time.Now().Add(-time.Minute)
	m.SetSource(fakeSource{
		{ID: 1, App: "shop", Type: "web", Name: "web.1", Pid: os.Getpid(), State: supervisor.StateRunning, Ready: true, Started: started,
			MemoryBytes: 1 << 20, CPUSeconds: 1.5, RestartReasons: map[supervisor.Reason]int{supervisor.ReasonMaxRSS: 2}},
		// web.1 being replaced: the newest of one name is shown.
		{ID: 3, App: "shop", Type: "web", Name: "web.1", Pid: os.Getpid(), State: supervisor.StateStarting, Started: started},
		{ID: 2, App: "other", Type: "worker", Name: "other/worker.1", State: supervisor.StateBackoff},
	})
	for _, d := range []time.Duration{time.Millisecond, 20 * time.Millisecond, 3 * time.Second} {
		m.Begin()
		m.End("GET", 200, 0, 5, d, time.Now())
	}
	m.Begin()
	m.End("BREW", 502, 10, 0, time.Second, time.Now())
	m.HoldBegin()
	m.HoldEnd(40*time.Millisecond, true)
	m.Handshake(true)
	m.Handshake(true)
	m.Handshake(false)
	return m
}

// The histogram parses, counts every request and has its buckets in
// seconds; restarts exist at 0 for every reason; method is bounded.
func TestHistogramAndNames(t *testing.T) {
	text, ctype := scrape(t, sample(), "")
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Errorf("Content-Type %q", ctype)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	h := fams["gsup_http_request_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 4 || h.GetSampleSum() < 4.02 || h.GetSampleSum() > 4.03 {
		t.Errorf("histogram: count %d sum %g", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 0.025 && b.GetCumulativeCount() != 2 || b.GetUpperBound() == 1 && b.GetCumulativeCount() != 3 {
			t.Errorf("bucket le=%g has %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	for _, want := range []string{
		`gsup_http_requests_total{code="200",method="GET"} 3`,
		`gsup_http_requests_total{code="502",method="other"} 1`,
		`gsup_process_restarts_total{app="shop",instance="web.1",reason="max_age",type="web"} 0`,
		`gsup_process_state{app="shop",instance="web.1",state="starting",type="web"} 1`,
		`gsup_process_state{app="other",instance="worker.1",state="backoff",type="worker"} 1`,
		`gsup_http_requests_in_flight 0`,
		`gsup_reloads_total{result="failed"} 0`,
		`gsup_http_requests_held 0`,
		`gsup_http_request_hold_seconds_count{result="served"} 1`,
		`gsup_http_request_hold_seconds_count{result="unserved"} 0`,
		`gsup_tls_handshakes_total{result="ok"} 2`,
		`gsup_tls_handshakes_total{result="failed"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	if strings.Count(text, `gsup_process_ready{app="shop",instance="web.1"`) != 1 {
		t.Errorf("web.1 is not shown once")
	}
	if _, ctype := scrape(t, sample(), "application/openmetrics-text; version=1.0.0"); !strings.HasPrefix(ctype, "application/openmetrics-text") {
		t.Errorf("OpenMetrics asked, got %q", ctype)
	}
}

// promtool check metrics accepts the output (Debian package prometheus).
func TestPromtool(t *testing.T) {
	promtool := testprog.NeedProgram(t, "promtool", "prometheus")
	text, _ := scrape(t, sample(), "")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// Front's requests/s count the last 10 s, and its p99 is the sorted
// durations' 99th percentile, rounded up by less than one step (9 %).
func TestFront(t *testing.T) {
	m := New()
	if rps, p99 := m.Front(); rps != 0 || p99 != 0 {
		t.Errorf("no requests: %v, %v; want 0, 0", rps, p99)
	}
	for i := range 1000 {
		m.End("GET", 200, 0, 0, time.Duration(i+1)*time.Millisecond, time.Now())
	}
	rps, p99 := m.Front()
	if rps != 100 {
		t.Errorf("1000 requests: %v requests/s; want 100", rps)
	}
	if want := 991 * time.Millisecond; p99 < want || p99 > want*109/100 {
		t.Errorf("p99 of 1 ms to 1 s: %v; want %v to 9 %% more", p99, want)
	}
	// One slow request in a hundred fast ones is the p99.
	m = New()
	for range 99 {
		m.End("GET", 200, 0, 0, 300*time.Microsecond, time.Now())
	}
	m.End("GET", 200, 0, 0, 4*time.Second, time.Now())
	if _, p99 := m.Front(); p99 < 4*time.Second || p99 > 4*time.Second*109/100 {
		t.Errorf("p99 with one slow request in 100: %v; want 4s", p99)
	}
	// Steps: every duration is below its step's end, and at or above the
	// end of the step below.
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Microsecond, 7 * time.Microsecond,
		1000 * time.Microsecond, 1023 * time.Microsecond, 1024 * time.Microsecond, 37 * time.Millisecond, time.Hour} {
		i := step(d)
		if us := max(d.Microseconds(), 1); i < durSteps-1 && (stepTop(i) <= time.Duration(us)*time.Microsecond ||
			i > 0 && stepTop(i-1) > time.Duration(us)*time.Microsecond) {
			t.Errorf("%v: step %d, top %v, the step below's top %v", d, i, stepTop(i), stepTop(i-1))
		}
	}
}

// Counting a request allocates nothing once its counter exists.
func TestEndAllocations(t *testing.T) {
	m := New()
	m.End("GET", 200, 0, 6, time.Millisecond, time.Now())
	if n := testing.AllocsPerRun(100, func() { m.Begin(); m.End("GET", 200, 0, 6, time.Millisecond, time.Now()) }); n != 0 {
		t.Errorf("%v allocations per request; want none", n)
	}
}
