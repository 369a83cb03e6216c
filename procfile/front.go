package procfile

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"gsup/serve/accesslog"
	"gsup/serve/compress"
)

// The kinds of the front's access log format, static files, compression
// and error pages.
// Folders and pages are opened as the configuration is read, so that one
// gsup could not serve is an error of the file, line and key naming it
// (at a reload, the running configuration then stays).
var (
	folder = kind[string]{
		toml: func(d *tomlDoc, k toml.Key, v any) (string, bool) {
			p, ok := d.path(k, v, true)
			if !ok || p == "" {
				return p, ok
			}
			return valid(d, k, p, checkFolder)
		},
		show: func(s *Spec, p string) string { return s.rel(p) },
	}
	codings = kind[[]string]{
		toml: func(d *tomlDoc, k toml.Key, v any) ([]string, bool) {
			list, ok := d.strList(k, v, false)
			if !ok {
				return nil, false
			}
			if len(list) == 0 {
				return nil, true
			}
			return valid(d, k, list, func(l []string) ([]string, error) { return l, compress.Check(l) })
		},
		show: func(_ *Spec, v []string) string { return strings.Join(v, ",") },
	}
	logFormat  = checkedText(checkLogFormat)
	errorPages = kind[map[int]string]{
		toml: (*tomlDoc).errorPages,
		show: func(s *Spec, m map[int]string) string {
			var parts []string
			for _, code := range slices.Sorted(maps.Keys(m)) {
				parts = append(parts, fmt.Sprintf("%d:%s", code, s.rel(m[code])))
			}
			return strings.Join(parts, ",")
		},
	}
	staticDirs = kind[[]StaticDir]{
		toml: (*tomlDoc).staticDirs,
		show: func(s *Spec, dirs []StaticDir) string {
			var parts []string
			for _, sd := range dirs {
				p := sd.Prefix + ":" + s.rel(sd.Dir)
				if sd.Internal {
					p += "(internal)"
				}
				parts = append(parts, p)
			}
			return strings.Join(parts, ",")
		},
	}
)

// checkLogFormat checks an access log format (Gunicorn's atoms).
func checkLogFormat(f string) (string, error) {
	_, err := accesslog.Compile(f)
	return f, err
}

// checkFolder checks that gsup can serve files from the folder p.
func checkFolder(p string) (string, error) {
	r, err := os.OpenRoot(p)
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := r.Open(".")
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("folder %s: %w", p, err)
	}
	return p, nil
}

// errorPages reads { 502 = "public/502.html", ... }: statuses from 400 to
// 599, each with a readable file.
func (d *tomlDoc) errorPages(k toml.Key, v any) (map[int]string, bool) {
	m, ok := d.table(k, v)
	if !ok {
		return nil, false
	}
	var out map[int]string
	for _, name := range d.children(k, m) {
		ek := sub(k, name)
		code, err := strconv.Atoi(name)
		if err != nil || code < 400 || code > 599 {
			d.fail(ek, "%q is not an error status (400 to 599)", name)
			ok = false
			continue
		}
		p, good := d.path(ek, m[name], false)
		if good {
			if _, err = os.ReadFile(p); err != nil {
				d.fail(ek, "%v", err)
				good = false
			}
		}
		if !good {
			ok = false
			continue
		}
		if out == nil {
			out = map[int]string{}
		}
		out[code] = p
	}
	return out, ok
}

// staticDirs reads [serve.static]: "/prefix/" = "folder", or a table
// { dir = "folder", internal = true, cache_control = "max-age=60" }.
func (d *tomlDoc) staticDirs(k toml.Key, v any) ([]StaticDir, bool) {
	m, ok := d.table(k, v)
	if !ok {
		return nil, false
	}
	var out []StaticDir
	for _, prefix := range d.children(k, m) {
		pk := sub(k, prefix)
		if !validURLPath(prefix) || !strings.HasSuffix(prefix, "/") || prefix == "/" {
			d.fail(pk, "%q must be a URL path starting and ending with '/' (use root for the whole site)", prefix)
			ok = false
			continue
		}
		sd := StaticDir{Prefix: prefix}
		before := len(*d.errs)
		var dir any
		switch x := m[prefix].(type) {
		case string:
			dir = x
		case map[string]any:
			for _, name := range d.children(pk, x) {
				fk := sub(pk, name)
				switch name {
				case "dir":
					dir = x[name]
				case "internal":
					sd.Internal, _ = d.boolean(fk, x[name])
				case "cache_control":
					sd.CacheControl, _ = checked(d, fk, x[name], func(s string) error {
						if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
							return fmt.Errorf("%q has a control character", s)
						}
						return nil
					})
				default:
					d.fail(fk, "unknown key (a static table has dir, internal and cache_control)")
				}
			}
			if dir == nil {
				d.fail(pk, "no dir")
			}
		default:
			d.fail(pk, "must be a folder or a table, not %s", typeName(x))
		}
		if dir != nil {
			sd.Dir, _ = folder.toml(d, sub(pk, "dir"), dir)
			if sd.Dir == "" && len(*d.errs) == before {
				d.fail(pk, "dir must not be empty")
			}
		}
		if len(*d.errs) > before {
			ok = false
			continue
		}
		out = append(out, sd)
	}
	return out, ok
}
