// Command burst opens many idle TCP connections to a server at once,
// holds them, then closes them all: the burst of burst.sh.
//
//	burst -n 15000 [-send TEXT] -hold-until FILE 127.0.0.1:8000
//
// It prints "opened=N" once they are open (and writes FILE.open with N),
// closes them when FILE exists (or after -max), then prints "closed".
// With -send, each connection sends TEXT (Go string escapes) once open: the
// start of a request head makes it reach a server whose listener defers
// idle connections (TCP_DEFER_ACCEPT).
package main

import (
	"flag"
	"fmt"
	"net"
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
	flag.Parse()
	text, err := strconv.Unquote(`"` + strings.ReplaceAll(*send, `"`, `\"`) + `"`)
	if err != nil {
		fmt.Fprintln(os.Stderr, "burst: -send:", err)
		os.Exit(2)
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: burst [-n N] [-c N] [-hold-until FILE] [-max DUR] HOST:PORT")
		os.Exit(2)
	}
	addr := flag.Arg(0)
	conns := make([]net.Conn, *n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range *par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
				if text != "" {
					_, _ = c.Write([]byte(text))
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
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "burst: %d failed, first: %v\n", *n-opened, firstErr)
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
