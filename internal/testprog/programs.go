package testprog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// program is one helper program: it gets its arguments (without the
// program name) and returns its exit status.
type program func(args []string, stdout, stderr io.Writer) int

var programs = map[string]program{
	"echoserver": echoserver,
	"siglog":     siglog,
	"exitwith":   exitwith,
	"noterm":     noterm,
	"spawnchild": spawnchild,
	"sleeper":    sleeper,
	"spam":       spam,
	"printenv2":  printenv2,
	"notifysock": notifysock,
	"sdready":    sdready,
	"logwriter":  logwriter,
	"hammer":     hammer,
	"holdconns":  holdconns,
	"stdiolines": stdiolines,
}

// Programs returns the helper programs by name, in the form
// testscript.Main takes: each function runs the program with os.Args and
// exits the process with its status. The package comment describes them.
func Programs() map[string]func() {
	m := make(map[string]func(), len(programs))
	for name, p := range programs {
		m[name] = func() {
			os.Exit(p(os.Args[1:], os.Stdout, os.Stderr))
		}
	}
	return m
}

// usage prints a usage error and returns the status for it.
func usage(stderr io.Writer, name, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n", name, fmt.Sprintf(format, args...))
	return 2
}

// fail prints err and returns status 1.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// sleepForever blocks the calling goroutine for good.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// siglog FILE [-term-exit N] [-die] [-pidfile F]
func siglog(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("siglog", stderr)
	termExit := fs.Int("term-exit", 0, "exit status after TERM or INT")
	die := fs.Bool("die", false, "after TERM or INT, die of it")
	pidfile := fs.String("pidfile", "", "write the pid to `FILE`")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		return usage(stderr, "siglog", "usage: siglog FILE [-term-exit N] [-die] [-pidfile F]")
	}
	file := pos[0]
	c := make(chan os.Signal, 64)
	signal.Notify(c, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGWINCH,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGALRM, syscall.SIGCONT,
		syscall.SIGTSTP)
	if err := writePidFile(*pidfile); err != nil {
		return fail(stderr, "siglog", err)
	}
	if err := appendLine(file, "ready"); err != nil {
		return fail(stderr, "siglog", err)
	}
	fmt.Fprintf(stdout, "siglog ready pid=%d\n", os.Getpid())
	for sig := range c {
		name := signalName(sig)
		if err := appendLine(file, name); err != nil {
			return fail(stderr, "siglog", err)
		}
		fmt.Fprintf(stdout, "siglog got %s\n", name)
		if sig == syscall.SIGTERM || sig == syscall.SIGINT {
			if *die {
				dieOf(sig.(syscall.Signal))
			}
			return *termExit
		}
	}
	return 0
}

// dieOf ends the process by sig, as a program that does not handle it
// ends: its parent sees it killed by sig.
func dieOf(sig syscall.Signal) {
	signal.Reset(sig)
	syscall.Kill(os.Getpid(), sig)
	sleepForever()
}

// exitwith CODE [-after DUR] [-print TEXT] [-stderr TEXT]
func exitwith(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("exitwith", stderr)
	after := fs.Duration("after", 0, "wait this long before exiting")
	text := fs.String("print", "", "print `TEXT` (and a newline) to stdout first")
	errText := fs.String("stderr", "", "print `TEXT` (and a newline) to stderr first")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		return usage(stderr, "exitwith", "usage: exitwith CODE [-after DUR] [-print TEXT]")
	}
	code, err := strconv.Atoi(pos[0])
	if err != nil || code < 0 || code > 255 {
		return usage(stderr, "exitwith", "bad exit status %q", pos[0])
	}
	if *text != "" {
		fmt.Fprintln(stdout, *text)
	}
	if *errText != "" {
		fmt.Fprintln(stderr, *errText)
	}
	time.Sleep(*after)
	return code
}

// noterm [-pidfile F]
func noterm(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("noterm", stderr)
	pidfile := fs.String("pidfile", "", "write the pid to `FILE`")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		return usage(stderr, "noterm", "usage: noterm [-pidfile F]")
	}
	c := notifyStop()
	if err := writePidFile(*pidfile); err != nil {
		return fail(stderr, "noterm", err)
	}
	fmt.Fprintf(stdout, "noterm running pid=%d\n", os.Getpid())
	for sig := range c {
		fmt.Fprintf(stdout, "noterm ignoring %s\n", signalName(sig))
	}
	return 0
}

// sleeper [-pidfile F] [-noterm]: the grandchild spawnchild starts.
func sleeper(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sleeper", stderr)
	pidfile := fs.String("pidfile", "", "write the pid to `FILE`")
	ignore := fs.Bool("noterm", false, "ignore TERM and INT")
	if _, err := parseInterspersed(fs, args); err != nil {
		return 2
	}
	if *ignore {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	}
	if err := writePidFile(*pidfile); err != nil {
		return fail(stderr, "sleeper", err)
	}
	sleepForever()
	return 0
}

// spawnchild PIDFILE [-exit] [-noterm] [-newgroup] [-pidfile F]
func spawnchild(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("spawnchild", stderr)
	exit := fs.Bool("exit", false, "exit once the grandchild runs, leaving it behind")
	ignore := fs.Bool("noterm", false, "the grandchild ignores TERM and INT")
	pidfile := fs.String("pidfile", "", "write spawnchild's own pid to `FILE`")
	newGroup := fs.Bool("newgroup", false, "first move to a new process group of its own")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		return usage(stderr, "spawnchild", "usage: spawnchild PIDFILE [-exit] [-noterm] [-newgroup] [-pidfile F]")
	}
	if *newGroup {
		if err := syscall.Setpgid(0, 0); err != nil {
			return fail(stderr, "spawnchild", fmt.Errorf("setpgid: %w", err))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, "spawnchild", err)
	}
	// The grandchild is this same binary run as "sleeper". Its standard
	// files are /dev/null, so it holds none of our pipes, and it stays in
	// our process group (no Setpgid). It writes PIDFILE itself once its signal handling is
	// set, and only then does spawnchild say it runs: a test that signals
	// the grandchild as soon as the file appears finds it ready.
	cmd := exec.Command(self)
	cmd.Args = []string{"sleeper", "-pidfile", pos[0]}
	if *ignore {
		cmd.Args = append(cmd.Args, "-noterm")
	}
	if err := writePidFile(*pidfile); err != nil {
		return fail(stderr, "spawnchild", err)
	}
	if err := os.Remove(pos[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(stderr, "spawnchild", err)
	}
	if err := cmd.Start(); err != nil {
		return fail(stderr, "spawnchild", err)
	}
	if ok, _ := Poll(10*time.Second, func() (bool, string) {
		_, err := os.Stat(pos[0])
		return err == nil, ""
	}); !ok {
		return fail(stderr, "spawnchild", fmt.Errorf("the grandchild did not write %s within 10s", pos[0]))
	}
	fmt.Fprintf(stdout, "spawnchild pid=%d grandchild=%d\n", os.Getpid(), cmd.Process.Pid)
	if *exit {
		return 0
	}
	go cmd.Wait() // reap it if it dies first
	sleepForever()
	return 0
}

// spam -lines N [-len L] [-tag T] [-stderr] [-nonl TEXT]
func spam(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("spam", stderr)
	lines := fs.Int("lines", 0, "number of lines")
	length := fs.Int("len", 64, "pad each line with x to `L` bytes (newline not counted)")
	tag := fs.String("tag", "spam", "first word of every line")
	alternate := fs.Bool("stderr", false, "alternate lines between stdout and stderr")
	nonl := fs.String("nonl", "", "finally write `TEXT` with no newline")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 || *lines < 0 {
		return usage(stderr, "spam", "usage: spam -lines N [-len L] [-tag T] [-stderr] [-nonl TEXT]")
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	errOut := bufio.NewWriterSize(stderr, 64<<10)
	var line []byte
	for i := 1; i <= *lines; i++ {
		line = fmt.Appendf(line[:0], "%s seq=%06d ", *tag, i)
		for len(line) < *length {
			line = append(line, 'x')
		}
		line = append(line, '\n')
		w := out
		if *alternate && i%2 == 0 {
			w = errOut
		}
		if _, err := w.Write(line); err != nil {
			return fail(stderr, "spam", err)
		}
	}
	if *nonl != "" {
		out.WriteString(*nonl)
	}
	if err := out.Flush(); err != nil {
		return fail(stderr, "spam", err)
	}
	if err := errOut.Flush(); err != nil {
		return 1
	}
	return 0
}

// printenv2 KEY... [-wait]
func printenv2(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("printenv2", stderr)
	wait := fs.Bool("wait", false, "then wait for TERM or INT and exit 0")
	keys, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	var c chan os.Signal
	if *wait {
		c = notifyStop()
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, os.Getenv(k))
	}
	io.WriteString(stdout, b.String())
	if *wait {
		<-c
	}
	return 0
}

// logwriter [-file F] [-n N] [-every DUR] [-reopen SIG]
func logwriter(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("logwriter", stderr)
	file := fs.String("file", "", "append to `FILE` (reopened on the reopen signal) instead of stdout")
	n := fs.Int("n", 0, "lines to write before exiting; 0 = until TERM or INT")
	every := fs.Duration("every", 100*time.Millisecond, "pause between lines")
	reopenName := fs.String("reopen", "USR1", "signal that reopens -file")
	pidfile := fs.String("pidfile", "", "write the pid to `FILE`")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 || *n < 0 {
		return usage(stderr, "logwriter", "usage: logwriter [-file F] [-n N] [-every DUR] [-reopen SIG]")
	}
	reopenSig, err := parseSignal(*reopenName)
	if err != nil {
		return usage(stderr, "logwriter", "%v", err)
	}
	stop := notifyStop()
	reopen := make(chan os.Signal, 4)
	var out io.Writer = stdout
	var f *os.File
	open := func() error {
		var err error
		f, err = os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		out = f
		return err
	}
	if *file != "" {
		signal.Notify(reopen, reopenSig)
		if err := open(); err != nil {
			return fail(stderr, "logwriter", err)
		}
		defer func() { f.Close() }()
	}
	if err := writePidFile(*pidfile); err != nil {
		return fail(stderr, "logwriter", err)
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for i := 1; *n == 0 || i <= *n; {
		if _, err := fmt.Fprintf(out, "line %06d\n", i); err != nil {
			return fail(stderr, "logwriter", err)
		}
		i++
		if *n != 0 && i > *n {
			break
		}
		for waiting := true; waiting; {
			select {
			case <-stop:
				return 0
			case <-reopen:
				f.Close()
				if err := open(); err != nil {
					return fail(stderr, "logwriter", err)
				}
				fmt.Fprintf(stderr, "logwriter reopened %s\n", *file)
			case <-tick.C:
				waiting = false
			}
		}
	}
	return 0
}
