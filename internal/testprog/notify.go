package testprog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// notifysock PATH OUTFILE [-ready FILE]
func notifysock(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("notifysock", stderr)
	ready := fs.String("ready", "", "write `FILE` once the socket is bound")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		return usage(stderr, "notifysock", "usage: notifysock PATH OUTFILE [-ready FILE]")
	}
	path, out := pos[0], pos[1]
	stop := notifyStop()
	short, done, err := shortPath(path)
	if err != nil {
		return fail(stderr, "notifysock", err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: short, Net: "unixgram"})
	done()
	if err != nil {
		return fail(stderr, "notifysock", fmt.Errorf("bind %s: %w", path, err))
	}
	if !strings.HasPrefix(path, "@") {
		defer os.Remove(path)
	}
	if *ready != "" {
		if err := writeFileAtomic(*ready, []byte(path+"\n")); err != nil {
			return fail(stderr, "notifysock", err)
		}
	}
	fmt.Fprintf(stdout, "notifysock listening on %s\n", path)

	msgs := make(chan string)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				errc <- err
				return
			}
			msgs <- notifyLine(buf[:n])
		}
	}()
	defer conn.Close()
	for {
		select {
		case <-stop:
			return 0
		case err := <-errc:
			if errors.Is(err, net.ErrClosed) {
				return 0
			}
			return fail(stderr, "notifysock", err)
		case line := <-msgs:
			if err := appendLine(out, line); err != nil {
				return fail(stderr, "notifysock", err)
			}
			fmt.Fprintf(stdout, "notify %s\n", line)
		}
	}
}

// notifyLine turns one sd_notify datagram into one line: its assignments
// joined with spaces, in the order sent.
func notifyLine(datagram []byte) string {
	fields := strings.FieldsFunc(string(datagram), func(r rune) bool { return r == '\n' })
	return strings.Join(fields, " ")
}

// sdready [-delay DUR] [-status TEXT] [-pidfile F]
func sdready(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sdready", stderr)
	delay := fs.Duration("delay", 0, "wait this long before sending READY=1")
	status := fs.String("status", "", "also send STATUS=`TEXT`")
	pidfile := fs.String("pidfile", "", "write the pid to `FILE`")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		return usage(stderr, "sdready", "usage: sdready [-delay DUR] [-status TEXT] [-pidfile F]")
	}
	stop := notifyStop()
	if err := writePidFile(*pidfile); err != nil {
		return fail(stderr, "sdready", err)
	}
	if *delay > 0 {
		select {
		case <-time.After(*delay):
		case <-stop:
			return 0
		}
	}
	msg := "READY=1"
	if *status != "" {
		msg += "\nSTATUS=" + *status
	}
	if err := sdNotify(msg); err != nil {
		return fail(stderr, "sdready", err)
	}
	fmt.Fprintf(stdout, "sdready sent READY=1 pid=%d\n", os.Getpid())
	<-stop
	return 0
}
