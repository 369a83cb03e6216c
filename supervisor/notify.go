package supervisor

import (
	"bytes"
	"net"
	"os"
)

// notifyListener is an instance's own NOTIFY_SOCKET: the child sends
// READY=1 (and STATUS=...) there as it would to systemd.
type notifyListener struct {
	path string
	conn *net.UnixConn
}

func listenNotify(path string) (*notifyListener, error) {
	_ = os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &notifyListener{path: path, conn: c}, nil
}

// serve calls onReady once when READY=1 arrives and onStatus for every
// STATUS= value, until close.
func (n *notifyListener) serve(onReady func(), onStatus func(string)) {
	buf := make([]byte, 4096)
	ready := false
	for {
		m, err := n.conn.Read(buf)
		if err != nil {
			return
		}
		for _, line := range bytes.Split(buf[:m], []byte{'\n'}) {
			switch {
			case bytes.Equal(line, []byte("READY=1")) && !ready:
				ready = true
				onReady()
			case bytes.HasPrefix(line, []byte("STATUS=")):
				onStatus(string(line[len("STATUS="):]))
			}
		}
	}
}

func (n *notifyListener) close() {
	n.conn.Close()
	_ = os.Remove(n.path)
}
