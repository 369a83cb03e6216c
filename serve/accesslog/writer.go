package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

const (
	// flushSize is how much Writer buffers before it writes.
	flushSize = 64 << 10
	// flushDelay bounds how long a line waits in the buffer.
	flushDelay = 150 * time.Millisecond
)

// Writer is a buffered access-log sink. It is safe for concurrent use.
//
// Lines are buffered and written when 64 KiB are pending, 150 ms after the
// first line written since the last flush (one timer, armed only while
// something is pending), and on Flush, Reopen and Close. A Write whose p
// does not fit is preceded by a flush, so one Write is never split across
// two file writes. A write error of a background flush is returned by the
// next Write, Flush, Reopen or Close.
type Writer struct {
	path string // "" when writing to stdout

	mu     sync.Mutex // guards buf, timer, armed, err and closed
	buf    []byte
	timer  *time.Timer
	armed  bool
	err    error // first error of a background flush, not yet reported
	closed bool

	fileMu sync.Mutex // serialises writes to out, Reopen and Close; taken before mu
	spare  []byte     // the other buffer, being written; guarded by fileMu
	out    io.Writer  // guarded by fileMu
	file   *os.File   // out, when it is a file we opened; guarded by fileMu
}

// OpenWriter opens path for appending (O_APPEND|O_CREATE, mode 0644), or
// uses stdout when path is "-". The caller must Close it.
func OpenWriter(path string, stdout io.Writer) (*Writer, error) {
	w := &Writer{buf: make([]byte, 0, flushSize), spare: make([]byte, 0, flushSize)}
	if path == "-" {
		if stdout == nil {
			return nil, errors.New("access log: no stdout to write to")
		}
		w.out = stdout
	} else {
		f, err := openLog(path)
		if err != nil {
			return nil, err
		}
		w.path, w.out, w.file = path, f, f
	}
	w.timer = time.AfterFunc(time.Hour, w.timedFlush)
	w.timer.Stop()
	return w, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	return f, nil
}

// Write buffers p, which should be whole lines. It returns len(p) and the
// error of an earlier background flush, if one failed since it was last
// reported; after Close it returns os.ErrClosed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, os.ErrClosed
	}
	if w.appendLocked(p) {
		err := w.takeErrLocked()
		w.mu.Unlock()
		return len(p), err
	}
	w.mu.Unlock()

	// Full: write what is pending, then p (directly when it is large).
	n := len(p)
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	err := w.flushFileLocked()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, os.ErrClosed
	}
	if w.appendLocked(p) {
		p = nil
	}
	if err == nil {
		err = w.takeErrLocked()
	}
	w.mu.Unlock()
	if p != nil {
		if werr := w.writeOutLocked(p); err == nil {
			err = werr
		}
	}
	return n, err
}

// WriteEntry writes e's line as f formats it: Write, with the line
// formatted in the buffer itself rather than in one of the caller's and
// copied.
func (w *Writer) WriteEntry(f *Format, e *Entry) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return os.ErrClosed
	}
	n := len(w.buf)
	w.buf = f.Append(w.buf, e)
	if len(w.buf) <= flushSize {
		w.armLocked()
		err := w.takeErrLocked()
		w.mu.Unlock()
		return err
	}
	// It does not fit: it goes as Write sends a line that does not.
	line := append([]byte(nil), w.buf[n:]...)
	w.buf = w.buf[:n]
	w.mu.Unlock()
	_, err := w.Write(line)
	return err
}

// Flush writes everything buffered.
func (w *Writer) Flush() error {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	return w.flushAllLocked()
}

// flushAllLocked writes everything buffered and returns the first error
// of that or of an earlier write. w.fileMu is held.
func (w *Writer) flushAllLocked() error {
	err := w.flushFileLocked()
	w.mu.Lock()
	if err == nil {
		err = w.takeErrLocked()
	}
	w.mu.Unlock()
	return err
}

// Reopen flushes, then reopens the file at the path given to OpenWriter,
// so that lines go to a new file after logrotate moved the old one. On
// stdout it only flushes. If the new file cannot be opened, the old one
// stays in use and the error is returned.
func (w *Writer) Reopen() error {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return os.ErrClosed
	}
	err := w.flushFileLocked()
	if w.file == nil {
		return err
	}
	f, oerr := openLog(w.path)
	if oerr != nil {
		return oerr
	}
	old := w.file
	w.out, w.file = f, f
	if cerr := old.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing old access log: %w", cerr)
	}
	return err
}

// Close flushes and closes the file (not stdout). Later writes return
// os.ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return os.ErrClosed
	}
	w.closed = true // no Write gets in after this; the ones before are flushed below
	w.timer.Stop()
	w.armed = false
	w.mu.Unlock()

	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	err := w.flushAllLocked()
	if w.file != nil {
		if cerr := w.file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing access log: %w", cerr)
		}
	}
	w.out, w.file = nil, nil
	return err
}

// timedFlush runs on the timer's goroutine.
func (w *Writer) timedFlush() {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	w.mu.Lock()
	w.armed = false
	w.mu.Unlock()
	if err := w.flushFileLocked(); err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
}

// flushFileLocked writes the buffer out. fileMu must be held, mu not.
func (w *Writer) flushFileLocked() error {
	w.mu.Lock()
	if len(w.buf) == 0 {
		w.mu.Unlock()
		return nil
	}
	pending := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	err := w.writeOutLocked(pending)
	w.spare = pending[:0]
	return err
}

// writeOutLocked writes p to the output. fileMu must be held.
func (w *Writer) writeOutLocked(p []byte) error {
	if w.out == nil {
		return os.ErrClosed
	}
	if _, err := w.out.Write(p); err != nil {
		return fmt.Errorf("writing access log: %w", err)
	}
	return nil
}

// armLocked starts the flush timer if it is not running. mu must be held.
// appendLocked buffers p and arms the flush timer when p fits in the
// buffer, and reports whether it did.
func (w *Writer) appendLocked(p []byte) bool {
	if len(w.buf)+len(p) > flushSize {
		return false
	}
	w.buf = append(w.buf, p...)
	w.armLocked()
	return true
}

func (w *Writer) armLocked() {
	if !w.armed {
		w.armed = true
		w.timer.Reset(flushDelay)
	}
}

func (w *Writer) takeErrLocked() error {
	err := w.err
	w.err = nil
	return err
}
