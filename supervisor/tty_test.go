package supervisor

import (
	"strings"
	"testing"
	"time"

	"gsup/internal/testprog"
	"gsup/procfile"
)

func TestRealTTY(t *testing.T) {
	before := testprog.OpenFDs(t)
	// The shell is the instance's main process ($$): a session and a
	// group of its own, stdout and stderr a terminal with echo off, 80x24.
	cmd := `test -t 1 && test -t 2 && echo terminals; ` +
		`set -- $(cut -d' ' -f1,5,6 /proc/$$/stat); [ "$1" = "$2" ] && [ "$1" = "$3" ] && echo leader; ` +
		`stty size <&1; stty -a <&2 | grep -o -- ' -echo ' ; printf 'crlf\r\n'; echo to stderr >&2`
	spec := testSpec(procfile.Process{Name: "term", Command: cmd, Restart: procfile.RestartNever, TTY: true})
	_, out, _, done := runReal(t, spec)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		_, text, _ := strings.Cut(l, "term.1 | ")
		got = append(got, strings.TrimSpace(text))
	}
	want := []string{"terminals", "leader", "24 80", "-echo", "crlf", "to stderr"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if strings.Contains(out.String(), "\r") {
		t.Errorf("output has a CR: %q", out.String())
	}
	// The terminal's master is closed once the instance has ended.
	testprog.Eventually(t, "the terminal to be closed", 10*time.Second, func() (bool, string) { return testprog.OpenFDs(t) <= before, "" })
}
