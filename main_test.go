package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"gsup/internal/testprog"
)

// TestMain registers gsup and the helper programs as commands scripts
// can run (testscript re-executes the test binary under their names).
func TestMain(m *testing.M) {
	progs := testprog.Programs()
	progs["gsup"] = func() { os.Exit(gsupMain()) }
	testscript.Main(m, progs)
}

// TestScripts runs testscripts/*.txtar with the real gsup binary and real
// processes.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testscripts",
		Cmds:                testprog.Commands(),
		Setup:               testprog.Setup,
		RequireExplicitExec: true,
	})
}
