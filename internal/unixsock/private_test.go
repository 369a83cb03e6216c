package unixsock

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRuntimeDirs(t *testing.T) {
	uid := strconv.Itoa(os.Geteuid())
	env := map[string]string{"XDG_RUNTIME_DIR": "/x/run", "TMPDIR": "/x/tmp"}
	dirs := RuntimeDirs("gsup", func(k string) string { return env[k] })
	if dirs[0] != "/x/run/gsup" || dirs[len(dirs)-2] != "/x/tmp/gsup-"+uid || dirs[len(dirs)-1] != "/tmp/gsup-"+uid {
		t.Errorf("RuntimeDirs = %q", dirs)
	}
	// Relative values are ignored; /tmp comes once.
	env = map[string]string{"XDG_RUNTIME_DIR": "run", "TMPDIR": "/tmp"}
	dirs = RuntimeDirs("gsup", func(k string) string { return env[k] })
	if dirs[len(dirs)-1] != "/tmp/gsup-"+uid || strings.HasPrefix(dirs[0], "run") || len(dirs) > 2 {
		t.Errorf("RuntimeDirs = %q", dirs)
	}
}

func TestPrivateDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "gsup")
	if err := CheckPrivateDir(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckPrivateDir(missing) = %v, want ErrNotExist", err)
	}
	if err := MakePrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("made %v, %v; want a folder with mode 0700", fi.Mode(), err)
	}
	if err := MakePrivateDir(dir); err != nil {
		t.Errorf("MakePrivateDir(existing) = %v", err)
	}
	for name, setup := range map[string]func(p string) error{
		"has mode 0750": func(p string) error { return os.Mkdir(p, 0o700) },
		"is not a folder": func(p string) error {
			return os.Symlink(dir, p)
		},
		"is not a folder ": func(p string) error { return os.WriteFile(p, nil, 0o600) },
	} {
		p := filepath.Join(base, strings.ReplaceAll(name, " ", "-"))
		if err := setup(p); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "has mode") {
			os.Chmod(p, 0o750)
		}
		if err := MakePrivateDir(p); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s: MakePrivateDir = %v, want an error saying %q", p, err, name)
		}
	}
	if os.Geteuid() == 0 {
		os.Chown(dir, 65534, -1)
		if err := CheckPrivateDir(dir); err == nil || !strings.Contains(err.Error(), "is owned by uid 65534") {
			t.Errorf("CheckPrivateDir(another uid's) = %v", err)
		}
	}
}
