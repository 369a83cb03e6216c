package testprog

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"gsup/procfile"
)

// maxSockPath is the longest UNIX socket path bind and connect accept
// (sun_path is 108 bytes including the terminating NUL).
const maxSockPath = 107

// parseSignal accepts "TERM", "SIGTERM", "term" or a number such as "15".
func parseSignal(s string) (syscall.Signal, error) { return procfile.ParseSignal(s) }

// signalName returns the short name of sig ("TERM"), or its number.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		return procfile.SignalName(s)
	}
	return sig.String()
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (`exitwith 3 -after 1s`), and returns the
// positional ones. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place, so a reader polling for path never sees it half written.
func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writePidFile writes the calling process's pid to path; "" does nothing.
func writePidFile(path string) error {
	if path == "" {
		return nil
	}
	return writeFileAtomic(path, []byte(strconv.Itoa(os.Getpid())+"\n"))
}

// appendLine appends line and a newline to path in one write, creating
// the file if needed. With O_APPEND, concurrent writers never interleave
// within a line.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// notifyStop returns a channel that receives TERM and INT.
func notifyStop() chan os.Signal {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	return c
}

// shortPath returns a name under which the UNIX socket path can be bound
// or dialled even when it is longer than sun_path allows: the socket's
// folder is opened and named through /proc/self/fd. The returned function
// closes that folder; call it once the bind or dial is done. Abstract
// names ("@name") and short paths are returned as they are.
func shortPath(path string) (string, func(), error) {
	if len(path) <= maxSockPath || strings.HasPrefix(path, "@") {
		return path, func() {}, nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	short := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(short) > maxSockPath {
		dir.Close()
		return "", nil, fmt.Errorf("socket name %q is too long", filepath.Base(path))
	}
	return short, func() { dir.Close() }, nil
}

// dialUnix connects to the UNIX socket at path ("unix" or "unixgram"),
// whatever the path's length.
func dialUnix(ctx context.Context, network, path string) (net.Conn, error) {
	short, done, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, short)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			op.Addr = &net.UnixAddr{Name: path, Net: network}
		}
		return nil, err
	}
	return c, nil
}

// sdNotify sends state (newline-separated KEY=VALUE assignments) to the
// datagram socket named by $NOTIFY_SOCKET. It fails when the variable is
// unset: the helpers that use it exist to test readiness.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return errors.New("NOTIFY_SOCKET is not set")
	}
	c, err := dialUnix(context.Background(), "unixgram", path)
	if err != nil {
		return fmt.Errorf("notify %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify %s: %w", path, err)
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
