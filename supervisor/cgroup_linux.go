package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CgroupEnv turns the instance cgroups off when set to "off" in gsup's
// environment (GSUP_CGROUP=off): a troubleshooting switch, and how tests
// run the path of machines without cgroup v2.
const CgroupEnv = "GSUP_CGROUP"

// cgroupLeaf is the cgroup gsup moves itself into when its own cgroup is
// not the root: cgroup v2 lets only leaves hold processes once
// controllers are enabled. Instance names always hold a dot, so it never
// collides with one.
const cgroupLeaf = "gsup"

// cgroups is gsup's cgroup v2 subtree: base is <gsup's cgroup>/gsup-PID,
// and each instance has a cgroup below it.
type cgroups struct {
	parent string // gsup's cgroup at start, a folder in the cgroup2 mount
	base   string // parent/gsup-PID
	leaf   string // base/gsup when gsup moved itself there, else ""
}

// setupCgroups creates gsup's subtree, or with adopt takes the one the
// previous binary of this process made (an in-place upgrade keeps the
// pid, so the same gsup-PID). It returns nil and no error when
// GSUP_CGROUP=off is in environ, and an error saying why when cgroup v2
// is missing or not writable.
func setupCgroups(environ []string, adopt bool) (*cgroups, error) {
	for _, kv := range environ {
		if kv == CgroupEnv+"=off" {
			return nil, nil
		}
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	if adopt && filepath.Base(own) == cgroupLeaf {
		base := filepath.Dir(own)
		return &cgroups{parent: filepath.Dir(base), base: base, leaf: own}, nil
	}
	c := &cgroups{parent: own, base: filepath.Join(own, "gsup-"+strconv.Itoa(os.Getpid()))}
	if adopt {
		if fi, err := os.Stat(c.base); err == nil && fi.IsDir() {
			return c, nil
		}
	}
	if err := os.Mkdir(c.base, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2 at %s is not writable: %w", own, err)
	}
	if !isRootCgroup(own) {
		leaf := filepath.Join(c.base, cgroupLeaf)
		if err := os.Mkdir(leaf, 0o755); err == nil {
			if moveToCgroup(leaf, 0) == nil {
				c.leaf = leaf
			} else {
				_ = os.Remove(leaf)
			}
		}
	}
	return c, nil
}

// isRootCgroup reports whether dir is the root cgroup, the one without a
// cgroup.type file.
func isRootCgroup(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.type"))
	return errors.Is(err, os.ErrNotExist)
}

// ownCgroup returns the folder of this process's cgroup v2: the cgroup2
// mount from /proc/self/mountinfo (also beside v1 controllers, the
// "hybrid" layout) joined with the "0::/path" line of /proc/self/cgroup.
func ownCgroup() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("finding cgroup v2: %w", err)
	}
	defer f.Close()
	var mount, root string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		root, mount = unescapeMount(fields[3]), unescapeMount(fields[4])
		break
	}
	if mount == "" {
		return "", errors.New("no cgroup v2 mount in /proc/self/mountinfo")
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("finding cgroup v2: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			rel, ok := strings.CutPrefix(path, root)
			if root == "/" {
				rel, ok = path, true
			}
			if !ok {
				return "", fmt.Errorf("cgroup %s is outside the cgroup2 mount at %s", path, mount)
			}
			return filepath.Join(mount, rel), nil
		}
	}
	return "", errors.New("no cgroup v2 line in /proc/self/cgroup")
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// moveToCgroup moves process pid (0 = this one) into the cgroup dir.
func moveToCgroup(dir string, pid int) error {
	return writeCgroupFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
}

// writeCgroupFile writes value to an existing cgroup interface file.
func writeCgroupFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// create makes a cgroup for start number n of the instance named name
// ("web.1", "app/web.1"). While a predecessor of the same name still
// holds one (a rolling replacement, or an exited start whose processes
// are still being killed), the name gets "~N".
func (c *cgroups) create(name string, n uint64) (*cgroup, error) {
	dir := filepath.Join(c.base, strings.ReplaceAll(name, "/", ":"))
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrExist) {
		dir = fmt.Sprintf("%s~%d", dir, n)
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return nil, fmt.Errorf("creating cgroup: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("opening cgroup: %w", err)
	}
	return &cgroup{dir: dir, f: f}, nil
}

// adopt reopens an instance cgroup made by the previous binary of this
// process; nil when it is gone.
func (c *cgroups) adopt(dir string) *cgroup {
	if filepath.Dir(dir) != c.base {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	return &cgroup{dir: dir, f: f}
}

// close removes gsup's subtree once every instance cgroup is gone. gsup
// first goes back to its own cgroup when it had moved to the leaf.
func (c *cgroups) close() {
	if c != nil {
		removeCgroupTree(c.base)
	}
}

// removeCgroupTree kills every process in the instance cgroups below
// base, removes them, moves this process out of base's leaf and removes
// the leaf and base. The guard runs it when gsup is gone; gsup runs it
// last. Errors are ignored: whatever cannot be removed stays empty.
func removeCgroupTree(base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.IsDir() && e.Name() != cgroupLeaf {
			(&cgroup{dir: filepath.Join(base, e.Name())}).remove()
		}
	}
	leaf := filepath.Join(base, cgroupLeaf)
	if _, err := os.Stat(leaf); err == nil {
		if b, err := os.ReadFile("/proc/self/cgroup"); err == nil && strings.HasSuffix(strings.TrimSpace(string(b)), "/"+filepath.Base(base)+"/"+cgroupLeaf) {
			_ = moveToCgroup(filepath.Dir(base), 0)
		}
		_ = os.Remove(leaf)
	}
	_ = os.Remove(base)
}

// cgroup is one instance's cgroup.
type cgroup struct {
	dir string
	f   *os.File // the open folder, for clone's CLONE_INTO_CGROUP
}

// kill sends SIGKILL to every process in the cgroup: with cgroup.kill
// (Linux 5.14), else by freezing it, killing each process and thawing.
func (g *cgroup) kill() error {
	err := writeCgroupFile(filepath.Join(g.dir, "cgroup.kill"), "1")
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	freeze := filepath.Join(g.dir, "cgroup.freeze")
	if err := writeCgroupFile(freeze, "1"); err != nil {
		return fmt.Errorf("freezing cgroup %s: %w", g.dir, err)
	}
	defer writeCgroupFile(freeze, "0")
	for _, pid := range g.pids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// pids returns the processes in the cgroup.
func (g *cgroup) pids() []int {
	b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// populated reports whether any process is left in the cgroup.
func (g *cgroup) populated() bool {
	b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "populated 1")
}

// remove kills what the cgroup holds, waits (5 s at most) for it to be
// empty and removes it.
func (g *cgroup) remove() {
	if g.f != nil {
		g.f.Close()
	}
	_ = g.kill()
	deadline := time.Now().Add(5 * time.Second)
	for g.populated() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	_ = os.Remove(g.dir)
}

// CgroupsWritable returns nil when this process could run instances in
// cgroups of their own (cgroup v2 is mounted and its cgroup writable),
// else why not.
func CgroupsWritable() error {
	own, err := ownCgroup()
	if err != nil {
		return err
	}
	probe := filepath.Join(own, fmt.Sprintf("gsup-probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Errorf("cgroup v2 at %s is not writable: %w", own, err)
	}
	return os.Remove(probe)
}
