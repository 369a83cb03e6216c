//go:build !linux

package listen

import "net"

// unixPeer names a UNIX-socket peer; only Linux reports its credentials.
func unixPeer(net.Conn) string { return "a UNIX-socket peer" }
