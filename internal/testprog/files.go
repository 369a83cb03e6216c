package testprog

import (
	"os"
	"testing/fstest"
)

// WriteFiles writes files (slash-separated name below dir -> content) into
// dir, making the folders they need, and fails f on any error.
func WriteFiles(f Fataler, dir string, files map[string]string) {
	fsys := make(fstest.MapFS, len(files))
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	if err := os.CopyFS(dir, fsys); err != nil {
		f.Fatalf("writing files: %v", err)
	}
}
