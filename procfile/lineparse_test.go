package procfile

import (
	"errors"
	"slices"
	"testing"
)

// parseCase is one input of a line parser (ParseProcfile, ParseEnv) and
// what it gives: want, or err, the whole error text ("" = no error).
type parseCase[T any] struct {
	name string
	in   string
	want []T
	err  string
}

// runParseCases runs each case through parse as file, as a subtest. An
// error must also be an *Error with the file and a line.
func runParseCases[T comparable](t *testing.T, file string, parse func(string, []byte) ([]T, error), tests []parseCase[T]) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(file, []byte(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				if !hasPos(err, file) {
					t.Errorf("error %#v: want an *Error with file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// hasPos reports whether err is an *Error that names file and a line.
func hasPos(err error, file string) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.File == file && pe.Line >= 1
}

// fuzzParser fuzzes parse, reading file, from seeds. An error must be an
// *Error with the file and a line. What it reads, written out by write
// (which fails t on a bad item), must read back the same, line numbers
// (line gives an item's) aside.
func fuzzParser[T comparable](f *testing.F, file string, parse func(string, []byte) ([]T, error), seeds []string,
	line func(*T) *int, write func(t *testing.T, items []T) string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := parse(file, data)
		if err != nil {
			if !hasPos(err, file) {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		text := write(t, items)
		again, err := parse(file, []byte(text))
		if err != nil {
			t.Fatalf("round trip of %q: %v", text, err)
		}
		for i := range again {
			*line(&again[i]) = *line(&items[i])
		}
		if !slices.Equal(again, items) {
			t.Fatalf("round trip: got %+v, want %+v", again, items)
		}
	})
}
