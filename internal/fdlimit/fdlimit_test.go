package fdlimit

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"gsup/internal/testprog"
)

// Raise lifts the soft limit to the hard one (less one), also after
// someone lowered it, and children still get the soft limit the process
// was started with.
func TestRaiseKeepsChildrenLimit(t *testing.T) {
	if os.Getenv("FDLIMIT_CHILD") == "1" {
		// As after an outside prlimit: Go's own raise undone.
		syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, syscall.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&syscall.Rlimit{Cur: 64, Max: 4096})), 0, 0, 0)
		got, err := raise()
		if err != nil {
			t.Fatal(err)
		}
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		if got != lim.Max-1 || lim.Cur != lim.Max-1 {
			t.Fatalf("Raise = %d, limit now %d/%d", got, lim.Cur, lim.Max)
		}
		out, err := exec.Command("sh", "-c", "ulimit -Sn").Output()
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(out)); s != "64" {
			t.Fatalf("a child's soft limit is %s, want 64 (the one gsup was given)", s)
		}
		return
	}
	prlimit := testprog.NeedProgram(t, "prlimit", "util-linux")
	cmd := exec.Command(prlimit, "--nofile=64:4096", os.Args[0], "-test.run=^TestRaiseKeepsChildrenLimit$", "-test.v")
	cmd.Env = append(os.Environ(), "FDLIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("%v\n%s", err, out)
	}
	if Current() == 0 {
		t.Error("Current = 0")
	}
}
