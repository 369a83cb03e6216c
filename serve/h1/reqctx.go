package h1

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	"gsup/serve/head"
)

// reqState is what parse allocates for a request: the Request, its
// context and its URL, in one allocation, which a kept connection reuses
// for its next request when nothing can hold it any more (keepState): an
// allocation fewer per request, and memory that is still in the
// processor's caches rather than fresh from the collector.
type reqState struct {
	req http.Request
	ctx reqCtx
	url url.URL
}

// newState returns the state for the request being parsed: the one the
// connection's last request left, or one an ended connection left with
// its header maps (takeHeaders), emptied, or a new one.
func (c *conn) newState() *reqState {
	if c.hdr == nil {
		c.takeHeaders() // the maps parseFields fills come with it
	}
	st := c.spare
	if st == nil {
		st = new(reqState)
	} else {
		c.spare = nil
		*st = reqState{}
	}
	st.ctx.parent = c.ctx
	return st
}

// keepState keeps st, the state of a request just answered, for the next
// request's parse (on this connection, or, when it closes, on the next
// connection to take its header maps), unless something may still use
// it: a goroutine that waits on its context (Done or AfterFunc made
// waitOn), or the watch's goroutine that saw the client go and is about
// to cancel it. handle calls it for a request whose handler returned
// without a panic and did not take the connection over, its body read to
// the end; the handler and what it called are done
// with the Request, as they are with its header map, which the
// connection reuses the same way (net/http's Handler contract: nothing
// of a request is used after ServeHTTP returns but what it copied).
func (c *conn) keepState(st *reqState) {
	st.ctx.mu.Lock()
	waited := st.ctx.waitOn != nil
	st.ctx.mu.Unlock()
	if waited || c.watch.sawGone() {
		return
	}
	c.spare = st
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
	names  head.Names // the head's field names, for Value(head.NamesKey{})
	mu     sync.Mutex
	err    error // context.Canceled once cancel ran
	// waitOn, made by the first Done or AfterFunc, is a
	// context.WithCancel of parent that cancel cancels too.
	waitOn     context.Context
	stopWaitOn context.CancelFunc
}

func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *reqCtx) Value(key any) any {
	if _, ok := key.(head.NamesKey); ok {
		return &c.names
	}
	return c.parent.Value(key)
}

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
