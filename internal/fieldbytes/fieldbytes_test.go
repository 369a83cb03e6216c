package fieldbytes

import (
	"bytes"
	"strings"
	"testing"
)

// TestAgainstEachByte checks the eight-at-a-time checks against checks
// of each byte: every byte value, at every place in strings of 1 to 17
// bytes, among printable bytes, obs-text and tabs (ControlsAt at every
// offset with eight bytes after it).
func TestAgainstEachByte(t *testing.T) {
	for _, fill := range []byte{'a', '~', ' ', 0x80, 0xff, '\t'} {
		for n := 1; n <= 17; n++ {
			for at := 0; at < n; at++ {
				for c := 0; c < 256; c++ {
					v := bytes.Repeat([]byte{fill}, n)
					v[at] = byte(c)
					var ctl, esc bool
					for _, b := range v {
						ctl = ctl || b < 0x20 || b == 0x7f
						esc = esc || b < 0x20 || b == 0x7f || b == '"'
					}
					if got := ControlsIn(v); got != ctl {
						t.Fatalf("ControlsIn(%q) = %v, want %v", v, got, ctl)
					}
					if got := Controls(string(v)); got != ctl {
						t.Fatalf("Controls(string %q) = %v, want %v", v, got, ctl)
					}
					if got := Escaped(string(v)); got != esc {
						t.Fatalf("Escaped(%q) = %v, want %v", v, got, esc)
					}
					if got := EscapedIn(v); got != esc {
						t.Fatalf("EscapedIn(%q) = %v, want %v", v, got, esc)
					}
					for i := 0; i+8 <= n; i++ {
						want := false
						for _, b := range v[i : i+8] {
							want = want || b < 0x20 || b == 0x7f
						}
						if got := ControlsAt(v, i); got != want {
							t.Fatalf("ControlsAt(%q, %d) = %v, want %v", v, i, got, want)
						}
					}
				}
			}
		}
	}
}

// TestTrimmed checks that a string Trimmed passes is one strings.TrimSpace
// leaves as it is.
func TestTrimmed(t *testing.T) {
	for _, s := range []string{"", "a", "text/plain", " a", "a ", "\ta", "a\r", "\u00a0a", "a\u0085", "a\u2003", "é", "\x80", "a\x7f"} {
		if Trimmed(s) && strings.TrimSpace(s) != s {
			t.Errorf("Trimmed(%q) but TrimSpace gives %q", s, strings.TrimSpace(s))
		}
	}
	for _, s := range []string{"a", "text/plain", "a b", "x-y"} {
		if !Trimmed(s) {
			t.Errorf("Trimmed(%q) = false", s)
		}
	}
}
