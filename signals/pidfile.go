package signals

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// PidFile is a pid file gsup wrote.
type PidFile struct {
	path string
	pid  int
}

// WritePidFile writes pid to path atomically (a temporary file in the
// same folder, renamed). It refuses when path holds the pid of another
// live process; a stale pid is replaced.
func WritePidFile(path string, pid int) (*PidFile, error) {
	if old, err := readPid(path); err == nil && old != pid && alive(old) {
		return nil, fmt.Errorf("pid file %s: already running as pid %d (or the pid file is stale and that pid was reused)", path, old)
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

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
