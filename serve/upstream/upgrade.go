package upstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

var errCopyDone = errors.New("connection copy complete")

// switchProtocols handles a 101 response: both connections are taken over
// and spliced until both directions end (a half close is passed on), or
// one of them fails.
func (x *exchange) switchProtocols(be *backend, pc *pconn) {
	h := &x.h
	if x.upType == "" || !strings.EqualFold(h.upgrade, x.upType) || !isPrint(h.upgrade) {
		x.headFailed(be, pc, fmt.Errorf("app switched to protocol %q when %q was asked for", h.upgrade, x.upType))
		return
	}
	x.cutBody(pc)
	conn, brw, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		x.headFailed(be, pc, fmt.Errorf("taking over the client connection: %w", err))
		return
	}
	defer conn.Close()
	defer be.done(true)
	pc.c.SetDeadline(time.Time{})
	pc.rdl = time.Time{}
	conn.SetDeadline(time.Time{})

	dst := x.w.Header()
	h.copyTo(dst)
	dst["Connection"] = connUpgrade
	dst["Upgrade"] = []string{h.upgrade}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	dst.Write(brw)
	brw.WriteString("\r\n")
	x.rec.Status = http.StatusSwitchingProtocols
	// Bytes that came with the heads belong to the new protocol.
	if n := pc.br.Buffered(); n > 0 {
		b, _ := pc.br.Peek(n)
		brw.Write(b)
		x.rec.BytesSent += int64(n)
	}
	if err := brw.Flush(); err != nil {
		x.drop(pc)
		x.clientAbort(be, err)
		return
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := pc.c.Write(b); err != nil {
			x.drop(pc)
			x.upLog(be.addr).Errorf("upstream %s: %s %s: after upgrade: %v", be.addr, x.r.Method, x.uri, err)
			return
		}
	}

	var sent atomic.Int64
	errc := make(chan error, 2)
	go func() { errc <- splice(pc.c, conn, nil) }()
	go func() { errc <- splice(conn, pc.c, &sent) }()
	if err := <-errc; err != nil {
		conn.Close()
		pc.c.Close()
	}
	<-errc
	x.drop(pc)
	x.rec.BytesSent += sent.Load()
}

// splice copies src to dst; at src's end it half-closes dst and returns
// nil if it can, errCopyDone if not, or the copy's error.
func splice(dst, src net.Conn, count *atomic.Int64) error {
	n, err := io.Copy(dst, src)
	if count != nil {
		count.Add(n)
	}
	if err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errCopyDone
}
