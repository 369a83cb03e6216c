package serve

import (
	"testing"

	"gsup/internal/rawsock/rawsocktest"
)

func TestMain(m *testing.M) { rawsocktest.Main(m) }
