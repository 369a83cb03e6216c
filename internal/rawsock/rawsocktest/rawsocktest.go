// Package rawsocktest runs a package's tests on rawsock's sockets.
package rawsocktest

import (
	"flag"
	"os"
	"testing"

	"gsup/internal/rawsock"
)

// Main is a TestMain that runs the tests on rawsock's sockets whatever
// the processors (gsup uses them on one). The programs the tests run
// (gsup itself, in testscripts and arbiter's tests) and the benchmarks
// use the sockets gsup would choose.
func Main(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		rawsock.Force(true)
	}
	os.Exit(m.Run())
}
