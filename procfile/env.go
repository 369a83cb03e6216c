package procfile

import (
	"bytes"
	"fmt"
	"strings"
)

// EnvVar is one assignment of a .env file.
type EnvVar struct {
	Key   string
	Value string
	Line  int // 1-based
}

// ParseEnv parses a .env file, keeping the order of its lines (a later
// assignment of the same key wins when they are merged). name is used in
// error messages only.
//
// A line is KEY=VALUE, optionally preceded by "export "; spaces around '='
// are allowed. KEY is [A-Za-z_][A-Za-z0-9_.]*. VALUE is one of:
//
//   - 'single quoted': taken literally;
//   - "double quoted": \n, \r, \t, \", \\ and \$ are escapes, any other
//     backslash is kept as it is;
//   - unquoted: trimmed, and a comment that starts with " #" is removed.
//
// A quoted value may be followed by spaces and a "# comment" only. Values
// span one line (write \n in double quotes for a newline) and are not
// expanded: "$HOME" stays "$HOME". Blank lines and lines starting with '#'
// are skipped; CRLF line ends and a UTF-8 byte order mark are accepted.
//
// Every bad line is reported (joined), each as an *Error with name and
// line; the variables are returned only when there is no error.
func ParseEnv(name string, data []byte) ([]EnvVar, error) {
	var (
		vars []EnvVar
		errs errList
	)
	data = bytes.TrimPrefix(data, utf8BOM)
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		text := strings.TrimLeft(strings.TrimSuffix(raw, "\r"), " \t")
		if strings.TrimRight(text, " \t") == "" || text[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(text, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			text = strings.TrimLeft(rest, " \t")
		}
		eq := strings.IndexByte(text, '=')
		if eq < 0 {
			errs.add(name, line, "", "expected KEY=VALUE, got %q", strings.TrimSpace(text))
			continue
		}
		key := strings.TrimRight(text[:eq], " \t")
		if !validEnvKey(key) {
			errs.add(name, line, "", "invalid variable name %q", key)
			continue
		}
		value, err := envValue(text[eq+1:])
		if err != nil {
			errs.add(name, line, key, "%v", err)
			continue
		}
		vars = append(vars, EnvVar{Key: key, Value: value, Line: line})
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return vars, nil
}

// envValue decodes the part of a .env line after '='.
func envValue(s string) (string, error) {
	raw := s
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", nil
	}
	var (
		value string
		rest  string
	)
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated single-quoted value")
		}
		value, rest = s[1:1+end], s[2+end:]
	case '"':
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			c := s[i]
			if c != '\\' || i+1 == len(s) {
				b.WriteByte(c)
				continue
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$':
				b.WriteByte(s[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(s[i])
			}
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated double-quoted value")
		}
		value, rest = b.String(), s[i+1:]
	default:
		// A comment starts at a '#' that follows a space or a tab, in the
		// text as written (so "KEY= # note" is empty, "KEY=a#b" is "a#b").
		value = raw
		for i := 1; i < len(raw); i++ {
			if raw[i] == '#' && (raw[i-1] == ' ' || raw[i-1] == '\t') {
				value = raw[:i]
				break
			}
		}
		value = strings.Trim(value, " \t")
	}
	if rest = strings.TrimLeft(rest, " \t"); rest != "" && rest[0] != '#' {
		return "", fmt.Errorf("unexpected text after the closing quote: %q", rest)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", fmt.Errorf("value contains a NUL byte")
	}
	return value, nil
}

// validEnvKey reports whether k is [A-Za-z_][A-Za-z0-9_.]*.
func validEnvKey(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
