package procfile

import (
	"strings"
	"testing"
)

func TestParseEnv(t *testing.T) {
	runParseCases(t, ".env", ParseEnv, []parseCase[EnvVar]{
		{name: "plain", in: "A=1\nB=two words\n",
			want: []EnvVar{{"A", "1", 1}, {"B", "two words", 2}}},
		{name: "export", in: "export A=1\nexport\tB=2\nexportC=3\n",
			want: []EnvVar{{"A", "1", 1}, {"B", "2", 2}, {"exportC", "3", 3}}},
		{name: "export as a key", in: "export=1\n", want: []EnvVar{{"export", "1", 1}}},
		{name: "spaces around =", in: "A = 1\n  B=  2  \n",
			want: []EnvVar{{"A", "1", 1}, {"B", "2", 2}}},
		{name: "empty", in: "A=\nB=''\nC=\"\"\n",
			want: []EnvVar{{"A", "", 1}, {"B", "", 2}, {"C", "", 3}}},
		{name: "single quotes are literal", in: `A='a\nb "c" $HOME # x'` + "\n",
			want: []EnvVar{{"A", `a\nb "c" $HOME # x`, 1}}},
		{name: "double quote escapes", in: `A="a\nb\t\"c\" \\ \$HOME \d # x"`,
			want: []EnvVar{{"A", "a\nb\t\"c\" \\ $HOME \\d # x", 1}}},
		{name: "comment after quotes", in: `A="x" # note` + "\nB='y'\t#n\n",
			want: []EnvVar{{"A", "x", 1}, {"B", "y", 2}}},
		{name: "unquoted comment", in: "A=abc # note\nB=a#b\nC= # only\nD=#x\nE=x\t#y\n",
			want: []EnvVar{{"A", "abc", 1}, {"B", "a#b", 2}, {"C", "", 3}, {"D", "#x", 4}, {"E", "x", 5}}},
		{name: "inner quotes unquoted", in: `A=it's "fine"`, want: []EnvVar{{"A", `it's "fine"`, 1}}},
		{name: "equals in value", in: "URL=postgres://u:p@h/db?a=b\n",
			want: []EnvVar{{"URL", "postgres://u:p@h/db?a=b", 1}}},
		{name: "comments blanks CRLF BOM", in: "\xef\xbb\xbf# c\r\n\r\n  # d\r\nA=1\r\nB=\"2\"\r\n",
			want: []EnvVar{{"A", "1", 4}, {"B", "2", 5}}},
		{name: "order and repeats kept", in: "B=1\nA=2\nB=3\n",
			want: []EnvVar{{"B", "1", 1}, {"A", "2", 2}, {"B", "3", 3}}},
		{name: "dotted key", in: "a.b_C=1\n", want: []EnvVar{{"a.b_C", "1", 1}}},
		{name: "no =", in: "A=1\nJUSTTEXT\n", err: `.env:2: expected KEY=VALUE, got "JUSTTEXT"`},
		{name: "bad key", in: "1A=x\n", err: `.env:1: invalid variable name "1A"`},
		{name: "key with space", in: "A B=x\n", err: `.env:1: invalid variable name "A B"`},
		{name: "empty key", in: "=x\n", err: `.env:1: invalid variable name ""`},
		{name: "unterminated single", in: "A='x\n", err: `.env:1: A: unterminated single-quoted value`},
		{name: "unterminated double", in: "\nA=\"x\\\"\n", err: `.env:2: A: unterminated double-quoted value`},
		{name: "text after quote", in: `A="x"y`, err: `.env:1: A: unexpected text after the closing quote: "y"`},
		{name: "NUL", in: "A=\"\\\x00\"", err: `.env:1: A: value contains a NUL byte`},
		{name: "every bad line", in: "x\nA=1\n'\n", err: ".env:1: expected KEY=VALUE, got \"x\"\n.env:3: expected KEY=VALUE, got \"'\""},
	})
}

// quoteEnv returns value as a double-quoted .env value that ParseEnv reads
// back unchanged.
func quoteEnv(value string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func FuzzParseEnv(f *testing.F) {
	seeds := []string{
		"A=1\nexport B='x y' # c\nC=\"a\\nb\\\"c\"\n",
		"# c\r\n\r\nD=x #y\nE=a#b\n",
		"\xef\xbb\xbfURL=postgres://u:p@h/db?a=b",
		"A='x\nB=\"y\nC\n1=2\n",
	}
	// Written out double-quoted, the variables read back the same.
	fuzzParser(f, ".env", ParseEnv, seeds, func(v *EnvVar) *int { return &v.Line }, func(t *testing.T, vars []EnvVar) string {
		var b strings.Builder
		for _, v := range vars {
			if !validEnvKey(v.Key) || strings.IndexByte(v.Value, 0) >= 0 {
				t.Fatalf("bad variable %q=%q", v.Key, v.Value)
			}
			b.WriteString("export " + v.Key + "=" + quoteEnv(v.Value) + "\n")
		}
		return b.String()
	})
}
