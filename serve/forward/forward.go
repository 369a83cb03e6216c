package forward

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"gsup/serve/head"
)

// ClientInfo is what a connection says about its client. The connection
// layer fills it once per connection, after the PROXY header (if any) has
// been read; it then holds for every request of that connection.
type ClientInfo struct {
	// Addr is the client: the source of an accepted PROXY header when the
	// header carried one (command PROXY over TCP/IPv4 or TCP/IPv6), else the
	// socket peer. Zero on a UNIX socket unless a PROXY header named a
	// client. IPv4-mapped addresses are unmapped.
	Addr netip.AddrPort
	// Peer is the socket peer; zero on a UNIX socket.
	Peer netip.AddrPort
	// Unix is set when the connection was accepted on a UNIX socket.
	Unix bool
	// HTTPS is set when a PROXY v2 header's SSL TLV says the client used
	// TLS, or the bind says scheme = "https".
	HTTPS bool
	// Proxied is set when a PROXY header was accepted, including v1 UNKNOWN
	// and v2 LOCAL, which leave Addr at the socket peer.
	Proxied bool
	// text, host and port are Addr as text, made once by Fix.
	text, host, port string
}

// Fix makes Host and Port's texts once, for a ClientInfo that will not
// change (the connection's): every request of the connection then uses
// them without formatting the address again. Both are cut from the
// address's text as one string ("192.0.2.1:8080", "[2001:db8::1]:8080").
func (ci *ClientInfo) Fix() {
	if !ci.Addr.IsValid() {
		return
	}
	s := ci.Addr.String()
	i := strings.LastIndexByte(s, ':')
	host := s[:i]
	if ci.Addr.Addr().Is6() {
		host = host[1 : len(host)-1] // the brackets
	}
	ci.text, ci.host, ci.port = s, host, s[i+1:]
}

// AddrText is Addr as text ("192.0.2.1:8080", "[2001:db8::1]:8080"),
// "" without one.
func (ci *ClientInfo) AddrText() string {
	switch {
	case ci.text != "":
		return ci.text
	case ci.Addr.IsValid():
		return ci.Addr.String()
	}
	return ""
}

// Host is the client's IP address as text, "" without one.
func (ci *ClientInfo) Host() string {
	switch {
	case ci.host != "":
		return ci.host
	case ci.Addr.IsValid():
		return ci.Addr.Addr().String()
	}
	return ""
}

// Port is the client's port as text, "" without an address.
func (ci *ClientInfo) Port() string {
	switch {
	case ci.port != "":
		return ci.port
	case ci.Addr.IsValid():
		return strconv.Itoa(int(ci.Addr.Port()))
	}
	return ""
}

// Policy is the forwarded-headers trust policy of the HTTP front.
type Policy struct {
	// Allow lists the clients whose forwarding headers are trusted
	// (forwarded_allow_ips). nil trusts nobody (except UNIX peers below).
	Allow *AllowList
	// TrustUnixPeers trusts a UNIX-socket peer that has no address
	// (trust_unix_peers, true by default in gsup's configuration).
	TrustUnixPeers bool
}

// Trusted reports whether the forwarding headers of ci's requests are
// trusted. It is decided on ci.Addr: the PROXY client when a header named
// one, else the socket peer. A UNIX-socket client without an address is
// trusted when TrustUnixPeers is set or the allow list holds "*"; a client
// with no address on a TCP socket (which a real connection never has) only
// by "*".
func (p Policy) Trusted(ci ClientInfo) bool {
	if ci.Unix && !ci.Addr.IsValid() {
		return p.TrustUnixPeers || p.Allow.All()
	}
	return p.Allow.Allows(ci.Addr.Addr())
}

// Canonical names of the headers the front sets.
const (
	HeaderFor   = "X-Forwarded-For"
	HeaderProto = "X-Forwarded-Proto"
	HeaderHost  = "X-Forwarded-Host"
)

// The fields Decide reads, as head.Names.
var (
	nameFor           = head.NameOf(HeaderFor)
	nameProto         = head.NameOf(HeaderProto)
	nameHost          = head.NameOf(HeaderHost)
	nameSsl           = head.NameOf("X-Forwarded-Ssl")
	nameProtocol      = head.NameOf("X-Forwarded-Protocol")
	nameFrontEndHTTPS = head.NameOf("Front-End-Https")
)

// forwardingNames are the forwarding headers, other than the X-Forwarded-*
// family, that are removed from untrusted clients' requests: lower case,
// with '-' where a name may also be spelt with '_'.
var forwardingNames = []string{
	"forwarded",       // RFC 7239
	"x-real-ip",       // nginx's convention
	"front-end-https", // Microsoft's "on"
	"x-url-scheme",
	"client-ip", // read by Rails' remote_ip
	"x-client-ip",
	"true-client-ip", // Akamai, Cloudflare
	"x-cluster-client-ip",
	"cf-connecting-ip",
	"fastly-client-ip",
}

const forwardedPrefix = "x-forwarded-"

// minForwarding is the length of the shortest forwarding name.
const minForwarding = 9

// isForwarding reports whether a header name (any case, '-' or '_') is a
// forwarding header, and whether it is spelt with an underscore. It does
// not allocate: it runs for every header of every request.
func isForwarding(name string) (forwarding, underscore bool) {
	underscore = strings.IndexByte(name, '_') >= 0
	// Every forwarding name has nine bytes or more and begins with x, f,
	// c or t (TestForwardingNamesPassTheFirstLook): most names are
	// told apart here.
	if len(name) < minForwarding {
		return false, underscore
	}
	switch name[0] | 0x20 {
	case 'x', 'f', 'c', 't':
	default:
		return false, underscore
	}
	if len(name) >= len(forwardedPrefix) && foldEqual(name[:len(forwardedPrefix)], forwardedPrefix) {
		return true, underscore
	}
	for _, n := range forwardingNames {
		if len(n) == len(name) && foldEqual(name, n) {
			return true, underscore
		}
	}
	return false, underscore
}

// foldEqual reports whether s equals lower (lower case, '-' for '_') when
// s's ASCII letters are lower-cased and its '_' read as '-'.
func foldEqual(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Rewrite sets the forwarding headers of a request going to an app process.
// out is a copy of the inbound headers with the hop-by-hop headers already
// removed; host is the request's Host; trusted is Policy.Trusted(ci).
//
// From a trusted client:
//   - X-Forwarded-For is extended with ci.Addr's IP (its lines joined into
//     one, "a, b, client"), or kept as it is when ci.Addr is empty (a UNIX
//     socket without PROXY);
//   - X-Forwarded-Proto is kept when its first element is "http" or "https"
//     (any case), else set to Scheme's answer;
//   - X-Forwarded-Host is kept when present, else set to host;
//   - every other forwarding header (Forwarded, X-Real-IP,
//     X-Forwarded-Port, X-Forwarded-Prefix, X-Forwarded-Ssl, ...) is passed
//     on as the trusted proxy sent it.
//
// From an untrusted client, every forwarding header is removed first: the
// X-Forwarded-* family (including Gunicorn's secure_scheme_headers
// X-Forwarded-Ssl and X-Forwarded-Protocol, and X-Forwarded-Port,
// -Prefix, -Scheme, -Server), Forwarded, X-Real-IP, Front-End-Https,
// X-Url-Scheme and the client-IP headers (Client-IP, X-Client-IP,
// True-Client-IP, X-Cluster-Client-IP, CF-Connecting-IP, Fastly-Client-IP),
// in any case. Then X-Forwarded-For is set to ci.Addr's IP,
// X-Forwarded-Proto to "https" or "http" from the connection, and
// X-Forwarded-Host to host. X-Forwarded-Port is not set: apps derive the
// port from Host and the scheme.
//
// In both cases the underscore spellings of forwarding headers
// (X_Forwarded_For, x_real_ip, ...) are removed: no proxy sends them, and
// servers that map header names to CGI-style variables would merge them
// into the real ones (Gunicorn before 22.0, issue #2799).
//
// X-Forwarded-For is absent only when there is no address to put in it:
// a UNIX-socket client without PROXY and without a trusted chain.
// X-Forwarded-Host is set only when host is not empty. Rewrite returns
// the scheme it gave the app.
func Rewrite(out http.Header, host string, ci ClientInfo, trusted bool) (scheme string) {
	var p Plan
	p.Decide(Header(out), host, ci, trusted)
	for name := range out {
		if !p.Keep(name) {
			delete(out, name)
		}
	}
	for _, f := range p.Fields() {
		vs := out[f.Name]
		out[f.Name] = append(vs[:len(vs):len(vs)], f.Value)
	}
	return p.Scheme
}

// Source gives a request's fields by canonical name: those that go on
// to the app, before the forwarding ones are decided.
type Source interface {
	Field(n head.Name) []string
}

// Header is an http.Header as a Source.
type Header http.Header

// Field returns h's values for n.
func (h Header) Field(n head.Name) []string { return h[n.S] }

// Field is one field line a Plan adds.
type Field struct{ Name, Value string }

// Plan is what a request going to an app gets of the forwarding fields:
// which of its own fields go through (Keep) and which are added
// (Fields). Decide makes the front's (Rewrite's rules, without a header
// map to change); Set, Add and Remove make any other. The zero Plan keeps
// every field and adds none.
type Plan struct {
	// Scheme is the scheme the app is told, for the access log; "" if
	// none.
	Scheme string
	// policy: Decide made it, and the client's forwarding fields go
	// through only from a trusted client, never spelt with '_'.
	policy  bool
	trusted bool
	removed [3]string
	nRem    int
	more    []string // removed, beyond the first three
	fields  [3]Field
	nField  int
	extra   []Field // added, beyond the first three
}

// Decide makes the front's plan for a request whose fields are in (the
// client's, once the hop-by-hop ones are gone) with Host host, from the
// client ci, trusted as Policy.Trusted(ci) says: what Rewrite does to a
// header map.
func (p *Plan) Decide(in Source, host string, ci ClientInfo, trusted bool) {
	proto, hasProto := protoOf(in)
	*p = Plan{Scheme: schemeOf(in, ci, trusted, proto, hasProto), policy: true, trusted: trusted}
	client := ci.Host()
	if chain := joinValues(in.Field(nameFor)); trusted && chain != "" {
		if client != "" {
			chain += ", " + client
		}
		p.Set(HeaderFor, chain)
	} else if client != "" {
		p.Set(HeaderFor, client)
	} else {
		p.Remove(HeaderFor)
	}
	if !trusted || !hasProto {
		p.Set(HeaderProto, p.Scheme)
	}
	if !trusted || joinValues(in.Field(nameHost)) == "" {
		if host != "" {
			p.Set(HeaderHost, host)
		} else {
			p.Remove(HeaderHost)
		}
	}
}

// Remove leaves the request's own fields named name (canonical) out.
func (p *Plan) Remove(name string) {
	if p.nRem < len(p.removed) {
		p.removed[p.nRem] = name
		p.nRem++
		return
	}
	p.more = append(p.more, name)
}

// Set puts name: value in place of the request's own fields of that name.
func (p *Plan) Set(name, value string) {
	p.Remove(name)
	p.Add(name, value)
}

// Add adds name: value, after the request's own fields of that name if
// they are kept.
func (p *Plan) Add(name, value string) {
	if p.nField < len(p.fields) {
		p.fields[p.nField] = Field{name, value}
		p.nField++
		return
	}
	p.extra = append(p.extra, Field{name, value})
}

// Keep reports whether the request's own fields named name go through.
func (p *Plan) Keep(name string) bool {
	if p.policy {
		if forwarding, underscore := isForwarding(name); forwarding && (underscore || !p.trusted) {
			return false
		}
	}
	for _, r := range p.removed[:p.nRem] {
		if r == name {
			return false
		}
	}
	for _, r := range p.more {
		if r == name {
			return false
		}
	}
	return true
}

// Fields returns the fields the plan adds, in the order they were added.
// The slice is p's own while at most three were: do not keep it past p.
func (p *Plan) Fields() []Field {
	if p.extra == nil {
		return p.fields[:p.nField]
	}
	return append(p.fields[:p.nField:p.nField], p.extra...)
}

// Scheme returns "https" or "http": the scheme of the request as the app
// process will see it. From a trusted client, X-Forwarded-Proto decides
// when its first element is "http" or "https"; without one, Gunicorn's
// secure_scheme_headers say https (X-Forwarded-Ssl: on,
// X-Forwarded-Protocol: ssl) and so does Front-End-Https: on (values
// compared without case). Otherwise, and always for an untrusted client,
// the connection decides (ci.HTTPS). Unlike Gunicorn, contradictory
// headers are not an error: X-Forwarded-Proto wins.
func Scheme(in http.Header, ci ClientInfo, trusted bool) string {
	return scheme(Header(in), ci, trusted)
}

func scheme(in Source, ci ClientInfo, trusted bool) string {
	var proto string
	var hasProto bool
	if trusted {
		proto, hasProto = protoOf(in)
	}
	return schemeOf(in, ci, trusted, proto, hasProto)
}

// schemeOf is scheme with protoOf's answer for in given.
func schemeOf(in Source, ci ClientInfo, trusted bool, proto string, hasProto bool) string {
	if trusted {
		if hasProto {
			return proto
		}
		if strings.EqualFold(firstValue(in, nameSsl), "on") ||
			strings.EqualFold(firstValue(in, nameProtocol), "ssl") ||
			strings.EqualFold(firstValue(in, nameFrontEndHTTPS), "on") {
			return "https"
		}
	}
	if ci.HTTPS {
		return "https"
	}
	return "http"
}

// protoOf returns the first element of X-Forwarded-Proto, lower-cased,
// when it is "http" or "https".
func protoOf(h Source) (string, bool) {
	switch p := strings.ToLower(firstValue(h, nameProto)); p {
	case "http", "https":
		return p, true
	}
	return "", false
}

// firstValue returns the first comma-separated element of a header,
// trimmed. n is a canonical name (every caller's is a package variable),
// so the map is read without canonicalizing it again.
func firstValue(h Source, n head.Name) string {
	vs := h.Field(n)
	if len(vs) == 0 {
		return "" // most often
	}
	v := vs[0]
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// joinValues joins a list header's lines into one, dropping empty elements.
func joinValues(lines []string) string {
	var parts []string
	for _, line := range lines {
		for _, v := range strings.Split(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				parts = append(parts, v)
			}
		}
	}
	return strings.Join(parts, ", ")
}
