package testprog

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// seqcheck REGEXP FILE...
func cmdSeqcheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! seqcheck")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: seqcheck REGEXP FILE...")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	if re.NumSubexp() < 1 {
		ts.Fatalf("seqcheck: %q has no capture group for the number", args[0])
	}
	var files []string
	for _, pattern := range args[1:] {
		matches, err := filepath.Glob(ts.MkAbs(pattern))
		ts.Check(err)
		if len(matches) == 0 {
			ts.Fatalf("seqcheck: no file matches %s", pattern)
		}
		files = append(files, matches...)
	}
	counts, err := countNumbers(re, files)
	ts.Check(err)
	if len(counts) == 0 {
		ts.Fatalf("seqcheck: no line matches %q in %s", args[0], strings.Join(args[1:], " "))
	}
	msg := seqProblems(counts)
	if msg != "" {
		ts.Fatalf("seqcheck: %s", msg)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	fmt.Fprintf(ts.Stdout(), "%d numbered lines in %d files\n", total, len(files))
}

// countNumbers counts, for each number, the lines of files whose match of
// re carries it in the first capture group.
func countNumbers(re *regexp.Regexp, files []string) (map[int]int, error) {
	counts := map[int]int{}
	for _, name := range files {
		if err := countFile(re, name, counts); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

func countFile(re *regexp.Regexp, name string, counts map[int]int) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", name, m[1])
		}
		counts[n]++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// seqProblems describes the numbers of 1..max(counts) that are missing or
// occur more than once (at most ten of each); "" when there are none.
func seqProblems(counts map[int]int) string {
	largest := 0
	var odd []int
	for n := range counts {
		largest = max(largest, n)
		if n < 1 {
			odd = append(odd, n)
		}
	}
	var missing, repeated []string
	for n := 1; n <= largest; n++ {
		switch c := counts[n]; {
		case c == 0 && len(missing) < 10:
			missing = append(missing, strconv.Itoa(n))
		case c > 1 && len(repeated) < 10:
			repeated = append(repeated, fmt.Sprintf("%d (%d times)", n, c))
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing: "+strings.Join(missing, ", "))
	}
	if len(repeated) > 0 {
		parts = append(parts, "repeated: "+strings.Join(repeated, ", "))
	}
	if len(odd) > 0 {
		sort.Ints(odd)
		parts = append(parts, fmt.Sprintf("out of range: %v", odd))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("numbers 1..%d: %s", largest, strings.Join(parts, "; "))
}
