package procfile

import (
	"bytes"
	"fmt"
	"strings"
)

// Entry is one line of a Procfile.
type Entry struct {
	Name    string // process type, [A-Za-z0-9_-]+
	Command string // the rest of the line, trimmed; never empty
	Line    int    // 1-based
}

// ParseProcfile parses a Procfile: one `name: command` (or `name = command`)
// a line, split at whichever of ':' and '=' comes first; blank lines and
// lines starting with '#' are skipped; CRLF line ends and a UTF-8 byte order
// mark are accepted. name is used in error messages only.
//
// Every bad line is reported (joined), each as an *Error with name and
// line; the entries are returned only when there is no error.
func ParseProcfile(name string, data []byte) ([]Entry, error) {
	var (
		entries []Entry
		errs    errList
		seen    = map[string]int{}
	)
	data = bytes.TrimPrefix(data, utf8BOM)
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		text := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if text == "" || text[0] == '#' {
			continue
		}
		sep := strings.IndexAny(text, ":=")
		if sep < 0 {
			errs.add(name, line, "", "expected NAME: COMMAND, got %q", text)
			continue
		}
		typ := strings.TrimSpace(text[:sep])
		cmd := strings.TrimSpace(text[sep+1:])
		if err := checkName(typ); err != nil {
			errs.add(name, line, "", "%v", err)
			continue
		}
		if cmd == "" {
			errs.add(name, line, "", "empty command for %q", typ)
			continue
		}
		if strings.IndexByte(cmd, 0) >= 0 {
			errs.add(name, line, "", "command of %q contains a NUL byte", typ)
			continue
		}
		if _, dup := seen[typ]; dup {
			errs.add(name, line, "", "duplicate process name %q", typ)
			continue
		}
		seen[typ] = line
		entries = append(entries, Entry{Name: typ, Command: cmd, Line: line})
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return entries, nil
}

var utf8BOM = []byte("\xef\xbb\xbf")

// checkName validates a process type name: [A-Za-z0-9_-]+, and not "all",
// which a formation ("all=2") uses for every type.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty process name")
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("invalid process name %q: use letters, digits, '_' and '-'", name)
		}
	}
	if name == "all" {
		return fmt.Errorf(`process name "all" is reserved (a formation's all=N means every type)`)
	}
	return nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
