package supervisor

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// readBufSize is the size of each output pipe's read buffer, and so the
// longest line printed in one piece.
const readBufSize = 32 << 10

var colors = []string{"36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91"}

// Output multiplexes children's output lines onto one writer as
// "HH:MM:SS name | text". A batch of whole lines from one pipe is written
// with one Write under a lock, so lines are never split or interleaved.
type Output struct {
	mu     sync.Mutex
	w      io.Writer
	color  bool
	width  atomic.Int32
	log    *logrus.Logger
	failed bool // a write failed; reported once, then lines are dropped
	now    func() time.Time
}

// NewOutput writes lines to w (colour prefixes when color is set).
func NewOutput(w io.Writer, color bool, log *logrus.Logger) *Output {
	return &Output{w: w, color: color, log: log, now: time.Now}
}

// setWidth sets the width names are padded to.
func (o *Output) setWidth(n int) { o.width.Store(int32(n)) }

func (o *Output) write(p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed {
		return
	}
	if _, err := o.w.Write(p); err != nil {
		o.failed = true
		o.log.Errorf("writing children's output: %v; their lines are dropped from now on", err)
	}
}

// stream describes where one instance's lines go.
type stream struct {
	name  string   // "web.1"
	color int      // index into colors
	file  *LogFile // raw lines go here instead of the Output when set
	ring  *ring    // recent lines, for `gsup logs`; may be nil
	// held, when set, receives the incomplete last line when a read
	// deadline stops the pump (an in-place upgrade); the pipe stays open.
	held  chan<- []byte
	ended chan<- struct{} // closed when the pump ends for good (EOF), when set
	carry []byte          // an incomplete line read before (by the previous gsup)
}

// pump reads r until EOF, sending each line to the stream's destination.
// A final piece without a newline is printed as a line of its own. It
// closes r.
func (o *Output) pump(r *os.File, s stream) {
	// Start small (most children write little) and grow up to
	// readBufSize when a line does not fit.
	buf := make([]byte, 2048)
	if len(s.carry) > 0 {
		buf = make([]byte, readBufSize)
	}
	var out []byte
	start := 0 // buf[start:end] is an incomplete line carried over
	end := copy(buf, s.carry)
	for {
		n, err := r.Read(buf[end:])
		end += n
		if n > 0 {
			out = out[:0]
			now := o.now()
			data := buf[start:end]
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				out = o.appendLine(out, s, data[:i], now)
				data = data[i+1:]
			}
			// Keep the incomplete tail; split it when it fills the
			// largest buffer.
			if len(data) == len(buf) {
				if len(buf) < readBufSize {
					buf = append(buf, make([]byte, min(len(buf), readBufSize-len(buf)))...)
					buf = buf[:cap(buf)]
					if len(buf) > readBufSize {
						buf = buf[:readBufSize]
					}
				} else {
					out = o.appendLine(out, s, data, now)
					data = data[:0]
				}
			}
			start, end = 0, copy(buf, data)
			if len(out) > 0 {
				o.emit(s, out)
			}
		}
		if err != nil && s.held != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			s.held <- append([]byte(nil), buf[:end]...)
			return
		}
		if err != nil {
			r.Close()
			if s.ended != nil {
				close(s.ended)
			}
			if end > 0 {
				o.emit(s, o.appendLine(out[:0], s, buf[:end], o.now()))
			}
			// A terminal's master reads EIO once no process holds its slave.
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EIO) {
				o.log.Debugf("reading output of %s: %v", s.name, err)
			}
			return
		}
	}
}

func (o *Output) emit(s stream, p []byte) {
	if s.file != nil {
		if _, err := s.file.Write(p); err != nil {
			o.log.Errorf("writing %s: %v", s.file.Path(), err)
		}
		return
	}
	o.write(p)
}

// appendLine appends one line (without its newline) in the stream's
// format.
func (o *Output) appendLine(out []byte, s stream, line []byte, now time.Time) []byte {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if s.ring != nil {
		s.ring.add(now, line)
	}
	if s.file != nil {
		out = append(out, line...)
		return append(out, '\n')
	}
	out = now.AppendFormat(out, "15:04:05 ")
	if o.color {
		out = append(out, "\x1b["...)
		out = append(out, colors[s.color%len(colors)]...)
		out = append(out, 'm')
	}
	out = append(out, s.name...)
	for i := len(s.name); i < int(o.width.Load()); i++ {
		out = append(out, ' ')
	}
	out = append(out, " |"...)
	if o.color {
		out = append(out, "\x1b[0m"...)
	}
	if len(line) > 0 {
		out = append(out, ' ')
		out = append(out, line...)
	}
	return append(out, '\n')
}
