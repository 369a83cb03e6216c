// Package forward decides whom the HTTP front trusts and what forwarding
// headers the app processes receive. It does no I/O: the connection layer
// (serve/listen) says who the client is in a ClientInfo, and this package
// turns that, the allow list and the inbound headers into the outbound
// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host.
//
// # Trust
//
// Trust is decided once per request, on the address the request came from:
// the client named by an accepted PROXY header, else the socket peer
// (Policy.Trusted). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, as seen on
// a dual-stack [::] listener) are unmapped before matching, so "127.0.0.1"
// and "10.0.0.0/8" match them. A UNIX-socket peer has no address: it is
// trusted when Policy.TrustUnixPeers is set (the socket's file mode decides
// who may connect), unless a PROXY header named a client, whose address is
// then used instead.
//
// # Headers
//
// From a trusted client the forwarding headers are kept and extended; from
// an untrusted one every forwarding header, in every spelling, is removed
// before the front sets its own (see Rewrite for the list). Either way the
// app always receives a coherent X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host, and never a spoofed one.
package forward
