package testprog

import (
	"bufio"
	"errors"
	"flag"
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

// A program is one helper program: what its usage line shows after its
// name, and the function that runs it and returns its exit status.
type program struct {
	synopsis string
	main     func(p *prog) int
}

var programs = map[string]program{
	"echoserver": {"[-unix] [-addr ADDR] [-ready FILE] [-pidfile F] [-notify] [-grace DUR] [-log] [-sick FILE] [-grow N]", echoserver},
	"siglog":     {"FILE [-term-exit N] [-die] [-pidfile F]", siglog},
	"exitwith":   {"CODE [-after DUR] [-print TEXT] [-stderr TEXT]", exitwith},
	"noterm":     {"[-pidfile F]", noterm},
	"spawnchild": {"PIDFILE [-exit] [-noterm] [-newgroup] [-pidfile F]", spawnchild},
	"sleeper":    {"[-pidfile F] [-noterm]", sleeper},
	"spam":       {"-lines N [-len L] [-tag T] [-stderr] [-nonl TEXT]", spam},
	"printenv2":  {"KEY... [-wait]", printenv2},
	"notifysock": {"PATH OUTFILE [-ready FILE]", notifysock},
	"sdready":    {"[-delay DUR] [-status TEXT] [-pidfile F]", sdready},
	"logwriter":  {"[-file F] [-n N] [-every DUR] [-reopen SIG] [-pidfile F]", logwriter},
	"hammer":     {"[-c N] [-for DUR] [-until FILE] [-n MAX] [-every DUR] [-unix PATH] [-status N] [-match REGEXP] [-ready FILE] URL", hammer},
	"holdconns":  {"[-n N] [-send TEXT] [-closed] [-until FILE] [-for DUR] [-ready FILE] HOST:PORT", holdconns},
	"stdiolines": {"[-ready FILE] LINE...", stdiolines},
}

// Programs returns the helper programs by name, in the form
// testscript.Main takes: each function runs the program with os.Args and
// exits the process with its status. The package comment describes them.
func Programs() map[string]func() {
	m := make(map[string]func(), len(programs))
	for name, pg := range programs {
		m[name] = func() {
			os.Exit(pg.run(name, os.Args[1:], os.Stdout, os.Stderr))
		}
	}
	return m
}

// run runs the program under name with args (without the name) and
// returns its exit status.
func (pg program) run(name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError) // an error is reported, not fatal
	fs.SetOutput(stderr)
	return pg.main(&prog{FlagSet: fs, synopsis: pg.synopsis, args: args, stdout: stdout, stderr: stderr})
}

// prog is a helper program while it runs: its flags (defined on the
// embedded FlagSet, then parsed by parse), its arguments and its output.
type prog struct {
	*flag.FlagSet
	synopsis       string
	args           []string
	stdout, stderr io.Writer
}

// parse parses the flags, which may come before, between or after the
// positional arguments, and returns the positional ones. ok is false when
// a flag is wrong (the flag package has said why) or when there are fewer
// than min or more than max positional arguments (max < 0: no limit; parse
// prints the usage line); the program then exits 2.
func (p *prog) parse(min, max int) (pos []string, ok bool) {
	pos, err := parseInterspersed(p.FlagSet, p.args)
	if err != nil {
		return nil, false
	}
	if len(pos) < min || max >= 0 && len(pos) > max {
		p.usage()
		return nil, false
	}
	return pos, true
}

// usage prints the usage line and returns the status for a usage error.
func (p *prog) usage() int {
	return p.usagef("usage: %s %s", p.Name(), p.synopsis)
}

// usagef prints a usage error and returns the status for it.
func (p *prog) usagef(format string, args ...any) int {
	fmt.Fprintf(p.stderr, "%s: %s\n", p.Name(), fmt.Sprintf(format, args...))
	return 2
}

// fail prints err and returns status 1.
func (p *prog) fail(err error) int {
	fmt.Fprintf(p.stderr, "%s: %v\n", p.Name(), err)
	return 1
}

// sleepForever blocks the calling goroutine for good.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// siglog logs the signals it gets.
func siglog(p *prog) int {
	termExit := p.Int("term-exit", 0, "exit status after TERM or INT")
	die := p.Bool("die", false, "after TERM or INT, die of it")
	pidfile := p.String("pidfile", "", "write the pid to `FILE`")
	pos, ok := p.parse(1, 1)
	if !ok {
		return 2
	}
	file := pos[0]
	c := make(chan os.Signal, 64)
	signal.Notify(c, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGWINCH,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGALRM, syscall.SIGCONT,
		syscall.SIGTSTP)
	if err := writePidFile(*pidfile); err != nil {
		return p.fail(err)
	}
	if err := appendLine(file, "ready"); err != nil {
		return p.fail(err)
	}
	fmt.Fprintf(p.stdout, "siglog ready pid=%d\n", os.Getpid())
	for sig := range c {
		name := signalName(sig)
		if err := appendLine(file, name); err != nil {
			return p.fail(err)
		}
		fmt.Fprintf(p.stdout, "siglog got %s\n", name)
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

// exitwith exits with a given status.
func exitwith(p *prog) int {
	after := p.Duration("after", 0, "wait this long before exiting")
	text := p.String("print", "", "print `TEXT` (and a newline) to stdout first")
	errText := p.String("stderr", "", "print `TEXT` (and a newline) to stderr first")
	pos, ok := p.parse(1, 1)
	if !ok {
		return 2
	}
	code, err := strconv.Atoi(pos[0])
	if err != nil || code < 0 || code > 255 {
		return p.usagef("bad exit status %q", pos[0])
	}
	if *text != "" {
		fmt.Fprintln(p.stdout, *text)
	}
	if *errText != "" {
		fmt.Fprintln(p.stderr, *errText)
	}
	time.Sleep(*after)
	return code
}

// noterm ignores TERM and INT.
func noterm(p *prog) int {
	pidfile := p.String("pidfile", "", "write the pid to `FILE`")
	if _, ok := p.parse(0, 0); !ok {
		return 2
	}
	c := notifyStop()
	if err := writePidFile(*pidfile); err != nil {
		return p.fail(err)
	}
	fmt.Fprintf(p.stdout, "noterm running pid=%d\n", os.Getpid())
	for sig := range c {
		fmt.Fprintf(p.stdout, "noterm ignoring %s\n", signalName(sig))
	}
	return 0
}

// sleeper is the grandchild spawnchild starts.
func sleeper(p *prog) int {
	pidfile := p.String("pidfile", "", "write the pid to `FILE`")
	ignore := p.Bool("noterm", false, "ignore TERM and INT")
	if _, ok := p.parse(0, -1); !ok {
		return 2
	}
	if *ignore {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	}
	if err := writePidFile(*pidfile); err != nil {
		return p.fail(err)
	}
	sleepForever()
	return 0
}

// spawnchild starts a grandchild in its own process group.
func spawnchild(p *prog) int {
	exit := p.Bool("exit", false, "exit once the grandchild runs, leaving it behind")
	ignore := p.Bool("noterm", false, "the grandchild ignores TERM and INT")
	pidfile := p.String("pidfile", "", "write spawnchild's own pid to `FILE`")
	newGroup := p.Bool("newgroup", false, "first move to a new process group of its own")
	pos, ok := p.parse(1, 1)
	if !ok {
		return 2
	}
	if *newGroup {
		if err := syscall.Setpgid(0, 0); err != nil {
			return p.fail(fmt.Errorf("setpgid: %w", err))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return p.fail(err)
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
		return p.fail(err)
	}
	if err := os.Remove(pos[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
		return p.fail(err)
	}
	if err := cmd.Start(); err != nil {
		return p.fail(err)
	}
	if ok, _ := Poll(10*time.Second, func() (bool, string) {
		_, err := os.Stat(pos[0])
		return err == nil, ""
	}); !ok {
		return p.fail(fmt.Errorf("the grandchild did not write %s within 10s", pos[0]))
	}
	fmt.Fprintf(p.stdout, "spawnchild pid=%d grandchild=%d\n", os.Getpid(), cmd.Process.Pid)
	if *exit {
		return 0
	}
	go cmd.Wait() // reap it if it dies first
	sleepForever()
	return 0
}

// spam prints numbered lines as fast as it can.
func spam(p *prog) int {
	lines := p.Int("lines", 0, "number of lines")
	length := p.Int("len", 64, "pad each line with x to `L` bytes (newline not counted)")
	tag := p.String("tag", "spam", "first word of every line")
	alternate := p.Bool("stderr", false, "alternate lines between stdout and stderr")
	nonl := p.String("nonl", "", "finally write `TEXT` with no newline")
	if _, ok := p.parse(0, 0); !ok {
		return 2
	}
	if *lines < 0 {
		return p.usage()
	}
	out := bufio.NewWriterSize(p.stdout, 64<<10)
	errOut := bufio.NewWriterSize(p.stderr, 64<<10)
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
			return p.fail(err)
		}
	}
	if *nonl != "" {
		out.WriteString(*nonl)
	}
	if err := out.Flush(); err != nil {
		return p.fail(err)
	}
	if err := errOut.Flush(); err != nil {
		return 1
	}
	return 0
}

// printenv2 prints variables of its environment.
func printenv2(p *prog) int {
	wait := p.Bool("wait", false, "then wait for TERM or INT and exit 0")
	keys, ok := p.parse(0, -1)
	if !ok {
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
	io.WriteString(p.stdout, b.String())
	if *wait {
		<-c
	}
	return 0
}

// logwriter writes numbered lines, to stdout or a file it reopens.
func logwriter(p *prog) int {
	file := p.String("file", "", "append to `FILE` (reopened on the reopen signal) instead of stdout")
	n := p.Int("n", 0, "lines to write before exiting; 0 = until TERM or INT")
	every := p.Duration("every", 100*time.Millisecond, "pause between lines")
	reopenName := p.String("reopen", "USR1", "signal that reopens -file")
	pidfile := p.String("pidfile", "", "write the pid to `FILE`")
	if _, ok := p.parse(0, 0); !ok {
		return 2
	}
	if *n < 0 {
		return p.usage()
	}
	reopenSig, err := parseSignal(*reopenName)
	if err != nil {
		return p.usagef("%v", err)
	}
	stop := notifyStop()
	reopen := make(chan os.Signal, 4)
	var out io.Writer = p.stdout
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
			return p.fail(err)
		}
		defer func() { f.Close() }()
	}
	if err := writePidFile(*pidfile); err != nil {
		return p.fail(err)
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for i := 1; *n == 0 || i <= *n; {
		if _, err := fmt.Fprintf(out, "line %06d\n", i); err != nil {
			return p.fail(err)
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
					return p.fail(err)
				}
				fmt.Fprintf(p.stderr, "logwriter reopened %s\n", *file)
			case <-tick.C:
				waiting = false
			}
		}
	}
	return 0
}
