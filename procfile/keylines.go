package procfile

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines maps every key of a TOML document, spelled as toml.Key.String()
// spells it, to the line it first appears on. Keys inside inline tables
// count; inline tables in an array are recorded under the array's key
// without an index ("serve.bind.address"), as toml.MetaData.Keys lists
// them. BurntSushi/toml keeps key positions to itself, hence this scanner.
//
// It is meant for documents toml has already accepted: on anything it does
// not expect it stops and returns what it found so far. It never panics.
func keyLines(src []byte) map[string]int {
	s := &keyScanner{src: src, line: 1, lines: map[string]int{}}
	s.document()
	return s.lines
}

type keyScanner struct {
	src   []byte
	pos   int
	line  int
	lines map[string]int
}

// maxNesting bounds the recursion into arrays and inline tables.
const maxNesting = 64

func (s *keyScanner) peek() byte {
	if s.pos < len(s.src) {
		return s.src[s.pos]
	}
	return 0
}

func (s *keyScanner) next() {
	if s.pos < len(s.src) {
		if s.src[s.pos] == '\n' {
			s.line++
		}
		s.pos++
	}
}

func (s *keyScanner) hasPrefix(p string) bool {
	return bytes.HasPrefix(s.src[s.pos:], []byte(p))
}

// skip skips spaces, tabs and comments, and newlines too when newlines is
// set. A comment's newline is left for the caller unless newlines is set.
func (s *keyScanner) skip(newlines bool) {
	for s.pos < len(s.src) {
		switch s.peek() {
		case ' ', '\t', '\r':
			s.next()
		case '\n':
			if !newlines {
				return
			}
			s.next()
		case '#':
			for s.pos < len(s.src) && s.peek() != '\n' {
				s.next()
			}
		default:
			return
		}
	}
}

func (s *keyScanner) record(k toml.Key, line int) {
	if k == nil {
		return
	}
	name := k.String()
	if _, ok := s.lines[name]; !ok {
		s.lines[name] = line
	}
}

// recordAll records every prefix of k longer than from elements.
func (s *keyScanner) recordAll(k toml.Key, from, line int) {
	for i := from + 1; i <= len(k); i++ {
		s.record(k[:i:i], line)
	}
}

func (s *keyScanner) document() {
	var table toml.Key
	for {
		s.skip(true)
		if s.pos >= len(s.src) {
			return
		}
		line := s.line
		if s.eat('[') {
			array := s.eat('[')
			k, ok := s.key()
			if !ok {
				return
			}
			s.skip(false)
			if !s.eat(']') || array && !s.eat(']') {
				return
			}
			table = k
			s.recordAll(table, 0, line)
			continue
		}
		k, ok := s.assignment()
		if !ok {
			return
		}
		full := append(table[:len(table):len(table)], k...)
		s.recordAll(full, len(table), line)
		if !s.value(full, 0) {
			return
		}
	}
}

// key reads a dotted key.
func (s *keyScanner) key() (toml.Key, bool) {
	var k toml.Key
	for {
		s.skip(false)
		part, ok := s.simpleKey()
		if !ok {
			return nil, false
		}
		k = append(k, part)
		s.skip(false)
		if !s.eat('.') {
			return k, true
		}
	}
}

// assignment reads a key and the "=" after it.
func (s *keyScanner) assignment() (toml.Key, bool) {
	k, ok := s.key()
	if !ok {
		return nil, false
	}
	s.skip(false)
	return k, s.eat('=')
}

// eat moves past c if it comes next.
func (s *keyScanner) eat(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.next()
	return true
}

// list skips the items of an array or an inline table, from its opening
// bracket to close; item skips one.
func (s *keyScanner) list(close byte, item func() bool) bool {
	s.next()
	for {
		s.skip(true)
		if s.eat(close) {
			return true
		}
		if !item() {
			return false
		}
		s.skip(true)
		if s.eat(close) {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

func (s *keyScanner) simpleKey() (string, bool) {
	switch s.peek() {
	case '"':
		start := s.pos
		if !s.quoted('"', true) {
			return "", false
		}
		return unquoteKey(string(s.src[start:s.pos])), true
	case '\'':
		start := s.pos
		if !s.quoted('\'', false) {
			return "", false
		}
		return string(s.src[start+1 : s.pos-1]), true
	}
	start := s.pos
	for s.pos < len(s.src) && isNameByte(s.peek()) {
		s.next()
	}
	return string(s.src[start:s.pos]), s.pos > start
}

// unquoteKey decodes a basic-string key; it falls back to the text between
// the quotes for escapes Go does not share with TOML.
func unquoteKey(q string) string {
	if u, err := strconv.Unquote(q); err == nil {
		return u
	}
	return q[1 : len(q)-1]
}

// value skips one value; keys of inline tables are recorded under k.
func (s *keyScanner) value(k toml.Key, depth int) bool {
	if depth > maxNesting {
		return false
	}
	s.skip(false)
	switch s.peek() {
	case '"':
		if s.hasPrefix(`"""`) {
			return s.multiline(`"""`, true)
		}
		return s.quoted('"', true)
	case '\'':
		if s.hasPrefix(`'''`) {
			return s.multiline(`'''`, false)
		}
		return s.quoted('\'', false)
	case '[':
		return s.list(']', func() bool { return s.value(k, depth+1) })
	case '{':
		return s.list('}', func() bool {
			line := s.line
			sub, ok := s.assignment()
			if !ok {
				return false
			}
			var full toml.Key
			if k != nil {
				full = append(k[:len(k):len(k)], sub...)
				s.recordAll(full, len(k), line)
			}
			return s.value(full, depth+1)
		})
	}
	// A number, boolean or date-time (which may hold one space).
	start := s.pos
	for s.pos < len(s.src) && !strings.ContainsRune(",]}#\r\n", rune(s.peek())) {
		s.next()
	}
	return s.pos > start
}

// quoted skips a one-line string that quote opens and closes (a basic
// string with escapes: a backslash escapes the next byte, but not a line
// end), and reports whether it is closed.
func (s *keyScanner) quoted(quote byte, escapes bool) bool {
	s.next() // the opening quote
	for s.pos < len(s.src) {
		switch c := s.peek(); {
		case c == '\\' && escapes:
			s.next()
			if s.peek() == '\n' {
				return false
			}
			s.next()
		case c == quote:
			s.next()
			return true
		case c == '\n':
			return false
		default:
			s.next()
		}
	}
	return false
}

// multiline skips a multi-line string opened by delim: three double
// quotes, or three single quotes.
func (s *keyScanner) multiline(delim string, escapes bool) bool {
	for range delim {
		s.next()
	}
	for s.pos < len(s.src) {
		if escapes && s.peek() == '\\' {
			s.next()
			s.next()
			continue
		}
		if s.hasPrefix(delim) {
			for range delim {
				s.next()
			}
			// Up to two more quotes belong to the string itself.
			for i := 0; i < 2 && s.peek() == delim[0]; i++ {
				s.next()
			}
			return true
		}
		s.next()
	}
	return false
}
