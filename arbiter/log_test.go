package arbiter

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"gsup/procfile"
)

// A message of several lines (a config with several errors) becomes one
// log line a problem, each in Gunicorn's layout; fields close the last.
func TestTextFormatterOneLineAProblem(t *testing.T) {
	var out bytes.Buffer
	log, _, err := NewLogger(&procfile.Spec{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.WithFields(logrus.Fields{"pid": 42, "app": "shop"}).Error("reload refused:\nProcfile:2: bad line\nProcfile:3: duplicate process name \"web\"\n")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), out.String())
	}
	layout := regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\] \S`)
	for _, l := range lines {
		if !layout.MatchString(l) {
			t.Errorf("line not in the log's layout: %q", l)
		}
	}
	if !strings.HasSuffix(lines[2], `duplicate process name "web" app=shop pid=42`) {
		t.Errorf("fields not sorted at the end of the last line: %q", lines[2])
	}
}
