package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

const wrkClean = `Running 10s test @ http://127.0.0.1:41000/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.01ms    1.10ms  31.50ms   90.12%
    Req/Sec    12.70k     1.02k   14.90k    71.00%
  Latency Distribution
     50%    1.80ms
     75%    2.31ms
     90%    3.02ms
     99%  812.00us
  252731 requests in 10.00s, 35.19MB read
Requests/sec:  25266.41
Transfer/sec:      3.52MB
`

const wrkErrors = `Running 5s test @ http://127.0.0.1:41000/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20s   500.00ms   4.99s    80.00%
    Req/Sec     1.00k   100.00     2.00k    60.00%
  Latency Distribution
     50%    1.10s 
     75%    1.50s 
     90%    2.00s 
     99%    1.02m 
  4000 requests in 5.10s, 1.00MB read
  Socket errors: connect 1, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 17
Requests/sec:    784.31
Transfer/sec:    200.00KB
`

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestParseWrk(t *testing.T) {
	w, err := parseWrk(strings.NewReader(wrkClean))
	if err != nil {
		t.Fatal(err)
	}
	if w.requests != 252731 || !near(w.secs, 10) || !near(w.rps, 25266.41) {
		t.Errorf("totals: %+v", w)
	}
	if !near(w.p50, 1.8) || !near(w.p99, 0.812) || !w.haveLat {
		t.Errorf("latency: p50 %v p99 %v", w.p50, w.p99)
	}
	if w.connect+w.read+w.write+w.timeout+w.non2xx != 0 {
		t.Errorf("errors in a clean run: %+v", w)
	}

	w, err = parseWrk(strings.NewReader(wrkErrors))
	if err != nil {
		t.Fatal(err)
	}
	if w.connect != 1 || w.read != 12 || w.write != 0 || w.timeout != 3 || w.non2xx != 17 {
		t.Errorf("errors: %+v", w)
	}
	if !near(w.p50, 1100) || !near(w.p99, 61200) || !near(w.secs, 5.1) {
		t.Errorf("units: p50 %v p99 %v secs %v", w.p50, w.p99, w.secs)
	}

	if _, err := parseWrk(strings.NewReader("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Error("a failed run parsed without error")
	}
}

func TestParseStatCPU(t *testing.T) {
	// a command name with blanks and a ')' in it
	line := []byte("4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 137 42 0 0 20 0 3 0 999 1000 10 0\n")
	ticks, ok := parseStatCPU(line)
	if !ok || ticks != 179 {
		t.Fatalf("got %d %v, want 179", ticks, ok)
	}
	if _, ok := parseStatCPU([]byte("1 (x) S 1")); ok {
		t.Error("a short line parsed")
	}
	if _, ok := cpuTicks(os.Getpid()); !ok {
		t.Error("own /proc/PID/stat not readable")
	}
}

func TestSwitches(t *testing.T) {
	status := "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n"
	if v, n := parseSwitches([]byte(status)); v != 12 || n != 3 {
		t.Errorf("parseSwitches: %d %d, want 12 3", v, n)
	}
	// this process's threads have waited: the sleep below is one more
	v0, _ := switches(os.Getpid())
	time.Sleep(time.Millisecond)
	if v1, _ := switches(os.Getpid()); v1 <= v0 {
		t.Errorf("voluntary switches %d then %d after a sleep, want more", v0, v1)
	}
}

func TestParseProcStat(t *testing.T) {
	stat := "cpu  10 1 20 1000 5 2 3 4 0 0\ncpu0 7 0 9 400 1 1 2 3 0 0\nintr 1 2 3\n"
	all := parseProcStat([]byte(stat))
	c := all["cpu0"]
	if c.busy != 7+0+9+1+2 || c.idle != 401 || c.steal != 3 {
		t.Errorf("cpu0: %+v", c)
	}
	if _, ok := all["intr"]; ok {
		t.Error("a non-cpu line parsed")
	}
}
