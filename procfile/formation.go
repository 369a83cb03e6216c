package procfile

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseFormation parses a formation: TYPE=N entries separated by commas
// and/or spaces ("web=2,worker=1", "web=4 worker=0"). The name "all" sets
// every type not named otherwise ("all=2,web=1"). N is a non-negative
// integer; a name given twice is an error. The names are not checked
// against any Procfile here.
func ParseFormation(s string) (map[string]int, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty formation: want TYPE=N[,TYPE=N...]")
	}
	f := make(map[string]int, len(fields))
	for _, field := range fields {
		name, num, ok := strings.Cut(field, "=")
		if !ok {
			return nil, fmt.Errorf("invalid formation entry %q: want TYPE=N", field)
		}
		if name != "all" {
			if err := checkName(name); err != nil {
				return nil, fmt.Errorf("invalid formation entry %q: %w", field, err)
			}
		}
		n, err := parseCount(num)
		if err != nil {
			return nil, fmt.Errorf("invalid formation entry %q: %w", field, err)
		}
		if _, dup := f[name]; dup {
			return nil, fmt.Errorf("formation names %q twice", name)
		}
		f[name] = n
	}
	return f, nil
}

// parseCount parses a non-negative decimal integer without sign.
func parseCount(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing count")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("count %q is not a non-negative integer", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("count %q is too large", s)
	}
	return n, nil
}
