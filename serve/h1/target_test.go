package h1

import (
	"net/url"
	"reflect"
	"testing"
)

// FuzzOriginForm checks originForm against url.ParseRequestURI: where
// it gives a URL, ParseRequestURI must accept the target and give the
// same one.
func FuzzOriginForm(f *testing.F) {
	for _, seed := range []string{"/", "/a/b?c=d", "/a?", "/a??", "/a?b?", "/%41", "/a b", "//x/y", "/a:b@c",
		"/~u/$&+,;=", "/a!b", "/a'b", "/a\x7f", "/?\x01", "*", "http://h/p", "/é", "/a#f", "/?#", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got := parsedOriginForm(target)
		if got == nil {
			return
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("originForm(%q) = %#v; ParseRequestURI refuses it: %v", target, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("originForm(%q) = %#v; ParseRequestURI: %#v", target, got, want)
		}
	})
}

// TestOriginForm: the targets originForm takes, and those it leaves to
// ParseRequestURI.
func TestOriginForm(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   *url.URL // nil: left to ParseRequestURI
	}{
		{"/", &url.URL{Path: "/"}},
		{"/a/b.css?v=1&x=%20", &url.URL{Path: "/a/b.css", RawQuery: "v=1&x=%20"}},
		{"/a?", &url.URL{Path: "/a", ForceQuery: true}},
		{"/a??", &url.URL{Path: "/a", RawQuery: "?"}},
		{"//x/y", &url.URL{Path: "//x/y"}},
		{"/a#f", nil},      // '#' is escaped in EscapedPath
		{"/%41", nil},      // an escape: Path is "/A"
		{"/a!b", nil},      // kept raw in RawPath
		{"/?\x01", nil},    // a control byte: refused
		{"*", nil},         // OPTIONS *
		{"http://h/", nil}, // absolute form
		{"", nil},
	} {
		got := parsedOriginForm(tc.target)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("originForm(%q) = %#v, want %#v", tc.target, got, tc.want)
		}
	}
}

// parsedOriginForm is originForm's URL, or nil where it leaves the target
// to ParseRequestURI.
func parsedOriginForm(target string) *url.URL {
	var u url.URL
	if !originForm(target, &u) {
		return nil
	}
	return &u
}
