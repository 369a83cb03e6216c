package testprog

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// DefaultTimeout is how long the waiting commands poll before failing,
// unless given -t.
const DefaultTimeout = 10 * time.Second

// Commands returns the custom script commands, for testscript.Params.Cmds.
// The package comment describes them.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"waitfile":   cmdWaitfile,
		"waitmatch":  cmdWaitmatch,
		"httpget":    cmdHTTPGet,
		"waitport":   cmdWaitport,
		"pidkill":    cmdPidkill,
		"pidgone":    cmdPidgone,
		"noprocs":    cmdNoprocs,
		"countlines": cmdCountlines,
		"freeport":   cmdFreeport,
		"portblock":  cmdPortblock,
		"shortdir":   cmdShortdir,
		"readenv":    cmdReadenv,
		"promsum":    cmdPromsum,
		"tlscert":    cmdTLSCert,
		"cleanup":    cmdCleanup,
		"childpid":   cmdChildpid,
		"reaped":     cmdReaped,
		"seqcheck":   cmdSeqcheck,
		"deploydir":  cmdDeploydir,
		"chromedom":  cmdChromeDOM,
	}
}

// Setup is a testscript.Params.Setup (or part of one) that gives each
// script GSUP_TEST_TAG=$WORK, which every process it starts inherits (so
// `noprocs` finds them), and SOCKDIR, a short folder under /tmp for
// UNIX sockets, removed when the script ends.
func Setup(env *testscript.Env) error {
	env.Setenv("GSUP_TEST_TAG", env.WorkDir)
	dir, err := makeShortDir()
	if err != nil {
		return err
	}
	env.Defer(func() { os.RemoveAll(dir) })
	env.Setenv("SOCKDIR", dir)
	return nil
}

// makeShortDir makes a new folder with a short name, under /tmp when it
// exists (TMPDIR may be long).
func makeShortDir() (string, error) {
	base := "/tmp"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		base = ""
	}
	return os.MkdirTemp(base, "gs")
}

// cmdFlags parses a command's flags (which come first), always with -t,
// and fails the script on a bad one, or with "usage: NAME USAGE" unless
// min to max positional arguments follow.
func cmdFlags(ts *testscript.TestScript, fs *flag.FlagSet, args []string, min, max int, usage string) (timeout time.Duration, pos []string) {
	fs.DurationVar(&timeout, "t", DefaultTimeout, "how long to wait")
	var errBuf strings.Builder
	fs.SetOutput(&errBuf)
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("%s: %v", fs.Name(), err)
	}
	if pos = fs.Args(); len(pos) < min || len(pos) > max {
		ts.Fatalf("usage: %s %s", fs.Name(), usage)
	}
	return timeout, pos
}

// tail returns the end of s, at most n bytes, for messages.
func tail(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strconv.Quote(s)
}

// waitfile [-t DUR] [-nonempty] FILE; ! waitfile FILE waits until it is gone.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("waitfile", flag.ContinueOnError)
	nonempty := fs.Bool("nonempty", false, "also wait until it is not empty")
	timeout, pos := cmdFlags(ts, fs, args, 1, 1, "[-t DUR] [-nonempty] FILE")
	path := ts.MkAbs(pos[0])
	Eventually(ts, "waitfile "+pos[0], timeout, func() (bool, string) {
		fi, err := os.Stat(path)
		if neg {
			if err != nil {
				return true, ""
			}
			return false, fmt.Sprintf("it exists (%d bytes)", fi.Size())
		}
		if err != nil {
			return false, err.Error()
		}
		if *nonempty && fi.Size() == 0 {
			return false, "it is empty"
		}
		return true, ""
	})
}

// waitmatch [-t DUR] FILE REGEXP [COUNT]; ! waitmatch asserts no match now.
func cmdWaitmatch(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("waitmatch", flag.ContinueOnError)
	timeout, pos := cmdFlags(ts, fs, args, 2, 3, "[-t DUR] FILE REGEXP [COUNT]")
	re, err := regexp.Compile("(?m)" + pos[1])
	ts.Check(err)
	count := 1
	if len(pos) == 3 {
		if count, err = strconv.Atoi(pos[2]); err != nil || count < 1 {
			ts.Fatalf("waitmatch: bad count %q", pos[2])
		}
	}
	path := ts.MkAbs(pos[0])
	if neg {
		data, _ := os.ReadFile(path)
		if n := len(re.FindAllIndex(data, -1)); n >= count {
			ts.Fatalf("waitmatch: %s matches %q %d times: %s", pos[0], pos[1], n, tail(string(data), 2000))
		}
		return
	}
	Eventually(ts, fmt.Sprintf("waitmatch %s %q", pos[0], pos[1]), timeout, func() (bool, string) {
		data, err := os.ReadFile(path)
		if err != nil {
			return false, err.Error()
		}
		n := len(re.FindAllIndex(data, -1))
		if n >= count {
			return true, ""
		}
		return false, fmt.Sprintf("%d of %d matches in %s", n, count, tail(string(data), 2000))
	})
}

// httpget [-t DUR] [-status N] [-unix PATH] [-H 'K: V']... [-X METHOD] [-d BODY] [-i] [-once] URL [REGEXP]
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("httpget", flag.ContinueOnError)
	status := fs.Int("status", 200, "the status to wait for")
	unixPath := fs.String("unix", "", "connect to this UNIX socket `PATH`")
	var headers multiFlag
	fs.Var(&headers, "H", "request header `K: V` (repeatable; Host sets the Host)")
	method := fs.String("X", "GET", "request method")
	body := fs.String("d", "", "request body")
	include := fs.Bool("i", false, "write the status line and response headers before the body")
	once := fs.Bool("once", false, "make one request, no retries")
	timeout, pos := cmdFlags(ts, fs, args, 1, 2, "[-t DUR] [-status N] [-unix PATH] [-H 'K: V'] [-X M] [-d BODY] [-i] [-once] URL [REGEXP]")
	url := pos[0]
	var re *regexp.Regexp
	if len(pos) == 2 {
		var err error
		re, err = regexp.Compile("(?m)" + pos[1])
		ts.Check(err)
	}
	sock := ""
	if *unixPath != "" {
		sock = ts.MkAbs(*unixPath)
	}
	client := newHTTPClient(sock, true)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)

	var out string
	attempt := func() (bool, string) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		var rd io.Reader
		if *body != "" {
			rd = strings.NewReader(*body)
		}
		req, err := http.NewRequestWithContext(ctx, *method, url, rd)
		ts.Check(err)
		for _, h := range headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok {
				ts.Fatalf("httpget: bad header %q (want 'Key: value')", h)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if strings.EqualFold(k, "Host") {
				req.Host = v
			} else {
				req.Header.Add(k, v)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return neg, err.Error()
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var b strings.Builder
		if *include {
			fmt.Fprintf(&b, "%s %s\n", resp.Proto, resp.Status)
			for _, k := range sortedKeys(resp.Header) {
				for _, v := range resp.Header[k] {
					fmt.Fprintf(&b, "%s: %s\n", k, v)
				}
			}
			b.WriteString("\n")
		}
		b.Write(data)
		out = b.String()
		if err != nil {
			return false, fmt.Sprintf("status %d, reading body: %v", resp.StatusCode, err)
		}
		if neg {
			return false, fmt.Sprintf("status %d", resp.StatusCode)
		}
		if resp.StatusCode != *status {
			return false, fmt.Sprintf("status %d (want %d), body %s", resp.StatusCode, *status, tail(string(data), 1000))
		}
		if re != nil && !re.Match(data) {
			return false, fmt.Sprintf("body does not match %q: %s", pos[1], tail(string(data), 1000))
		}
		return true, ""
	}
	var ok bool
	var last string
	if *once {
		ok, last = attempt()
	} else {
		ok, last = Poll(timeout, attempt)
	}
	io.WriteString(ts.Stdout(), out)
	if !ok {
		what := "httpget " + url
		if neg {
			what = "! " + what
		}
		if !*once {
			last = fmt.Sprintf("timed out after %v; last saw: %s", timeout, last)
		}
		ts.Fatalf("%s: %s", what, last)
	}
}

// waitport [-t DUR] HOST:PORT; ! waitport waits until connecting fails.
func cmdWaitport(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("waitport", flag.ContinueOnError)
	timeout, pos := cmdFlags(ts, fs, args, 1, 1, "[-t DUR] HOST:PORT")
	Eventually(ts, "waitport "+pos[0], timeout, func() (bool, string) {
		c, err := net.DialTimeout("tcp", pos[0], time.Second)
		if err != nil {
			return neg, err.Error()
		}
		c.Close()
		return !neg, "connected"
	})
}

// pidkill [-g] SIG PIDFILE
func cmdPidkill(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("pidkill", flag.ContinueOnError)
	group := fs.Bool("g", false, "signal the pid's whole process group")
	_, pos := cmdFlags(ts, fs, args, 2, 2, "[-g] SIG PIDFILE")
	sig, err := parseSignal(pos[0])
	ts.Check(err)
	pid := readPid(ts, pos[1])
	target := pid
	if *group {
		pgid, err := syscall.Getpgid(pid)
		switch {
		case err != nil && neg:
			return
		case err != nil:
			ts.Fatalf("pidkill -g: process group of %d: %v", pid, err)
		case pgid == syscall.Getpgrp():
			// Background commands share the test's own group.
			ts.Fatalf("pidkill -g: process %d is in the test's own process group %d", pid, pgid)
		}
		target = -pgid
	}
	err = syscall.Kill(target, sig)
	switch {
	case neg && err == nil:
		ts.Fatalf("pidkill: sent %s to %d, which was expected to fail", signalName(sig), target)
	case !neg && err != nil:
		ts.Fatalf("pidkill %s %d: %v", signalName(sig), target, err)
	}
}

// pidgone [-t DUR] PIDFILE; ! pidgone asserts the process is alive now.
func cmdPidgone(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("pidgone", flag.ContinueOnError)
	timeout, pos := cmdFlags(ts, fs, args, 1, 1, "[-t DUR] PIDFILE")
	pid := readPid(ts, pos[0])
	if neg {
		if !alive(pid) {
			ts.Fatalf("pidgone: process %d (%s) is not running", pid, pos[0])
		}
		return
	}
	Eventually(ts, fmt.Sprintf("pidgone %s (%d)", pos[0], pid), timeout, func() (bool, string) {
		if !alive(pid) {
			return true, ""
		}
		return false, fmt.Sprintf("state %s: %s", procState(pid), cmdline(pid))
	})
}

// noprocs [-t DUR] [TAG]; TAG defaults to GSUP_TEST_TAG=$GSUP_TEST_TAG.
// ! noprocs waits until at least one such process exists.
func cmdNoprocs(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("noprocs", flag.ContinueOnError)
	timeout, pos := cmdFlags(ts, fs, args, 0, 1, "[-t DUR] [TAG]")
	var tag string
	if len(pos) == 1 {
		tag = pos[0]
	} else {
		tag = scriptTag(ts, "noprocs")
	}
	if tag == "" {
		ts.Fatalf("noprocs: empty TAG")
	}
	Eventually(ts, "noprocs "+tag, timeout, func() (bool, string) {
		pids := tagged(tag)
		if neg {
			return len(pids) > 0, "no such process"
		}
		if len(pids) == 0 {
			return true, ""
		}
		var b strings.Builder
		for _, pid := range pids {
			fmt.Fprintf(&b, "\n\tpid %d (%s): %s", pid, procState(pid), cmdline(pid))
		}
		return false, fmt.Sprintf("%d processes:%s", len(pids), b.String())
	})
}

// countlines FILE REGEXP N
func cmdCountlines(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! countlines")
	}
	if len(args) != 3 {
		ts.Fatalf("usage: countlines FILE REGEXP N")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	want, err := strconv.Atoi(args[2])
	if err != nil || want < 0 {
		ts.Fatalf("countlines: bad count %q", args[2])
	}
	text := ts.ReadFile(args[0])
	n := 0
	for line := range strings.Lines(text) {
		if re.MatchString(strings.TrimSuffix(line, "\n")) {
			n++
		}
	}
	if n != want {
		ts.Fatalf("countlines %s %q: %d lines match, want %d; content: %s", args[0], args[1], n, want, tail(text, 2000))
	}
}

// freeport VAR...: sets each VAR to a different TCP port that was free on
// 127.0.0.1 a moment ago.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: freeport VAR...")
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, name := range args {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		lns = append(lns, ln)
		ts.Setenv(name, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
}

// shortdir VAR: sets VAR to a new folder with a short path (for UNIX
// sockets), removed when the script ends.
func cmdShortdir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: shortdir VAR")
	}
	dir, err := makeShortDir()
	ts.Check(err)
	ts.Defer(func() { os.RemoveAll(dir) })
	ts.Setenv(args[0], dir)
}

// readenv VAR FILE: sets VAR to FILE's content without surrounding space.
func cmdReadenv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: readenv VAR FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	if errors.Is(err, os.ErrNotExist) {
		ts.Fatalf("readenv: %s does not exist (waitfile first?)", args[1])
	}
	ts.Check(err)
	ts.Setenv(args[0], strings.TrimSpace(string(data)))
}

// portblock VAR: sets VAR to a random base port below the kernel's
// ephemeral range (10000-29999) such that the first ten ports of three
// consecutive blocks of 100 (base, base+100, base+200: gsup's children's
// ports for three process types) are free on 127.0.0.1 just now. Ports
// from freeport come from the ephemeral range, so the two never meet.
func cmdPortblock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: portblock VAR")
	}
	free := func(base int) bool {
		for blk := 0; blk < 3; blk++ {
			for i := 0; i < 10; i++ {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+blk*100+i))
				if err != nil {
					return false
				}
				ln.Close()
			}
		}
		return true
	}
	for try := 0; try < 100; try++ {
		base := 10000 + rand.IntN(19700)
		if free(base) {
			ts.Setenv(args[0], strconv.Itoa(base))
			return
		}
	}
	ts.Fatalf("portblock: no free block found")
}

// deploydir VAR: sets VAR to the absolute path of examples/deploy of the
// module under test, found from the folder go test runs the package in.
func cmdDeploydir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: deploydir VAR")
	}
	dir, err := os.Getwd()
	ts.Check(err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			ts.Fatalf("deploydir: no go.mod above the test's folder")
		}
		dir = parent
	}
	deploy := filepath.Join(dir, "examples", "deploy")
	if _, err := os.Stat(deploy); err != nil {
		ts.Fatalf("deploydir: %v", err)
	}
	ts.Setenv(args[0], deploy)
}
