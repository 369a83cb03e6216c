package procfile

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// settings is the one table of gsup's settings: each row gives a TOML key,
// the flag (and GSUP_* variable) that overrides it, its default, the words
// of `gsup start -h` and `gsup check`, and the Spec field it fills. Load,
// the command line (Flags), the plan and the test of config.toml.example
// all read it.
//
// Keys are spelled from the top of the file; "process.*" and "socket.*"
// stand for any [process.NAME] or [socket.NAME]. Rows of a table follow
// its own row. A row without a key is a flag only; one without a flag is a
// TOML key only.
var settings = []setting{
	// Which files are read (Options).
	{flag: "config", alias: "c", usage: "TOML `FILE`", shown: DefaultConfig + " if present",
		to: opt(text, func(o *Options) *string { return &o.Config })},
	{key: "procfile", flag: "procfile", alias: "f", usage: "Procfile `FILE`", shown: DefaultProcfile,
		to: hook(procfileKey), flagTo: opt(text, func(o *Options) *string { return &o.Procfile })},
	{key: "env_file", flag: "env", alias: "e", usage: "env `FILE`, repeatable", shown: DefaultEnvFile + " if present",
		to: hook(envFileKey), flagTo: opt(list, func(o *Options) *[]string { return &o.EnvFiles })},
	{flag: "formation", alias: "m", usage: "instances per type, `web=2,worker=1`", shown: "all=1",
		to: opt(text, func(o *Options) *string { return &o.Formation })},
	{key: "env", to: hook(envKey)},

	// gsup itself.
	{key: "port", flag: "port", def: strconv.Itoa(DefaultBasePort), usage: "base `PORT` of the children", shown: "PORT from .env, else 5000",
		to: spec(integer(1, 65535), func(s *Spec) *int { return &s.BasePort })},
	{key: "pid", flag: "pid", def: `""`, usage: "write gsup's pid to `FILE`", shown: "none",
		to: spec(path(true), func(s *Spec) *string { return &s.Pid })},
	{key: "control", flag: "control", def: strconv.Quote(DefaultControl), usage: "control socket `PATH`",
		to: spec(path(false), func(s *Spec) *string { return &s.Control })},
	{key: "control_mode", def: quoteMode(DefaultControlMode),
		to: spec(controlMode, func(s *Spec) *os.FileMode { return &s.ControlMode })},
	{key: "control_allow", def: "[]",
		to: spec(controlPeers, func(s *Spec) *[]ControlPeer { return &s.ControlAllow })},
	{key: "error_logfile", flag: "error-logfile", def: `"-"`, usage: "gsup's own log `FILE` (- = stderr)", shown: "stderr",
		to: spec(path(true), func(s *Spec) *string { return &s.ErrorLogfile })},
	{key: "log_level", flag: "log-level", def: `"info"`, usage: "`LEVEL`: " + strings.Join(logLevels, ", "),
		to: spec(enum(logLevels...), func(s *Spec) *string { return &s.LogLevel })},
	{key: "log_format", flag: "log-format", def: `"text"`, usage: "`FORMAT` of gsup's own log: " + strings.Join(logFormats, " or "),
		to: spec(enum(logFormats...), func(s *Spec) *string { return &s.LogFormat })},
	{key: "subreaper", flag: "subreaper", def: "false", usage: "become the child subreaper: reap orphans of the children (automatic as PID 1 and without cgroups)",
		to: spec(boolean, func(s *Spec) *bool { return &s.Subreaper })},

	// The HTTP front.
	{key: "serve", to: section("serve")},
	{key: "serve.bind", flag: "bind", alias: "b", usage: "serve on `ADDR` (host:port, [::1]:port, unix:/path, fd://N), repeatable",
		to: spec(binds, func(s *Spec) *[]Bind { return &s.Serve.Bind })},
	{flag: "no-serve", usage: "do not serve HTTP",
		to: spec(boolean, func(s *Spec) *bool { return &s.Serve.NoServe })},
	{key: "serve.upstream", flag: "upstream", def: strconv.Quote(DefaultUpstream), usage: "process `TYPE` to serve",
		to: spec(processName, func(s *Spec) *string { return &s.Serve.Upstream })},
	{key: "serve.forwarded_allow_ips", flag: "forwarded-allow-ips", env: "FORWARDED_ALLOW_IPS", def: `["127.0.0.1", "::1"]`,
		usage: "`LIST` of addresses/CIDRs whose X-Forwarded-* are trusted, or *",
		to:    spec(ipList, func(s *Spec) *[]string { return &s.Serve.ForwardedAllowIPs })},
	{key: "serve.proxy_protocol", flag: "proxy-protocol", def: `"off"`, usage: "PROXY protocol: `off|auto|v1|v2|required`",
		to: spec(enum(proxyProtocols...), func(s *Spec) *string { return &s.Serve.ProxyProtocol })},
	{key: "serve.proxy_allow_from", flag: "proxy-allow-from", def: `["127.0.0.1", "::1"]`,
		usage: "`LIST` of addresses/CIDRs allowed to send PROXY headers, or *",
		to:    spec(ipList, func(s *Spec) *[]string { return &s.Serve.ProxyAllowFrom })},
	{key: "serve.access_logfile", flag: "access-logfile", def: `""`, usage: "access log `FILE` (- = stdout)", shown: "none",
		to: spec(path(true), func(s *Spec) *string { return &s.Serve.AccessLogfile })},
	{key: "serve.access_logformat", flag: "access-logformat", def: `""`, usage: "access log `FORMAT` (Gunicorn's atoms)", shown: "Gunicorn's",
		to: spec(text, func(s *Spec) *string { return &s.Serve.AccessLogformat })},
	{key: "serve.timeout", flag: "timeout", def: strconv.Quote(DefaultTimeout.String()), usage: "longest `DURATION` to wait for the app's response headers",
		to: spec(duration, func(s *Spec) *time.Duration { return &s.Serve.Timeout })},
	{key: "serve.graceful_timeout", flag: "graceful-timeout", def: strconv.Quote(DefaultGracefulTimeout.String()),
		usage: "longest `DURATION` in-flight requests may take at stop and reload",
		to:    spec(duration, func(s *Spec) *time.Duration { return &s.Serve.GracefulTimeout })},
	{key: "serve.hold_timeout", def: strconv.Quote(DefaultHoldTimeout.String()), plan: "hold-timeout",
		to: spec(duration, func(s *Spec) *time.Duration { return &s.Serve.HoldTimeout })},
	{key: "serve.trust_unix_peers", def: "true", plan: "trust-unix-peers",
		to: spec(boolean, func(s *Spec) *bool { return &s.Serve.TrustUnixPeers })},
	{key: "serve.unix_mode", def: quoteMode(DefaultUnixMode), plan: "unix-mode",
		to: spec(mode, func(s *Spec) *os.FileMode { return &s.Serve.UnixMode })},
	{key: "serve.unix_owner", def: `""`, plan: "unix-owner", to: spec(text, func(s *Spec) *string { return &s.Serve.UnixOwner })},
	{key: "serve.unix_group", def: `""`, plan: "unix-group", to: spec(text, func(s *Spec) *string { return &s.Serve.UnixGroup })},
	{key: "serve.health_path", def: `""`, plan: "health-path", to: spec(urlPath, func(s *Spec) *string { return &s.Serve.HealthPath })},
	{key: "serve.buffer_body", def: `"1MiB"`, plan: "buffer-body", to: spec(size, func(s *Spec) *int64 { return &s.Serve.BufferBody })},
	{key: "serve.buffer_response", def: `"1MiB"`, plan: "buffer-response", to: spec(size, func(s *Spec) *int64 { return &s.Serve.BufferResponse })},
	{key: "serve.max_body", def: "0", plan: "max-body", to: spec(size, func(s *Spec) *int64 { return &s.Serve.MaxBody })},
	{key: "serve.limit_request_line", def: "4094", plan: "limit-request-line",
		to: spec(integer(0, 1<<20), func(s *Spec) *int { return &s.Serve.LimitRequestLine })},
	{key: "serve.limit_request_fields", def: "100", plan: "limit-request-fields",
		to: spec(integer(0, 1<<15), func(s *Spec) *int { return &s.Serve.LimitRequestFields })},
	{key: "serve.limit_request_field_size", def: "8190", plan: "limit-request-field-size",
		to: spec(integer(0, 1<<20), func(s *Spec) *int { return &s.Serve.LimitRequestFieldSize })},
	{key: "serve.max_requests", def: "0", plan: "max-requests",
		to: spec(integer(0, 1<<31-1), func(s *Spec) *int { return &s.Serve.MaxRequests })},
	{key: "serve.max_requests_jitter", def: "0", plan: "max-requests-jitter",
		to: spec(integer(0, 1<<31-1), func(s *Spec) *int { return &s.Serve.MaxRequestsJitter })},
	{key: "serve.ignore_client_abort", def: "false", plan: "ignore-client-abort",
		to: spec(boolean, func(s *Spec) *bool { return &s.Serve.IgnoreClientAbort })},

	// Process types. The plan shows scale, ready, restart and stop_* in
	// columns of their own, the rows with a plan name when not at default.
	{key: "process", to: hook(processKey)},
	{key: "process.*.command", to: hook(commandKey)},
	{key: "process.*.scale", def: "1", to: proc(integer(0, PortsPerType), func(p *Process) *int { return &p.Scale })},
	{key: "process.*.restart", def: strconv.Quote(string(RestartAlways)), to: proc(restartPolicy, func(p *Process) *Restart { return &p.Restart })},
	{key: "process.*.stop_signal", def: `"TERM"`, to: proc(signal, func(p *Process) *syscall.Signal { return &p.StopSignal })},
	{key: "process.*.kill_mode", def: `"group"`, plan: "kill-mode", to: proc(enum(killModes...), func(p *Process) *string { return &p.KillMode })},
	{key: "process.*.stop_timeout", def: strconv.Quote(DefaultStopTimeout.String()), to: proc(duration, func(p *Process) *time.Duration { return &p.StopTimeout })},
	{key: "process.*.ready", to: proc(readiness, func(p *Process) *string { return &p.Ready })},
	{key: "process.*.ready_timeout", def: strconv.Quote(DefaultReadyTimeout.String()), plan: "ready-timeout",
		to: proc(positive(duration), func(p *Process) *time.Duration { return &p.ReadyTimeout })},
	{key: "process.*.listen", def: `"port"`, plan: "listen", to: proc(enum(listens...), func(p *Process) *string { return &p.Listen })},
	{key: "process.*.after", plan: "after", to: proc(list, func(p *Process) *[]string { return &p.After })},
	{key: "process.*.sockets", plan: "sockets", to: proc(list, func(p *Process) *[]string { return &p.Sockets })},
	{key: "process.*.critical", def: "false", plan: "critical", to: proc(boolean, func(p *Process) *bool { return &p.Critical })},
	{key: "process.*.cwd", def: `"."`, plan: "cwd", to: proc(path(false), func(p *Process) *string { return &p.Cwd })},
	{key: "process.*.user", def: `""`, plan: "user", to: proc(text, func(p *Process) *string { return &p.User })},
	{key: "process.*.group", def: `""`, plan: "group", to: proc(text, func(p *Process) *string { return &p.Group })},
	{key: "process.*.umask", def: `""`, plan: "umask", to: proc(umask, func(p *Process) *int { return &p.Umask })},
	{key: "process.*.reopen_signal", def: `""`, plan: "reopen", to: proc(optional(signal), func(p *Process) *syscall.Signal { return &p.ReopenSignal })},
	{key: "process.*.log_file", def: `""`, plan: "log", to: proc(logFile, func(p *Process) *string { return &p.LogFile })},
	{key: "process.*.env", plan: "env", to: proc(envTable, func(p *Process) *map[string]string { return &p.Env })},

	// The release phase (or a Procfile release: line).
	{key: "release", to: hook(releaseKey)},
	{key: "release.command", to: release(text, func(r *Release) *string { return &r.Command })},
	{key: "release.timeout", def: `"10m"`,
		to: release(positive(duration), func(r *Release) *time.Duration { return &r.Timeout })},

	// Sockets passed to children.
	{key: "socket", to: hook(socketKey)},
	{key: "socket.*.bind", to: sock(address, func(s *Socket) *string { return &s.Bind })},
	{key: "socket.*.mode", def: quoteMode(DefaultUnixMode), to: sock(mode, func(s *Socket) *os.FileMode { return &s.Mode })},
}
