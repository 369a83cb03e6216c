package procfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// metrics_bind defaults to the local machine: ":9100" and "9100" mean
// 127.0.0.1:9100; another host is kept as written; a bad one is refused
// with file, line and key.
func TestMetricsBindDefaultsToLoopback(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{`":9100"`, "127.0.0.1:9100", ""},
		{`"9100"`, "127.0.0.1:9100", ""},
		{`"0.0.0.0:9100"`, "0.0.0.0:9100", ""},
		{`"[::1]:9100"`, "[::1]:9100", ""},
		{`"nonsense"`, "", `gsup.toml:2: serve.metrics_bind: "nonsense" is not host:port`},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "gsup.toml"), []byte("[serve]\nmetrics_bind = "+tc.in+"\n[process.web]\ncommand = \"app\"\n"), 0o644)
		spec, err := Load(Options{Dir: dir})
		switch {
		case tc.err != "":
			if err == nil || !strings.HasSuffix(err.Error(), "/"+tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case spec.Serve.MetricsBind != tc.want:
			t.Errorf("%s: metrics_bind %q, want %q", tc.in, spec.Serve.MetricsBind, tc.want)
		}
	}
}
