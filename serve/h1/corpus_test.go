package h1

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gsup/internal/corpus"
	"gsup/serve/httpcheck"
)

// The corpus is Gunicorn's tests/requests (shared/corpus/gunicorn-requests,
// see its README): raw requests Gunicorn's parser must accept (valid) or
// refuse (invalid). Each is sent as it is over TCP to a real server (this
// package's, or net/http's alone or with Check), and classified as refused (a 4xx/5xx answer,
// or the connection closed with nothing forwarded) or forwarded (the
// handler standing for the app got at least one request, and nothing was
// refused).

// The tables (per-case limits, cases not scored, valid cases an RFC makes
// a front refuse, the peers' figures) and the corpus itself are in
// gsup/internal/corpus, shared with serve's corpus test, which runs the
// same cases through the real front.

// validRefusals are corpus.ValidRefusals, plus what net/http's server does
// by itself (this package's Server forwards "OPTIONS *" like any request).
var validRefusals = corpus.ValidRefusalsAnd(map[string]string{
	// Not refused: net/http answers "OPTIONS *" itself (200,
	// Allow-less), before any handler runs, unless the server sets
	// DisableGeneralOptionsHandler. RFC 9110 section 9.3.7 allows it
	// (OPTIONS * asks about the server, which the front is) without
	// requiring it; gsup's front turns it off and forwards the request.
	"valid/rfc9112_target_asterisk_options_01": "answered by net/http itself: RFC 9110 section 9.3.7 allows it (OPTIONS * is about the server)",
})

var (
	peers       = corpus.Peers
	notInScore  = corpus.NotInScore
	hostMissing = corpus.HostMissing
)

// stripProxy stands in for the PROXY protocol layer, which is another
// package's (serve/listen): every case that starts with a PROXY header is
// one of Gunicorn's proxy_protocol tests (the manifest marks four; the
// .py files of the others set it too). A well-formed v1 or v2 header is
// removed and the rest is sent; a malformed one is refused by that layer
// (400, DESIGN.md "PROXY protocol"), so the case counts as refused there.
func stripProxy(raw []byte) (rest []byte, isProxy bool, ok bool) {
	v2sig := []byte("\r\n\r\n\x00\r\nQUIT\n")
	switch {
	case bytes.HasPrefix(raw, v2sig):
		if len(raw) < 16 || raw[12]>>4 != 2 || raw[12]&0xf > 1 {
			return nil, true, false
		}
		n := 16 + int(binary.BigEndian.Uint16(raw[14:16]))
		if len(raw) < n {
			return nil, true, false
		}
		return raw[n:], true, true
	case bytes.HasPrefix(raw, []byte("PROXY ")):
		end := bytes.Index(raw, []byte("\r\n"))
		if end < 0 || end+2 > 107 {
			return nil, true, false
		}
		f := strings.Split(string(raw[:end]), " ")
		if len(f) == 2 && f[1] == "UNKNOWN" {
			return raw[end+2:], true, true
		}
		if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
			return nil, true, false
		}
		for _, a := range f[2:4] {
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Is4() != (f[1] == "TCP4") {
				return nil, true, false
			}
		}
		for _, p := range f[4:6] {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || strconv.FormatUint(n, 10) != p {
				return nil, true, false
			}
		}
		return raw[end+2:], true, true
	}
	return raw, false, true
}

type outcome struct {
	res        corpus.Result
	proxyStage bool // refused by the PROXY stand-in
	stripped   bool // a PROXY header was removed first
}

func (o outcome) refused() bool { return o.proxyStage || o.res.Refused() }
func (o outcome) passed() bool  { return !o.proxyStage && o.res.Passed() }

func (o outcome) String() string {
	if o.proxyStage {
		return "refused by the PROXY layer"
	}
	s := o.res.String()
	if o.stripped {
		s = "PROXY stripped, " + s
	}
	return s
}

// runCorpus sends every case to a front in mode and returns the outcomes.
func runCorpus(t *testing.T, cases []corpus.Case, mode frontMode) map[string]outcome {
	fronts := map[httpcheck.Limits]*front{}
	out := map[string]outcome{}
	for _, c := range cases {
		cl := corpus.LimitsFor(c)
		lim := httpcheck.Limits{RequestLine: cl.RequestLine, Fields: cl.Fields, FieldSize: cl.FieldSize}
		f := fronts[lim]
		if f == nil {
			f = startFront(t, mode, lim)
			fronts[lim] = f
		}
		raw, isProxy, ok := stripProxy(c.Raw)
		if !ok {
			out[c.ID] = outcome{proxyStage: true}
			continue
		}
		out[c.ID] = outcome{res: send(t, f.addr, raw), stripped: isProxy}
	}
	return out
}

func scoreOf(cases []corpus.Case, out map[string]outcome) corpus.Score {
	return corpus.Tally(cases, func(c corpus.Case) corpus.Verdict {
		o := out[c.ID]
		return corpus.Verdict{Refused: o.refused(), Passed: o.passed()}
	})
}

func TestCorpus(t *testing.T) {
	cases := corpus.Load(t)
	if testing.Short() {
		t.Skip("corpus: skipped in -short mode")
	}
	modes := []frontMode{modeNetHTTP, modeCheck, modeGsup}
	outs := make([]map[string]outcome, len(modes))
	scores := make([]corpus.Score, len(modes))
	for i, m := range modes {
		outs[i] = runCorpus(t, cases, m)
		scores[i] = scoreOf(cases, outs[i])
	}
	gsup := outs[2]

	// Per-case table: every case where a mode disagrees with Gunicorn's
	// label, or the modes disagree with each other.
	var rows []string
	for _, c := range cases {
		label := c.Kind
		if _, ok := notInScore[c.ID]; ok {
			label += ", not scored"
		}
		want := c.Kind == "invalid"
		if _, compat := notInScore[c.ID]; compat && c.Kind == "valid" {
			want = true
		}
		if _, drop := notInScore[c.ID]; drop && c.Kind == "invalid" {
			want = false
		}
		cells := make([]string, len(modes))
		differ := false
		for i := range modes {
			o := outs[i][c.ID]
			cells[i] = o.String()
			if o.refused() != want {
				differ = true
			}
		}
		if differ || cells[0] != cells[2] {
			rows = append(rows, fmt.Sprintf("  %-48s %-19s | %-19s | %-19s | %s", c.ID, label, cells[0], cells[1], cells[2]))
		}
	}
	sort.Strings(rows)
	var notes []string
	for id, note := range notInScore {
		notes = append(notes, fmt.Sprintf("  %-46s %s", id, note))
	}
	for id, why := range validRefusals {
		if !strings.HasPrefix(why, hostMissing) {
			notes = append(notes, fmt.Sprintf("  %-46s %s", id, why))
		}
	}
	sort.Strings(notes)
	rows = append(rows, "not scored, and valid cases refused for a reason other than Host:")
	rows = append(rows, notes...)
	t.Logf("corpus cases where a front disagrees with Gunicorn's label or with net/http (net/http | +Check | gsup):\n%s", strings.Join(rows, "\n"))

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-40s %18s %18s %22s\n", "front", "invalid refused", "valid forwarded", "compat-valid refused")
	for i, m := range modes {
		s := scores[i]
		fmt.Fprintf(&tbl, "%-40s %15d/%d %15d/%d %19d/%d\n", m, s.Refused, s.Invalid, s.Forwarded, s.Valid, s.StrictRefused, s.Compat)
	}
	for _, p := range peers {
		fmt.Fprintf(&tbl, "%-40s %15d/72 %15d/59\n", p.Name, p.Refused, p.Forwarded)
	}
	// RFC 9112 section 3.2 takes the valid cases without Host out of reach
	// of any server that follows it (net/http has no switch for it):
	// compare the fronts on the others, and on the cases no RFC section
	// says to refuse.
	hostless := 0
	for id, why := range validRefusals {
		if _, excluded := notInScore[id]; !excluded && strings.HasPrefix(why, hostMissing) {
			hostless++
		}
	}
	fmt.Fprintf(&tbl, "valid cases with a Host (RFC 9112 section 3.2 requires a 400 for the other %d):\n", hostless)
	for i, m := range modes {
		withHost, free, freeFwd := 0, 0, 0
		for _, c := range cases {
			if _, excluded := notInScore[c.ID]; excluded || c.Kind != "valid" {
				continue
			}
			why, listed := validRefusals[c.ID]
			if listed && strings.HasPrefix(why, hostMissing) {
				continue
			}
			passed := outs[i][c.ID].passed()
			if passed {
				withHost++
			}
			if !listed {
				free++
				if passed {
					freeFwd++
				}
			}
		}
		fmt.Fprintf(&tbl, "  %-38s forwarded %d/%d; of the %d no RFC section says to refuse: %d\n",
			m, withHost, scores[i].Valid-hostless, free, freeFwd)
	}
	t.Logf("corpus summary:\n%s", tbl.String())

	s := scores[2]
	if s.Invalid != 72 || s.Valid != 59 {
		t.Errorf("corpus has %d invalid and %d valid cases in the score, want 72 and 59 (manifest changed?)", s.Invalid, s.Valid)
	}
	// Refusals: better than every peer, and than net/http on this bench.
	best := scores[0].Refused
	for _, p := range peers {
		best = max(best, p.Refused)
	}
	if s.Refused <= best {
		t.Errorf("gsup refuses %d/%d invalid cases; it must beat %d", s.Refused, s.Invalid, best)
	}
	if s.StrictRefused != s.Compat {
		t.Errorf("gsup refuses %d/%d cases that need Gunicorn compat switches, want all", s.StrictRefused, s.Compat)
	}
	// Forwarding: every valid case is forwarded unless an RFC says
	// otherwise (validRefusals), and gsup forwards everything net/http
	// alone forwards, but for those.
	for _, c := range cases {
		if c.Kind != "valid" {
			continue
		}
		if _, excluded := notInScore[c.ID]; excluded {
			continue
		}
		o := gsup[c.ID]
		why, excused := corpus.ValidRefusals[c.ID]
		switch {
		case !o.passed() && !excused:
			t.Errorf("%s: valid, not forwarded by gsup (%s), and no RFC reason in validRefusals", c.ID, o)
		case o.passed() && excused:
			t.Errorf("%s: forwarded by gsup, but validRefusals says %q: update the table", c.ID, why)
		case outs[0][c.ID].passed() && !o.passed() && !excused:
			t.Errorf("%s: net/http alone forwards it, gsup does not (%s)", c.ID, o)
		}
	}
	// And the invalid cases gsup forwards, if any, are errors.
	for _, c := range cases {
		if c.Kind == "invalid" {
			if _, excluded := notInScore[c.ID]; !excluded && !gsup[c.ID].refused() {
				t.Errorf("%s: invalid (%s), forwarded by gsup (%s)", c.ID, c.Err, gsup[c.ID])
			}
		}
	}
}
