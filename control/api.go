package control

import (
	"errors"
	"syscall"

	"gsup/supervisor"
)

// Backend is what the control API acts on: main's running instance. Its
// methods are called from the server's request goroutines, concurrently.
//
// Errors choose the HTTP status: one that wraps ErrInvalid is a 400, one
// that wraps ErrNotFound or supervisor.ErrNotFound a 404, one that wraps
// ErrConflict, supervisor.ErrStopped or supervisor.ErrStopping a 409; any other a 500. The
// message goes to the client as it is.
type Backend interface {
	// Status returns every instance, in app and type order.
	Status() ([]supervisor.Status, error)
	// Scale sets the instance count of app's type typ ("" = the first app).
	Scale(app, typ string, n int) error
	// Restart, Stop and Signal act on the targets' instances ("web",
	// "web.2", "APP", "APP/web") and return the names they acted on.
	Restart(targets []string) ([]string, error)
	Stop(targets []string) ([]string, error)
	Signal(sig syscall.Signal, targets []string) ([]string, error)
	// Reload re-reads the config and replaces every instance of the first
	// app the rolling way; it returns when that is done.
	Reload() error
	// Load loads the app in file (an absolute Procfile or TOML path) as
	// app ("" = the name of the file's folder), or replaces the app of
	// that name, and returns the app's name.
	Load(file, app string) (string, error)
	// Unload stops an app's instances and forgets it.
	Unload(app string) error
	// Lines returns the recent output lines of the targets (all when
	// none), oldest first.
	Lines(targets []string) ([]supervisor.Line, error)
	// Follow returns the targets' new lines until the returned function
	// is called. The channel need not ever be closed.
	Follow(targets []string) (<-chan supervisor.Line, func(), error)
	// Subscribe returns every event from now on until the returned
	// function is called.
	Subscribe() (<-chan supervisor.Event, func())
	// Upgrade checks gsup's binary and, when it passes, re-executes it
	// in place in the background; an error says why not.
	Upgrade() (UpgradeResponse, error)
	// Version describes the running binary and the last upgrade.
	Version() VersionResponse
}

// Errors a Backend wraps to choose the HTTP status (see Backend).
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// MaxBody is the largest request body the server reads (1 MiB); a larger
// one is answered with 413.
const MaxBody = 1 << 20

// Process is one instance as GET /v1/ps returns it: the supervisor's
// Status and the process's statistics (its main process only, from
// gopsutil; zero when it is not running).
type Process struct {
	supervisor.Status
	UptimeSeconds float64 `json:"uptime_seconds"` // since its process started
	// CPUPercent is the CPU used since the previous GET /v1/ps (since the
	// process started, the first time it is listed), in percent of one
	// CPU.
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   uint64  `json:"rss_bytes"`
}

// PsResponse is the body of GET /v1/ps.
type PsResponse struct {
	Processes []Process `json:"processes"`
}

// ScaleRequest is the body of POST /v1/scale, and of its answer (the
// counts that were set).
type ScaleRequest struct {
	App    string         `json:"app,omitempty"` // "" = the first app
	Counts map[string]int `json:"counts"`
}

// TargetsRequest is the body of POST /v1/restart and POST /v1/stop.
type TargetsRequest struct {
	Targets []string `json:"targets"`
}

// SignalRequest is the body of POST /v1/signal.
type SignalRequest struct {
	Signal  string   `json:"signal"` // "HUP", "SIGHUP", "hup" or "1"
	Targets []string `json:"targets"`
}

// NamesResponse answers POST /v1/restart, /v1/stop and /v1/signal: the
// instances acted on; Signal is set by /v1/signal (its name, "HUP").
type NamesResponse struct {
	Signal string   `json:"signal,omitempty"`
	Names  []string `json:"names"`
}

// LoadRequest is the body of POST /v1/load.
type LoadRequest struct {
	File string `json:"file"`          // absolute path of a Procfile or a .toml file
	App  string `json:"app,omitempty"` // "" = the name of the file's folder
}

// AppRequest is the body of POST /v1/unload, and the answer of /v1/load
// and /v1/unload.
type AppRequest struct {
	App string `json:"app"`
}

// OKResponse answers POST /v1/reload.
type OKResponse struct {
	OK bool `json:"ok"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}
