// Package testprog provides the helper programs and script commands that
// gsup's end-to-end scripts (testscripts/*.txtar) use, so the scripts
// depend on nothing the machine may lack and never synchronise by sleeping.
//
// Wiring, in a TestMain:
//
//	testscript.Main(m, programs) // testprog.Programs() plus "gsup"
//	testscript.Run(t, testscript.Params{Cmds: testprog.Commands(), Setup: testprog.Setup, ...})
//
// # Programs
//
// Programs returns them in the form testscript.Main takes. Each is the test
// binary run under another name, so it is on PATH inside scripts and in
// the environment gsup passes to its children. Flags may come before or
// after positional arguments. Every -pidfile, -ready and PIDFILE file is
// written atomically (rename), so `waitfile` never sees it half written.
//
//	echoserver [-unix] [-addr ADDR] [-ready FILE] [-pidfile F] [-notify] [-grace DUR] [-log]
//	    HTTP server on 127.0.0.1:$PORT; with -unix on $GSUP_SOCKET; else on
//	    fd 3 when LISTEN_FDS is set and LISTEN_PID is its pid (a mismatch is
//	    reported on stderr and ignored); -addr overrides all (127.0.0.1:0
//	    picks a port). Prints "listening on ADDR" once listening, then writes
//	    -ready (the address), -pidfile, and sends READY=1 with -notify.
//	    Every path answers 200 with "PS=web.1 PORT=5000 pid=N path=/x", a
//	    line "method=GET host=H remote=R proto=HTTP/1.1", then one
//	    "Name: value" line per forwarding header received (Forwarded,
//	    X-Forwarded-*, X-Real-Ip, underscore spellings), sorted.
//	    Special paths: /status/NNN answers NNN; /sleep/MS answers after MS
//	    milliseconds (stops early if the client goes away); /stream sends
//	    five lines "chunk 1 web.1".."chunk 5 web.1" ($PS, when set) 50ms
//	    apart, each flushed; /headers lists the request line, Host and
//	    every header; /file/NAME answers the content of file NAME of its
//	    working directory; /env/NAME the value of variable NAME; /exit
//	    answers, then exits with status 3. TERM or
//	    INT: graceful http.Server.Shutdown (at most -grace, 10s), printing
//	    "echoserver stopping on TERM" and "echoserver stopped", exit 0.
//	    -log prints "PS METHOD URI" after each request.
//	siglog FILE [-term-exit N] [-die] [-pidfile F]
//	    Appends "ready" to FILE once its handlers are installed, then the
//	    name (HUP, INT, QUIT, USR1, USR2, TERM, WINCH, TTIN, TTOU, ALRM,
//	    CONT, TSTP) of every signal it gets, a line each, and prints
//	    "siglog got NAME". Exits with -term-exit (0) after TERM or INT;
//	    with -die it dies of that signal instead (its parent sees it
//	    killed, as by a signal it does not handle).
//	    The kernel merges a signal sent again before the first is handled.
//	exitwith CODE [-after DUR] [-print TEXT] [-stderr TEXT]
//	    Prints TEXT, waits DUR, exits with CODE.
//	noterm [-pidfile F]
//	    Ignores TERM and INT (printing "noterm ignoring TERM"), runs until
//	    killed. At the end of a script testscript sends INT to background
//	    commands and waits, so a script that starts noterm itself in the
//	    background must kill it (pidkill KILL).
//	spawnchild PIDFILE [-exit] [-noterm] [-newgroup] [-pidfile F]
//	    Starts a grandchild (this binary run as "sleeper", in the same
//	    process group, stdio on /dev/null), writes its pid to PIDFILE, then
//	    runs until killed; with -exit it exits 0 at once, leaving the
//	    grandchild behind in its group. -noterm: the grandchild ignores TERM
//	    and INT. -pidfile: spawnchild's own pid. -newgroup: spawnchild first
//	    makes a process group of its own (for scripts that start it
//	    directly: background commands share the test's group).
//	sleeper [-pidfile F] [-noterm]
//	    Runs until killed.
//	spam -lines N [-len L] [-tag T] [-stderr] [-nonl TEXT]
//	    Writes N lines "T seq=000001 xxx..." padded with x to L bytes (64;
//	    newline not counted) as fast as it can, alternating stdout and
//	    stderr with -stderr; then TEXT with no newline; exits 0.
//	printenv2 KEY... [-wait]
//	    Prints KEY=value for each KEY (empty when unset); with -wait, then
//	    waits for TERM or INT and exits 0.
//	notifysock PATH OUTFILE [-ready FILE]
//	    Plays systemd's side of NOTIFY_SOCKET: binds a unixgram socket at
//	    PATH ("@name" for an abstract one) and appends each datagram to
//	    OUTFILE as one line, its lines joined by spaces ("READY=1
//	    STATUS=ok"), until TERM or INT. OUTFILE appears with the first
//	    message; the socket file (or -ready FILE) says it is bound, so wait
//	    for it before starting what will send.
//	sdready [-delay DUR] [-status TEXT] [-pidfile F]
//	    Sends READY=1 (and STATUS=TEXT) to $NOTIFY_SOCKET after DUR, then
//	    waits for TERM or INT and exits 0. Exits 1 if NOTIFY_SOCKET is unset.
//	logwriter [-file F] [-n N] [-every DUR] [-reopen SIG] [-pidfile F]
//	    Writes "line 000001", "line 000002"... every DUR (100ms) to stdout,
//	    or appended to F, which it reopens on SIG (USR1) and says so on
//	    stderr. Exits 0 after N lines (0: never) or on TERM or INT.
//	stdiolines [-ready FILE] LINE...
//	    Prints "terminal COLSxROWS echo=on|off" or "not a terminal", then
//	    each LINE, buffered as C stdio does: a line at a time on a terminal,
//	    else in 4 KiB blocks written only when full or at a normal exit.
//	    Then writes -ready and runs until a signal kills it (losing what
//	    is still buffered).
//	hammer [-c N] [-for DUR] [-until FILE] [-n MAX] [-every DUR] [-unix PATH]
//	       [-status N] [-match REGEXP] [-ready FILE] URL
//	    Load for "no request fails" checks, meant for the background: N (2)
//	    clients GET URL over keep-alive connections, each pausing DUR (2ms)
//	    between requests, until FILE exists, DUR (10s) passes, MAX requests
//	    were made, or TERM or INT. -ready FILE is written after the first
//	    good answer. Prints "requests=N ok=N failed=N" and up to five
//	    "failure: ..." lines; exits 1 if anything failed or nothing was sent.
//	holdconns [-n N] [-send TEXT] [-closed] [-until FILE] [-for DUR]
//	          [-ready FILE] HOST:PORT
//	    Opens N (100) TCP connections, sends TEXT (Go string escapes: \r\n)
//	    on each, and holds them until FILE exists or DUR (30s) passes, then
//	    closes them; with -closed, until the server has closed every one,
//	    printing "closed=N" and "first: " with the first line the first
//	    connection got. -ready FILE gets the number opened. Prints
//	    "opened=N"; exits 1 if fewer than N could be opened (or closed).
//
// # Commands
//
// Commands returns them for testscript.Params.Cmds. The waiting ones poll
// (10ms growing to 100ms) until their deadline, DefaultTimeout (10s)
// unless given -t DUR before the other arguments, and on timeout fail
// with what they saw last. Relative paths are relative to the script's
// current folder. Regular expressions are in multi-line mode, as in
// testscript's own stdout and grep.
//
//	waitfile [-t DUR] [-nonempty] FILE
//	    Until FILE exists (and is not empty). ! waitfile: until it is gone.
//	waitmatch [-t DUR] FILE REGEXP [COUNT]
//	    Until FILE's content matches REGEXP at least COUNT (1) times: a log
//	    line, a notifysock transcript. ! waitmatch: fails if it matches now.
//	httpget [-t DUR] [-status N] [-unix PATH] [-H 'K: V']... [-X METHOD]
//	        [-d BODY] [-i] [-once] URL [REGEXP]
//	    Requests URL (a new connection each try, redirects not followed)
//	    until the status is N (200) and the body matches REGEXP, and writes
//	    the last body to stdout (after the status line and headers with -i)
//	    for stdout and cmp. -H Host sets the Host. -unix connects to that
//	    socket, whatever the URL's host and the path's length. -once: one
//	    try. ! httpget: until a request fails to get any answer.
//	waitport [-t DUR] HOST:PORT
//	    Until a TCP connection succeeds. ! waitport: until one fails.
//	pidkill [-g] SIG PIDFILE
//	    Sends SIG (TERM, SIGHUP, 9...) to the pid in PIDFILE, or with -g to
//	    the process group it is in (refused when that is the test's own
//	    group). ! pidkill: sending must fail (no such process).
//	pidgone [-t DUR] PIDFILE
//	    Until the process in PIDFILE has exited (a zombie counts as gone).
//	    ! pidgone: fails unless it is alive now.
//	noprocs [-t DUR] [TAG]
//	    Until no live process (other than the test) has TAG in its
//	    environment: an entry equal to TAG when TAG holds '=', else one
//	    containing it. TAG defaults to GSUP_TEST_TAG=$GSUP_TEST_TAG, which
//	    Setup exports. On timeout, lists each offender's pid, state and
//	    command line. ! noprocs: until there is one.
//	countlines FILE REGEXP N
//	    Exactly N lines of FILE (or stdout, stderr) match REGEXP.
//	freeport VAR...
//	    Sets each VAR to a distinct TCP port free on 127.0.0.1 just now.
//	portblock VAR
//	    Sets VAR to a base port below the ephemeral range whose first ten
//	    ports of three blocks of 100 (gsup's ports for three types) are
//	    free on 127.0.0.1 just now.
//	shortdir VAR
//	    Sets VAR to a new folder with a short path under /tmp, for UNIX
//	    sockets (108 bytes at most; $WORK may be long); removed at the end.
//	readenv VAR FILE
//	    Sets VAR to FILE's content, trimmed (an address from -ready).
//	tlscert DIR NAME...
//	    Writes a new test CA (DIR/ca.pem) and a certificate it signs for
//	    the names, ECDSA P-256 (DIR/cert.pem, DIR/key.pem).
//	cleanup
//	    When the script ends, passed or failed, sends SIGKILL to each live
//	    process that has GSUP_TEST_TAG=$GSUP_TEST_TAG in its environment:
//	    what a peer (runsv, supervisord) started and a failed script left
//	    behind, reparented where testscript cannot reach it.
//	childpid [-t DUR] PIDFILE OUTFILE
//	    Until the process in PIDFILE has a child; writes the child's pid to
//	    OUTFILE: the pid, as seen from here, of what a wrapper (unshare
//	    --fork) started, for pidkill.
//	reaped [-t DUR] PIDFILE NAME
//	    Until the process in PIDFILE has no child that is a zombie and none
//	    whose command name is NAME: the orphans it adopted have exited and
//	    were reaped.
//	seqcheck REGEXP FILE...
//	    The lines of the FILEs (glob patterns; a name ending in .gz is read
//	    decompressed) that match REGEXP carry a number in its first capture
//	    group. Fails unless every number from 1 to the largest occurs
//	    exactly once, and prints "N numbered lines in K files".
//	deploydir VAR
//	    Sets VAR to the absolute path of examples/deploy of the module
//	    under test, so a script can copy an example file and adapt it.
//	chromedom [-t DUR] [-wait EXPR] [-insecure] URL
//	    Opens URL in headless Chromium, waits until the JavaScript EXPR is
//	    true in the page, and prints the page's DOM (its scripts' work
//	    included, unlike chromium --dump-dom). -insecure: the server's
//	    certificate is accepted unchecked (one a test made).
//
// Setup exports GSUP_TEST_TAG=$WORK and SOCKDIR (a shortdir) to a script.
//
// # Helpers for Go tests
//
// Eventually (and Poll, for a caller that reports the failure itself) is
// the one poll with a deadline, for tests and the commands above alike;
// Children is the one way to find a process's children.
package testprog
