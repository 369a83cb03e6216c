//go:build !linux

package control

import (
	"context"
	"net"
)

// connContext knows no peer credentials outside Linux.
func connContext(ctx context.Context, _ net.Conn) context.Context { return ctx }
