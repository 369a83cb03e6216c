package httpcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The corpus is Gunicorn's tests/requests (shared/corpus/gunicorn-requests,
// see its README): raw requests Gunicorn's parser must accept (valid) or
// refuse (invalid). Each is sent as it is over TCP to a real http.Server
// with the front under test, and classified as refused (a 4xx/5xx answer,
// or the connection closed with nothing forwarded) or forwarded (the
// handler standing for the app got at least one request, and nothing was
// refused).

// Figures measured on this corpus for nginx, haproxy and net/http before
// gsup had a front (their harness is not this one): refused of the 72
// invalid cases, forwarded of the 59 valid ones.
var peers = []struct {
	name               string
	refused, forwarded int
}{
	{"nginx", 56, 38},
	{"haproxy", 49, 40},
	{"net/http alone (earlier measurement)", 40, 46},
}

// caseLimits are the limits Gunicorn's own test for the case sets
// (tests/requests/*/NAME.py, cfg.set(...)); the manifest lists only the
// compat switches. Every other case runs with DefaultLimits.
var caseLimits = map[string]Limits{
	"invalid/010":                     {RequestLine: 4094, Fields: 100, FieldSize: 10},
	"invalid/011":                     {RequestLine: 4094, Fields: 2, FieldSize: 8190},
	"invalid/012":                     {RequestLine: 4094, Fields: 100, FieldSize: 98},
	"invalid/013":                     {RequestLine: 4094, Fields: 100, FieldSize: 14},
	"invalid/limit_header_default_01": {RequestLine: 4094, Fields: 100, FieldSize: 0},
	"valid/024":                       {RequestLine: 8200, Fields: 100, FieldSize: 8210},
	"valid/026":                       {RequestLine: 0, Fields: 100, FieldSize: 8210},
}

// notInScore are cases that do not count towards the 72 invalid and 59
// valid: requests Gunicorn's test judges under non-default settings.
var notInScore = map[string]string{
	// Invalid only with header_map="refuse". With Gunicorn's default
	// (drop) they are valid, and gsup drops underscore fields as Gunicorn
	// and nginx do (DropUnderscoreFields), so it forwards them.
	"invalid/040":        "header_map=refuse only; gsup drops the underscore fields, forwards",
	"invalid/chunked_07": "header_map=refuse only; gsup drops the underscore fields (refused anyway: no Host)",
	// Valid only with compat switches: invalid for a strict server (the
	// corpus README); gsup must refuse them.
	"valid/028":        "compat: strip_header_spaces",
	"valid/031compat":  "compat: permit_unconventional_http_method, casefold_http_method",
	"valid/031compat2": "compat: permit_unconventional_http_method",
	"valid/040_compat": "compat: header_map=dangerous",
}

// Why gsup does not forward some valid cases, with the RFC that says so.
// The corpus test fails if a valid case outside this table is refused, or
// one inside it is forwarded.
var validRefusals = map[string]string{
	// RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request)
	// status code to any HTTP/1.1 request message that lacks a Host header
	// field." Gunicorn does not require Host; net/http, nginx and gsup do.
	"valid/004": hostMissing, "valid/005": hostMissing, "valid/006": hostMissing,
	"valid/007": hostMissing, "valid/009": hostMissing, "valid/010": hostMissing,
	"valid/011": hostMissing, "valid/012": hostMissing, "valid/013": hostMissing,
	"valid/014": hostMissing, "valid/018": hostMissing, "valid/021": hostMissing,
	"valid/022": hostMissing + " (the second, HTTP/1.1, request; the first is forwarded)",
	"valid/023": hostMissing, "valid/025": hostMissing, "valid/025_line": hostMissing,
	"valid/029": hostMissing, "valid/030": hostMissing, "valid/031": hostMissing,
	"valid/100": hostMissing, "valid/pp_02": hostMissing + " (after the PROXY header)",

	// RFC 9112 section 5.2: a server that receives obs-fold "MUST either
	// reject the message by sending a 400 (Bad Request) ... or replace each
	// received obs-fold with one or more SP octets". gsup rejects, as
	// Gunicorn does by default: these two are Gunicorn's permit_obsolete_
	// folding=True tests (their .py sets it; the manifest misses it), and
	// invalid/obs_fold_01 is the same bytes as compat_obs_fold.
	"valid/compat_obs_fold":      "obs-fold: RFC 9112 section 5.2 (reject chosen; Gunicorn's compat test)",
	"valid/compat_obs_fold_huge": "obs-fold: RFC 9112 section 5.2 (reject chosen; Gunicorn's compat test)",

	// RFC 9112 section 6.1: "A server that receives a request message with
	// a transfer coding it does not understand SHOULD respond with 501".
	// gsup does not decode gzip, and "identity" is no transfer coding any
	// more (removed by RFC 7230, absent from RFC 9112 section 7's
	// registry). net/http answers 501 to both; so does nginx.
	"valid/rfc9112_smuggle_gzip_chunked_01":        "501: RFC 9112 section 6.1 (gzip transfer coding not implemented)",
	"valid/rfc9112_smuggle_te_identity_chunked_01": "501: RFC 9112 section 6.1 (identity is not a transfer coding)",

	// RFC 9110 section 4.2.4: "a recipient SHOULD parse for userinfo and
	// treat its presence as an error; it is likely being used to obscure
	// the authority for the sake of phishing attacks."
	"valid/rfc9112_target_absolute_userinfo_01": "userinfo in the target: RFC 9110 section 4.2.4",

	// A truncated request: it declares Content-Length: 17914 and carries
	// 8599 body bytes before the client closes (the .http file of
	// Gunicorn 26.1 kept the old body). RFC 9112 section 8: an incomplete
	// message. gsup reads a body up to buffer_body before sending it on,
	// so the app never sees this one; the handler here answers 400.
	"valid/099": "truncated body: RFC 9112 section 8 (incomplete message)",

	// Not refused: net/http answers "OPTIONS *" itself (200, Allow-less),
	// before any handler runs. RFC 9110 section 9.3.7: it asks about the
	// server, which the front is.
	"valid/rfc9112_target_asterisk_options_01": "answered by the front: RFC 9110 section 9.3.7 (OPTIONS * is about the server)",
}

const hostMissing = "HTTP/1.1 without Host: RFC 9112 section 3.2 (MUST 400)"

type corpusCase struct {
	id       string // kind/name
	kind     string // valid, invalid
	gerr     string // Gunicorn's error for an invalid case
	settings string
	raw      []byte
}

// findCorpus walks up from the package folder to shared/corpus.
func findCorpus(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "corpus", "gunicorn-requests")
		if st, err := os.Stat(filepath.Join(p, "manifest.tsv")); err == nil && !st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("shared/corpus/gunicorn-requests not found above the package folder (CI=true)")
	}
	t.Skip("shared/corpus/gunicorn-requests not found above the package folder; skipping the corpus test")
	return ""
}

func loadCorpus(t *testing.T) []corpusCase {
	dir := findCorpus(t)
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for i, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("manifest.tsv:%d: %d fields, want 4", i+1, len(f))
		}
		raw, err := os.ReadFile(filepath.Join(dir, f[0], f[1]+".http"))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, corpusCase{
			id: f[0] + "/" + f[1], kind: f[0], gerr: f[2], settings: f[3],
			raw: decodeCorpus(raw),
		})
	}
	return cases
}

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
	res        result
	proxyStage bool // refused by the PROXY stand-in
	stripped   bool // a PROXY header was removed first
}

func (o outcome) refused() bool { return o.proxyStage || o.res.refused() }
func (o outcome) passed() bool  { return !o.proxyStage && o.res.passed() }

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
func runCorpus(t *testing.T, cases []corpusCase, mode frontMode) map[string]outcome {
	fronts := map[Limits]*front{}
	out := map[string]outcome{}
	for _, c := range cases {
		lim, ok := caseLimits[c.id]
		if !ok {
			lim = DefaultLimits
		}
		f := fronts[lim]
		if f == nil {
			f = startFront(t, mode, lim)
			fronts[lim] = f
		}
		raw, isProxy, ok := stripProxy(c.raw)
		if !ok {
			out[c.id] = outcome{proxyStage: true}
			continue
		}
		out[c.id] = outcome{res: send(t, f.addr, raw), stripped: isProxy}
	}
	return out
}

type score struct {
	refused, invalid      int
	forwarded, valid      int
	strictRefused, compat int
}

// sameBytes reports whether a compat case is byte for byte a valid case
// scored with default settings (valid/040_compat is valid/040): no server
// can tell them apart, so it is judged as that case, not as compat.
func sameBytes(cases []corpusCase, c corpusCase) string {
	for _, o := range cases {
		if o.id != c.id && o.kind == "valid" && bytes.Equal(o.raw, c.raw) {
			if _, excluded := notInScore[o.id]; !excluded {
				return o.id
			}
		}
	}
	return ""
}

func scoreOf(cases []corpusCase, out map[string]outcome) score {
	var s score
	for _, c := range cases {
		o := out[c.id]
		_, excluded := notInScore[c.id]
		switch {
		case c.kind == "invalid" && !excluded:
			s.invalid++
			if o.refused() {
				s.refused++
			}
		case c.kind == "valid" && !excluded:
			s.valid++
			if o.passed() {
				s.forwarded++
			}
		case c.kind == "valid" && sameBytes(cases, c) != "":
		case c.kind == "valid":
			s.compat++
			if o.refused() {
				s.strictRefused++
			}
		}
	}
	return s
}

func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if testing.Short() {
		t.Skip("corpus: skipped in -short mode")
	}
	modes := []frontMode{modeNetHTTP, modeCheck, modeGsup}
	outs := make([]map[string]outcome, len(modes))
	scores := make([]score, len(modes))
	for i, m := range modes {
		outs[i] = runCorpus(t, cases, m)
		scores[i] = scoreOf(cases, outs[i])
	}
	gsup := outs[2]

	// Per-case table: every case where a mode disagrees with Gunicorn's
	// label, or the modes disagree with each other.
	var rows []string
	for _, c := range cases {
		label := c.kind
		if _, ok := notInScore[c.id]; ok {
			label += ", not scored"
		}
		want := c.kind == "invalid"
		if _, compat := notInScore[c.id]; compat && c.kind == "valid" {
			want = true
		}
		if _, drop := notInScore[c.id]; drop && c.kind == "invalid" {
			want = false
		}
		cells := make([]string, len(modes))
		differ := false
		for i := range modes {
			o := outs[i][c.id]
			cells[i] = o.String()
			if o.refused() != want {
				differ = true
			}
		}
		if differ || cells[0] != cells[2] {
			rows = append(rows, fmt.Sprintf("  %-48s %-19s | %-19s | %-19s | %s", c.id, label, cells[0], cells[1], cells[2]))
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
		fmt.Fprintf(&tbl, "%-40s %15d/%d %15d/%d %19d/%d\n", m, s.refused, s.invalid, s.forwarded, s.valid, s.strictRefused, s.compat)
	}
	for _, p := range peers {
		fmt.Fprintf(&tbl, "%-40s %15d/72 %15d/59\n", p.name, p.refused, p.forwarded)
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
			if _, excluded := notInScore[c.id]; excluded || c.kind != "valid" {
				continue
			}
			why, listed := validRefusals[c.id]
			if listed && strings.HasPrefix(why, hostMissing) {
				continue
			}
			passed := outs[i][c.id].passed()
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
			m, withHost, scores[i].valid-hostless, free, freeFwd)
	}
	t.Logf("corpus summary:\n%s", tbl.String())

	s := scores[2]
	if s.invalid != 72 || s.valid != 59 {
		t.Errorf("corpus has %d invalid and %d valid cases in the score, want 72 and 59 (manifest changed?)", s.invalid, s.valid)
	}
	// Refusals: better than every peer, and than net/http on this bench.
	best := scores[0].refused
	for _, p := range peers {
		best = max(best, p.refused)
	}
	if s.refused <= best {
		t.Errorf("gsup refuses %d/%d invalid cases; it must beat %d", s.refused, s.invalid, best)
	}
	if s.strictRefused != s.compat {
		t.Errorf("gsup refuses %d/%d cases that need Gunicorn compat switches, want all", s.strictRefused, s.compat)
	}
	// Forwarding: every valid case is forwarded unless an RFC says
	// otherwise (validRefusals), and gsup forwards everything net/http
	// alone forwards, but for those.
	for _, c := range cases {
		if c.kind != "valid" {
			continue
		}
		if _, excluded := notInScore[c.id]; excluded {
			continue
		}
		o := gsup[c.id]
		why, excused := validRefusals[c.id]
		switch {
		case !o.passed() && !excused:
			t.Errorf("%s: valid, not forwarded by gsup (%s), and no RFC reason in validRefusals", c.id, o)
		case o.passed() && excused:
			t.Errorf("%s: forwarded by gsup, but validRefusals says %q: update the table", c.id, why)
		case outs[0][c.id].passed() && !o.passed() && !excused:
			t.Errorf("%s: net/http alone forwards it, gsup does not (%s)", c.id, o)
		}
	}
	// And the invalid cases gsup forwards, if any, are errors.
	for _, c := range cases {
		if c.kind == "invalid" {
			if _, excluded := notInScore[c.id]; !excluded && !gsup[c.id].refused() {
				t.Errorf("%s: invalid (%s), forwarded by gsup (%s)", c.id, c.gerr, gsup[c.id])
			}
		}
	}
}
