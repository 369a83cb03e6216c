package procfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestFrontSettings: root, [serve.static], compress and error_pages are
// read with paths from the config's folder, and shown by gsup check.
func TestFrontSettings(t *testing.T) {
	files := map[string]string{
		"Procfile":                "web: app\n",
		"public/robots.txt":       "x",
		"staticfiles/app.js":      "x",
		"private/report.pdf":      "x",
		"public/502.html":         "down",
		"public/maintenance.html": "later",
		"gsup.toml": `[serve]
root = "public"
compress = ["zstd", "gzip"]
error_pages = { 502 = "public/502.html", 503 = "public/maintenance.html" }

[serve.static]
"/static/" = "staticfiles"
"/protected/" = { dir = "private", internal = true, cache_control = "private, max-age=60" }
`,
	}
	spec := mustLoad(t, files, Options{})
	sv, dir := spec.Serve, spec.Dir
	if sv.Root != filepath.Join(dir, "public") || !reflect.DeepEqual(sv.Compress, []string{"zstd", "gzip"}) {
		t.Errorf("root %q, compress %q", sv.Root, sv.Compress)
	}
	want := []StaticDir{
		{Prefix: "/static/", Dir: filepath.Join(dir, "staticfiles")},
		{Prefix: "/protected/", Dir: filepath.Join(dir, "private"), Internal: true, CacheControl: "private, max-age=60"},
	}
	if !reflect.DeepEqual(sv.Static, want) {
		t.Errorf("static %+v", sv.Static)
	}
	if !reflect.DeepEqual(sv.ErrorPages, map[int]string{502: filepath.Join(dir, "public/502.html"), 503: filepath.Join(dir, "public/maintenance.html")}) {
		t.Errorf("error pages %v", sv.ErrorPages)
	}
	var b strings.Builder
	spec.WritePlan(&b)
	for _, s := range []string{"root=public", "compress=zstd,gzip", "error-pages=502:public/502.html,503:public/maintenance.html",
		"static=/static/:staticfiles,/protected/:private(internal)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("plan lacks %q:\n%s", s, b.String())
		}
	}
}

// TestFrontSettingErrors: what gsup could not serve is a config error
// naming file, line and key.
func TestFrontSettingErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"[serve]\nroot = \"nope\"\n", "gsup.toml:2: serve.root: open "},
		{"[serve]\nroot = \"file.txt\"\n", "gsup.toml:2: serve.root: "},
		{"[serve]\ncompress = [\"gzip\", \"deflate\"]\n", `gsup.toml:2: serve.compress: unknown coding "deflate" (want zstd, br, gzip)`},
		{"[serve]\ncompress = \"brotli\"\n", `gsup.toml:2: serve.compress: unknown coding "brotli"`},
		{"[serve]\nerror_pages = { 502 = \"missing.html\" }\n", "gsup.toml:2: serve.error_pages.502: open "},
		{"[serve]\nerror_pages = { 200 = \"file.txt\" }\n", `gsup.toml:2: serve.error_pages.200: "200" is not an error status (400 to 599)`},
		{"[serve.static]\n\"/static\" = \"dir\"\n", `gsup.toml:2: serve.static."/static": "/static" must be a URL path starting and ending with '/'`},
		{"[serve.static]\n\"/s/\" = \"nope\"\n", "gsup.toml:2: serve.static.\"/s/\".dir: open "},
		{"[serve.static]\n\"/s/\" = { dir = \"dir\", intern = true }\n", "gsup.toml:2: serve.static.\"/s/\".intern: unknown key (a static table has dir, internal and cache_control)"},
		{"[serve.static]\n\"/s/\" = { internal = true }\n", "gsup.toml:2: serve.static.\"/s/\": no dir"},
		{"[serve.static]\n\"/s/\" = 3\n", "gsup.toml:2: serve.static.\"/s/\": must be a folder or a table, not an integer"},
		{"[serve]\naccess_logformat = \"%(h)s %(s\"\n", "gsup.toml:2: serve.access_logformat: access log format: unclosed %( at position 6"},
	} {
		files := map[string]string{"Procfile": "web: app\n", "file.txt": "x", "dir/a": "x", "gsup.toml": tc.toml}
		_, err := load(t, files, Options{})
		if !strings.Contains(err, tc.want) {
			t.Errorf("%q:\n got %s\nwant %s", tc.toml, err, tc.want)
		}
	}
}

// TestUnreadableRoot: a folder gsup may not read is refused at load.
func TestUnreadableRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any folder")
	}
	files := map[string]string{"Procfile": "web: app\n", "public/a": "x", "gsup.toml": "[serve]\nroot = \"public\"\n"}
	dir := writeDir(t, files)
	os.Chmod(filepath.Join(dir, "public"), 0)
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "public"), 0o755) })
	if _, err := Load(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "gsup.toml:2: serve.root: ") {
		t.Errorf("unreadable root: %v", err)
	}
}
