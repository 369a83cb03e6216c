package oneoff

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gsup/procfile"
)

func TestNewArgv(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := procfile.Options{Dir: dir, Environ: []string{"PATH=/bin"}}
	for _, tc := range []struct {
		args, want []string
	}{
		{[]string{"echo", "a  b", "$X", "*", "--flag"}, []string{"echo", "a  b", "$X", "*", "--flag"}},
		{[]string{"python manage.py migrate"}, []string{"/bin/sh", "-c", "exec python manage.py migrate"}},
		{[]string{"a | b"}, []string{"/bin/sh", "-c", "a | b"}},
	} {
		c, err := New(opts, "", tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Argv, tc.want) {
			t.Errorf("New(%q).Argv = %q, want %q", tc.args, c.Argv, tc.want)
		}
		if !slices.Contains(c.Env, "A=1") || !slices.Contains(c.Env, "PATH=/bin") {
			t.Errorf("New(%q).Env = %q", tc.args, c.Env)
		}
	}
	if _, err := New(opts, "", nil); err == nil {
		t.Error("New with no command accepted")
	}
}

// Exec returns only when the command cannot run; a shell's 127 and 126
// cases. (Nothing here can be exec'd, so the test process stays itself.)
func TestExecCannotRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + dir + ":" + filepath.Join(dir, "missing")}
	for _, tc := range []struct {
		name string
		kind error
		msg  string
	}{
		{"nosuchprog", ErrNotFound, "nosuchprog: command not found"},
		{filepath.Join(dir, "nosuchprog"), ErrNotFound, filepath.Join(dir, "nosuchprog") + ": no such file or directory"},
		{"plain", ErrCannotRun, "plain: permission denied"},
		{filepath.Join(dir, "plain"), ErrCannotRun, filepath.Join(dir, "plain") + ": permission denied"},
	} {
		err := (&Command{Argv: []string{tc.name, "arg"}, Env: env}).Exec()
		if !errors.Is(err, tc.kind) || err.Error() != tc.msg {
			t.Errorf("Exec %s: %v, want %q (%v)", tc.name, err, tc.msg, tc.kind)
		}
	}
}
