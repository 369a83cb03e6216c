package upstream

import (
	"testing"

	"gsup/internal/rawsock/rawsocktest"
)

// TestMain runs the tests on connections to apps of rawsock's whatever
// the processors; net's dials are the testscripts' (gsup itself, on the
// machine's processors).
func TestMain(m *testing.M) { rawsocktest.Main(m) }
