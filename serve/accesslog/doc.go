// Package accesslog writes the HTTP front's access log in Gunicorn's
// access_log_format, so that a Gunicorn user's format string works unchanged.
//
// # Format
//
// Compile takes the format in Python %-formatting syntax, as Gunicorn does
// (Gunicorn renders it with `format % atoms`): `%(NAME)s`, with optional
// flags, width and precision (`%(h)-15s`, `%(U).40s`), `%(NAME)d` for the
// numeric atoms, and `%%` for a literal percent sign. The atoms and their
// meanings are Gunicorn's (reference/gunicorn.md section 6.3):
//
//	h  client address (REMOTE_ADDR); "-" when there is none (gsup's choice on
//	   a UNIX socket, where Gunicorn prints an empty string)
//	l  always "-"
//	u  user name of an "Authorization: Basic" header, else "-"
//	t  time the request finished, [24/Nov/2026:10:00:00 +0000], in the location
//	   of Entry.Start (time.Now() gives local time, as Gunicorn's strftime)
//	r  request line: METHOD RAW_URI SERVER_PROTOCOL
//	m  method             U  path (PATH_INFO, percent-decoded, no query)
//	q  query string       H  protocol (HTTP/1.1)
//	s  status code        B  body bytes sent      b  body bytes sent ("0" when none)
//	f  Referer, else "-"  a  User-Agent, else "-"
//	T  duration, whole seconds      M  milliseconds      D  microseconds
//	L  seconds with six decimals (1.000250)
//	p  "<pid>"
//	{name}i  request header      {name}o  response header
//	{name}e  environ value: REMOTE_ADDR, REMOTE_PORT, SERVER_NAME,
//	         SERVER_PORT, SERVER_PROTOCOL, SERVER_SOFTWARE, REQUEST_METHOD,
//	         PATH_INFO, SCRIPT_NAME, QUERY_STRING, RAW_URI, CONTENT_TYPE,
//	         CONTENT_LENGTH, HTTP_*, wsgi.url_scheme, then gsup's process
//	         environment as it was when Compile ran (Gunicorn's
//	         documentation calls this atom "os environment")
//
// Names inside braces are case-insensitive, as in Gunicorn
// (%({X-Forwarded-For}i)s and %({x-forwarded-for}i)s are the same atom). An
// unknown atom prints "-", as Gunicorn's SafeAtoms does, so a format with a
// typo still logs; a malformed %-sequence (an unclosed "%(", a missing
// conversion, %d on a text atom) is an error from Compile that names its
// byte position, where Gunicorn would log a traceback for every request.
//
// Values are escaped as Gunicorn escapes them: `"` becomes `\"`. gsup also
// writes control bytes (below 0x20, and 0x7f) as \xHH so that a value can
// never end a log line early or hide text from a terminal; Gunicorn relies on
// its parser for that. Bytes above 0x7f are written as they are.
//
// Where gsup differs on purpose: durations do not wrap after a day (Gunicorn
// uses timedelta.seconds, which does); "h" is "-" rather than "" on a UNIX
// socket; B prints "-" rather than "None" when the byte count is unknown.
//
// # Writer
//
// Writer is the file side: a buffered, goroutine-safe appender that flushes
// when 64 KiB are pending, 150 ms after the first unflushed line, and on
// Flush, Reopen and Close, so a log line costs one memory copy on the
// request path. Reopen (for SIGUSR1 and logrotate) reopens the path with
// O_APPEND. "-" writes to the stdout given to OpenWriter.
package accesslog
