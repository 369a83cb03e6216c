package corpus

import "maps"

// The counts the score is taken on: the corpus's cases less NotInScore.
const (
	InvalidScored = 72
	ValidScored   = 59
)

// Peer is another front's figures on this corpus: invalid cases refused
// (of InvalidScored) and valid cases forwarded (of ValidScored).
type Peer struct {
	Name               string
	Refused, Forwarded int
}

// Peers were measured on this corpus before gsup had a front (their
// harness is not this package's).
var Peers = []Peer{
	{"nginx", 56, 38},
	{"haproxy", 49, 40},
	{"net/http alone (earlier measurement)", 40, 46},
}

// Limits are Gunicorn's limit_request_line, limit_request_fields and
// limit_request_field_size, with Gunicorn's meanings (0 request line: no
// limit; 0 field size: 8190).
type Limits struct {
	RequestLine, Fields, FieldSize int
}

// DefaultLimits are Gunicorn's defaults.
var DefaultLimits = Limits{RequestLine: 4094, Fields: 100, FieldSize: 8190}

// CaseLimits are the limits Gunicorn's own test for the case sets
// (tests/requests/*/NAME.py, cfg.set(...)); the manifest lists only the
// compat switches. Every other case runs with DefaultLimits.
var CaseLimits = map[string]Limits{
	"invalid/010":                     {RequestLine: 4094, Fields: 100, FieldSize: 10},
	"invalid/011":                     {RequestLine: 4094, Fields: 2, FieldSize: 8190},
	"invalid/012":                     {RequestLine: 4094, Fields: 100, FieldSize: 98},
	"invalid/013":                     {RequestLine: 4094, Fields: 100, FieldSize: 14},
	"invalid/limit_header_default_01": {RequestLine: 4094, Fields: 100, FieldSize: 0},
	"valid/024":                       {RequestLine: 8200, Fields: 100, FieldSize: 8210},
	"valid/026":                       {RequestLine: 0, Fields: 100, FieldSize: 8210},
}

// LimitsFor returns the limits c runs with.
func LimitsFor(c Case) Limits {
	if l, ok := CaseLimits[c.ID]; ok {
		return l
	}
	return DefaultLimits
}

// NotInScore are cases that do not count towards the 72 invalid and 59
// valid: requests Gunicorn's test judges under non-default settings.
var NotInScore = map[string]string{
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

// HostMissing is the reason of every ValidRefusals entry for an HTTP/1.1
// request without Host.
const HostMissing = "HTTP/1.1 without Host: RFC 9112 section 3.2 (MUST 400)"

// ValidRefusals are the valid cases that a front following the RFCs does
// not forward, with the RFC that says so. A test fails if a valid case
// outside it (and outside its own additions) is refused, or one inside
// it is forwarded.
var ValidRefusals = map[string]string{
	// RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request)
	// status code to any HTTP/1.1 request message that lacks a Host header
	// field." Gunicorn does not require Host; net/http, nginx and gsup do.
	"valid/004": HostMissing, "valid/005": HostMissing, "valid/006": HostMissing,
	"valid/007": HostMissing, "valid/009": HostMissing, "valid/010": HostMissing,
	"valid/011": HostMissing, "valid/012": HostMissing, "valid/013": HostMissing,
	"valid/014": HostMissing, "valid/018": HostMissing, "valid/021": HostMissing,
	"valid/022": HostMissing + " (the second, HTTP/1.1, request; the first is forwarded)",
	"valid/023": HostMissing, "valid/025": HostMissing, "valid/025_line": HostMissing,
	"valid/029": HostMissing, "valid/030": HostMissing, "valid/031": HostMissing,
	"valid/100": HostMissing, "valid/pp_02": HostMissing + " (after the PROXY header)",

	// RFC 9112 section 5.2: a server that receives obs-fold "MUST either
	// reject the message by sending a 400 (Bad Request) ... or replace each
	// received obs-fold with one or more SP octets": passing it on as
	// received is not allowed. gsup rejects, as Gunicorn does by default:
	// these two are Gunicorn's permit_obsolete_folding=True tests (their
	// .py sets it; the manifest misses it), and invalid/obs_fold_01 is the
	// same bytes as compat_obs_fold.
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
	// message; section 6.3: a server that receives fewer bytes than
	// Content-Length before the connection closes has an incomplete
	// request, which cannot be passed on as a whole one.
	"valid/099": "truncated body: RFC 9112 sections 6.3 and 8 (incomplete message)",
}

// ValidRefusalsAnd returns a new map: more, the valid cases one server
// refuses besides, and ValidRefusals (which wins where both name a case).
func ValidRefusalsAnd(more map[string]string) map[string]string {
	m := maps.Clone(more)
	maps.Copy(m, ValidRefusals)
	return m
}
