// Command worker is a background process to run under gsup: it prints
// "worker tick N" every second and, on TERM or INT, prints "worker
// stopping" and exits 0. It opens no files, so it needs no reopen signal:
// gsup captures its output.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("worker started (pid %d)\n", os.Getpid())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-tick.C:
			fmt.Printf("worker tick %d\n", n)
		case <-stop:
			fmt.Println("worker stopping")
			return
		}
	}
}
