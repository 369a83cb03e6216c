package procfile

import (
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
	DefaultControl         = "./.gsup.sock"
	DefaultControlMode     = os.FileMode(0o600)
	DefaultUnixMode        = os.FileMode(0o660)
	DefaultUpstream        = "web"
	DefaultBind            = "127.0.0.1:8000"
	DefaultBuffer          = 1 << 20 // buffer_body and buffer_response: 1 MiB
	PortsPerType           = 100     // foreman: each type's ports start 100 after the previous type's
)

// Spec is one app, validated: everything `gsup start` needs to run it.
// It is produced by Load and never changed afterwards; a reload produces
// a new Spec.
type Spec struct {
	App       string   // app name: --app, else the name of the config's folder
	Dir       string   // absolute folder the app's relative paths start from
	Files     []string // the files read, in order (config, Procfile, .env files)
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
	LogFile      string         // absolute path of this type's raw output; "" = gsup's stdout
	Ready        string         // "port", "http:/path", "notify", "none"
	ReadyTimeout time.Duration  // 30s
	Listen       string         // "port" or "unix"
	Sockets      []string       // names of [socket.NAME] passed as fds 3..
	After        []string       // types that must be ready before this one starts
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
	Address string // "host:port", "[::1]:port", "unix:/path", "fd://N"
	Scheme  string // "http" (default) or "https" for a port behind a TLS terminator
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
