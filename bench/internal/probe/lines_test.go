package main

import (
	"bytes"
	"strings"
	"testing"
)

// gsupPrefix is the prefix gsup puts before a child's line: "HH:MM:SS name | ".
const gsupPrefix = `\d\d:\d\d:\d\d [A-Za-z0-9_.-]+ *\| `

func stream(ids []int, perChild int, prefix func(id int) string) []byte {
	var b []byte
	for seq := 0; seq < perChild; seq++ {
		for _, id := range ids {
			if prefix != nil {
				b = append(b, prefix(id)...)
			}
			b = appendLine(b, id, seq)
		}
	}
	return b
}

func check(t *testing.T, data []byte, perChild int, prefix string) *checker {
	t.Helper()
	c, err := newChecker(perChild, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.read(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIntactStreamIsOK(t *testing.T) {
	data := stream([]int{101, 202, 303}, 500, func(id int) string { return "12:00:01 w.1   | " })
	c := check(t, data, 500, gsupPrefix)
	if v := c.verdict(3); v != "ok" {
		t.Fatalf("verdict %q, samples %v", v, c.samples)
	}
	if c.valid != 1500 {
		t.Fatalf("valid = %d", c.valid)
	}
}

func TestSupervisorMessagesAreNotErrors(t *testing.T) {
	data := append([]byte("12:00:00 w.1 | started with pid 7\n"), stream([]int{7}, 10, nil)...)
	c := check(t, data, 10, "")
	if v := c.verdict(1); v != "ok" || c.foreign != 1 {
		t.Fatalf("verdict %q foreign %d", v, c.foreign)
	}
}

func TestSplitLineIsCaught(t *testing.T) {
	data := stream([]int{5}, 20, nil)
	// cut line 3 in two, as a supervisor emitting a partial read would
	lines := strings.SplitAfter(string(data), "\n")
	l := lines[3]
	lines[3] = l[:20] + "\n" + l[20:]
	c := check(t, []byte(strings.Join(lines, "")), 20, "")
	if c.broken != 1 || c.fragments != 1 || c.lost(1) != 1 {
		t.Fatalf("broken %d fragments %d lost %d", c.broken, c.fragments, c.lost(1))
	}
	if v := c.verdict(1); !strings.Contains(v, "lost=1") || !strings.Contains(v, "split=2") {
		t.Fatalf("verdict %q", v)
	}
}

func TestSplitWithPrefixIsCaught(t *testing.T) {
	// "…xxx" / "12:00:00 w.1 | xxxx": the second half carries gsup's prefix
	data := []byte("12:00:00 w.1 | child-5 seq=0 xxxx\n12:00:00 w.1 | " + strings.Repeat("x", xCount(5, 0)-4) + "\n")
	c := check(t, data, 1, gsupPrefix)
	if c.broken != 1 || c.fragments != 1 {
		t.Fatalf("broken %d fragments %d", c.broken, c.fragments)
	}
}

func TestGluedLinesAreCaught(t *testing.T) {
	a := appendLine(nil, 1, 0)
	b := appendLine(nil, 2, 0)
	data := append(append([]byte{}, a[:10]...), b...) // 1's line lost its tail, 2's glued on
	c := check(t, data, 1, "")
	if c.broken != 1 || c.valid != 1 || c.lost(2) != 1 {
		t.Fatalf("broken %d valid %d lost %d", c.broken, c.valid, c.lost(2))
	}
}

func TestLostDupReorderAndMissingChild(t *testing.T) {
	var data []byte
	for _, seq := range []int{0, 2, 1, 2, 4} { // 3 lost, 2 twice, 1 after 2
		data = appendLine(data, 9, seq)
	}
	c := check(t, data, 5, "")
	if c.lost(2) != 1+5 || c.dups != 1 || c.reordered != 1 {
		t.Fatalf("lost %d dups %d reordered %d", c.lost(2), c.dups, c.reordered)
	}
	v := c.verdict(2)
	for _, w := range []string{"lost=6", "dup=1", "children=1/2", "reordered=1"} {
		if !strings.Contains(v, w) {
			t.Fatalf("verdict %q lacks %s", v, w)
		}
	}
}

func TestUnterminatedAndBadPrefix(t *testing.T) {
	data := []byte("nope | ")
	data = appendLine(data, 3, 0)
	data = append(data, "child-3 seq=1 xx"...)
	c := check(t, data, 2, gsupPrefix)
	if c.badPrefix != 1 || c.unterminated != 1 || c.valid != 1 {
		t.Fatalf("badPrefix %d unterminated %d valid %d", c.badPrefix, c.unterminated, c.valid)
	}
}

func TestLongLineDoesNotBreakReader(t *testing.T) {
	data := []byte(strings.Repeat("y", 3<<20) + "\n")
	data = appendLine(data, 4, 0)
	c := check(t, data, 1, "")
	if c.lines != 2 || c.valid != 1 || c.foreign != 1 {
		t.Fatalf("lines %d valid %d foreign %d", c.lines, c.valid, c.foreign)
	}
}

func TestStats(t *testing.T) {
	med, p90, mx := stats([]float64{5, 1, 4, 2, 3, 10, 6, 7, 8, 9})
	if med != 5.5 || p90 != 9 || mx != 10 {
		t.Fatalf("med %v p90 %v max %v", med, p90, mx)
	}
	med, p90, mx = stats([]float64{3})
	if med != 3 || p90 != 3 || mx != 3 {
		t.Fatalf("single: %v %v %v", med, p90, mx)
	}
}
