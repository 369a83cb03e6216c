package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// preface is what an HTTP/2 client sends first (RFC 9113, 3.4).
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// conn is one HTTP/2 connection. The reading goroutine owns the framer's
// reading side and the decoder; writers share the framer's writing side,
// the encoder and the buffer under wmu; the streams and the windows are
// under mu.
type conn struct {
	s      *Server
	nc     net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	remote string               // nc.RemoteAddr().String()
	tls    *tls.ConnectionState // shared by every request of the connection
	fr     *http2.Framer

	wmu      sync.Mutex
	waiting  atomic.Int32 // writers waiting for wmu: the last one flushes
	bw       *bufio.Writer
	henc     *hpack.Encoder
	hbuf     bytes.Buffer
	werr     error // the first write error: later writes fail with it
	flushing bool  // a writer will send what the buffer holds
	greeted  bool  // the server's SETTINGS are written
	// maxFrame is the client's SETTINGS_MAX_FRAME_SIZE.
	maxFrame atomic.Uint32

	mu         sync.Mutex
	flow       *sync.Cond // broadcast when a send window opens or a stream ends
	streams    map[uint32]*stream
	maxID      uint32 // the highest stream the client opened
	handlers   int    // handlers running (a reset stream's may run on)
	sendWindow int64  // the connection's, for DATA to the client
	initWindow int64  // SETTINGS_INITIAL_WINDOW_SIZE of the client
	recvWindow int64  // what the client may still send on the connection
	unacked    int64  // bytes taken from recvWindow and not yet given back
	goingAway  bool   // GOAWAY sent: no new stream
	closed     bool
	idleSet    bool            // the read deadline is the idle one
	lastType   http2.FrameType // of the frame read last (the reading goroutine's)
	reset      [16]uint32      // streams this side reset, most recent last: their late frames are dropped
	ended      [16]uint32      // streams ended otherwise, most recent last: a frame for one is STREAM_CLOSED
}

func newConn(s *Server, nc net.Conn) *conn {
	sc := &conn{
		s:          s,
		nc:         nc,
		remote:     nc.RemoteAddr().String(),
		streams:    map[uint32]*stream{},
		sendWindow: 65535,
		initWindow: 65535,
		recvWindow: connWindow,
	}
	sc.flow = sync.NewCond(&sc.mu)
	sc.maxFrame.Store(16384)
	ctx := context.Background()
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, nc)
	}
	sc.ctx, sc.cancel = context.WithCancel(ctx)
	if tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		cs := tc.ConnectionState()
		sc.tls = &cs
	}
	sc.bw = bufio.NewWriterSize(writer{sc}, 16<<10)
	sc.fr = http2.NewFramer(sc.bw, bufio.NewReaderSize(nc, 16<<10))
	sc.fr.SetReuseFrames()
	sc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	// The framer takes twice the announced limit, so that a request over
	// it (one long field too) is answered 431 (headers) rather than
	// ending the connection; beyond that, it does end it.
	sc.fr.MaxHeaderListSize = 2 * s.maxHeaderBytes()
	sc.fr.SetMaxReadFrameSize(16384)
	sc.henc = hpack.NewEncoder(&sc.hbuf)
	return sc
}

// writer is what the buffer writes to: the connection, whose first error
// ends it.
type writer struct{ sc *conn }

func (w writer) Write(p []byte) (int, error) {
	n, err := w.sc.nc.Write(p)
	if err != nil {
		w.sc.nc.Close() // the reading goroutine ends the rest
	}
	return n, err
}

// write runs fn with the framer's writing side, then sends what the
// buffer holds unless another writer waits (it will). An error of fn
// but errStreamReset (the stream ended meanwhile: fn wrote nothing)
// fails every later write.
func (sc *conn) write(fn func() error) error {
	sc.waiting.Add(1)
	sc.wmu.Lock()
	sc.waiting.Add(-1)
	defer sc.wmu.Unlock()
	if sc.werr != nil {
		return sc.werr
	}
	err := fn()
	if err != nil && err != errStreamReset { // a stream's end is not the connection's
		sc.werr = err
		return err
	}
	if sc.waiting.Load() > 0 || sc.flushing {
		return err // the writer waiting, or the one about to flush, sends it
	}
	// Let the goroutines that can run now (answers that came back from
	// the app together) write theirs before this one sends them all.
	sc.flushing = true
	sc.wmu.Unlock()
	runtime.Gosched()
	sc.wmu.Lock()
	sc.flushing = false
	if sc.werr == nil && sc.bw.Buffered() > 0 {
		if ferr := sc.bw.Flush(); ferr != nil {
			sc.werr = ferr
			return ferr
		}
	}
	return err
}

// serve reads the connection's frames until it ends.
func (sc *conn) serve() {
	defer sc.close()
	if d := sc.s.ReadHeaderTimeout; d > 0 {
		sc.nc.SetReadDeadline(time.Now().Add(d))
	}
	buf := make([]byte, len(preface))
	if _, err := io.ReadFull(sc.nc, buf); err != nil || string(buf) != preface {
		return
	}
	err := sc.write(func() error {
		sc.greeted = true
		if err := sc.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: maxStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: sc.s.maxHeaderBytes()},
		); err != nil {
			return err
		}
		return sc.fr.WriteWindowUpdate(0, connWindow-65535)
	})
	if err != nil {
		return
	}
	first := true
	for {
		f, err := sc.readFrame()
		if err == nil && first {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				err = http2.ConnectionError(http2.ErrCodeProtocol)
			}
			first = false
			sc.idle() // the preface's deadline gives way to the idle one
		}
		if err == nil {
			err = sc.process(f)
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		switch {
		case errors.As(err, &se):
			if sc.lastType == http2.FrameHeaders {
				sc.opened(se.StreamID) // a refused HEADERS opened it; no other frame does
			}
			sc.resetStream(se.StreamID, se.Code)
			continue
		case errors.Is(err, http2.ErrFrameTooLarge):
			sc.fail(http2.ErrCodeFrameSize)
		default:
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				sc.fail(http2.ErrCode(ce))
			} else if isTimeout(err) && sc.idleNow() {
				sc.fail(http2.ErrCodeNo) // idle too long: GOAWAY, as at a shutdown
			}
		}
		return
	}
}

// readFrame reads the next frame. A header block split over
// CONTINUATION frames must arrive whole within ReadHeaderTimeout of its
// first frame, as a request head on HTTP/1.1: a client that trickles one
// holds the connection's reading, streams open or not.
func (sc *conn) readFrame() (http2.Frame, error) {
	fh, err := sc.fr.ReadFrameHeader()
	if err != nil {
		return nil, err
	}
	sc.lastType = fh.Type
	d := sc.s.ReadHeaderTimeout
	if d <= 0 || fh.Type != http2.FrameHeaders || fh.Flags.Has(http2.FlagHeadersEndHeaders) {
		return sc.fr.ReadFrameForHeader(fh)
	}
	sc.nc.SetReadDeadline(time.Now().Add(d))
	f, err := sc.fr.ReadFrameForHeader(fh)
	if err == nil {
		sc.idle() // the deadline of a connection with streams, or without
	}
	return f, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// opened notes id as opened by the client, if it is a new client stream
// (one the framer refused as it read it).
func (sc *conn) opened(id uint32) {
	sc.mu.Lock()
	if id%2 == 1 && id > sc.maxID {
		sc.maxID = id
	}
	sc.mu.Unlock()
}

// fail sends GOAWAY with code; the connection ends when serve returns.
func (sc *conn) fail(code http2.ErrCode) {
	sc.mu.Lock()
	last := sc.maxID
	sc.goingAway = true
	sc.mu.Unlock()
	sc.sendGoAway(last, code)
}

// sendGoAway writes GOAWAY and sends it at once, with whatever the
// buffer holds: the connection may close next. Before the server's
// SETTINGS (a shutdown during the preface), nothing is written.
func (sc *conn) sendGoAway(last uint32, code http2.ErrCode) {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	if sc.werr != nil || !sc.greeted {
		return
	}
	err := sc.fr.WriteGoAway(last, code, nil)
	if err == nil {
		err = sc.bw.Flush()
	}
	if err != nil {
		sc.werr = err
	}
}

// goAway tells the client that no new stream will be served (GOAWAY with
// the last stream it opened); the connection ends when its streams are
// done, at once if it has none.
func (sc *conn) goAway() {
	sc.mu.Lock()
	if sc.goingAway || sc.closed {
		sc.mu.Unlock()
		return
	}
	sc.goingAway = true
	last := sc.maxID
	done := len(sc.streams) == 0
	sc.mu.Unlock()
	sc.sendGoAway(last, http2.ErrCodeNo)
	if done {
		sc.nc.Close()
	}
}

// close ends the connection: every stream's context is cancelled, every
// wait for a window ends.
func (sc *conn) close() {
	sc.mu.Lock()
	if sc.closed {
		sc.mu.Unlock()
		return
	}
	sc.closed = true
	var list []*stream
	for _, st := range sc.streams {
		list = append(list, st)
	}
	sc.flow.Broadcast()
	sc.mu.Unlock()
	for _, st := range list {
		st.abort(errConnClosed)
	}
	sc.cancel()
	sc.nc.Close()
	sc.wmu.Lock()
	if sc.werr == nil {
		sc.werr = errConnClosed
	}
	sc.wmu.Unlock()
}

// idle sets the read deadline for a connection without streams (none if
// IdleTimeout is 0), and takes it away from one with streams.
func (sc *conn) idle() {
	if sc.s.IdleTimeout <= 0 {
		sc.nc.SetReadDeadline(time.Time{})
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.idleSet = len(sc.streams) == 0
	if sc.idleSet {
		sc.nc.SetReadDeadline(time.Now().Add(sc.s.IdleTimeout))
	} else {
		sc.nc.SetReadDeadline(time.Time{})
	}
}

func (sc *conn) idleNow() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.streams) == 0
}

// process handles one frame; an error is a stream or connection error
// (http2.StreamError, http2.ConnectionError) or ends the connection.
func (sc *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return sc.settings(f)
	case *http2.PingFrame:
		if f.StreamID != 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if !f.IsAck() {
			data := f.Data
			return sc.write(func() error { return sc.fr.WritePing(true, data) })
		}
	case *http2.WindowUpdateFrame:
		return sc.windowUpdate(f)
	case *http2.MetaHeadersFrame:
		return sc.headers(f)
	case *http2.DataFrame:
		return sc.data(f)
	case *http2.RSTStreamFrame:
		return sc.rstStream(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.GoAwayFrame:
		sc.mu.Lock()
		sc.goingAway = true
		done := len(sc.streams) == 0
		sc.mu.Unlock()
		if done {
			return io.EOF
		}
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // a client never pushes
	}
	return nil // unknown frames are ignored
}

func (sc *conn) settings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var table *uint32
	sc.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - sc.initWindow
			sc.initWindow = int64(s.Val)
			for _, st := range sc.streams {
				st.sendWindow += delta
				if st.sendWindow > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			sc.flow.Broadcast()
		case http2.SettingMaxFrameSize:
			sc.maxFrame.Store(s.Val)
		case http2.SettingHeaderTableSize:
			table = &s.Val
		}
		return nil
	})
	sc.mu.Unlock()
	if err != nil {
		return err
	}
	return sc.write(func() error {
		if table != nil { // the encoder is the writers'
			sc.henc.SetMaxDynamicTableSizeLimit(*table)
		}
		return sc.fr.WriteSettingsAck()
	})
}

func (sc *conn) windowUpdate(f *http2.WindowUpdateFrame) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if f.StreamID == 0 {
		sc.sendWindow += int64(f.Increment)
		if sc.sendWindow > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		sc.flow.Broadcast()
		return nil
	}
	if sc.idleLocked(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
	}
	st := sc.streams[f.StreamID]
	if st == nil {
		return nil // closed: a late update
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > 1<<31-1 {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	sc.flow.Broadcast()
	return nil
}

func (sc *conn) rstStream(f *http2.RSTStreamFrame) error {
	sc.mu.Lock()
	if sc.idleLocked(f.StreamID) {
		sc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
	}
	st := sc.streams[f.StreamID]
	if st != nil {
		sc.endLocked(st)
	}
	sc.mu.Unlock()
	if st != nil {
		st.abort(errClientReset)
	}
	return nil
}

// data takes a DATA frame's bytes into its stream's body.
func (sc *conn) data(f *http2.DataFrame) error {
	id, n := f.StreamID, int64(f.Length)
	sc.mu.Lock()
	if n > sc.recvWindow {
		sc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	sc.recvWindow -= n
	st := sc.streams[id]
	if st == nil || st.remoteDone {
		// Not for a stream that takes data: the connection's window is
		// given back at once.
		sc.unacked += n
		var err error
		switch {
		case sc.idleLocked(id):
			err = http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		case st == nil && sc.resetHere(id):
			// sent before the client saw this side's RST_STREAM
		default:
			err = http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		credit := sc.creditLocked()
		sc.mu.Unlock()
		sc.sendCredit(0, credit)
		return err
	}
	if n > st.recvWindow {
		sc.unacked += n
		credit := sc.creditLocked()
		sc.mu.Unlock()
		sc.sendCredit(0, credit)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWindow -= n
	data := f.Data()
	pad := n - int64(len(data))
	st.got += int64(len(data))
	end := f.StreamEnded()
	bad := st.declared >= 0 && (st.got > st.declared || end && st.got != st.declared)
	switch {
	case bad: // reset before the handler hears of it: it cannot end the stream first
		sc.resetLocked(st)
	case end:
		st.remoteDone = true
		if st.handlerDone {
			sc.endLocked(st)
		}
	}
	// Padding is given back at once, to the connection and the stream.
	sc.unacked += pad
	credit := sc.creditLocked()
	var streamCredit uint32
	if st.unacked += pad; st.unacked >= streamWindow/2 && !st.remoteDone {
		streamCredit = uint32(st.unacked)
		st.recvWindow += st.unacked
		st.unacked = 0
	}
	sc.mu.Unlock()
	sc.sendCredit(0, credit)
	sc.sendCredit(id, streamCredit)
	if bad {
		st.abort(errBadLength)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if st.body != nil {
		st.body.write(data, end)
	}
	return nil
}

// creditLocked returns how much of the connection's receive window to give
// back now (at least half of it taken), and counts it given (under mu).
func (sc *conn) creditLocked() uint32 {
	if sc.unacked < connWindow/2 {
		return 0
	}
	n := sc.unacked
	sc.unacked = 0
	sc.recvWindow += n
	return uint32(n)
}

// sendCredit sends WINDOW_UPDATE for id (0: the connection) if n > 0.
func (sc *conn) sendCredit(id, n uint32) {
	if n > 0 {
		sc.write(func() error { return sc.fr.WriteWindowUpdate(id, n) })
	}
}

// idleLocked reports whether stream id is idle (under mu): one the client
// has not opened yet, or an even one, which only this side could open and
// never does (RFC 9113, 5.1.1). A frame other than HEADERS or PRIORITY on
// an idle stream is a connection error.
func (sc *conn) idleLocked(id uint32) bool { return id > sc.maxID || id%2 == 0 }

// resetHere reports whether this side reset stream id lately (under mu).
func (sc *conn) resetHere(id uint32) bool { return slices.Contains(sc.reset[:], id) }

// endedLately reports whether stream id ended lately other than by this
// side's reset (under mu).
func (sc *conn) endedLately(id uint32) bool { return slices.Contains(sc.ended[:], id) }

// resetStream sends RST_STREAM for id with code and ends the stream.
func (sc *conn) resetStream(id uint32, code http2.ErrCode) {
	sc.mu.Lock()
	st := sc.streams[id]
	if st != nil {
		sc.resetLocked(st)
	} else if !sc.resetHere(id) {
		sc.noteReset(id)
	}
	sc.mu.Unlock()
	if st != nil {
		st.abort(errStreamReset)
	}
	sc.write(func() error { return sc.fr.WriteRSTStream(id, code) })
}

// resetLocked ends st as reset by this side (under mu); the caller sends
// RST_STREAM.
func (sc *conn) resetLocked(st *stream) {
	st.resetHere = true
	sc.endLocked(st)
	sc.noteReset(st.id)
}

// noteReset remembers id as reset by this side (under mu).
func (sc *conn) noteReset(id uint32) {
	copy(sc.reset[:], sc.reset[1:])
	sc.reset[len(sc.reset)-1] = id
}

// endLocked forgets st (under mu): a connection left without streams
// waits IdleTimeout for the next, or closes if it is going away.
func (sc *conn) endLocked(st *stream) {
	if sc.streams[st.id] != st {
		return
	}
	delete(sc.streams, st.id)
	if !st.resetHere {
		copy(sc.ended[:], sc.ended[1:])
		sc.ended[len(sc.ended)-1] = st.id
	}
	sc.flow.Broadcast()
	if len(sc.streams) > 0 {
		return
	}
	if sc.goingAway {
		go sc.closeFlushed()
	} else if d := sc.s.IdleTimeout; d > 0 {
		sc.idleSet = true
		sc.nc.SetReadDeadline(time.Now().Add(d))
	}
}

// closeFlushed closes the connection once what is written has gone out.
func (sc *conn) closeFlushed() {
	sc.wmu.Lock()
	if sc.werr == nil {
		sc.bw.Flush()
	}
	sc.wmu.Unlock()
	sc.nc.Close()
}

var (
	errConnClosed  = errors.New("h2: connection closed")
	errClientReset = errors.New("h2: stream reset by the client")
	errStreamReset = errors.New("h2: stream reset")
	errBadLength   = errors.New("h2: request body length differs from its Content-Length")
	errWindowShut  = errors.New("h2: the client kept its flow-control window shut")
)
