package testprog

import (
	"bufio"
	"fmt"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// stdiolines prints a first line saying what its stdout is ("terminal
// 80x24 echo=off", or "not a terminal"), then each LINE, buffered as C
// stdio buffers stdout: line by line on a terminal, else in 4 KiB blocks
// written out only when full or at a normal exit.
// Then it writes -ready and runs until a signal kills it, so whatever is
// still buffered is lost, as it is for a C program or a Python one without
// PYTHONUNBUFFERED.
func stdiolines(p *prog) int {
	ready := p.String("ready", "", "write `FILE` once every line is printed")
	lines, ok := p.parse(0, -1)
	if !ok {
		return 2
	}
	w := bufio.NewWriterSize(p.stdout, 4096)
	tty := term.IsTerminal(1)
	what := "not a terminal"
	if tty {
		cols, rows, _ := term.GetSize(1)
		echo := "off"
		if t, err := unix.IoctlGetTermios(1, unix.TCGETS); err == nil && t.Lflag&unix.ECHO != 0 {
			echo = "on"
		}
		what = fmt.Sprintf("terminal %dx%d echo=%s", cols, rows, echo)
	}
	for _, line := range append([]string{what}, lines...) {
		fmt.Fprintln(w, line)
		if tty {
			w.Flush()
		}
	}
	if *ready != "" {
		if err := writeFileAtomic(*ready, nil); err != nil {
			return p.fail(err)
		}
	}
	sleepForever()
	return 0
}
