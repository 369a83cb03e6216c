package head

// Asked holds the names the connection layers, the checks, the proxy and
// the access log ask of every request, as Names (the forwarding fields
// are package forward's).
var Asked = struct {
	Authorization, Connection, ContentLength, ContentType, Expect, Referer,
	Te, Trailer, TransferEncoding, Upgrade, UserAgent Name
}{
	Authorization:    NameOf("Authorization"),
	Connection:       NameOf("Connection"),
	ContentLength:    NameOf("Content-Length"),
	ContentType:      NameOf("Content-Type"),
	Expect:           NameOf("Expect"),
	Referer:          NameOf("Referer"),
	Te:               NameOf("Te"),
	Trailer:          NameOf("Trailer"),
	TransferEncoding: NameOf("Transfer-Encoding"),
	Upgrade:          NameOf("Upgrade"),
	UserAgent:        NameOf("User-Agent"),
}
