package testprog

import "os"

// OpenFDs counts the test process's open file descriptors, and fails f
// when /proc/self/fd cannot be read.
func OpenFDs(f Fataler) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		f.Fatalf("counting open files: %v", err)
	}
	return len(fds)
}
