package procfile

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// WritePlan writes the resolved plan that `gsup check` prints: the app,
// the files read, every process type with its instances, ports and
// settings, the sockets, the front and gsup's own files. Values of
// environment variables are left out (they may be secrets): only names are
// shown. Settings at their defaults are left out of a type's line. The
// layout is stable: one line a thing, the first word saying what it is.
func (s *Spec) WritePlan(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	line := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }

	line("app", fmt.Sprintf("%s (%s)", s.App, s.Dir))
	var files []string
	for _, f := range s.Files {
		files = append(files, s.rel(f))
	}
	line("files", strings.Join(files, " "))
	if len(s.Env) > 0 {
		line("env", strings.Join(sortedKeys(s.Env), " "))
	}
	if r := s.Release; r != nil {
		line("release", fmt.Sprintf("%s (timeout %s)", strings.ReplaceAll(r.Command, "\n", `\n`), r.Timeout))
	}
	line("ports", fmt.Sprintf("base %d, +%d a type", s.BasePort, PortsPerType))
	var defaults Process
	applyDefaults(&defaults, s.Dir, new(errList))
	for _, p := range s.Processes {
		var ports string
		switch {
		case p.Scale == 0:
			ports = "-"
		case p.Scale == 1:
			ports = fmt.Sprintf("port %d", p.BasePort)
		default:
			ports = fmt.Sprintf("ports %d-%d", p.BasePort, p.BasePort+p.Scale-1)
		}
		cells := []string{
			p.Name,
			fmt.Sprintf("x%d", p.Scale),
			ports,
			"ready=" + p.Ready,
			"restart=" + string(p.Restart),
			fmt.Sprintf("stop=%s/%s", SignalName(p.StopSignal), p.StopTimeout),
		}
		extra := s.changed(&p, &defaults, "process.")
		cells = append(cells, strings.Join(extra, "  "))
		cells = append(cells, strings.ReplaceAll(p.Command, "\n", `\n`))
		line(cells...)
	}
	for _, so := range s.Sockets {
		bind := so.Bind
		if bind == "" {
			bind = "(from systemd only)"
		}
		line("socket", fmt.Sprintf("%s %s mode=%04o", so.Name, bind, so.Mode))
	}

	var defSpec Spec
	applyDefaults(&defSpec, "", new(errList))
	sv := s.Serve
	switch {
	case sv.Enabled:
		var binds []string
		for _, b := range sv.Bind {
			a := b.Address
			switch {
			case b.TLS:
				a += " (tls)"
			case b.Redirect != "":
				a += " (redirect to " + b.Redirect + ")"
			case b.Scheme == "https":
				a += " (https)"
			}
			binds = append(binds, a)
		}
		if len(binds) == 0 {
			binds = []string{strings.TrimSpace(s.defaultBind + " (default)")}
		}
		line("serve", strings.Join(binds, ", ")+" -> "+sv.Upstream)
		front := []string{fmt.Sprintf("forwarded-allow-ips=%s proxy-protocol=%s proxy-allow-from=%s timeout=%s graceful-timeout=%s",
			orNone(sv.ForwardedAllowIPs), sv.ProxyProtocol, orNone(sv.ProxyAllowFrom), sv.Timeout, sv.GracefulTimeout)}
		line("front", strings.Join(append(front, s.changed(s, &defSpec, "serve.")...), " "))
		maxConns := "auto (open files limit - 256)"
		if sv.MaxConnections > 0 {
			maxConns = fmt.Sprint(sv.MaxConnections)
		}
		line("clients", fmt.Sprintf("body-timeout=%s send-timeout=%s max-connections=%s", sv.BodyTimeout, sv.SendTimeout, maxConns))
		access := "off"
		if sv.AccessLogfile != "" {
			access = s.rel(sv.AccessLogfile)
		}
		line("access", access)
		for _, p := range sv.TLSPairs() {
			line("cert", s.rel(p.CertFile)+" "+s.rel(p.KeyFile)+" "+DescribeCert(p))
		}
		if a := sv.ACME; a != nil {
			ca := ""
			if a.CARoot != "" {
				ca = " ca-root=" + s.rel(a.CARoot)
			}
			line("acme", fmt.Sprintf("%s email=%s directory=%s storage=%s%s", strings.Join(a.Domains, ","), orNone(nonEmpty(a.Email)), a.Directory, s.rel(a.Storage), ca))
		}
	case sv.NoServe:
		line("serve", "off (--no-serve)")
	default:
		line("serve", fmt.Sprintf("off (no %s in the formation)", sv.Upstream))
	}

	pid := "none"
	if s.Pid != "" {
		pid = s.rel(s.Pid)
	}
	line("pid", pid)
	control := fmt.Sprintf("%s mode=%04o", s.rel(s.Control), s.ControlMode)
	if len(s.ControlAllow) > 0 {
		names := make([]string, len(s.ControlAllow))
		for i, p := range s.ControlAllow {
			names[i] = p.Name
		}
		control += " allow=" + strings.Join(names, ",")
	}
	line("control", control)
	errlog := "stderr"
	if s.ErrorLogfile != "" && s.ErrorLogfile != "-" {
		errlog = s.rel(s.ErrorLogfile)
	}
	line("log", fmt.Sprintf("%s level=%s format=%s", errlog, s.LogLevel, s.LogFormat))
	if s.Subreaper {
		line("subreaper", "on")
	}
	for _, kv := range s.changed(s, &defSpec, "") {
		name, value, _ := strings.Cut(kv, "=")
		line(name, value)
	}
}

// changed returns "name=value" (or the name alone, for a flag turned on)
// for each setting of the table stored in t (a *Spec or *Process) whose
// key starts with prefix ("" = a top-level key) that has a name in the plan
// and differs from its default in def.
func (s *Spec) changed(t, def any, prefix string) []string {
	var out []string
	for i := range settings {
		r := &settings[i]
		top := prefix == "" && !strings.Contains(r.key, ".")
		if r.plan == "" || !r.to.of(t) || !top && (prefix == "" || !strings.HasPrefix(r.key, prefix)) {
			continue
		}
		v, ok := r.to.show(s, t, def)
		switch {
		case !ok:
		case v == "":
			out = append(out, r.plan)
		default:
			out = append(out, r.plan+"="+v)
		}
	}
	return out
}

// rel shows an absolute path inside Dir relative to it.
func (s *Spec) rel(p string) string {
	if !filepath.IsAbs(p) || s.Dir == "" {
		return p
	}
	r, err := filepath.Rel(s.Dir, p)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return p
	}
	return r
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ",")
}
