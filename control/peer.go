package control

import (
	"context"
	"fmt"
)

type peerKey struct{}

// peer is who connected, from SO_PEERCRED.
type peer struct {
	uid, pid int
	known    bool
}

func (p peer) String() string {
	if !p.known {
		return "peer unknown"
	}
	return fmt.Sprintf("uid %d, pid %d", p.uid, p.pid)
}

// peerOf returns the peer of the request's connection.
func peerOf(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}
