package procfile

import (
	"crypto/tls"
	"os"
	"syscall"
	"time"
)

// Restart is a process type's restart policy.
type Restart string

// The restart policies. Always is the default.
const (
	RestartAlways    Restart = "always"     // restart whatever the exit status
	RestartOnFailure Restart = "on-failure" // restart after a non-zero exit or a signal
	RestartNever     Restart = "never"      // run once
)

// Defaults of the settings a Spec carries.
const (
	DefaultBasePort        = 5000
	DefaultStopTimeout     = 10 * time.Second
	DefaultReadyTimeout    = 30 * time.Second
	DefaultGracefulTimeout = 30 * time.Second
	DefaultTimeout         = 30 * time.Second
	DefaultHoldTimeout     = 30 * time.Second
	DefaultReleaseTimeout  = 10 * time.Minute
	DefaultHealthInterval  = 10 * time.Second
	DefaultHealthTimeout   = 2 * time.Second
	DefaultHealthFailures  = 3
	DefaultHealthMaxFails  = 3
	DefaultGuardWindow     = 60 * time.Second
	DefaultControl         = "./.gsup.sock"
	DefaultControlMode     = os.FileMode(0o600)
	DefaultUnixMode        = os.FileMode(0o660)
	DefaultUpstream        = "web"
	DefaultBind            = "127.0.0.1:8000"
	DefaultACMEDirectory   = "https://acme-v02.api.letsencrypt.org/directory" // Let's Encrypt
	DefaultBuffer          = 1 << 20                                          // buffer_body and buffer_response: 1 MiB
	DefaultClientTimeout   = 60 * time.Second                                 // body_timeout and send_timeout (nginx's client_body_timeout, send_timeout)
	PortsPerType           = 100                                              // foreman: each type's ports start 100 after the previous type's
)

// Spec is one app, validated: everything `gsup start` needs to run it.
// It is produced by Load and never changed afterwards; a reload produces
// a new Spec.
type Spec struct {
	App       string   // app name: --app, else the name of the config's folder
	Dir       string   // absolute folder the app's relative paths start from
	Files     []string // the files read, in order (config, Procfile, .env files)
	Config    string   // the TOML file read (also in Files); "" = none
	ConfigDir string   // folder of the TOML file, or of the Procfile without one
	EnvFiles  []string // the .env files read, in order (also in Files)

	// Env holds .env values overlaid with the TOML top-level env table.
	// Children get gsup's environment < Env < Process.Env < PORT, PS, GSUP_APP.
	Env map[string]string

	// Processes in file order (a TOML file's own [process.*] tables follow
	// the imported Procfile's types). Types not selected on the command
	// line are kept with Scale 0 so port blocks stay stable.
	Processes []Process

	Sockets []Socket // [socket.NAME], sorted by name

	// Release is the release phase (a Procfile `release:` line or a
	// [release] table): run once before instances start or are replaced.
	// nil = none.
	Release *Release

	Pid          string        // pid file; "" = none
	Control      string        // control socket path
	ControlMode  os.FileMode   // control socket mode (0600): who may connect
	ControlAllow []ControlPeer // control_allow: who is answered besides root and gsup's uid
	ErrorLogfile string        // gsup's own log; "" or "-" = stderr
	LogLevel     string        // debug, info, warning, error, critical (info)
	LogFormat    string        // text or json (text)
	BasePort     int           // children's base port (5000)
	Subreaper    bool          // become the child subreaper

	Serve Serve

	// defaultBind describes, for WritePlan, the bind main chooses when
	// Serve.Bind is empty ("" when serving is off).
	defaultBind string
}

// ControlPeer is one entry of control_allow: a user, or with Group a
// group, resolved to its id when the config is loaded.
type ControlPeer struct {
	Name  string // as written: "deploy", "1001", "@ops", "@1001"
	ID    uint32 // uid, or gid with Group
	Group bool
}

// Process is one process type.
type Process struct {
	Name         string
	Command      string
	Scale        int               // instances to run (formation); 0 = none
	Env          map[string]string // per-process env, overrides Spec.Env
	Cwd          string            // absolute working directory (Spec.Dir by default)
	User, Group  string            // run as; "" = gsup's own
	Umask        int               // -1 = inherit gsup's
	Restart      Restart
	StopSignal   syscall.Signal // TERM
	StopTimeout  time.Duration  // 10s
	KillMode     string         // "group": stop_signal to the process group; "mixed": to the main process only
	ReopenSignal syscall.Signal // 0 = none; sent on USR1
	Critical     bool           // gsup exits 1 when this type goes fatal
	TTY          bool           // stdout and stderr are a pseudo-terminal, not a pipe
	LogFile      string         // absolute path of this type's raw output; "" = gsup's stdout
	Ready        string         // "port", "http:/path", "notify", "none"
	ReadyTimeout time.Duration  // 30s
	Listen       string         // "port" or "unix"
	Sockets      []string       // names of [socket.NAME] passed as fds 3..
	After        []string       // types that must be ready before this one starts
	Health       Health         // active and passive health checks
	Guards       Guards         // resource limits carried out by rolling replacement
	Index        int            // position in file order (0-based): port block
	BasePort     int            // Spec.BasePort + PortsPerType*Index
	Line         int            // line of its definition, for messages
	File         string         // file of its definition, for messages
}

// Release is a command run once, in the app's folder with its
// environment, before any instance starts or is replaced; a non-zero exit
// or a timeout refuses the start or the reload.
type Release struct {
	Command string
	Timeout time.Duration // 10m
	File    string        // file of its definition, for messages
	Line    int
}

// Socket is a listener gsup binds (or inherits) and passes to children.
type Socket struct {
	Name string
	Bind string      // "host:port", "unix:/path", "fd://N"
	Mode os.FileMode // for unix sockets (0660)
}

// Bind is one address the HTTP front listens on.
type Bind struct {
	Address  string // "host:port", "[::1]:port", "unix:/path", "fd://N"
	Scheme   string // "http" (default) or "https" for a port behind a TLS terminator, or with TLS
	TLS      bool   // gsup terminates TLS on it (HTTP/2 by ALPN)
	Redirect string // "https": every request gets a 308 to the same URL in https
}

// CertPair is a TLS certificate (PEM, the chain after the leaf) and its
// private key (PEM).
type CertPair struct {
	CertFile, KeyFile string
}

// ACME is [serve.acme]: certificates obtained and renewed automatically.
type ACME struct {
	Domains   []string
	Email     string
	Directory string // the ACME server's directory URL (Let's Encrypt's)
	Storage   string // folder keeping the account key and certificates
	CARoot    string // PEM file of CA certificates the ACME server's own certificate chains to; "" = the system's
}

// Serve holds the HTTP front's settings ([serve] and the front flags).
type Serve struct {
	Enabled               bool     // serving is on (off with --no-serve or no served type in the formation)
	NoServe               bool     // --no-serve was given
	Bind                  []Bind   // empty = the defaults DESIGN.md gives (decided by main/serve)
	Upstream              string   // served process type ("web")
	ForwardedAllowIPs     []string // "127.0.0.1", "::1"; CIDRs; "*"
	ProxyProtocol         string   // off, auto, v1, v2, required
	ProxyAllowFrom        []string // "127.0.0.1", "::1"
	AccessLogfile         string   // "" = no access log; "-" = stdout
	AccessLogformat       string   // "" = Gunicorn's default
	Timeout               time.Duration
	GracefulTimeout       time.Duration
	HoldTimeout           time.Duration // how long a request waits for an instance that is starting (30s)
	TrustUnixPeers        bool
	UnixMode              os.FileMode
	UnixOwner, UnixGroup  string
	HealthPath            string
	BufferBody            int64
	BufferResponse        int64
	MaxBody               int64 // 0 = unlimited
	LimitRequestLine      int
	LimitRequestFields    int
	LimitRequestFieldSize int
	MaxRequests           int
	MaxRequestsJitter     int
	IgnoreClientAbort     bool
	BodyTimeout           time.Duration  // longest wait between two reads of a request body
	SendTimeout           time.Duration  // longest wait for a write to a client to make progress
	MaxConnections        int            // client connections at once; 0 = the fd limit less a reserve
	Root                  string         // folder tried before the app for GET and HEAD (nginx's try_files); "" = none
	Static                []StaticDir    // [serve.static]: URL prefixes served from folders
	Compress              []string       // content codings of the app's responses, preferred first; none = off
	ErrorPages            map[int]string // status -> page gsup sends for its own errors
	CertFile, KeyFile     string         // --certfile/--keyfile: the first certificate
	Certs                 []CertPair     // [[serve.cert]]: more certificates, chosen by SNI
	Hosts                 []string       // allowed Host names ("example.com", "*.example.com"); empty = any
	TLSCurves             []tls.CurveID  // key exchange groups TLS may use; empty = Go's defaults (post-quantum hybrids first)
	ACME                  *ACME          // nil = no [serve.acme]
	MetricsBind           string         // host:port of /metrics and the status page; "" = none
}

// StaticDir is a [serve.static] entry: a URL prefix served only from a
// folder.
type StaticDir struct {
	Prefix       string // starts and ends with '/'
	Dir          string // absolute
	Internal     bool   // reached only through X-Accel-Redirect
	CacheControl string // Cache-Control of its files; "" = none
}

// TLSPairs returns every certificate of the front: certfile/keyfile
// first, then [[serve.cert]].
func (s *Serve) TLSPairs() []CertPair {
	var out []CertPair
	if s.CertFile != "" {
		out = append(out, CertPair{CertFile: s.CertFile, KeyFile: s.KeyFile})
	}
	return append(out, s.Certs...)
}

// TLS reports whether the front terminates TLS on some bind.
func (s *Serve) TLS() bool {
	return len(s.TLSPairs()) > 0 || s.ACME != nil
}

// Lookup returns the process type named name, or nil.
func (s *Spec) Lookup(name string) *Process {
	for i := range s.Processes {
		if s.Processes[i].Name == name {
			return &s.Processes[i]
		}
	}
	return nil
}

// Health is a process type's health checking.
type Health struct {
	Check    string        // "port", "http:/path", "exec:CMD"; "" = no active checks
	Interval time.Duration // between probes (10s)
	Timeout  time.Duration // of one probe (2s)
	Failures int           // probes failed in a row that make an instance sick (3)
	MaxFails int           // upstream failures in a row that do (served type; 3; 0 = off)
	Hang     time.Duration // a request without a response byte this long means hung; 0 = off
}

// Guards are a process type's resource limits. Zero values are off.
type Guards struct {
	MaxRSS    int64         // bytes of resident memory of the whole instance
	MaxCPU    float64       // percent of one CPU, sustained over Window
	Window    time.Duration // of MaxCPU (60s)
	MaxAge    time.Duration // uptime after which the instance is replaced
	AgeJitter time.Duration // up to this much is added to MaxAge, per start
	MemoryMax int64         // memory.max of the instance's cgroup (hard limit)
}
