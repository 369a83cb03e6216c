package signals

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PidFile is a pid file gsup wrote.
type PidFile struct {
	path string
	pid  int
}

// WritePidFile writes pid to path atomically (a temporary file in the
// same folder, renamed). It refuses when path holds the pid of another
// live gsup; a stale pid is replaced: a dead one, one that is not a gsup
// (pid 1 after a container restart, a pid reused by another program), or
// a process started after the file was written.
func WritePidFile(path string, pid int) (*PidFile, error) {
	if old, err := readPid(path); err == nil && old != pid && liveGsup(path, old) {
		return nil, fmt.Errorf("pid file %s: already running as pid %d", path, old)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", pid)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return &PidFile{path: path, pid: pid}, nil
}

// Remove deletes the pid file if it still holds our pid.
func (p *PidFile) Remove() error {
	if p == nil {
		return nil
	}
	if got, err := readPid(p.path); err != nil || got != p.pid {
		return nil
	}
	return os.Remove(p.path)
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// liveGsup reports whether pid, read from the pid file at path, is a
// running gsup that could have written it: alive, running the same
// program as this process (its /proc/PID/exe, or its argv[0] when exe
// cannot be read), and started no later than the file was written.
func liveGsup(path string, pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if !sameProgram(pid) {
		return false
	}
	fi, err := os.Stat(path)
	started, ok := procStart(pid)
	if err == nil && ok && started.After(fi.ModTime().Add(time.Second)) {
		return false // the pid was reused after the file was written
	}
	return true
}

// sameProgram reports whether pid runs the same program as this process:
// the same executable and the same argv[0] name. When pid's executable
// cannot be read (another user's process), argv[0] decides.
func sameProgram(pid int) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	if exe, err := os.Readlink(proc + "/exe"); err == nil {
		self, err := os.Readlink("/proc/self/exe")
		if err == nil && trimDeleted(exe) != trimDeleted(self) {
			return false
		}
	}
	b, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return true // cannot tell: refuse rather than run twice
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return filepath.Base(argv0) == filepath.Base(os.Args[0])
}

// trimDeleted removes the " (deleted)" the kernel appends to the
// executable of a process whose binary was replaced (a deploy).
func trimDeleted(exe string) string { return strings.TrimSuffix(exe, " (deleted)") }

// procStart returns when pid started, from /proc/PID/stat (field 22, in
// clock ticks of 1/100 s since boot) and the boot time in /proc/stat.
func procStart(pid int) (time.Time, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64) // field 22 overall
	if err != nil {
		return time.Time{}, false
	}
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			const userHZ = 100 // the unit of /proc times on Linux
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / userHZ), true
		}
	}
	return time.Time{}, false
}
