// Package metrics measures what gsup knows, for Prometheus: the front's
// requests (as serve.Observer), every instance (read from the
// supervisor at each scrape), reloads and upgrades, and gsup's own Go
// runtime. Handler serves them in the text format, or OpenMetrics when
// the scraper asks for it. A Board keeps what the status page (and
// `gsup top`, package metrics/top) shows: the instances, the front's
// requests/s and p99 (Front), the recent events.
//
// The metric names are a contract dashboards rely on: they change only
// with a note in the README.
package metrics

import (
	"math/bits"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gsup/supervisor"
)

// Source gives the instances at each scrape (the Supervisor).
type Source interface {
	Status() ([]supervisor.Status, error)
}

// Metrics holds gsup's metrics. Create it with New.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	received prometheus.Counter
	sent     prometheus.Counter
	inFlight prometheus.Gauge
	reloads  *prometheus.CounterVec
	upgrades *prometheus.CounterVec
	holding  prometheus.Gauge
	held     *prometheus.HistogramVec
	tls      *prometheus.CounterVec

	rates rates
	// reqs caches the requests counter of each method and status from
	// 100 to 599 (WithLabelValues hashes and formats the labels).
	reqs [len(methods) + 1][500]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// New registers gsup's metrics; src may be set later with SetSource.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsup_http_requests_total",
			Help: "Requests the public binds answered, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gsup_http_request_duration_seconds",
			Help:    "Time from a request's head to the end of its response.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsup_http_request_body_bytes_total",
			Help: "Request body bytes announced by clients (Content-Length).",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsup_http_response_body_bytes_total",
			Help: "Response body bytes sent to clients.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsup_http_requests_in_flight",
			Help: "Requests being answered now.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsup_reloads_total",
			Help: "Reloads of the config, by result (ok, failed).",
		}, []string{"result"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsup_upgrades_total",
			Help: "In-place upgrades of gsup's binary begun, by result (started, refused).",
		}, []string{"result"}),
		holding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsup_http_requests_held",
			Help: "Requests waiting now for an instance to be ready (hold_timeout).",
		}),
		held: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gsup_http_request_hold_seconds",
			Help:    "Time requests waited for an instance to be ready, by result (served, unserved: hold_timeout or the client left).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		tls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsup_tls_handshakes_total",
			Help: "TLS handshakes with clients, by result (ok, failed).",
		}, []string{"result"}),
	}
	preset(m.held.WithLabelValues, "served", "unserved")
	preset(m.tls.WithLabelValues, "ok", "failed")
	preset(m.reloads.WithLabelValues, "ok", "failed")
	preset(m.upgrades.WithLabelValues, "started", "refused")
	m.reg.MustRegister(m.requests, m.duration, m.received, m.sent, m.inFlight, m.reloads, m.upgrades, m.holding, m.held, m.tls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// preset makes the series of each result exist from the start, at zero,
// so that a scrape shows them before the first event.
func preset[T any](withLabelValues func(...string) T, results ...string) {
	for _, r := range results {
		withLabelValues(r)
	}
}

// SetSource makes the instance metrics read src at each scrape.
func (m *Metrics) SetSource(src Source) {
	m.reg.MustRegister(&instances{src: src})
}

// Handler serves the metrics (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Begin counts a request in flight (serve.Observer).
func (m *Metrics) Begin() { m.inFlight.Inc() }

// End counts a request answered (serve.Observer).
func (m *Metrics) End(method string, status int, bodyIn, bodyOut int64, took time.Duration, end time.Time) {
	m.inFlight.Dec()
	m.requestsOf(method, status).Inc()
	m.duration.Observe(took.Seconds())
	if bodyIn > 0 {
		m.received.Add(float64(bodyIn))
	}
	m.sent.Add(float64(bodyOut))
	m.rates.add(took, end.Unix())
}

// requestsOf is the requests counter of method and status.
func (m *Metrics) requestsOf(method string, status int) prometheus.Counter {
	if status < 100 || status >= 600 {
		return m.requests.WithLabelValues(methodLabel(method), strconv.Itoa(status))
	}
	p := &m.reqs[slices.Index(methods[:], method)+1][status-100]
	if c := p.Load(); c != nil {
		return c.Counter
	}
	c := &counter{m.requests.WithLabelValues(methodLabel(method), strconv.Itoa(status))}
	p.Store(c)
	return c.Counter
}

// HoldBegin counts a request waiting for an instance (serve.Observer).
func (m *Metrics) HoldBegin() { m.holding.Inc() }

// HoldEnd counts the end of a wait for an instance (serve.Observer).
func (m *Metrics) HoldEnd(waited time.Duration, served bool) {
	m.holding.Dec()
	m.held.WithLabelValues(result(served, "served", "unserved")).Observe(waited.Seconds())
}

// Handshake counts a TLS handshake with a client (serve.Observer).
func (m *Metrics) Handshake(ok bool) { m.tls.WithLabelValues(result(ok, "ok", "failed")).Inc() }

// Reload counts a reload; ok says it succeeded.
func (m *Metrics) Reload(ok bool) { m.reloads.WithLabelValues(result(ok, "ok", "failed")).Inc() }

// Upgrade counts an upgrade; ok says it started.
func (m *Metrics) Upgrade(ok bool) {
	m.upgrades.WithLabelValues(result(ok, "started", "refused")).Inc()
}

func result(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// methods are the method label's values; any other method is "other",
// so clients cannot make series without bound.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

func methodLabel(m string) string {
	if slices.Contains(methods[:], m) {
		return m
	}
	return "other"
}

// instances is the collector of the per-instance metrics, read from the
// Source at each scrape.
type instances struct{ src Source }

var (
	instLabels = []string{"app", "type", "instance"}
	descState  = prometheus.NewDesc("gsup_process_state",
		"1 for the state the instance is in (starting, running, stopping, stopped, backoff, exited, fatal), else 0.",
		append(instLabels, "state"), nil)
	descReady    = prometheus.NewDesc("gsup_process_ready", "1 when the instance is ready.", instLabels, nil)
	descRestarts = prometheus.NewDesc("gsup_process_restarts_total",
		"Restarts and replacements of the instance, by reason (exit, health, upstream, hang, max_rss, max_cpu, max_age, max_requests).",
		append(instLabels, "reason"), nil)
	descRSS = prometheus.NewDesc("gsup_process_resident_memory_bytes",
		"Resident memory of all the instance's processes.", instLabels, nil)
	descCPU = prometheus.NewDesc("gsup_process_cpu_seconds_total",
		"CPU time of the instance's processes (its cgroup's, else its live processes').", instLabels, nil)
	descFDs = prometheus.NewDesc("gsup_process_open_fds",
		"Open file descriptors of the instance's main process.", instLabels, nil)
	descUptime = prometheus.NewDesc("gsup_process_uptime_seconds",
		"Time since the instance's process started.", instLabels, nil)
	descChecks = prometheus.NewDesc("gsup_health_checks_total",
		"Active health checks of the instance, by result (ok, failed).", append(instLabels, "result"), nil)
	descEjections = prometheus.NewDesc("gsup_health_ejections_total",
		"Times the instance was taken out of rotation because it failed (reasons health, upstream, hang).", instLabels, nil)
	states = []supervisor.State{supervisor.StateStarting, supervisor.StateRunning, supervisor.StateStopping,
		supervisor.StateStopped, supervisor.StateBackoff, supervisor.StateExited, supervisor.StateFatal}
)

func (c *instances) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descReady, descRestarts, descRSS, descCPU, descFDs, descUptime, descChecks, descEjections} {
		ch <- d
	}
}

func (c *instances) Collect(ch chan<- prometheus.Metric) {
	ps, err := c.src.Status()
	if err != nil {
		return
	}
	now := time.Now()
	for _, st := range Newest(ps) {
		lv := []string{st.App, st.Type, Label(st)}
		for _, s := range states {
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, boolValue(st.State == s), append(lv, string(s))...)
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, boolValue(st.Ready), lv...)
		for _, r := range supervisor.Reasons {
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.RestartReasons[r]), append(lv, string(r))...)
		}
		ejected := st.RestartReasons[supervisor.ReasonHealth] + st.RestartReasons[supervisor.ReasonUpstream] + st.RestartReasons[supervisor.ReasonHang]
		ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(ejected), lv...)
		for _, r := range []string{"ok", "failed"} {
			ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(st.HealthChecks[r]), append(lv, r)...)
		}
		if st.Pid == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(st.MemoryBytes), lv...)
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, st.CPUSeconds, lv...)
		ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, now.Sub(st.Started).Seconds(), lv...)
		if fds, err := os.ReadDir("/proc/" + strconv.Itoa(st.Pid) + "/fd"); err == nil {
			ch <- prometheus.MustNewConstMetric(descFDs, prometheus.GaugeValue, float64(len(fds)), lv...)
		}
	}
}

// Label is an instance's label: its name without its app ("web.1").
func Label(st supervisor.Status) string { return strings.TrimPrefix(st.Name, st.App+"/") }

// Newest keeps, of the instances of one name (an instance and the one
// replacing it), the newest, in order.
func Newest(ps []supervisor.Status) []supervisor.Status {
	at := map[string]int{}
	var out []supervisor.Status
	for _, st := range ps {
		key := st.App + "/" + st.Name
		if i, ok := at[key]; ok {
			if st.ID > out[i].ID {
				out[i] = st
			}
			continue
		}
		at[key] = len(out)
		out = append(out, st)
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// rates keeps the front's request counts and durations of the last
// window, in one-second slots, for requests/s and the p99 of the status
// page. A slot holds a histogram of durations in steps of 1/8 of a power
// of two (about 9 %), so a request costs one lock and two increments,
// whatever the rate, and the p99 is within a step of the real one.
type rates struct {
	mu    sync.Mutex
	slots [window / time.Second]slot
}

type slot struct {
	sec   int64 // the Unix second it counts
	n     int
	max   time.Duration
	steps [durSteps]int32
}

const (
	// window is the span of rates.
	window = 10 * time.Second
	// durSteps cover 1 µs to 2^31 µs (about 36 minutes); longer
	// durations count in the last step.
	durSteps = 31 * 8
)

// step is the histogram step of d: eight per power of two of µs.
func step(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 1))
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	var sub uint64
	if e >= 3 {
		sub = us >> (e - 3) & 7
	} else {
		sub = us << (3 - e) & 7
	}
	return min(e*8+int(sub), durSteps-1)
}

// stepTop is the end of step i: its durations are shorter.
func stepTop(i int) time.Duration {
	e, sub := i/8, int64(i%8)
	return time.Duration((8+sub+1)<<e) * time.Microsecond / 8 // (1 + (sub+1)/8) * 2^e µs
}

// add counts a request that took took and ended in second sec.
func (r *rates) add(took time.Duration, sec int64) {
	i := step(took)
	r.mu.Lock()
	sl := &r.slots[sec%int64(len(r.slots))]
	if sl.sec != sec {
		*sl = slot{sec: sec}
	}
	sl.n++
	sl.max = max(sl.max, took)
	sl.steps[i]++
	r.mu.Unlock()
}

// Front returns the front's requests per second and 99th percentile
// duration over the last 10 seconds (the p99 rounded up to its
// histogram step, or to the longest duration when that is less).
func (m *Metrics) Front() (perSecond float64, p99 time.Duration) {
	r := &m.rates
	now := time.Now().Unix()
	var n int
	var longest time.Duration
	var steps [durSteps]int
	r.mu.Lock()
	for i := range r.slots {
		sl := &r.slots[i]
		if sl.n == 0 || now-sl.sec >= int64(len(r.slots)) {
			continue
		}
		n += sl.n
		longest = max(longest, sl.max)
		for j, c := range sl.steps {
			steps[j] += int(c)
		}
	}
	r.mu.Unlock()
	if n == 0 {
		return 0, 0
	}
	rank := n * 99 / 100 // the one the sorted list had at [n*99/100]
	for i, c := range steps {
		if rank < c {
			return float64(n) / window.Seconds(), min(stepTop(i), longest)
		}
		rank -= c
	}
	return float64(n) / window.Seconds(), longest
}
