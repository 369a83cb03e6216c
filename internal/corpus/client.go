package corpus

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ForwardedHeader marks an answer from the handler that stands for the
// app: the request was forwarded. The app sets it only once it has read
// the request body whole.
const ForwardedHeader = "X-Test-Forwarded"

// Result is what a client saw on one connection.
type Result struct {
	Statuses  []int // every response status, in order
	Forwarded int   // responses that carried ForwardedHeader
	Err       error // how reading ended, if not with a clean end of file
}

// Refused reports whether the front answered 4xx/5xx itself, or closed
// the connection without answering anything.
func (r Result) Refused() bool {
	for _, s := range r.Statuses {
		if s >= 400 {
			return true
		}
	}
	return r.Forwarded == 0 && len(r.Statuses) == 0
}

// Passed reports whether at least one request reached the app and
// nothing was refused.
func (r Result) Passed() bool { return r.Forwarded > 0 && !r.Refused() }

// String lists the statuses ("200,400"), or "closed".
func (r Result) String() string {
	if len(r.Statuses) == 0 {
		return "closed"
	}
	s := make([]string, len(r.Statuses))
	for i, st := range r.Statuses {
		s[i] = strconv.Itoa(st)
	}
	return strings.Join(s, ",")
}

// Send connects to addr, writes raw in one go while reading, half-closes
// at once, and reads every response until the front closes or timeout
// passes (which ends in Result.Err). The error is the dial's.
//
// Half-closing at once is how the client says it has nothing more to
// send, and a front needs that to answer a truncated request. But a front
// may take the end of file for a client that went away (net/http cancels
// the request's context when its background read hits it), and drop the
// request: for such a front use SendThen.
func Send(addr string, raw []byte, timeout time.Duration) (Result, error) {
	return SendThen(addr, raw, timeout, nil)
}

// SendThen is Send, except that the client half-closes only once settle
// returns, called once raw is written: settle should wait until the front
// has answered everything it can, as a client waits for its responses
// before it closes. readDone is closed when the client has stopped
// reading (the front closed, or timeout passed); settle must return then,
// or within timeout.
func SendThen(addr string, raw []byte, timeout time.Duration, settle func(readDone <-chan struct{})) (Result, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	// Write and read at once, so a front that answers before reading it
	// all cannot deadlock the client.
	var wg sync.WaitGroup
	readDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Write(raw)
		if settle != nil {
			settle(readDone)
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	var res Result
	br := bufio.NewReader(c)
	defer wg.Wait()
	defer close(readDone)
	for {
		if _, err := br.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) {
				res.Err = err
			}
			break
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			res.Err = err
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.Statuses = append(res.Statuses, resp.StatusCode)
		if resp.Header.Get(ForwardedHeader) != "" {
			res.Forwarded++
		}
	}
	return res, nil
}
