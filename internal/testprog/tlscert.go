package testprog

import (
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"gsup/internal/testcert"
)

// cmdTLSCert: tlscert DIR NAME... writes a new test CA (DIR/ca.pem) and a
// certificate it signs for the names (DIR/cert.pem, DIR/key.pem).
func cmdTLSCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: tlscert DIR NAME...")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	ca, err := testcert.NewCA()
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o644))
	ts.Check(ca.WriteLeaf(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), args[1:]...))
}
