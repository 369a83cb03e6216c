package testprog

import (
	"fmt"
	"os"
	"os/exec"
)

// Skipper is what Missing skips or fails: a *testing.T (any testing.TB).
type Skipper interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Missing skips t because what it needs is not here (why says what, and
// where to get it), or fails it when CI=true: CI has every peer
// installed and can never pass by skipping.
func Missing(t Skipper, why string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(why, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true: CI must provide it", msg)
		return
	}
	t.Skipf("%s", msg)
}

// NeedProgram returns the path of prog, or (through Missing) skips t
// naming the Debian package that has it.
func NeedProgram(t Skipper, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		Missing(t, "%s is not installed (Debian package %s)", prog, pkg)
	}
	return p
}
