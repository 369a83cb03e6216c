package supervisor

import (
	"fmt"
	"io"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// outputPipe returns the two ends an instance's stdout and stderr go
// through: a pipe, or with tty = true a pseudo-terminal (its master to
// read, its slave for the child). Programs that buffer their output when
// it is not a terminal (C stdio, Python without PYTHONUNBUFFERED) then
// write each line at once. The terminal has echo off and no output
// processing (a line ends in LF, not CR LF); its size is that of gsup's own
// terminal (out, when it is one), else 80x24. The caller closes both ends
// as it closes a pipe's: the slave once the child has it, the master when
// reading it fails (EIO once no process holds the slave).
func outputPipe(tty bool, out io.Writer) (r, w *os.File, err error) {
	if !tty {
		return os.Pipe()
	}
	master, slave, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("opening a pseudo-terminal: %w", err)
	}
	if err := setupTerminal(slave, out); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("setting up a pseudo-terminal: %w", err)
	}
	return master, slave, nil
}

func setupTerminal(slave *os.File, out io.Writer) error {
	size := &pty.Winsize{Rows: 24, Cols: 80}
	if f, ok := out.(*os.File); ok {
		if ws, err := pty.GetsizeFull(f); err == nil && ws.Rows > 0 && ws.Cols > 0 {
			size = ws
		}
	}
	if err := pty.Setsize(slave, size); err != nil {
		return err
	}
	fd := int(slave.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Lflag &^= unix.ECHO | unix.ECHONL
	t.Oflag &^= unix.ONLCR
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
