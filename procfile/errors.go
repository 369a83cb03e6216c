package procfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is a configuration error: a bad line of a Procfile or .env file, a
// bad TOML key or value, or a bad command-line value.
//
// Error() reads "FILE:LINE: KEY: MSG". ":LINE" is left out when Line is 0,
// "KEY: " when Key is empty, and "FILE:LINE: " when File is empty (a value
// from the command line or the environment, whose Key then names the flag:
// "--bind").
type Error struct {
	File string // the file as the user named it (relative if they gave it relative)
	Line int    // 1-based; 0 = no particular line
	Key  string // full TOML key ("process.web.restart"), flag ("--port") or variable ("PORT"); "" = none
	Msg  string
	Err  error // the underlying error, if any (returned by Unwrap)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error (for instance fs.ErrNotExist for a
// missing file), or nil.
func (e *Error) Unwrap() error { return e.Err }

// errList collects every error found in one pass, so that one run of
// `gsup check` reports them all.
type errList []error

func (l *errList) add(file string, line int, key, format string, args ...any) {
	*l = append(*l, &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil, the one *Error, or all of them joined (one a line);
// errors.As finds the first *Error in every case.
func (l errList) err() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	return errors.Join(l...)
}
