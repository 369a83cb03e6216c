package testprog

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// promSum is the sum of every sample of metric name in Prometheus text
// (each label set; not its _bucket, _sum or _count series).
func promSum(text, name string) (sum float64, n int) {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		value, _, _ = strings.Cut(value, " ") // a timestamp may follow
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			sum += v
			n++
		}
	}
	return sum, n
}

// promsum [-t DUR] [-lines FILE] METRICS NAME prints the sum of the
// samples of NAME in the Prometheus text file METRICS; with -lines it
// waits until FILE has that many lines, and fails if it never does.
func cmdPromsum(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! promsum")
	}
	fs := flag.NewFlagSet("promsum", flag.ContinueOnError)
	lines := fs.String("lines", "", "wait until `FILE` has as many lines as the sum")
	timeout, pos := cmdFlags(ts, fs, args, 2, 2, "[-t DUR] [-lines FILE] METRICS NAME")
	sum, n := promSum(ts.ReadFile(pos[0]), pos[1])
	if n == 0 {
		ts.Fatalf("promsum: no sample of %s in %s", pos[1], pos[0])
	}
	fmt.Fprintf(ts.Stdout(), "%s %g\n", pos[1], sum)
	if *lines == "" {
		return
	}
	Eventually(ts, "promsum "+pos[1]+" = lines of "+*lines, timeout, func() (bool, string) {
		got := strings.Count(ts.ReadFile(*lines), "\n")
		return float64(got) == sum, fmt.Sprintf("%d lines, sum %g", got, sum)
	})
}
