//go:build !unix

package upstream

import "net"

// stale cannot look at the socket here: a stale pooled connection shows up
// as a failed exchange instead.
func stale(net.Conn) bool { return false }
