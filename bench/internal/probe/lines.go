package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The throughput children write lines of the form
//
//	child-<id> seq=<seq> xxxx...x
//
// where <id> tells the writers apart (their pid), <seq> counts from 0 and the
// number of x is a function of (id, seq), so that a line cut short, cut in two
// or glued to another one no longer checks out.

const (
	minX  = 16
	spanX = 64
)

func xCount(id, seq int) int { return minX + (id*31+seq*7)%spanX }

// appendLine appends one complete line (with its newline) to b.
func appendLine(b []byte, id, seq int) []byte {
	b = append(b, "child-"...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, " seq="...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	for n := xCount(id, seq); n > 0; n-- {
		b = append(b, 'x')
	}
	return append(b, '\n')
}

// checker accumulates what a set of output files says about the lines the
// writers sent: every line of every child must appear exactly once, intact.
type checker struct {
	perChild int            // lines each child wrote
	prefix   *regexp.Regexp // what must stand before "child-", in full (nil: anything)
	lead     *regexp.Regexp // the same, matching at the start of a longer text

	kids map[int]*kidSeen

	lines        int // every newline-terminated line read
	valid        int // intact child lines, first time seen
	broken       int // contain "child-" but do not check out, or two lines glued together
	fragments    int // no "child-", but made only of pieces of child lines (a line cut in two)
	foreign      int // anything else (the supervisor's own messages)
	unterminated int // bytes after the last newline of a file
	dups         int
	reordered    int // a child's line that came after a later one of the same child
	badPrefix    int // intact line whose prefix does not match the expected one
	samples      []string
}

type kidSeen struct {
	bits  []uint64
	count int
	last  int
}

// newChecker takes the number of lines each child wrote and a regexp for
// the text that must stand before "child-" ("" accepts anything).
func newChecker(perChild int, prefix string) (*checker, error) {
	c := &checker{perChild: perChild, kids: map[int]*kidSeen{}}
	if prefix != "" {
		var err error
		if c.prefix, err = regexp.Compile("^(?:" + prefix + ")$"); err != nil {
			return nil, err
		}
		c.lead = regexp.MustCompile("^(?:" + prefix + ")")
	}
	return c, nil
}

func (c *checker) sample(kind string, line []byte) {
	if len(c.samples) >= 5 {
		return
	}
	s := string(line)
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	c.samples = append(c.samples, fmt.Sprintf("%s: %q", kind, s))
}

var marker = []byte("child-")

// parseTail checks "child-ID seq=SEQ xxx" (the whole of t) and returns id and seq.
func parseTail(t []byte) (id, seq int, ok bool) {
	id, t, ok = number(t[len(marker):])
	if !ok || !bytes.HasPrefix(t, []byte(" seq=")) {
		return 0, 0, false
	}
	seq, t, ok = number(t[5:])
	if !ok || len(t) < 2 || t[0] != ' ' {
		return 0, 0, false
	}
	t = t[1:]
	if len(t) != xCount(id, seq) {
		return 0, 0, false
	}
	for _, ch := range t {
		if ch != 'x' {
			return 0, 0, false
		}
	}
	return id, seq, true
}

// number reads the decimal number (1 to 9 digits) t starts with; rest is
// what follows it.
func number(t []byte) (n int, rest []byte, ok bool) {
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 || i > 9 {
		return 0, t, false
	}
	n, _ = strconv.Atoi(string(t[:i]))
	return n, t[i:], true
}

func isFragment(t []byte) bool {
	for _, ch := range t {
		switch {
		case ch >= '0' && ch <= '9':
		case strings.IndexByte("xseq= child-", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

// line takes one line without its newline.
func (c *checker) line(l []byte) {
	c.lines++
	l = bytes.TrimSuffix(l, []byte{'\r'})
	at := bytes.LastIndex(l, marker)
	if at < 0 {
		t := l
		if c.lead != nil {
			if loc := c.lead.FindIndex(t); loc != nil {
				t = t[loc[1]:]
			}
		}
		if isFragment(t) {
			c.fragments++
			c.sample("fragment", l)
		} else {
			c.foreign++
		}
		return
	}
	id, seq, ok := parseTail(l[at:])
	if !ok || seq >= c.perChild {
		c.broken++
		c.sample("broken", l)
		return
	}
	pre := l[:at]
	if bytes.Contains(pre, marker) {
		// two lines glued together: the last one is whole, the first is not
		c.broken++
		c.sample("glued", l)
	} else if c.prefix != nil && !c.prefix.Match(pre) {
		c.badPrefix++
		c.sample("prefix", l)
	}
	k := c.kids[id]
	if k == nil {
		k = &kidSeen{bits: make([]uint64, (c.perChild+63)/64), last: -1}
		c.kids[id] = k
	}
	w, b := seq/64, uint64(1)<<(seq%64)
	if k.bits[w]&b != 0 {
		c.dups++
		return
	}
	k.bits[w] |= b
	k.count++
	c.valid++
	if seq < k.last {
		c.reordered++
	}
	k.last = seq
}

// read takes a whole stream; a last line without newline counts as unterminated.
func (c *checker) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if long != nil {
				long = append(long, chunk[:len(chunk)-1]...)
				c.line(long)
				long = nil
			} else {
				c.line(chunk[:len(chunk)-1])
			}
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, chunk...)
		case errors.Is(err, io.EOF):
			if len(chunk) > 0 || len(long) > 0 {
				c.unterminated++
				c.sample("unterminated", append(long, chunk...))
			}
			return nil
		default:
			return err
		}
	}
}

func (c *checker) readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.read(f)
}

// lost is the number of lines the writers sent that never showed up intact,
// taking wantKids children of perChild lines each.
func (c *checker) lost(wantKids int) int {
	n := 0
	for _, k := range c.kids {
		n += c.perChild - k.count
	}
	if len(c.kids) < wantKids {
		n += (wantKids - len(c.kids)) * c.perChild
	}
	return n
}

// verdict is "ok" or a short list of what went wrong.
func (c *checker) verdict(wantKids int) string {
	var bad []string
	if n := c.lost(wantKids); n > 0 {
		bad = append(bad, fmt.Sprintf("lost=%d", n))
	}
	if n := c.broken + c.fragments + c.unterminated; n > 0 {
		bad = append(bad, fmt.Sprintf("split=%d", n))
	}
	if c.dups > 0 {
		bad = append(bad, fmt.Sprintf("dup=%d", c.dups))
	}
	if len(c.kids) != wantKids {
		bad = append(bad, fmt.Sprintf("children=%d/%d", len(c.kids), wantKids))
	}
	if c.reordered > 0 {
		bad = append(bad, fmt.Sprintf("reordered=%d", c.reordered))
	}
	if c.badPrefix > 0 {
		bad = append(bad, fmt.Sprintf("prefix=%d", c.badPrefix))
	}
	if len(bad) == 0 {
		return "ok"
	}
	return strings.Join(bad, ",")
}

func (c *checker) report(wantKids int) []kv {
	ids := make([]int, 0, len(c.kids))
	for id := range c.kids {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return []kv{
		{"check", c.verdict(wantKids)},
		{"lines_read", c.lines},
		{"valid", c.valid},
		{"lost", c.lost(wantKids)},
		{"broken", c.broken},
		{"fragments", c.fragments},
		{"unterminated", c.unterminated},
		{"dups", c.dups},
		{"reordered", c.reordered},
		{"bad_prefix", c.badPrefix},
		{"other_lines", c.foreign},
		{"children_seen", len(ids)},
		{"samples", strings.Join(c.samples, " | ")},
	}
}
