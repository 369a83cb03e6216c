package upstream

import (
	"flag"
	"os"
	"testing"

	"gsup/internal/rawsock"
)

// TestMain runs the tests on connections to apps of rawsock's whatever
// the processors (gsup dials them on one). net's dials are the
// testscripts' (gsup itself, on the machine's processors), and the
// benchmarks use the sockets gsup would choose.
func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		rawsock.Force(true)
	}
	os.Exit(m.Run())
}
