package accesslog

// For the tests of package accesslog_test (writer_test.go, outside the
// package because gsup/internal/testprog imports procfile, which imports
// this package).
const (
	FlushDelay = flushDelay
	FlushSize  = flushSize
)

var BaseEntry = baseEntry
