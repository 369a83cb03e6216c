package procfile

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseProcfile(t *testing.T) {
	runParseCases(t, "Procfile", ParseProcfile, []parseCase[Entry]{
		{name: "colon", in: "web: bundle exec puma\nworker: bin/worker\n",
			want: []Entry{{"web", "bundle exec puma", 1}, {"worker", "bin/worker", 2}}},
		{name: "equals", in: "web = gunicorn app:app\n",
			want: []Entry{{"web", "gunicorn app:app", 1}}},
		{name: "colon before equals", in: "web: FOO=bar app\n",
			want: []Entry{{"web", "FOO=bar app", 1}}},
		{name: "equals before colon", in: "web = x:y\n",
			want: []Entry{{"web", "x:y", 1}}},
		{name: "no space", in: "web:app\n", want: []Entry{{"web", "app", 1}}},
		{name: "spaces around name", in: "  web  :  app  \n", want: []Entry{{"web", "app", 1}}},
		{name: "comments and blanks", in: "# a comment\n\n   \n  # indented\nweb: app # stays\n",
			want: []Entry{{"web", "app # stays", 5}}},
		{name: "CRLF", in: "web: app\r\nworker: w\r\n",
			want: []Entry{{"web", "app", 1}, {"worker", "w", 2}}},
		{name: "BOM", in: "\xef\xbb\xbfweb: app", want: []Entry{{"web", "app", 1}}},
		{name: "no final newline", in: "web: app", want: []Entry{{"web", "app", 1}}},
		{name: "names", in: "a-b_C9: x\n", want: []Entry{{"a-b_C9", "x", 1}}},
		{name: "empty", in: "", want: nil},
		{name: "duplicate", in: "web: a\nworker: b\nweb: c\n",
			err: `Procfile:3: duplicate process name "web"`},
		{name: "no separator", in: "web app\n",
			err: `Procfile:1: expected NAME: COMMAND, got "web app"`},
		{name: "empty command", in: "\nweb:   \n",
			err: `Procfile:2: empty command for "web"`},
		{name: "bad name", in: "web.1: app\n",
			err: `Procfile:1: invalid process name "web.1": use letters, digits, '_' and '-'`},
		{name: "empty name", in: ": app\n", err: `Procfile:1: empty process name`},
		{name: "reserved all", in: "all: app\n",
			err: `Procfile:1: process name "all" is reserved (a formation's all=N means every type)`},
		{name: "NUL", in: "web: a\x00b\n", err: `Procfile:1: command of "web" contains a NUL byte`},
		{name: "every bad line", in: "x\nweb: a\ny\n",
			err: "Procfile:1: expected NAME: COMMAND, got \"x\"\nProcfile:3: expected NAME: COMMAND, got \"y\""},
	})
}

func FuzzParseProcfile(f *testing.F) {
	seeds := []string{
		"web: bundle exec puma\nworker: bin/worker\n",
		"web = x:y\n# c\n\n",
		"web: FOO=bar app\r\n",
		"\xef\xbb\xbfa-b_C: x",
		"web app\n: x\nall: y\nweb:\n",
	}
	// Written out as name: command, the entries read back the same.
	fuzzParser(f, "Procfile", ParseProcfile, seeds, func(e *Entry) *int { return &e.Line }, func(t *testing.T, entries []Entry) string {
		seen := map[string]bool{}
		var b strings.Builder
		for _, e := range entries {
			if checkName(e.Name) != nil || seen[e.Name] {
				t.Fatalf("bad or duplicate name %q", e.Name)
			}
			seen[e.Name] = true
			if e.Command == "" || strings.ContainsAny(e.Command, "\n\x00") || strings.TrimSpace(e.Command) != e.Command {
				t.Fatalf("bad command %q", e.Command)
			}
			fmt.Fprintf(&b, "%s: %s\n", e.Name, e.Command)
		}
		return b.String()
	})
}

func TestParseFormation(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]int
		err  string
	}{
		{in: "web=2,worker=1", want: map[string]int{"web": 2, "worker": 1}},
		{in: "all=3", want: map[string]int{"all": 3}},
		{in: "web=4 worker=0", want: map[string]int{"web": 4, "worker": 0}},
		{in: " web=1 , worker=2,", want: map[string]int{"web": 1, "worker": 2}},
		{in: "all=2,web=1", want: map[string]int{"all": 2, "web": 1}},
		{in: "", err: "empty formation"},
		{in: " , ", err: "empty formation"},
		{in: "web", err: `invalid formation entry "web": want TYPE=N`},
		{in: "web=", err: `invalid formation entry "web=": missing count`},
		{in: "web=-1", err: `count "-1" is not a non-negative integer`},
		{in: "web=+1", err: `count "+1" is not a non-negative integer`},
		{in: "web=x", err: `count "x" is not a non-negative integer`},
		{in: "web=99999999999999999999", err: "too large"},
		{in: "web.1=1", err: `invalid process name "web.1"`},
		{in: "=1", err: "empty process name"},
		{in: "web=1,web=2", err: `formation names "web" twice`},
	}
	for _, tt := range tests {
		got, err := ParseFormation(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseFormation(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseFormation(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	good := map[string]string{
		"TERM": "TERM", "SIGTERM": "TERM", "term": "TERM", "sigterm": "TERM", "15": "TERM",
		" HUP ": "HUP", "USR1": "USR1", "SIGUSR2": "USR2", "9": "KILL", "WINCH": "WINCH",
		"34": "34", "64": "64",
	}
	for in, want := range good {
		sig, err := ParseSignal(in)
		if err != nil || SignalName(sig) != want {
			t.Errorf("ParseSignal(%q) = %v (%s), %v; want %s", in, sig, SignalName(sig), err, want)
		}
	}
	for _, in := range []string{"", "SIG", "FOO", "0", "65", "-1", "1.5", "SIGSIGTERM", "TERM1"} {
		if sig, err := ParseSignal(in); err == nil {
			t.Errorf("ParseSignal(%q) = %v, want an error", in, sig)
		}
	}
}
