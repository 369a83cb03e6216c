"""Minimal WSGI app for the gsup benchmark's gunicorn reference rows.

Same endpoints as upstream/ (the Go app): /, /healthz, /stream, /echo.
Run: gunicorn -b 127.0.0.1:PORT --chdir bench/internal/wsgi wsgi_hello:app
(bench/http.sh's Gunicorn rows; the same file as the shared harness's conf/wsgi_hello.py)
"""
import time
from urllib.parse import parse_qs

HELLO = b"hello\n"


def _int(qs, name, default, lo, hi):
    try:
        v = int(qs.get(name, [default])[0])
    except ValueError:
        return default
    return max(lo, min(hi, v))


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Content-Length", "6")])
        return [HELLO]
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
    if path == "/stream":
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        n, ms = _int(qs, "n", 5, 1, 1000), _int(qs, "ms", 200, 0, 10000)
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Cache-Control", "no-cache")])

        def gen():
            t0 = time.monotonic()
            for i in range(n):
                if i:
                    time.sleep(ms / 1000.0)
                yield ("chunk %d t=%dms\n" % (i, (time.monotonic() - t0) * 1000)).encode()
        return gen()
    if path == "/echo":
        lines = [
            "method: %s" % environ.get("REQUEST_METHOD"),
            "uri: %s" % environ.get("RAW_URI", path),
            "proto: %s" % environ.get("SERVER_PROTOCOL"),
            "host: %s" % environ.get("HTTP_HOST", ""),
            "remote_addr: %s:%s" % (environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT")),
        ]
        hdrs = sorted((k[5:].replace("_", "-").title(), v)
                      for k, v in environ.items() if k.startswith("HTTP_"))
        lines += ["header: %s: %s" % kv for kv in hdrs]
        body = ("\n".join(lines) + "\n").encode()
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]
