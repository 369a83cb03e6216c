package testprog

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// notifysock plays systemd's NOTIFY_SOCKET: it logs what it receives.
func notifysock(p *prog) int {
	ready := p.String("ready", "", "write `FILE` once the socket is bound")
	pos, ok := p.parse(2, 2)
	if !ok {
		return 2
	}
	path, out := pos[0], pos[1]
	stop := notifyStop()
	short, done, err := shortPath(path)
	if err != nil {
		return p.fail(err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: short, Net: "unixgram"})
	done()
	if err != nil {
		return p.fail(fmt.Errorf("bind %s: %w", path, err))
	}
	if !strings.HasPrefix(path, "@") {
		defer os.Remove(path)
	}
	if *ready != "" {
		if err := writeFileAtomic(*ready, []byte(path+"\n")); err != nil {
			return p.fail(err)
		}
	}
	fmt.Fprintf(p.stdout, "notifysock listening on %s\n", path)

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
			return p.fail(err)
		case line := <-msgs:
			if err := appendLine(out, line); err != nil {
				return p.fail(err)
			}
			fmt.Fprintf(p.stdout, "notify %s\n", line)
		}
	}
}

// notifyLine turns one sd_notify datagram into one line: its assignments
// joined with spaces, in the order sent.
func notifyLine(datagram []byte) string {
	fields := strings.FieldsFunc(string(datagram), func(r rune) bool { return r == '\n' })
	return strings.Join(fields, " ")
}

// sdready sends READY=1 to $NOTIFY_SOCKET, then waits for TERM or INT.
func sdready(p *prog) int {
	delay := p.Duration("delay", 0, "wait this long before sending READY=1")
	status := p.String("status", "", "also send STATUS=`TEXT`")
	pidfile := p.String("pidfile", "", "write the pid to `FILE`")
	if _, ok := p.parse(0, 0); !ok {
		return 2
	}
	stop := notifyStop()
	if err := writePidFile(*pidfile); err != nil {
		return p.fail(err)
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
		return p.fail(err)
	}
	fmt.Fprintf(p.stdout, "sdready sent READY=1 pid=%d\n", os.Getpid())
	<-stop
	return 0
}
