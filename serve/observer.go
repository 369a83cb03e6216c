package serve

import (
	"net/http"
	"time"

	"gsup/serve/upstream"
)

// Observer is told of every request the binds answer, whatever answers
// it (the app, gsup's health_path, a refusal): Begin when its head was
// read, End once it is over (at end, took after its head was read),
// also when the app died mid-response. The
// calls come from the requests' own goroutines. Metrics implement it.
type Observer interface {
	Begin()
	End(method string, status int, bodyIn, bodyOut int64, took time.Duration, end time.Time)
	// HoldBegin and HoldEnd bracket a request held while no instance was
	// in rotation (hold_timeout): served says an instance came.
	HoldBegin()
	HoldEnd(waited time.Duration, served bool)
	// Handshake counts a TLS handshake with a client, ok or failed.
	Handshake(ok bool)
}

// observe ends r's observation with what the Record says.
func observe(o Observer, r *http.Request, rec *upstream.Record, start, end time.Time) {
	o.End(r.Method, rec.Status, max(r.ContentLength, 0), rec.BytesSent, end.Sub(start), end)
}
