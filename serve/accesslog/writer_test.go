package accesslog_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gsup/internal/testprog"
	"gsup/serve/accesslog"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriterFileBufferedThenFlushed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte("old line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := openWriter(t, path, nil)
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "old line\n" {
		t.Errorf("line written before a flush: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "old line\none\n" {
		t.Errorf("after Flush (appending to the existing file): %q", got)
	}
}

func TestWriterFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	openWriter(t, path, nil)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// 0644 less the process umask, which is never more permissive.
	if perm := st.Mode().Perm(); perm&^0o644 != 0 || perm&0o600 != 0o600 {
		t.Errorf("mode %v, want 0644 (less umask)", perm)
	}
}

func TestWriterTimedFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := openWriter(t, path, nil)
	start := time.Now()
	w.Write([]byte("timed\n"))
	testprog.Eventually(t, "the timed flush", 5*time.Second, func() (bool, string) { return readFile(t, path) == "timed\n", "" })
	if d := time.Since(start); d < accesslog.FlushDelay/2 {
		t.Errorf("flushed after %v, expected about %v", d, accesslog.FlushDelay)
	}
	// The timer re-arms for the next line.
	w.Write([]byte("again\n"))
	testprog.Eventually(t, "the second timed flush", 5*time.Second, func() (bool, string) { return readFile(t, path) == "timed\nagain\n", "" })
}

func TestWriterFlushesWhenFull(t *testing.T) {
	out := &testprog.Buffer{}
	w := openWriter(t, "-", out)
	line := []byte(strings.Repeat("x", 99) + "\n")
	n := accesslog.FlushSize/len(line) + 1
	for i := 0; i < n; i++ {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	got := out.String()
	if len(got) == 0 || len(got)%len(line) != 0 {
		t.Errorf("after %d bytes, %d were written (want whole lines, at least one flush)", n*len(line), len(got))
	}
	big := bytes.Repeat([]byte("y"), 2*accesslog.FlushSize)
	if n, err := w.Write(big); n != len(big) || err != nil {
		t.Errorf("large write: %d, %v", n, err)
	}
	if !strings.HasSuffix(out.String(), string(big)) {
		t.Errorf("a write larger than the buffer is not written at once")
	}
}

// WriteEntry formats the line in the Writer's buffer: lines are whole and
// in order across the flushes a full buffer makes, and a line larger than
// the buffer goes out whole.
func TestWriterWriteEntry(t *testing.T) {
	out := &testprog.Buffer{}
	w := openWriter(t, "-", out)
	f, err := accesslog.Compile(strings.Repeat("x", 90) + " %(s)s")
	if err != nil {
		t.Fatal(err)
	}
	e := accesslog.BaseEntry(t)
	var want strings.Builder
	for i := range accesslog.FlushSize/95 + 50 {
		e.Status = 100 + i
		if err := w.WriteEntry(f, e); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&want, "%s %d\n", strings.Repeat("x", 90), 100+i)
	}
	if got := out.String(); len(got) == 0 || !strings.HasPrefix(want.String(), got) || !strings.HasSuffix(got, "\n") {
		t.Errorf("before Flush, %d bytes out: want whole lines, the first ones, at least one flush", len(got))
	}
	big, err := accesslog.Compile(strings.Repeat("y", 2*accesslog.FlushSize))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEntry(big, e); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want.String()+strings.Repeat("y", 2*accesslog.FlushSize)+"\n" {
		t.Errorf("after Flush, %d bytes out; want the %d bytes of the lines, in order", len(got), want.Len()+2*accesslog.FlushSize+1)
	}
}

func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w := openWriter(t, path, nil)
	w.Write([]byte("before rotation\n"))
	rotated := filepath.Join(dir, "access.log.1")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("after rotation\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, rotated); got != "before rotation\n" {
		t.Errorf("rotated file: %q", got)
	}
	if got := readFile(t, path); got != "after rotation\n" {
		t.Errorf("new file: %q", got)
	}
}

func TestWriterReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "access.log")
	w := openWriter(t, path, nil)
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err == nil {
		t.Fatal("Reopen into a missing directory succeeded")
	}
	w.Write([]byte("still logged\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(moved, "access.log")); got != "still logged\n" {
		t.Errorf("old file after a failed reopen: %q", got)
	}
}

func TestWriterStdout(t *testing.T) {
	out := &testprog.Buffer{}
	w := openWriter(t, "-", out)
	w.Write([]byte("to stdout\n"))
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "to stdout\n" {
		t.Errorf("Reopen on stdout did not flush: %q", got)
	}
	w.Write([]byte("closing\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "to stdout\nclosing\n" {
		t.Errorf("Close did not flush: %q", got)
	}
	if _, err := w.Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterReportsErrors(t *testing.T) {
	w := openWriter(t, "-", failWriter{})
	w.Write([]byte("x\n"))
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush: %v, want the write error", err)
	}
	// A failed background flush is reported by the next call.
	w.Write([]byte("y\n"))
	time.Sleep(2 * accesslog.FlushDelay)
	if _, err := w.Write([]byte("z\n")); err == nil {
		t.Errorf("Write after a failed timed flush: no error")
	}
	if _, err := accesslog.OpenWriter(filepath.Join(t.TempDir(), "missing", "access.log"), nil); err == nil {
		t.Errorf("OpenWriter in a missing directory succeeded")
	}
}

func TestWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := openWriter(t, path, nil)
	f, err := accesslog.Compile("")
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, lines = 8, 2000
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			e := accesslog.BaseEntry(t)
			e.Status = 200 + g
			var buf []byte
			for i := 0; i < lines; i++ {
				if g%2 == 0 {
					buf = f.Append(buf[:0], e)
					_, err = w.Write(buf)
				} else {
					err = w.WriteEntry(f, e)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%500 == 0 {
					w.Reopen()
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(readFile(t, path), "\n"), "\n")
	if len(got) != goroutines*lines {
		t.Fatalf("%d lines, want %d", len(got), goroutines*lines)
	}
	counts := map[string]int{}
	for _, l := range got {
		if !strings.HasPrefix(l, "127.0.0.1 - brk0v [") || !strings.HasSuffix(l, `"curl/8.0"`) {
			t.Fatalf("torn line: %q", l)
		}
		counts[strings.Fields(l)[8]]++
	}
	for g := 0; g < goroutines; g++ {
		if n := counts[fmt.Sprint(200+g)]; n != lines {
			t.Errorf("status %d: %d lines, want %d", 200+g, n, lines)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	w, err := accesslog.OpenWriter(filepath.Join(b.TempDir(), "access.log"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	f, _ := accesslog.Compile("")
	e := accesslog.BaseEntry(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 512)
		for pb.Next() {
			buf = f.Append(buf[:0], e)
			w.Write(buf)
		}
	})
}

// openWriter opens a Writer on path (or "-" and stdout) that is closed
// when the test ends; t fails on an error.
func openWriter(t *testing.T, path string, stdout io.Writer) *accesslog.Writer {
	t.Helper()
	w, err := accesslog.OpenWriter(path, stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}
