package control

import (
	"context"
	"net"

	"github.com/sirupsen/logrus"

	"gsup/internal/unixsock"
)

type credKey struct{}

// connContext records the peer's credentials (SO_PEERCRED) for the
// access check and the log.
func connContext(ctx context.Context, c net.Conn) context.Context {
	cred, err := unixsock.PeerCred(c)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, credKey{}, cred)
}

// credOf returns the peer of the request's connection; false when the
// kernel did not say.
func credOf(ctx context.Context) (unixsock.Cred, bool) {
	c, ok := ctx.Value(credKey{}).(unixsock.Cred)
	return c, ok
}

// credFields are the peer's ids as log fields.
func credFields(c unixsock.Cred) logrus.Fields {
	return logrus.Fields{"uid": c.UID, "gid": c.GID, "pid": c.PID}
}
