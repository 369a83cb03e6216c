// Command burst opens many idle TCP connections to a server at once,
// holds them, then closes them all: the burst of burst.sh, and the idle
// keep-alive clients of http.sh's idle rows.
//
//	burst -n 15000 [-send TEXT | -get PATH] -hold-until FILE 127.0.0.1:8000
//
// It prints "opened=N" once they are open (and writes FILE.open with N),
// closes them when FILE exists (or after -max), then prints "closed".
// With -send, each connection sends TEXT (Go string escapes) once open: the
// start of a request head makes it reach a server whose listener defers
// idle connections (TCP_DEFER_ACCEPT). With -get, each sends one
// "GET PATH HTTP/1.1" request and reads the whole response before it goes
// idle, as a keep-alive client between two requests; "answered=N" counts
// the 200s, and FILE.open is written once every connection has its answer.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 15000, "connections")
	par := flag.Int("c", 64, "dialers at once")
	until := flag.String("hold-until", "", "close the connections once `FILE` exists")
	maxHold := flag.Duration("max", 60*time.Second, "close them after this long at the latest")
	send := flag.String("send", "", "send `TEXT` (Go string escapes) on each connection")
	get := flag.String("get", "", "send one GET for `PATH` on each connection and read its answer")
	flag.Parse()
	text, err := strconv.Unquote(`"` + strings.ReplaceAll(*send, `"`, `\"`) + `"`)
	if err != nil {
		fmt.Fprintln(os.Stderr, "burst: -send:", err)
		os.Exit(2)
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: burst [-n N] [-c N] [-send TEXT | -get PATH] [-hold-until FILE] [-max DUR] HOST:PORT")
		os.Exit(2)
	}
	addr := flag.Arg(0)
	conns := make([]net.Conn, *n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	answered := 0
	next := make(chan int)
	for range *par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					fail(err)
					continue
				}
				conns[i] = c
				if text != "" {
					_, _ = c.Write([]byte(text))
				}
				if *get != "" {
					if err := ask(c, addr, *get); err != nil {
						fail(err)
						continue
					}
					mu.Lock()
					answered++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range *n {
		next <- i
	}
	close(next)
	wg.Wait()
	opened := 0
	for _, c := range conns {
		if c != nil {
			opened++
		}
	}
	fmt.Printf("opened=%d\n", opened)
	if *get != "" {
		fmt.Printf("answered=%d\n", answered)
	}
	if firstErr != nil {
		failed := *n - opened
		if *get != "" {
			failed = *n - answered
		}
		fmt.Fprintf(os.Stderr, "burst: %d failed, first: %v\n", failed, firstErr)
	}
	if *until != "" {
		os.WriteFile(*until+".open", fmt.Appendf(nil, "%d\n", opened), 0o644)
	}
	deadline := time.Now().Add(*maxHold)
	for *until != "" && time.Now().Before(deadline) {
		if _, err := os.Stat(*until); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	fmt.Println("closed")
}

// ask sends one GET for path on c and reads the whole answer, which must be
// a 200 that leaves the connection open.
func ask(c net.Conn, host, path string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	case resp.Close:
		return errors.New("GET " + path + ": the server closes the connection")
	}
	return nil
}
