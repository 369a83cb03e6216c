package upstream

import (
	"flag"
	"os"
	"testing"

	"gsup/internal/rawsock"
)

// TestMain runs the tests on rawsock's sockets whatever the processors
// (the front uses them on one); the programs the tests run (gsup itself,
// in testscripts and arbiter's tests) and the benchmarks use the sockets
// gsup would choose.
func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		rawsock.Force(true)
	}
	os.Exit(m.Run())
}
