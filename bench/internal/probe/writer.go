package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// runWriter is the throughput child. It waits for the start file to appear
// (so that every writer starts at the same moment, whenever its supervisor
// got round to starting it), writes its lines to stdout as fast as it can,
// then stays alive doing nothing until it is signalled, so that a supervisor
// never restarts it (which would write its lines a second time).
//
// By default every write(2) carries whole lines only, up to -chunk bytes:
// what a program that flushes per batch of lines does. With -split, writes
// are exactly -chunk bytes and cut lines anywhere, as C stdio's full
// buffering does: the supervisor then has to put lines back together.
func runWriter(args []string) {
	fs := flag.NewFlagSet("writer", flag.ExitOnError)
	lines := fs.Int("lines", 100000, "lines to write")
	chunk := fs.Int("chunk", 4096, "bytes per write(2) at most")
	split := fs.Bool("split", false, "cut writes at -chunk bytes regardless of line ends")
	goFile := fs.String("go", "", "start writing once this file exists")
	goWait := fs.Duration("go-timeout", 5*time.Minute, "give up waiting for -go after this long")
	id := fs.Int("id", 0, "id written in every line (default: own pid)")
	fs.Parse(args)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	if *id == 0 {
		*id = os.Getpid()
	}
	if *goFile != "" {
		deadline := time.Now().Add(*goWait)
		for {
			if _, err := os.Stat(*goFile); err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "writer: start file never appeared")
				os.Exit(3)
			}
			select {
			case <-sigs:
				os.Exit(0)
			case <-time.After(time.Millisecond):
			}
		}
	}

	out := os.Stdout
	size := max(*chunk, 256)
	buf := make([]byte, 0, size+256)
	var one []byte
	for seq := 0; seq < *lines; seq++ {
		one = appendLine(one[:0], *id, seq)
		if *split {
			buf = append(buf, one...)
			for len(buf) >= size {
				mustWrite(out, buf[:size])
				buf = append(buf[:0], buf[size:]...)
			}
			continue
		}
		if len(buf)+len(one) > size && len(buf) > 0 {
			mustWrite(out, buf)
			buf = buf[:0]
		}
		buf = append(buf, one...)
	}
	if len(buf) > 0 {
		mustWrite(out, buf)
	}
	<-sigs
}

func mustWrite(f *os.File, b []byte) {
	if _, err := f.Write(b); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
}
