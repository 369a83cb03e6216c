package h1

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// reqState is what parse allocates for a request: the Request, its
// context and its URL, in one allocation.
type reqState struct {
	req http.Request
	ctx reqCtx
	url url.URL
}

// reqCtx is a request's context: the connection's, cancelled when the
// request ends or its client goes. It does what context.WithCancel would
// (two allocations a request, the context and its cancel function) and
// makes what waiting on it needs, a channel and a context to hang
// functions on, only when something waits: the proxy learns that a
// client went through the connection (response.OnClientGone) and only
// asks Err.
type reqCtx struct {
	parent context.Context
	mu     sync.Mutex
	err    error // context.Canceled once cancel ran
	// waitOn, made by the first Done or AfterFunc, is a
	// context.WithCancel of parent that cancel cancels too.
	waitOn     context.Context
	stopWaitOn context.CancelFunc
}

func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *reqCtx) Value(key any) any           { return c.parent.Value(key) }

func (c *reqCtx) Err() error {
	c.mu.Lock()
	err, w := c.err, c.waitOn
	c.mu.Unlock()
	switch {
	case err != nil:
		return err
	case w != nil:
		return w.Err()
	}
	return c.parent.Err()
}

func (c *reqCtx) Done() <-chan struct{} { return c.waitable().Done() }

// AfterFunc is what context.AfterFunc, and a context derived from this
// one, call instead of starting a goroutine to wait on Done.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.waitable(), f)
}

func (c *reqCtx) waitable() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitOn == nil {
		c.waitOn, c.stopWaitOn = context.WithCancel(c.parent)
		if c.err != nil {
			c.stopWaitOn()
		}
	}
	return c.waitOn
}

// cancel ends the context; later calls do nothing.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err == nil {
		c.err = context.Canceled
	}
	stop := c.stopWaitOn
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (c *reqCtx) String() string { return "h1 request context" }
