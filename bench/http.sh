#!/usr/bin/env bash
# http.sh - gsup's HTTP front next to nginx and haproxy, in one run, on the
# same machine, in front of the same upstream app (bench/internal/upstream:
# "/" answers the 6-byte body "hello\n").
#
# Rows (ROWS, default "direct nginx haproxy gsup-tcp gsup-unix"):
#   direct          wrk -> upstream (the app's own capacity)
#   nginx           wrk -> nginx -> upstream (upstream block, keepalive 64,
#                   HTTP/1.1, Connection ""), access log to a file
#   nginx-buffered  the same with "access_log FILE buffer=64k flush=1s" (not in
#                   the default rows)
#   haproxy         wrk -> haproxy (mode http, http-reuse always) -> upstream,
#                   access log (option httplog) to its stdout, a file
#   gsup-tcp        wrk -> gsup -> upstream: gsup start -f Procfile -b ... --port N,
#                   Procfile "web: exec UPSTREAM", the app on 127.0.0.1:$PORT
#   gsup-unix       the same with gsup.toml [process.web] listen = "unix": the app
#                   listens on the UNIX socket $GSUP_SOCKET
#   nginx-static-4k, nginx-static-1m
#                   wrk GET /4k.bin or /1m.bin (random bytes) from nginx's
#                   "root DIR; try_files $uri @app;" with sendfile on (the
#                   app behind @app), access log to a file
#   gsup-static-4k, gsup-static-1m
#                   the same files from gsup's [serve] root = DIR (gsup-tcp's
#                   app behind it); their ratios are to the nginx-static row
#                   of the same size
#   nginx-tls, gsup-tls
#                   nginx's and gsup-tcp's setup with the front listening
#                   with TLS (nginx "listen ... ssl http2", gsup --certfile
#                   / --keyfile), one ECDSA P-256 certificate made for the
#                   run; wrk over https (HTTP/1.1 keep-alive), then an
#                   h2load run over h2 (H2LOAD); gsup-tls's ratios are to
#                   nginx-tls. Not in the default rows
# Opt-in rows for issue 12's targets (name them in ROWS; each gsup row's
# ratios are to the nginx row of its kind):
#   nginx-gunicorn, gsup-gunicorn, nginx-gunicorn-unix, gsup-gunicorn-unix
#                   a real Python app: Gunicorn (GUNICORN_WORKERS=2 sync
#                   workers) serving internal/wsgi/wsgi_hello.py ("/" answers
#                   "hello\n"), started by the script behind nginx on
#                   127.0.0.1 (nginx-gunicorn) or on a UNIX socket
#                   (nginx-gunicorn-unix, "proxy_pass http://unix:..." as
#                   Gunicorn's deployment guide has it), and as gsup's web
#                   process on 127.0.0.1:$PORT (gsup-gunicorn) or on
#                   unix:$GSUP_SOCKET (gsup-gunicorn-unix, listen = "unix");
#                   kill_mode = "mixed" as Gunicorn wants. gsup-gunicorn-unix
#                   is taken against nginx-gunicorn-unix when that row runs,
#                   else against nginx-gunicorn
#   nginx-proxy-1m, gsup-proxy-1m
#                   GET /1m: a 1 MiB answer proxied from the app; MB/s
#   nginx-upload-1m, gsup-upload-1m
#                   POST /body with a 1 MiB body (wrk -s, a Lua script), read
#                   whole by the front before it goes on (gsup buffer_body =
#                   "1MiB"; nginx client_body_buffer_size 1m, in memory);
#                   the app answers its length and CRC-32; MB/s
#   nginx-idle, gsup-idle
#                   the nginx and gsup-tcp setups with IDLE_CONNS (10000)
#                   keep-alive connections open and idle while wrk's CONNS
#                   are measured (internal/burst -get /: one answered GET on
#                   each, then nothing); their req/s against the nginx and
#                   gsup-tcp rows of the same round (put those in ROWS too),
#                   and the front's RSS (nginx master + worker, the gsup
#                   process alone) before the idle connections, with them,
#                   and after they closed, in bytes per connection. Needs an
#                   open files limit of IDLE_CONNS + 1024 (the script asks
#                   for 65536, and takes the hard limit when refused)
#   nginx-close, gsup-close
#                   the nginx and gsup-tcp setups, wrk -H 'Connection: close':
#                   a new connection per request
#   nginx-tls-close, gsup-tls-close
#                   the same against the TLS setups: a new connection and
#                   TLS handshake per request, so req/s = TLS handshakes per
#                   second; wrk resumes the session of its previous
#                   connection (session ticket), so these are resumed
#                   handshakes, not full ones
# Opt-in rows for issue 10's handshake target:
#   nginx-tls-new, gsup-tls-new
#                   the nginx-tls and gsup-tls setups (the same certificate,
#                   TLS 1.2 and 1.3 offered) measured with internal/handshake
#                   instead of wrk: HS_CONNS workers, each in a loop dials,
#                   makes a full TLS handshake with a fresh tls.Config and no
#                   session cache, sends GET / with "Connection: close",
#                   reads the 200 and closes. Never a resumption (each
#                   connection checks; a resumed one is an error), so req/s
#                   = new handshakes per second and front us/req = CPU per
#                   new handshake. The client offers the key exchange
#                   groups both servers have (HS_CURVES, X25519 and P-256),
#                   so both make the same exchange; the TLS version is the
#                   two sides' choice (HS_TLS pins it); the report counts
#                   what was negotiated. gsup-tls-new's ratios are to
#                   nginx-tls-new
# Each row: wrk, CONNS keep-alive connections, DURATION seconds, --latency,
# after a WARMUP-second wrk run that is not counted. Rounds are interleaved
# (every row once, then the next round) and the table shows medians. Even
# rounds run the rows in the reverse order (ORDER=alternate, the default),
# so that a machine that slows down or speeds up through a round does not
# favour the rows that run first in it; ORDER=fixed runs them in ROWS's
# order every round.
#
# Per row: req/s, p50, p99, errors (wrk's socket errors + non-2xx), req/s and
# p99 as ratios to nginx (per round, then the median), CPU µs per request of
# the front's own processes (utime+stime from /proc before and after the run:
# nginx master + workers, haproxy, the gsup process alone, not its children)
# and of the app, "cpu x nginx" (nginx's front + app CPU per request over the
# row's: the ratio a server CPU doing nothing else would give, the figure to
# trust when the machine is shared), the servers' share of their CPU during the
# run, and the connections the app accepted during the run. Then the issue's
# targets for gsup with PASS/FAIL.
#
# Knobs (environment):
#   DURATION=10 CONNS=50 ROUNDS=3 WARMUP=1 THREADS=2 (wrk threads) ORDER=alternate
#   ROWS="direct nginx haproxy gsup-tcp gsup-unix nginx-static-4k gsup-static-4k
#         nginx-static-1m gsup-static-1m" (also: nginx-buffered nginx-tls gsup-tls
#         and the opt-in rows above)
#   IDLE_CONNS=10000  idle rows: connections held open and idle
#   GUNICORN_WORKERS=2  Gunicorn rows: sync workers
#   HS_CONNS=$CONNS tls-new rows: the handshake client's workers
#   HS_TLS=         tls-new rows: offer only this TLS version (1.2 or 1.3);
#                   empty: both sides pick
#   HS_CURVES=X25519,P256
#                   tls-new rows: the groups offered (X25519, P256,
#                   X25519MLKEM768, ...; comma-separated); empty: Go's
#                   defaults, which put X25519MLKEM768 first: gsup takes it,
#                   nginx on OpenSSL 3.0 has no ML-KEM and makes X25519
#   H2LOAD=1        TLS rows: after wrk, h2load -n H2_REQUESTS=20000 -c CONNS
#                   -m H2_STREAMS=10 over h2 (Debian nghttp2-client), its
#                   req/s reported apart; 0: no h2load
#   PIN=1           servers (front + app) on CPU SERVER_CPU=0, wrk on LOAD_CPU=1
#   ACCESS_LOG=1    0: no access log in any front
#   PROFILE=1       one extra, uncounted wrk run per gsup row (round 1) under
#                   perf record -g on the gsup process; report in bench/.work/;
#                   PROFILE=all: every row's front (nginx: master and workers)
#   PAIRED=N        after the rounds, each gsup row and its nginx row run at
#                   once and wrk alternates PAIR_SLICE=1 s on each, N times
#                   (the order swapped every pair): a ratio per pair of
#                   adjacent runs, reported apart with their median. The
#                   rounds compare runs DURATION s apart, and this machine
#                   changes speed on that scale; PAIRED's runs are a second
#                   apart. ROUNDS=0 runs the pairs only. Not for the idle
#                   and tls-new rows
#   COUNTS=1        one extra, uncounted run per row (round 1) under perf
#                   stat -e raw_syscalls:sys_enter on the front's and the
#                   app's processes: system calls per request, reported
#                   apart (not the tls-new or idle rows)
#   GSUP_BIN=path   (default: go build -o bench/.work/gsup . from the repo root)
#   GSUP_ARGS='start {config} -b {listen} --port {port} --access-logfile {access_log} --control {dir}/gsup.sock'
#                   ({config}: "-f DIR/Procfile" or "-c DIR/gsup.toml")
#   KEEP_WORK=0     1: keep the run directory (configs, logs, wrk outputs)
#   INSTALL=1       install missing nginx / haproxy / wrk first (Debian, root;
#                   no service left running or enabled)
#
# Every wait is bounded (wrk -d inside timeout, readiness and exit waits with
# limits). Every server runs in its own session with the environment entry
# GSUPBENCH_TAG=<run>/<row>/ that its tree inherits; after each row and on
# any exit, its process group and everything carrying the tag (or running a
# program from the run's bin/) is killed by pid. Work files live under
# bench/.work/ (git-ignored).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BENCH/lib.sh"   # also REPO, and PATH with Go's and the sbin folders

DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
ROWS=${ROWS:-direct nginx haproxy gsup-tcp gsup-unix nginx-static-4k gsup-static-4k nginx-static-1m gsup-static-1m}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ACCESS_LOG=${ACCESS_LOG:-1}
PROFILE=${PROFILE:-0}
COUNTS=${COUNTS:-0}
PAIRED=${PAIRED:-0}
PAIR_SLICE=${PAIR_SLICE:-1}
GSUP_BIN=${GSUP_BIN:-}
ORDER=${ORDER:-alternate}
[[ $ORDER == alternate || $ORDER == fixed ]] || { echo "ORDER: alternate or fixed, not $ORDER" >&2; exit 2; }
GSUP_ARGS=${GSUP_ARGS:-'start {config} -b {listen} --port {port} --access-logfile {access_log} --control {dir}/gsup.sock'}
KEEP_WORK=${KEEP_WORK:-0}
INSTALL=${INSTALL:-0}
H2LOAD=${H2LOAD:-1}
H2_REQUESTS=${H2_REQUESTS:-20000}
H2_STREAMS=${H2_STREAMS:-10}
IDLE_CONNS=${IDLE_CONNS:-10000}              # idle rows: connections held idle
GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}      # Gunicorn rows: sync workers
HS_CONNS=${HS_CONNS:-$CONNS}                 # tls-new rows: handshake workers
HS_TLS=${HS_TLS:-}                           # tls-new rows: 1.2, 1.3, or both sides pick
HS_CURVES=${HS_CURVES-X25519,P256}           # tls-new rows: groups offered; empty: Go's defaults

# the issue's targets for gsup
TARGET_TCP=1.0     # req/s x nginx, TCP upstream
TARGET_UNIX=1.0    # req/s x nginx, UNIX upstream
TARGET_P99=1.0     # p99 at most this many times nginx's
TARGET_STATIC=1.0  # req/s (and MB/s) x nginx's for a static file
TARGET_TLS=1.0     # req/s x nginx's over TLS (wrk HTTP/1.1, h2load h2, new handshakes)
TARGET_APP=1.0     # req/s x nginx's with Gunicorn behind both
TARGET_LARGE=1.0   # MB/s x nginx's, 1 MiB answers and 1 MiB uploads
TARGET_IDLE=0.90   # req/s with IDLE_CONNS idle connections x the same front without them
TARGET_IDLE_B=4096 # bytes of the front's RSS per idle connection
TARGET_CLOSE=1.0   # req/s x nginx's with a new connection (or TLS handshake) per request

# INSTALL=1: install what is missing from Debian's packages (root only), with
# service starts denied during the install (policy-rc.d), then the nginx and
# haproxy services disabled at boot and stopped if their package started them.
install_tools() {
  local need=()
  command -v nginx >/dev/null || need+=(nginx)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v wrk >/dev/null || need+=(wrk)
  (( ${#need[@]} )) || return 0
  install_debs "rows without their tools will be skipped" "${need[@]}"
  stop_services "/run/nginx.pid /run/haproxy.pid" nginx haproxy
}
[[ $INSTALL == 1 ]] && install_tools

NGINX=${NGINX:-$(command -v nginx || true)}
HAPROXY=${HAPROXY:-$(command -v haproxy || true)}
WRK=${WRK:-$(command -v wrk || true)}
PERF=$(command -v perf || true)
GUNICORN=${GUNICORN:-$(command -v gunicorn || true)}
PYTHON_EXE=   # the program Gunicorn's processes run (its script's interpreter)
[[ -n $GUNICORN ]] && PYTHON_EXE=$(readlink -f "$(sed -n '1s/^#! *\([^ ]*\).*/\1/p' "$GUNICORN")" 2>/dev/null || true)
WSGI_DIR=$BENCH/internal/wsgi
H2LOAD_BIN=$(command -v h2load || true)
if [[ -z $WRK ]]; then log "wrk is missing (INSTALL=1 installs it)"; exit 1; fi

new_run http
APP=$BIN/upstream
BURST=$BIN/burst
HANDSHAKE=$BIN/handshake
NOFILE_NOTE=
STARTED=()             # pids of the servers started (each leads its own session and process group)

cleanup_first() {
  local p
  for p in "${STARTED[@]+"${STARTED[@]}"}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}

# --- build ------------------------------------------------------------------------
log "building the probe and the upstream app"
(cd "$REPO" && go build -o "$PROBE" ./bench/internal/probe && go build -o "$APP" ./bench/internal/upstream)
if [[ " $ROWS " == *"-tls-new "* ]]; then
  (cd "$REPO" && go build -o "$HANDSHAKE" ./bench/internal/handshake)
fi
if [[ " $ROWS " == *"-idle "* ]]; then
  (cd "$REPO" && go build -o "$BURST" ./bench/internal/burst)
  # the idle rows hold IDLE_CONNS connections: each front and the client need
  # that many descriptors (they inherit this limit; gsup raises its own)
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  NOFILE_NOTE="open files limit: 65536 asked, $(ulimit -n) granted (hard limit $(ulimit -Hn))"
  log "$NOFILE_NOTE"
fi

GSUP_NOTE=
if [[ " $ROWS " == *" gsup-"* ]]; then prepare_gsup; fi

NCPU=$(nproc)
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
SERVER_PIN=(); LOAD_PIN=()
if [[ $PIN == 1 ]]; then
  if (( NCPU >= 2 )) && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c "$SERVER_CPU"); LOAD_PIN=(taskset -c "$LOAD_CPU")
  else
    log "PIN=1 needs taskset and 2 cpus; running unpinned"; PIN=0
  fi
fi

KNOWN_ROWS=" direct nginx nginx-buffered haproxy gsup-tcp gsup-unix nginx-static-4k gsup-static-4k
  nginx-static-1m gsup-static-1m nginx-tls gsup-tls nginx-gunicorn gsup-gunicorn gsup-gunicorn-unix
  nginx-gunicorn-unix nginx-proxy-1m gsup-proxy-1m nginx-upload-1m gsup-upload-1m nginx-idle gsup-idle nginx-close gsup-close
  nginx-tls-close gsup-tls-close nginx-tls-new gsup-tls-new "
available() {
  [[ $KNOWN_ROWS == *[[:space:]]"$1"[[:space:]]* ]] || return 1
  case $1 in
    *-gunicorn*) [[ -n $GUNICORN ]] || return 1 ;;&
    *-idle) (( $(ulimit -n) >= IDLE_CONNS + 1024 )) || return 1 ;;&
    direct) return 0 ;;
    nginx*) [[ -n $NGINX ]] ;;
    haproxy) [[ -n $HAPROXY ]] ;;
    gsup-*) [[ -n $GSUP_BIN ]] ;;
  esac
}

# --- results ------------------------------------------------------------------------
declare -A R   # R[row.rN.key] = value, R[row.key] = summary
NOTES=()
num() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }

# kvs PREFIX CMD... : run CMD (a probe call), keep its key=value lines in R[PREFIX.key]
kvs() {
  local pre=$1 out k v
  shift
  out=$("$@" 2>>"$WORK/probe.log") || true
  while IFS='=' read -r k v; do
    [[ -n $k ]] && R["$pre.$k"]=$v
  done <<<"$out"
  return 0
}

range() {  # range VALUE... : "min-max" of the numbers
  printf '%s\n' "$@" | { grep -E '^-?[0-9]+(\.[0-9]+)?$' || true; } | sort -g |
    awk '{a[NR]=$1} END {if (NR==0) print "-"; else printf "%.2f-%.2f", a[1], a[NR]}'
}
calc() { awk "BEGIN{ $1 }"; }

# --- servers ------------------------------------------------------------------------
# start_server ROWTAG DIR STDOUT STDERR CMD... : start CMD in DIR, in its own session,
# pinned to the server CPU, with the run's tag. Sets SRV_PID (also its process group).
start_server() {
  local tag=$1 dir=$2 out=$3 err=$4
  shift 4
  (cd "$dir" && exec env GSUPBENCH_TAG="$RUNID/$tag/" "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" setsid "$@") \
    >"$out" 2>"$err" </dev/null &
  SRV_PID=$!
  STARTED+=("$SRV_PID")
}

# stop_server PID ROWTAG : SIGTERM, wait (bounded) for the exit, then kill what is
# left of its session and of its tag. Sets STOP_MS, STOP_RC, LEFT (what was still
# running 2 s after the server exited, then killed).
stop_server() {
  local p=$1 tag=$2 q keep=()
  STOP_MS=-; STOP_RC=-; LEFT=none
  if kill -TERM "$p" 2>/dev/null; then
    kvs stop "$PROBE" waitexit -pid "$p" -timeout 20s
    STOP_MS=$(val stop.exit_ms)
  fi
  kvs stop "$PROBE" left -sid "$p" -tag "$RUNID/$tag/" -timeout 2s
  LEFT=$(val stop.left)
  kill -KILL -- "-$p" 2>/dev/null || true
  "$PROBE" reap -tag "$RUNID/$tag/" >/dev/null 2>&1 || true
  STOP_RC=0; wait "$p" 2>/dev/null || STOP_RC=$?
  for q in "${STARTED[@]}"; do [[ $q == "$p" ]] || keep+=("$q"); done
  STARTED=("${keep[@]+"${keep[@]}"}")
}

# --- rows ---------------------------------------------------------------------------
# row_start ROW ROUND sets URL, FRONT_PID ("" for direct), FRONT_CPU and APP_CPU
# (arguments of "probe cpu"), ALOG (access log file or ""), ERRLOG, DIR, TAG.

UP_PORT= ; UP_PID=
start_shared_app() {
  local d=$WORK/app
  mkdir -p "$d"
  UP_PORT=$("$PROBE" freeport)
  start_server app "$d" "$d/stdout.log" "$d/stderr.log" "$APP" -addr "127.0.0.1:$UP_PORT"
  UP_PID=$SRV_PID
  kvs app.ready "$PROBE" waithttp -url "http://127.0.0.1:$UP_PORT/healthz" -timeout 20s -pid "$UP_PID"
  if ! num "$(val app.ready.ready_ms)"; then
    log "the upstream app did not come up: $(val app.ready.last); $(head -c 300 "$d/stderr.log")"
    exit 1
  fi
}

# the files of the static rows: random bytes (nothing compresses them), one
# folder for nginx's root and gsup's
WWW=$WORK/www
make_www() {
  mkdir -p "$WWW"
  head -c 4096 /dev/urandom >"$WWW/4k.bin"
  head -c 1048576 /dev/urandom >"$WWW/1m.bin"
}
# body_size ROW : the bytes of the body each request moves (the file or the
# answer asked for, the upload sent), or nothing: the rows given in MB/s
body_size() {
  case $1 in
    *-static-4k) echo 4096 ;;
    *-1m) echo 1048576 ;;
  esac
}
# ref_row ROW : the row whose figures ROW's ratios are taken against
ref_row() {
  case $1 in
    *-static-*) echo "nginx-static-${1##*-}" ;;
    nginx-gunicorn-unix) echo "$1" ;;
    gsup-gunicorn-unix) [[ " $ROWS " == *" nginx-gunicorn-unix "* ]] && echo nginx-gunicorn-unix || echo nginx-gunicorn ;;
    *-gunicorn*) echo nginx-gunicorn ;;
    nginx|nginx-buffered|haproxy|direct|gsup-tcp|gsup-unix) echo nginx ;;
    nginx-*) echo "$1" ;;
    *) echo "nginx-${1#gsup-}" ;;
  esac
}
# base_row ROW : for an idle row, the same front without the idle connections
base_row() {
  case $1 in
    nginx-idle) echo nginx ;;
    gsup-idle) echo gsup-tcp ;;
  esac
}

# the upload rows' request: wrk -s FILE
POST_LUA=$WORK/post-1m.lua
make_post_lua() {
  cat >"$POST_LUA" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("0123456789abcdef", 65536)
EOF
  # the same body for the check of each upload row's first answer
  yes 0123456789abcdef | tr -d '\n' | head -c 1048576 >"$WORK/post-1m.bin" || true
}

# gunicorn_argv ADDR : GUNI_ARGV, Gunicorn serving the bench WSGI app on ADDR
gunicorn_argv() {
  GUNI_ARGV=("$GUNICORN" -w "$GUNICORN_WORKERS" -k sync -b "$1" --backlog 2048 --graceful-timeout 5
    --chdir "$WSGI_DIR" wsgi_hello:app)
}

# start_gunicorn ADDR : the nginx-gunicorn rows' app, on 127.0.0.1:PORT or
# unix:PATH (its pid in ROW_APP_PID); fails with a note when it does not
# answer
start_gunicorn() {
  local check=(-url "http://$1/healthz")
  [[ $1 == unix:* ]] && check=(-url http://app/healthz -unix "${1#unix:}")
  gunicorn_argv "$1"
  start_server "$TAG-app" "$DIR" "$DIR/gunicorn.out" "$DIR/gunicorn.log" "${GUNI_ARGV[@]}"
  ROW_APP_PID=$SRV_PID
  kvs "$TAG.appready" "$PROBE" waithttp "${check[@]}" -timeout 30s -pid "$ROW_APP_PID"
  num "$(val "$TAG.appready.ready_ms")" && return 0
  note "$TAG: gunicorn did not answer ($(val "$TAG.appready.last"); $(tail -n 2 "$DIR/gunicorn.log" | tr '\n' ' ' | cut -c1-200))"
  return 1
}

# gsup_config ROW : the gsup row's Procfile or gsup.toml in DIR; sets CONFIG
# (gsup's argument for it)
gsup_config() {
  local row=$1 cmd="exec $APP" toml=
  case $row in
    gsup-unix) toml=$'listen = "unix"\n' ;;
    gsup-static-*) toml=$'\n[serve]\nroot = "'"$WWW"$'"\n' ;;
    gsup-upload-1m) toml=$'\n[serve]\nbuffer_body = "1MiB"\n' ;;
    gsup-gunicorn) gunicorn_argv '127.0.0.1:$PORT'; toml=$'kill_mode = "mixed"\n' ;;
    gsup-gunicorn-unix) gunicorn_argv 'unix:$GSUP_SOCKET'; toml=$'kill_mode = "mixed"\nlisten = "unix"\n' ;;
  esac
  [[ $row == gsup-gunicorn* ]] && cmd="exec ${GUNI_ARGV[*]}"
  if [[ -z $toml ]]; then
    printf 'web: %s\n' "$cmd" >"$DIR/Procfile"
    CONFIG="-f $DIR/Procfile"
  else
    printf '[process.web]\ncommand = "%s"\n%s' "$cmd" "$toml" >"$DIR/gsup.toml"
    CONFIG="-c $DIR/gsup.toml"
  fi
}

# the TLS rows' certificate: one ECDSA P-256 key and self-signed certificate
# for the run, the same file for every front
CERT=$WORK/cert.pem; KEY=$WORK/key.pem
make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -keyout "$KEY" -out "$CERT" >"$WORK/openssl.log" 2>&1 ||
    { log "openssl could not make the certificate: $(tail -n 2 "$WORK/openssl.log")"; exit 1; }
}

alog_path() { if [[ $ACCESS_LOG == 1 ]]; then echo "$1/access.log"; else echo ""; fi; }

conf_nginx() {  # conf_nginx DIR PORT ROW [APP_ADDR]
  local d=$1 port=$2 row=$3 app_addr=${4:-127.0.0.1:$UP_PORT} al loc listen conns=4096 body=
  mkdir -p "$d/tmp"
  al=off
  if [[ $ACCESS_LOG == 1 ]]; then
    al=$d/access.log
    [[ $row == nginx-buffered ]] && al+=" combined buffer=64k flush=1s"
  fi
  # the idle rows' connections on top of the usual ones
  [[ $row == nginx-idle ]] && conns=$(( IDLE_CONNS + 4096 ))
  # an upload read whole into memory before it goes on, as gsup's buffer_body;
  # an answer taken from the app into 1 MiB of memory, as gsup's buffer_response
  [[ $row == nginx-upload-1m ]] && body="client_max_body_size 2m; client_body_buffer_size 1m;"
  [[ $row == nginx-proxy-1m ]] && body="proxy_buffer_size 64k; proxy_buffers 16 64k; proxy_busy_buffers_size 128k;"
  loc='location /'
  if [[ $row == nginx-static-* ]]; then
    # nginx's root in front of an app, as gsup's [serve] root (sendfile on,
    # no open_file_cache: nginx's defaults)
    loc='location @app'
    cat >"$d/static.conf" <<EOF
        sendfile on;
        location / {
            root $WWW;
            try_files \$uri @app;
        }
EOF
  else
    : >"$d/static.conf"
  fi
  listen="127.0.0.1:$port backlog=4096"
  if [[ $row == nginx-tls* ]]; then
    # TLS 1.2 and 1.3, as gsup offers (nginx 1.22's default stops at 1.2)
    listen="127.0.0.1:$port ssl http2 backlog=4096;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3"
  fi
  cat >"$d/nginx.conf" <<EOF
# one worker on the server CPU; private pid, logs and temp paths
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;

events {
    worker_connections $conns;
}

http {
    client_body_temp_path $d/tmp/client;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;

    access_log $al;
    $body
    # wrk's connections are never closed by the front during a run
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    upstream app {
        server $app_addr;
        keepalive 64;
        keepalive_requests 1000000;
    }

    server {
        listen $listen;
        include $d/static.conf;
        $loc {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # the fields gsup sends, so that the app behind either front
            # parses the same request (Host as the client sent it, and
            # X-Forwarded-Host, which gsup always sets)
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
        }
    }
}
EOF
}

conf_haproxy() {  # conf_haproxy DIR PORT
  local d=$1 port=$2 lg='' ld=''
  if [[ $ACCESS_LOG == 1 ]]; then
    lg='log stdout format raw local0'; ld='log global'
  fi
  cat >"$d/haproxy.cfg" <<EOF
# one thread on the server CPU; with "log stdout" haproxy's stdout is the access log
global
    nbthread 1
    maxconn 8192
    $lg

defaults
    mode http
    $ld
    option httplog
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 75s
    timeout server 75s
    timeout http-keep-alive 75s

frontend web
    bind 127.0.0.1:$port
    default_backend app

backend app
    server app1 127.0.0.1:$UP_PORT maxconn 1024
EOF
}

row_start() {  # row_start ROW ROUND
  local row=$1 round=$2 port args al app_addr=127.0.0.1:$UP_PORT
  TAG=$row-r$round; DIR=$WORK/$TAG; READY=0; FRONT_PID=; FRONT_CPU=(); APP_CPU=("$UP_PID"); ALOG=; ERRLOG=; URL_PATH=/
  ROW_APP_PID=; STATS=1; WRK_EXTRA=()
  mkdir -p "$DIR"
  if [[ $row == direct ]]; then
    URL=http://127.0.0.1:$UP_PORT; READY=1
    return 0
  fi
  port=$("$PROBE" freeport)
  URL=http://127.0.0.1:$port
  [[ $row == *-tls || $row == *-tls-close || $row == *-tls-new ]] && URL=https://127.0.0.1:$port
  case $row in
    *-static-4k) URL_PATH=/4k.bin ;;
    *-static-1m) URL_PATH=/1m.bin ;;
    *-proxy-1m) URL_PATH=/1m ;;
    *-upload-1m) URL_PATH=/body; WRK_EXTRA=(-s "$POST_LUA") ;;
    *-close) WRK_EXTRA=(-H 'Connection: close') ;;
    *-gunicorn*) STATS=0 ;;   # the WSGI app has no /stats
  esac
  case $row in
    nginx*)
      if [[ $row == nginx-gunicorn ]]; then
        app_addr=127.0.0.1:$("$PROBE" freeport)
      elif [[ $row == nginx-gunicorn-unix ]]; then
        app_addr=unix:$DIR/gunicorn.sock
      fi
      if [[ $row == nginx-gunicorn* ]]; then
        start_gunicorn "$app_addr" || return 1
        APP_CPU=(-tree "$ROW_APP_PID")
      fi
      conf_nginx "$DIR" "$port" "$row" "$app_addr"
      [[ $ACCESS_LOG == 1 ]] && ALOG=$DIR/access.log
      ERRLOG=$DIR/error.log
      start_server "$TAG" "$DIR" "$DIR/stdout.log" "$DIR/stderr.log" "$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log"
      FRONT_PID=$SRV_PID; FRONT_CPU=(-tree "$FRONT_PID") ;;
    haproxy)
      conf_haproxy "$DIR" "$port"
      [[ $ACCESS_LOG == 1 ]] && ALOG=$DIR/access.log
      ERRLOG=$DIR/stderr.log
      start_server "$TAG" "$DIR" "$DIR/access.log" "$DIR/stderr.log" "$HAPROXY" -db -f "$DIR/haproxy.cfg"
      FRONT_PID=$SRV_PID; FRONT_CPU=("$FRONT_PID") ;;
    gsup-*)
      gsup_config "$row"
      al=$(alog_path "$DIR"); ALOG=$al
      args=$GSUP_ARGS
      if [[ -z $al ]]; then
        args=${args//--access-logfile \{access_log\}/}
      fi
      args=${args//\{config\}/$CONFIG}
      args=${args//\{listen\}/127.0.0.1:$port}
      args=${args//\{port\}/$("$PROBE" freeport)}
      args=${args//\{dir\}/$DIR}
      args=${args//\{access_log\}/$al}
      [[ $row == gsup-tls* ]] && args+=" --certfile $CERT --keyfile $KEY"
      local argv
      read -r -a argv <<<"$args"   # split on blanks, never globbed
      ERRLOG=$DIR/stderr.log
      start_server "$TAG" "$DIR" "$DIR/stdout.log" "$DIR/stderr.log" "$GSUP_BIN" "${argv[@]}"
      FRONT_PID=$SRV_PID; FRONT_CPU=("$FRONT_PID")
      APP_CPU=(-tree -exe "$APP" "$FRONT_PID")
      [[ $row == gsup-gunicorn* ]] && APP_CPU=(-tree -exe "$PYTHON_EXE" "$FRONT_PID") ;;
  esac
  kvs "$row.r$round.ready" "$PROBE" waithttp -url "$URL/healthz" -timeout 30s -pid "$FRONT_PID"
  if ! num "$(val "$row.r$round.ready.ready_ms")"; then
    local why
    why="$(val "$row.r$round.ready.ready_ms"): $(val "$row.r$round.ready.last")"
    [[ -s $ERRLOG ]] && why+="; stderr: $(tail -n 3 "$ERRLOG" | tr '\n' ' ' | cut -c1-300)"
    note "$row round $round: did not answer $URL/healthz ($why)"
    log "$row: not ready ($why)"
    return 1
  fi
  READY=1
  check_pinned "$row" "$round"
  [[ $row == *-upload-1m ]] && check_upload "$row" "$round"
  return 0
}

# check_upload ROW ROUND : the front hands the app the whole 1 MiB body: the
# app's answer through it (length and CRC-32) is the one it gives directly
check_upload() {
  local got want
  got=$(curl -sS --max-time 10 --data-binary "@$WORK/post-1m.bin" "$URL/body" 2>&1 || true)
  want=$(curl -sS --max-time 10 --data-binary "@$WORK/post-1m.bin" "http://127.0.0.1:$UP_PORT/body" 2>&1 || true)
  [[ $got == "$want" && $want == "1048576 "* ]] || note "$1 round $2: a 1 MiB POST through the front got '$got', the app says '$want'"
}

# check_pinned ROW ROUND : every server process (front and app) may run on the
# server CPU only (gsup's children inherit its affinity)
check_pinned() {
  [[ $PIN == 1 ]] || return 0
  local p want=$SERVER_CPU got bad=() pids=
  if (( ${#FRONT_CPU[@]} )); then
    kvs "$1.r$2.pinf" "$PROBE" cpu "${FRONT_CPU[@]}"; pids+=" ${R["$1.r$2.pinf.pids"]-}"
  fi
  kvs "$1.r$2.pina" "$PROBE" cpu "${APP_CPU[@]}"; pids+=" ${R["$1.r$2.pina.pids"]-}"
  for p in ${pids//,/ }; do
    got=$(awk '/^Cpus_allowed_list:/{print $2}' "/proc/$p/status" 2>/dev/null || true)
    [[ -z $got || $got == "$want" ]] || bad+=("$p:$got")
  done
  (( ${#bad[@]} == 0 )) || note "$1 round $2: not pinned to cpu $want: ${bad[*]}"
}

row_stop() {  # row_stop ROW ROUND
  local row=$1 round=$2
  if [[ -n $FRONT_PID ]]; then stop_front "$row" "$round"; fi
  if [[ -n $ROW_APP_PID ]]; then
    stop_server "$ROW_APP_PID" "$TAG-app"
    [[ $LEFT == none ]] || note "$row round $round: still running 2 s after its app exited: $LEFT (killed)"
  fi
  return 0
}

stop_front() {  # stop_front ROW ROUND
  local row=$1 round=$2
  stop_server "$FRONT_PID" "$TAG"
  R["$row.r$round.stop_ms"]=$STOP_MS
  log "$row: stopped in $STOP_MS ms, exit status $STOP_RC, left behind: $LEFT"
  if [[ $STOP_MS == timeout ]]; then
    note "$row round $round: still running 20 s after SIGTERM (killed)"
  elif [[ $row == gsup-* && $STOP_RC != 0 ]]; then
    note "$row round $round: exit status $STOP_RC after SIGTERM"
  fi
  [[ $LEFT == none ]] || note "$row round $round: still running 2 s after the front exited: $LEFT (killed)"
  if [[ $row == gsup-* && -s $ERRLOG ]]; then
    local bad
    bad=$(grep -ciE 'panic|error|fatal|refused|reset|broken pipe|timeout' "$ERRLOG" || true)
    if (( bad > 0 )); then
      note "$row round $round: $bad line(s) in gsup's log look like errors, e.g.: $(grep -iE 'panic|error|fatal|refused|reset|broken pipe|timeout' "$ERRLOG" | head -n 2 | tr '\n' ' ' | cut -c1-300)"
    fi
  fi
  if [[ $row == nginx* && -s $ERRLOG && $READY == 1 ]]; then
    note "$row round $round: nginx error log: $(head -n 2 "$ERRLOG" | tr '\n' ' ' | cut -c1-300)"
  fi
  [[ $KEEP_WORK == 1 ]] || rm -f "$DIR/access.log"
}

wrk_run() {  # wrk_run SECONDS OUTFILE
  timeout --foreground --kill-after=5 $(( $1 + 30 )) "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$WRK" -t"$THREADS" -c"$CONNS" -d"$1s" \
    --latency --timeout 5s "${WRK_EXTRA[@]+"${WRK_EXTRA[@]}"}" "$URL$URL_PATH" >"$2" 2>&1 || true
}

# hs_run SECONDS OUTFILE : a tls-new row's load: the handshake client, pinned
# on the load CPU as wrk is
hs_run() {
  local opts=(-c "$HS_CONNS" -d "$1s" -timeout 5s -path "$URL_PATH")
  [[ -n $HS_TLS ]] && opts+=(-tls "$HS_TLS")
  [[ -n $HS_CURVES ]] && opts+=(-curves "$HS_CURVES")
  timeout --foreground --kill-after=5 $(( $1 + 30 )) "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$HANDSHAKE" "${opts[@]}" \
    "${URL#https://}" >"$2" 2>&1 || true
}

# load_run ROW SECONDS OUTFILE : the row's load, wrk or (tls-new rows) the
# handshake client
load_run() {
  if [[ $1 == *-tls-new ]]; then hs_run "$2" "$3"; else wrk_run "$2" "$3"; fi
}

# load_result ROW K FILE : the load's figures in R[K.*] (requests, rps, p50_ms,
# p99_ms, errors, as "probe wrk" gives them). For the handshake client: its own
# lines in R[K.hs.*], a resumed handshake counted as an error, and the
# negotiated versions and groups and the resumptions summed per row in R[ROW.hs.*]
load_result() {
  local row=$1 k=$2 key v
  if [[ $row != *-tls-new ]]; then kvs "$k" "$PROBE" wrk "$3"; return 0; fi
  while IFS='=' read -r key v; do
    [[ $key =~ ^[a-z][a-z0-9_.]*$|^group\. ]] || continue
    R["$k.hs.$key"]=$v
    if [[ $key == tls* || $key == group.* || $key == resumed ]] && num "$v"; then
      R["$row.hs.$key"]=$(( ${R["$row.hs.$key"]:-0} + v ))
    fi
  done <"$3"
  num "$(val "$k.hs.handshakes_per_s")" && num "$(val "$k.hs.handshakes")" || return 0
  R["$k.requests"]=$(val "$k.hs.handshakes"); R["$k.rps"]=$(val "$k.hs.handshakes_per_s")
  R["$k.p50_ms"]=$(val "$k.hs.p50_ms"); R["$k.p99_ms"]=$(val "$k.hs.p99_ms")
  R["$k.errors"]=$(( $(val "$k.hs.errors") + $(val "$k.hs.resumed") ))
}

# children_us : sets CHILD_US to the CPU µs of this shell's waited-for children so far
# (cutime + cstime), so that the difference around wrk_run is wrk's own CPU time.
# Not to be called in a subshell: that would read the subshell's own counters.
children_us() {
  local st f
  read -r st <"/proc/$BASHPID/stat"
  read -r -a f <<<"${st##*) }"
  CHILD_US=$(( (f[13] + f[14]) * 1000000 / HZ ))
}

# cpu_split PREFIX : the server and load CPUs' busy / idle / steal µs since boot
cpu_split() {
  [[ $PIN == 1 ]] && kvs "$1" "$PROBE" cpustat -hz "$HZ" "$SERVER_CPU" "$LOAD_CPU"
  return 0
}

# shares K : from the cpustat snapshots K.cs0 / K.cs1, where the server CPU's time
# went during the run (ours = front + app, other = everything else incl. steal,
# idle) and the load CPU's (wrk, other, idle), in %
shares() {
  local k=$1 c b i st tot ours
  [[ $PIN == 1 ]] || return 0
  for c in "$SERVER_CPU" "$LOAD_CPU"; do
    for st in busy idle steal; do
      num "$(val "$k.cs0.cpu${c}_${st}_us")" && num "$(val "$k.cs1.cpu${c}_${st}_us")" || return 0
    done
    b=$(( $(val "$k.cs1.cpu${c}_busy_us") - $(val "$k.cs0.cpu${c}_busy_us") ))
    i=$(( $(val "$k.cs1.cpu${c}_idle_us") - $(val "$k.cs0.cpu${c}_idle_us") ))
    st=$(( $(val "$k.cs1.cpu${c}_steal_us") - $(val "$k.cs0.cpu${c}_steal_us") ))
    tot=$(( b + i + st ))
    (( tot > 0 )) || continue
    if [[ $c == "$SERVER_CPU" ]]; then
      ours=$(( ${R["$k.app_cpu"]:-0} + ${R["$k.front_cpu"]:-0} ))
      R["$k.srv_ours"]=$(( 100 * ours / tot ))
      R["$k.srv_idle"]=$(( 100 * i / tot ))
      R["$k.srv_other"]=$(( 100 - R["$k.srv_ours"] - R["$k.srv_idle"] ))
      (( R["$k.srv_other"] >= 0 )) || R["$k.srv_other"]=0
    else
      ours=${R["$k.wrk_cpu"]:-0}
      R["$k.load_wrk"]=$(( 100 * ours / tot ))
      R["$k.load_idle"]=$(( 100 * i / tot ))
      R["$k.load_other"]=$(( 100 - R["$k.load_wrk"] - R["$k.load_idle"] ))
      (( R["$k.load_other"] >= 0 )) || R["$k.load_other"]=0
    fi
  done
}

lines_of() { if [[ -n $1 && -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

measure() {  # measure ROW ROUND
  local row=$1 round=$2 k=$1.r$2 f0=- f1=- a0=- a1=- l0 l1 req out=$DIR/wrk.txt
  [[ $row == *-tls-new ]] && out=$DIR/handshake.txt
  load_run "$row" "$WARMUP" "$DIR/warmup.txt"
  [[ $STATS == 1 ]] && kvs "$k.s0" stats_kv
  [[ -n $FRONT_PID ]] && { kvs "$k.c0f" "$PROBE" cpu -hz "$HZ" "${FRONT_CPU[@]}"; f0=$(val "$k.c0f.cpu_us"); }
  kvs "$k.c0a" "$PROBE" cpu -hz "$HZ" "${APP_CPU[@]}"; a0=$(val "$k.c0a.cpu_us")
  sleep 0.2; l0=$(lines_of "$ALOG")   # what the warm-up logged has reached the file by now (gsup flushes within 150 ms)

  local w0 w1
  cpu_split "$k.cs0"; children_us; w0=$CHILD_US
  load_run "$row" "$DURATION" "$out"
  children_us; w1=$CHILD_US; cpu_split "$k.cs1"
  R["$k.wrk_cpu"]=$(( w1 - w0 ))

  [[ -n $FRONT_PID ]] && { kvs "$k.c1f" "$PROBE" cpu -hz "$HZ" "${FRONT_CPU[@]}"; f1=$(val "$k.c1f.cpu_us"); }
  kvs "$k.c1a" "$PROBE" cpu -hz "$HZ" "${APP_CPU[@]}"; a1=$(val "$k.c1a.cpu_us")
  R["$k.load"]=$(cut -d' ' -f1 /proc/loadavg)
  [[ $STATS == 1 ]] && kvs "$k.s1" stats_kv
  load_result "$row" "$k" "$out"
  req=$(val "$k.requests")
  if num "$req" && (( req > 0 )); then
    if num "$f0" && num "$f1"; then
      R["$k.front_cpu"]=$(( f1 - f0 ))
      R["$k.front_us"]=$(calc "printf \"%.1f\", ($f1 - $f0) / $req")
    fi
    if num "$a0" && num "$a1"; then
      R["$k.app_cpu"]=$(( a1 - a0 ))
      R["$k.app_us"]=$(calc "printf \"%.1f\", ($a1 - $a0) / $req")
    fi
    # context switches per request, the front's and the app's: the thread
    # waited (w) or was preempted (p)
    local who sw
    for who in f:front a:app; do
      for sw in vcsw:w ivcsw:p; do
        local s0 s1
        s0=$(val "$k.c0${who%%:*}.${sw%%:*}"); s1=$(val "$k.c1${who%%:*}.${sw%%:*}")
        if num "$s0" && num "$s1"; then
          R["$k.${who#*:}_cs${sw#*:}"]=$(calc "printf \"%.2f\", ($s1 - $s0) / $req")
        fi
      done
    done
    # CPU of the servers (front + app) per request, and their share of the server
    # CPU during the run: well below 100 % means something else had that CPU
    if [[ $row == direct ]] || num "$(val "$k.front_cpu")"; then
      if num "$(val "$k.app_cpu")"; then
        local both=$(( $(val "$k.app_cpu") + ${R["$k.front_cpu"]:-0} ))
        R["$k.srv_us"]=$(calc "printf \"%.2f\", $both / $req")
      fi
    fi
  fi
  shares "$k"
  if num "$(val "$k.s0.conns")" && num "$(val "$k.s1.conns")"; then
    R["$k.upconns"]=$(( $(val "$k.s1.conns") - $(val "$k.s0.conns") ))
    R["$k.upreqs"]=$(( $(val "$k.s1.requests") - $(val "$k.s0.requests") ))
  fi
  if ! num "$(val "$k.rps")"; then
    note "$row round $round: ${out##*/} gave no figure: $(head -n 3 "$out" | tr '\n' ' ' | cut -c1-300)"
  elif [[ $row == *-tls-new ]]; then
    (( $(val "$k.errors") == 0 )) ||
      note "$row round $round: handshake client: $(val "$k.hs.errors") errors, $(val "$k.hs.resumed") resumed; first: $(val "$k.hs.first_error" | cut -c1-200)"
  elif (( $(val "$k.errors") > 0 )); then
    note "$row round $round: wrk: $(grep -E 'Socket errors|Non-2xx' "$DIR/wrk.txt" | tr -s ' ' | tr '\n' ';' | sed 's/;$//')"
  fi
  # the access log must hold a line per request: those of the run (wrk's count
  # plus the requests still in flight when wrk stopped, at most CONNS) and the
  # /stats request after it
  if [[ -n $ALOG ]] && num "$req"; then
    # gsup flushes its log within 150 ms, nginx-buffered within 1 s
    if [[ $row == nginx-buffered ]]; then sleep 1.3; else sleep 0.5; fi
    l1=$(lines_of "$ALOG")
    R["$k.logged"]=$(( l1 - l0 ))
    if (( l1 - l0 < req )); then
      note "$row round $round: access log has $(( l1 - l0 )) lines for the run, wrk counted $req requests"
    fi
  fi
  log "$row r$round: $(val "$k.rps") req/s, p50 $(val "$k.p50_ms") ms, p99 $(val "$k.p99_ms") ms, errors $(val "$k.errors"), front $(val "$k.front_us") µs/req, app $(val "$k.app_us") µs/req, switches per request front $(val "$k.front_csw")+$(val "$k.front_csp") app $(val "$k.app_csw")+$(val "$k.app_csp"), cpu$SERVER_CPU ours/other/idle $(val "$k.srv_ours")/$(val "$k.srv_other")/$(val "$k.srv_idle") %, cpu$LOAD_CPU wrk/other/idle $(val "$k.load_wrk")/$(val "$k.load_other")/$(val "$k.load_idle") %, app conns $(val "$k.upconns"), app requests $(val "$k.upreqs"), logged $(val "$k.logged"), load $(val "$k.load")"
}

# idle_open ROW ROUND : an idle row, before its measured run: a warm-up, the
# front's memory (RSS and fds), then IDLE_CONNS keep-alive connections that
# each had one answer (internal/burst -get /) and are then left idle until
# idle_close; the front's memory with them open
idle_open() {
  local row=$1 round=$2 k=$1.r$2 i
  wrk_run "$WARMUP" "$DIR/warmup-idle.txt"
  sleep 1
  kvs "$k.m0" "$PROBE" mem "${FRONT_CPU[@]}"
  rm -f "$DIR/idle.close" "$DIR/idle.close.open"
  (exec env GSUPBENCH_TAG="$RUNID/$TAG-idle/" "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BURST" -n "$IDLE_CONNS" -get / \
    -hold-until "$DIR/idle.close" -max "$(( WARMUP + DURATION + 120 ))s" "${URL#http://}") \
    >"$DIR/idle.out" 2>"$DIR/idle.err" </dev/null &
  IDLE_PID=$!
  for (( i = 0; i < 600; i++ )); do   # 60 s at most
    [[ -e $DIR/idle.close.open ]] && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
  done
  R["$k.idle_n"]=$(sed -n 's/^answered=//p' "$DIR/idle.out")
  [[ -e $DIR/idle.close.open ]] || note "$row round $round: the idle connections were not all open within 60 s"
  if [[ -s $DIR/idle.err ]]; then
    note "$row round $round: idle client: $(head -n 2 "$DIR/idle.err" | tr '\n' ' ' | cut -c1-300)"
  fi
  sleep 1   # what the front frees after an answer is freed by now
  kvs "$k.m1" "$PROBE" mem "${FRONT_CPU[@]}"
  log "$row r$round: $(val "$k.idle_n") idle connections open; the front's RSS $(val "$k.m0.rss_kb") -> $(val "$k.m1.rss_kb") kB, fds $(val "$k.m0.fds") -> $(val "$k.m1.fds")"
}

# idle_close ROW ROUND : after the measured run, the idle connections close;
# once the front's fds are back near their count before (15 s at most) and
# a second more, its memory again; then the bytes per idle connection, open
# and after they closed
idle_close() {
  local row=$1 round=$2 k=$1.r$2 i n r0 r1 r2
  : >"$DIR/idle.close"
  kvs "$k.idlex" "$PROBE" waitexit -pid "$IDLE_PID" -timeout 30s
  kill -KILL "$IDLE_PID" 2>/dev/null || true
  wait "$IDLE_PID" 2>/dev/null || true
  for (( i = 0; i < 150; i++ )); do
    kvs "$k.m2" "$PROBE" mem "${FRONT_CPU[@]}"
    if num "$(val "$k.m2.fds")" && num "$(val "$k.m0.fds")" && (( $(val "$k.m2.fds") <= $(val "$k.m0.fds") + 64 )); then break; fi
    sleep 0.1
  done
  sleep 1
  kvs "$k.m2" "$PROBE" mem "${FRONT_CPU[@]}"
  n=$(val "$k.idle_n"); r0=$(val "$k.m0.rss_kb"); r1=$(val "$k.m1.rss_kb"); r2=$(val "$k.m2.rss_kb")
  R["$k.rss0_kb"]=$r0; R["$k.rss1_kb"]=$r1; R["$k.rss2_kb"]=$r2
  if num "$n" && (( n > 0 )) && num "$r0" && num "$r1" && num "$r2"; then
    R["$k.idle_b_open"]=$(( (r1 - r0) * 1024 / n ))
    R["$k.idle_b_after"]=$(( (r2 - r0) * 1024 / n ))
    R["$k.idle_fds"]=$(( $(val "$k.m1.fds") - $(val "$k.m0.fds") ))
  fi
  log "$row r$round: idle connections closed; the front's RSS $(val "$k.m2.rss_kb") kB, fds $(val "$k.m2.fds"); bytes per idle connection: $(val "$k.idle_b_open") open, $(val "$k.idle_b_after") after"
}

# h2load_run ROW ROUND : TLS rows, after the wrk run: h2load over h2 (not in
# the row's wrk figures), its req/s in R[ROW.rN.h2_rps]
h2load_run() {
  local row=$1 round=$2 out=$DIR/h2load.txt rps failed
  timeout --foreground --kill-after=5 120 "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$H2LOAD_BIN" \
    -n "$H2_REQUESTS" -c "$CONNS" -m "$H2_STREAMS" "$URL/" >"$out" 2>&1 || true
  rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i-1) }' "$out")
  failed=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($i ~ /^(failed|errored|timeout),?$/) n += $(i-1) } END { print n + 0 }' "$out")
  if ! grep -qi '^application protocol: h2' "$out"; then
    note "$row round $round: h2load did not negotiate h2: $(grep -m1 -E 'protocol|error' "$out" | cut -c1-200)"
  fi
  (( failed == 0 )) || note "$row round $round: h2load: $(grep -m1 '^requests:' "$out")"
  if num "$rps"; then R["$row.r$round.h2_rps"]=$rps
  else note "$row round $round: h2load gave no figure: $(tail -n 2 "$out" | tr '\n' ' ' | cut -c1-200)"; fi
  log "$row r$round: h2load $(val "$row.r$round.h2_rps") req/s over h2, $failed failed"
}

# stats_kv : the app's counters, fetched through the front, as key=value
stats_kv() {
  "$PROBE" get -url "$URL/stats" -timeout 3s 2>/dev/null | awk 'NF == 2 { print $1 "=" $2 }'
}

# profile ROW : an extra wrk run (not counted) while perf samples the gsup process
profile() {
  local row=$1 out=$BENCH/.work/http-profile-$1.txt data=$DIR/perf.data
  if [[ -z $PERF ]]; then
    note "PROFILE=1: perf is not installed (linux-perf); no profile"
    return 0
  fi
  local pids=$FRONT_PID kid
  for kid in $(pgrep -P "$FRONT_PID" 2>/dev/null || true); do
    [[ $row == gsup-* ]] || pids+=",$kid" # nginx's workers; not gsup's apps
  done
  timeout --foreground --kill-after=5 $(( DURATION + 30 )) "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$PERF" record -F 999 -g \
    -p "$pids" -o "$data" -- sleep "$DURATION" >"$DIR/perf-record.log" 2>&1 &
  local perf_pid=$!
  sleep 0.3
  wrk_run "$DURATION" "$DIR/wrk-profile.txt"
  wait "$perf_pid" 2>/dev/null || true
  if [[ ! -s $data ]]; then
    note "PROFILE=1: perf record gave nothing for $row: $(tail -n 2 "$DIR/perf-record.log" | tr '\n' ' ')"
    return 0
  fi
  {
    echo "# $row: perf record -F 999 -g on the front's processes ($pids) during ${DURATION}s of wrk ($CONNS connections); $(date -u +%FT%TZ)"
    echo "# wrk during the profile: $(grep -E 'Requests/sec' "$DIR/wrk-profile.txt" | tr -s ' ')"
    echo "# ---- self time by symbol"
    timeout 120 "$PERF" report -i "$data" --stdio --no-children --sort symbol --percent-limit 0.5 -g none 2>/dev/null | grep -vE '^#|^$' | sed -E 's/( +-)+ *$//' || true
    echo "# ---- with callees (children), by symbol"
    timeout 120 "$PERF" report -i "$data" --stdio --children --sort symbol --percent-limit 3 -g none 2>/dev/null | grep -vE '^#|^$' | sed -E 's/( +-)+ *$//' || true
  } >"$out"
  cp "$data" "${out%.txt}.data" 2>/dev/null || true
  PROFILES+=("$out")
  log "$row: profile in $out (perf data: ${out%.txt}.data)"
}

# counts ROW : an extra load run (not counted) while perf stat counts the
# system calls of the front's processes and of the app's, per request
counts() {
  local row=$1 k=$1.cnt who pids stat n
  if [[ -z $PERF ]]; then
    note "COUNTS=1: perf is not installed (linux-perf); no counts"
    return 0
  fi
  local perf_pids=()
  for who in front app; do
    pids=$(val "$row.r1.c1${who:0:1}.pids")
    [[ -n $pids && $pids != - ]] || continue
    "$PERF" stat -x, -e raw_syscalls:sys_enter -p "$pids" -o "$DIR/stat-$who.txt" >/dev/null 2>&1 &
    perf_pids+=($!)
  done
  (( ${#perf_pids[@]} )) || return 0
  sleep 0.3   # perf has attached
  wrk_run "$DURATION" "$DIR/wrk-counts.txt"
  kill -INT "${perf_pids[@]}" 2>/dev/null; wait "${perf_pids[@]}" 2>/dev/null || true
  kvs "$k" "$PROBE" wrk "$DIR/wrk-counts.txt"
  num "$(val "$k.requests")" && (( $(val "$k.requests") > 0 )) || { note "COUNTS=1: $row: wrk gave no figure"; return 0; }
  for who in front app; do
    stat=$DIR/stat-$who.txt
    [[ -s $stat ]] || continue
    # "<not counted>": the process did not run meanwhile
    n=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print ($1 == "<not counted>" ? 0 : $1) }' "$stat")
    if num "$n"; then
      R["$row.${who}_sys"]=$(calc "printf \"%.2f\", $n / $(val "$k.requests")")
    else
      note "COUNTS=1: $row: perf stat on the $who gave no count: $(grep -v '^#' "$stat" | head -n 2 | tr '\n' ' ' | cut -c1-200)"
    fi
  done
  log "$row: system calls per request (perf stat, $(val "$k.requests") requests): front $(val "$row.front_sys"), app $(val "$row.app_sys")"
}

versions() {
  local v=()
  [[ -n $NGINX ]] && v+=("nginx $("$NGINX" -v 2>&1 | sed -n 's|.*nginx/||p')")
  [[ -n $HAPROXY ]] && v+=("haproxy $("$HAPROXY" -v 2>/dev/null | awk 'NR==1{print $3}')")
  v+=("wrk $("$WRK" -v 2>&1 | awk 'NR==1{print $2}')")
  v+=("$(go version | awk '{print $3}')")
  if [[ -n $GSUP_BIN ]]; then
    local rev
    rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
    [[ -n $(git -C "$REPO" status --porcelain -uno 2>/dev/null) ]] && rev+="+changes"
    v+=("gsup $GSUP_BIN ($rev)")
  fi
  join_comma "${v[@]}"
}

# --- pairs (PAIRED=N) ------------------------------------------------------------------
# save_row NAME / use_row NAME : row_start's globals of one row, kept while
# another row is started, and made current again
ROW_VARS=(TAG DIR READY FRONT_PID ALOG ERRLOG URL URL_PATH ROW_APP_PID STATS FRONT_CPU APP_CPU WRK_EXTRA)
declare -A SAVED=()
save_row() {
  local v x d=
  for v in "${ROW_VARS[@]}"; do
    x=$(declare -p "$v")
    d+="declare -g ${x#declare }; "   # -g: use_row sets the globals, not locals of its own
  done
  SAVED[$1]=$d
}
use_row() { eval "${SAVED[$1]}"; }

# paired ROW : the gsup row ROW and its nginx row started at once; after a
# warm-up of each, wrk runs PAIR_SLICE s on one then the other, PAIRED
# times, the nginx row first in odd pairs; sets ROW.pair.* (the median
# ratio of a pair's req/s and p99, their range and middle half, and each
# front's CPU per request over all its runs)
paired() {
  local g=$1 n k=$1.pair i side file rows ratios=() p99s=() req fu au
  n=$(ref_row "$g")
  log "pairs: $n and $g"
  if ! row_start "$n" p; then row_stop "$n" p; return 0; fi
  save_row n
  if ! row_start "$g" p; then row_stop "$g" p; use_row n; row_stop "$n" p; return 0; fi
  save_row g
  for side in n g; do
    use_row "$side"
    load_run "${!side}" "$WARMUP" "$DIR/warmup.txt"
    kvs "$k.$side.c0f" "$PROBE" cpu -hz "$HZ" "${FRONT_CPU[@]}"
    kvs "$k.$side.c0a" "$PROBE" cpu -hz "$HZ" "${APP_CPU[@]}"
    R["$k.$side.requests"]=0
  done
  for i in $(seq 1 "$PAIRED"); do
    rows=(n g); (( i % 2 == 0 )) && rows=(g n)
    for side in "${rows[@]}"; do
      use_row "$side"
      file=$DIR/pair-$i.txt
      load_run "${!side}" "$PAIR_SLICE" "$file"
      load_result "${!side}" "$k.$side.$i" "$file"
      req=$(val "$k.$side.$i.requests")
      num "$req" && R["$k.$side.requests"]=$(( ${R["$k.$side.requests"]} + req ))
      num "$(val "$k.$side.$i.errors")" && (( $(val "$k.$side.$i.errors") > 0 )) &&
        note "$g pairs: ${!side} run $i: $(val "$k.$side.$i.errors") errors"
    done
    if num "$(val "$k.g.$i.rps")" && num "$(val "$k.n.$i.rps")" && [[ $(val "$k.n.$i.rps") != 0 ]]; then
      ratios+=("$(calc "printf \"%.4f\", $(val "$k.g.$i.rps") / $(val "$k.n.$i.rps")")")
    fi
    if num "$(val "$k.g.$i.p99_ms")" && num "$(val "$k.n.$i.p99_ms")" && [[ $(val "$k.n.$i.p99_ms") != 0 ]]; then
      p99s+=("$(calc "printf \"%.4f\", $(val "$k.g.$i.p99_ms") / $(val "$k.n.$i.p99_ms")")")
    fi
  done
  for side in n g; do
    use_row "$side"
    kvs "$k.$side.c1f" "$PROBE" cpu -hz "$HZ" "${FRONT_CPU[@]}"
    kvs "$k.$side.c1a" "$PROBE" cpu -hz "$HZ" "${APP_CPU[@]}"
    req=${R["$k.$side.requests"]}
    if (( req > 0 )); then
      fu=$(( $(val "$k.$side.c1f.cpu_us") - $(val "$k.$side.c0f.cpu_us") ))
      au=$(( $(val "$k.$side.c1a.cpu_us") - $(val "$k.$side.c0a.cpu_us") ))
      R["$k.$side.front_us"]=$(calc "printf \"%.1f\", $fu / $req")
      R["$k.$side.app_us"]=$(calc "printf \"%.1f\", $au / $req")
      R["$k.$side.srv_us"]=$(calc "printf \"%.2f\", ($fu + $au) / $req")
    fi
  done
  R["$k.pairs"]=${#ratios[@]}
  R["$k.x_nginx"]=$(median "${ratios[@]+"${ratios[@]}"}")
  R["$k.x_nginx_range"]=$(range "${ratios[@]+"${ratios[@]}"}")
  R["$k.x_nginx_mid"]=$(middle_half "${ratios[@]+"${ratios[@]}"}")
  R["$k.p99_x_nginx"]=$(median "${p99s[@]+"${p99s[@]}"}")
  if num "$(val "$k.n.srv_us")" && num "$(val "$k.g.srv_us")"; then
    R["$k.cpu_x_nginx"]=$(calc "printf \"%.2f\", $(val "$k.n.srv_us") / $(val "$k.g.srv_us")")
  fi
  log "pairs $g: ${#ratios[@]} pairs, req/s x $n median $(val "$k.x_nginx") (middle half $(val "$k.x_nginx_mid"), range $(val "$k.x_nginx_range")), p99 x $(val "$k.p99_x_nginx"), cpu x $(val "$k.cpu_x_nginx")"
  use_row g; row_stop "$g" p
  use_row n; row_stop "$n" p
}

# middle_half VALUE... : "q1-q3" of the numbers (the middle half of them)
middle_half() {
  printf '%s\n' "$@" | { grep -E '^-?[0-9]+(\.[0-9]+)?$' || true; } | sort -g |
    awk '{a[NR]=$1} END {if (NR==0) {print "-"; exit} lo=int((NR+3)/4); hi=NR+1-lo; printf "%.2f-%.2f", a[lo], a[hi]}'
}

# pair_rows : the gsup rows that PAIRED measures (their nginx row active too)
pair_rows() {
  local row
  for row in "${ACTIVE[@]}"; do
    [[ $row == gsup-* && $row != *-idle && $row != *-tls-new ]] || continue
    [[ " ${ACTIVE[*]} " == *" $(ref_row "$row") "* ]] && echo "$row"
  done
  return 0
}

# pairs_report : PAIRED's table and its verdicts
pairs_report() {
  (( PAIRED > 0 )) || return 0
  local row k
  echo
  echo "pairs (PAIRED=$PAIRED): each gsup row and its nginx row running at once, wrk alternating ${PAIR_SLICE}s on each,"
  echo "  $PAIRED times (nginx first in odd pairs); req/s and p99 x nginx: per pair of adjacent runs, then the median;"
  echo "  front and app us/req: each front's CPU over all its runs; cpu x nginx: nginx's (front + app) us/req over gsup's"
  printf "%-${W}s %5s %8s %11s %11s %7s %12s %12s %7s\n" row pairs "x nginx" "middle half" range "p99 x" "front g/n" "app g/n" "cpu x"
  for row in $(pair_rows); do
    k=$row.pair
    printf "%-${W}s %5s %8s %11s %11s %7s %12s %12s %7s\n" "$row" "$(val "$k.pairs")" "$(f %.2f "$(val "$k.x_nginx")")" \
      "$(val "$k.x_nginx_mid")" "$(val "$k.x_nginx_range")" "$(f %.2f "$(val "$k.p99_x_nginx")")" \
      "$(val "$k.g.front_us")/$(val "$k.n.front_us")" "$(val "$k.g.app_us")/$(val "$k.n.app_us")" "$(val "$k.cpu_x_nginx")"
  done
  echo
  printf "%-$(( W > 15 ? W : 14 ))s %-26s %8s %12s  %-9s %s\n" row "target (issue), pairs" measured "cpu x nginx" target verdict
  local limit label v verdict
  for row in $(pair_rows); do
    k=$row.pair
    case $row in
      gsup-tcp) limit=$TARGET_TCP; label="req/s x nginx (TCP app)" ;;
      gsup-unix) limit=$TARGET_UNIX; label="req/s x nginx (UNIX app)" ;;
      gsup-static-*) limit=$TARGET_STATIC; label="req/s x nginx (${row#gsup-static-} file)" ;;
      gsup-gunicorn*) limit=$TARGET_APP; label="req/s x nginx (Gunicorn)" ;;
      gsup-proxy-1m) limit=$TARGET_LARGE; label="MB/s x nginx (1 MiB GET)" ;;
      gsup-upload-1m) limit=$TARGET_LARGE; label="MB/s x nginx (1 MiB POST)" ;;
      gsup-close) limit=$TARGET_CLOSE; label="req/s x nginx (close)" ;;
      gsup-tls) limit=$TARGET_TLS; label="req/s x nginx (TLS, wrk)" ;;
      gsup-tls-close) limit=$TARGET_CLOSE; label="handshakes/s x nginx" ;;
      *) continue ;;
    esac
    for v in x_nginx p99_x_nginx; do
      if [[ $v == p99_x_nginx ]]; then
        [[ $row == gsup-tcp || $row == gsup-unix ]] || continue
        limit=$TARGET_P99; label="p99 x nginx"
      fi
      verdict=FAIL
      if ! num "$(val "$k.$v")"; then
        verdict="FAIL (no figure)"
      elif [[ $v == x_nginx ]]; then
        calc "exit !($(val "$k.$v") >= $limit)" && verdict=PASS
      else
        calc "exit !($(val "$k.$v") <= $limit)" && verdict=PASS
      fi
      printf "%-$(( W > 15 ? W : 14 ))s %-26s %8s %12s  %-9s %s\n" "$row" "$label" "$(f %.2f "$(val "$k.$v")")" \
        "$([[ $v == x_nginx ]] && f %.2f "$(val "$k.cpu_x_nginx")")" "$([[ $v == x_nginx ]] && echo '>=' || echo '<=') $limit" "$verdict"
    done
  done
}

# --- run ------------------------------------------------------------------------------
t_start=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "$NCPU cpus, load $LOAD_START; rows: $ROWS; $ROUNDS round(s) of ${DURATION}s, $CONNS connections; PIN=$PIN"
PROFILES=()
skip_reason() {
  if [[ $KNOWN_ROWS != *[[:space:]]"$1"[[:space:]]* ]]; then echo "unknown row"; return; fi
  case $1 in
    *-gunicorn*) [[ -n $GUNICORN ]] || { echo "gunicorn is not installed (Debian gunicorn)"; return; } ;;&
    *-idle) (( $(ulimit -n) >= IDLE_CONNS + 1024 )) || { echo "$NOFILE_NOTE, below IDLE_CONNS + 1024"; return; } ;;&
    gsup-*) echo "${GSUP_NOTE:-"no gsup binary"}" ;;
    *) echo "not installed (INSTALL=1 installs it)" ;;
  esac
}
# shellcheck disable=SC2086
pick_rows $ROWS

make_www
make_post_lua
[[ " ${ACTIVE[*]} " == *"-tls"* ]] && make_cert
if [[ $H2LOAD == 1 && -z $H2LOAD_BIN && " ${ACTIVE[*]} " == *"-tls "* ]]; then
  note "H2LOAD=1: h2load is not installed (nghttp2-client); no h2 figures"; H2LOAD=0
fi
start_shared_app
for round in $(seq 1 "$ROUNDS"); do
  order=("${ACTIVE[@]}")
  if [[ $ORDER == alternate ]] && (( round % 2 == 0 )); then
    order=()
    for (( k = ${#ACTIVE[@]} - 1; k >= 0; k-- )); do order+=("${ACTIVE[k]}"); done
  fi
  for row in "${order[@]}"; do
    log "round $round: $row"
    if row_start "$row" "$round"; then
      idle=0
      [[ $row == *-idle ]] && idle_open "$row" "$round" && idle=1
      measure "$row" "$round"
      [[ $idle == 1 ]] && idle_close "$row" "$round"
      if [[ $round == 1 && ( $PROFILE == all || ( $PROFILE == 1 && $row == gsup-* ) ) ]]; then profile "$row"; fi
      if [[ $COUNTS == 1 && $round == 1 && $row != *-tls-new && $row != *-idle ]]; then counts "$row"; fi
      if [[ $H2LOAD == 1 && $row == *-tls ]]; then h2load_run "$row" "$round"; fi
    fi
    row_stop "$row" "$round"
  done
done
if (( PAIRED > 0 )); then
  for row in $(pair_rows); do paired "$row"; done
fi
stop_server "$UP_PID" app

# --- report ---------------------------------------------------------------------------
summarize() {  # per row: medians over rounds, ratios to nginx per round, then their median
  local row r k key vals ratios p99r cpur ref base baser cpub
  for row in "${ACTIVE[@]}"; do
    ref=$(ref_row "$row"); base=$(base_row "$row")
    for key in rps h2_rps p50_ms p99_ms front_us app_us front_csw front_csp app_csw app_csp srv_us upconns srv_ours srv_other srv_idle load_wrk load_other load_idle \
      idle_n idle_fds rss0_kb rss1_kb rss2_kb idle_b_open idle_b_after; do
      vals=()
      for r in $(seq 1 "$ROUNDS"); do vals+=("$(val "$row.r$r.$key")"); done
      R["$row.$key"]=$(median "${vals[@]}")
    done
    local errs=0 n=0
    ratios=(); p99r=(); cpur=(); baser=(); cpub=(); local h2r=()
    for r in $(seq 1 "$ROUNDS"); do
      k=$row.r$r
      if [[ -n $base ]] && num "$(val "$k.rps")" && num "$(val "$base.r$r.rps")"; then
        baser+=("$(calc "printf \"%.4f\", $(val "$k.rps") / $(val "$base.r$r.rps")")")
      fi
      if [[ -n $base ]] && num "$(val "$k.srv_us")" && num "$(val "$base.r$r.srv_us")"; then
        cpub+=("$(calc "printf \"%.4f\", $(val "$base.r$r.srv_us") / $(val "$k.srv_us")")")
      fi
      if num "$(val "$k.srv_us")" && num "$(val "$ref.r$r.srv_us")"; then
        cpur+=("$(calc "printf \"%.4f\", $(val "$ref.r$r.srv_us") / $(val "$k.srv_us")")")
      fi
      num "$(val "$k.errors")" && errs=$(( errs + $(val "$k.errors") ))
      num "$(val "$k.rps")" && n=$(( n + 1 ))
      if num "$(val "$k.rps")" && num "$(val "$ref.r$r.rps")"; then
        ratios+=("$(calc "printf \"%.4f\", $(val "$k.rps") / $(val "$ref.r$r.rps")")")
      fi
      if num "$(val "$k.h2_rps")" && num "$(val "$ref.r$r.h2_rps")"; then
        h2r+=("$(calc "printf \"%.4f\", $(val "$k.h2_rps") / $(val "$ref.r$r.h2_rps")")")
      fi
      if num "$(val "$k.p99_ms")" && num "$(val "$ref.r$r.p99_ms")"; then
        p99r+=("$(calc "printf \"%.4f\", $(val "$k.p99_ms") / $(val "$ref.r$r.p99_ms")")")
      fi
    done
    R["$row.errors"]=$errs; R["$row.rounds"]=$n
    R["$row.x_nginx"]=$(median "${ratios[@]+"${ratios[@]}"}")
    R["$row.x_nginx_range"]=$(range "${ratios[@]+"${ratios[@]}"}")
    R["$row.p99_x_nginx"]=$(median "${p99r[@]+"${p99r[@]}"}")
    R["$row.cpu_x_nginx"]=$(median "${cpur[@]+"${cpur[@]}"}")
    R["$row.h2_x_nginx"]=$(median "${h2r[@]+"${h2r[@]}"}")
    R["$row.h2_x_nginx_range"]=$(range "${h2r[@]+"${h2r[@]}"}")
    R["$row.x_base"]=$(median "${baser[@]+"${baser[@]}"}")
    R["$row.x_base_range"]=$(range "${baser[@]+"${baser[@]}"}")
    R["$row.cpu_x_base"]=$(median "${cpub[@]+"${cpub[@]}"}")
    local size
    size=$(body_size "$row")
    if [[ -n $size ]] && num "$(val "$row.rps")"; then
      R["$row.mbs"]=$(calc "printf \"%.1f\", $(val "$row.rps") * $size / 1000000")
    fi
  done
}

f() {  # f FORMAT VALUE : printf when VALUE is a number, else VALUE as it is
  if num "$2"; then printf "$1" "$2"; else printf '%s' "$2"; fi
}

report() {
  local loads=() r row
  for row in "${ACTIVE[@]}"; do
    for r in $(seq 1 "$ROUNDS"); do num "$(val "$row.r$r.load")" && loads+=("$(val "$row.r$r.load")"); done
  done
  W=15   # the row column: wider when a row's name is longer
  for row in "${LISTED[@]}"; do (( ${#row} <= W )) || W=${#row}; done
  echo
  echo "HTTP front: $(date -u +%Y-%m-%dT%H:%MZ), $NCPU cpus, $([[ $PIN == 1 ]] && echo "front + app pinned to cpu $SERVER_CPU, wrk to cpu $LOAD_CPU" || echo unpinned)"
  echo "wrk: $THREADS threads, $CONNS keep-alive connections, ${DURATION}s per run after ${WARMUP}s of warm-up, GET / (6-byte body; static rows: a 4 KiB or 1 MiB file); $ROUNDS interleaved round(s)$([[ $ORDER == alternate && $ROUNDS -gt 1 ]] && echo ', even ones in reverse row order'), medians; access logs $([[ $ACCESS_LOG == 1 ]] && echo on || echo off)"
  echo "load average: at start $LOAD_START; 1-min after each run $( (( ${#loads[@]} )) && range "${loads[@]}" | sed 's/-/ to /' || echo -); at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: $(versions)"
  [[ -n $GSUP_NOTE ]] && echo "note: $GSUP_NOTE"
  [[ -n $NOFILE_NOTE ]] && echo "$NOFILE_NOTE"
  local kinds
  kinds=$(row_kinds)
  [[ -n $kinds ]] && echo "other rows: $kinds"
  if (( ROUNDS == 0 )); then
    echo "ROUNDS=0: no rounds, the pairs only"
    pairs_report
    print_notes
    return 0
  fi
  echo
  local fmt="%-${W}s"' %7s %6s %7s %6s %7s %-10s %7s | %6s %6s %7s | %-11s %-11s %5s\n' trio
  trio() {  # trio ROW A B C : "a/b/c" of the medians
    local out="" x
    for x in "$2" "$3" "$4"; do out+="$(f %.0f "$(val "$1.$x")")/"; done
    echo "${out%/}"
  }
  printf "$fmt" "" "" "p50" "p99" "" "req/s" "" "p99" "front" "app" "cpu" "cpu$SERVER_CPU %" "cpu$LOAD_CPU %" "app"
  printf "$fmt" row "req/s" ms ms errors "x nginx" "range" "x nginx" "us/req" "us/req" "x nginx" "srv/oth/idl" "wrk/oth/idl" conns
  for row in "${LISTED[@]}"; do
    if [[ -n ${R["$row.skip"]-} ]]; then printf "%-${W}s skipped: %s\n" "$row" "${R["$row.skip"]}"; continue; fi
    if [[ $(val "$row.rounds") == 0 ]]; then printf "%-${W}s no figure (see notes)\n" "$row"; continue; fi
    local rng=$(val "$row.x_nginx_range")
    (( ROUNDS > 1 )) || rng=
    printf "$fmt" "$row" \
      "$(f %.0f "$(val "$row.rps")")" "$(f %.2f "$(val "$row.p50_ms")")" "$(f %.2f "$(val "$row.p99_ms")")" \
      "$(val "$row.errors")" "$(f %.2f "$(val "$row.x_nginx")")" "$rng" "$(f %.2f "$(val "$row.p99_x_nginx")")" \
      "$([[ $row == direct ]] && echo - || f %.1f "$(val "$row.front_us")")" "$(f %.1f "$(val "$row.app_us")")" \
      "$(f %.2f "$(val "$row.cpu_x_nginx")")" \
      "$(trio "$row" srv_ours srv_other srv_idle)" "$(trio "$row" load_wrk load_other load_idle)" \
      "$(f %.0f "$(val "$row.upconns")")"
  done
  echo "x nginx: per round against that round's nginx, then the median over rounds; range: lowest-highest round."
  echo "  Static rows are against the nginx-static row of the same size (for one file, MB/s x nginx = req/s x nginx);"
  echo "  TLS rows against nginx-tls (the tls-close and tls-new rows against their own nginx row)."
  [[ -n $kinds ]] && echo "  The other rows against the nginx row of their kind (nginx-gunicorn, nginx-idle, nginx-close, ...)."
  echo "front us/req: utime+stime of the front's own processes / wrk's request count (nginx master + worker, haproxy, the gsup"
  echo "  process without its children); app us/req: the same for the upstream app."
  echo "cpu x nginx: nginx's (front + app) us/req over this row's: the req/s ratio the row would have if the server cpu did"
  echo "  nothing else (the figure to trust when other work shares the machine)."
  echo "cpu$SERVER_CPU %: where the server cpu's time went during the run: front + app / other processes (and steal) / idle."
  echo "cpu$LOAD_CPU %: the same for the load cpu: wrk / other / idle. Much 'other' on either = the row was slowed by other work."
  echo "app conns: connections the app accepted during the measured run (a front that keeps upstream connections opens ~0)."
  echo
  printf "%-${W}s %14s %14s\n" "context switches per request" "front" "app"
  printf "%-${W}s %14s %14s\n" "row" "wait+preempt" "wait+preempt"
  for row in "${LISTED[@]}"; do
    [[ -z ${R["$row.skip"]-} && $(val "$row.rounds") != 0 ]] || continue
    printf "%-${W}s %14s %14s\n" "$row" \
      "$([[ $row == direct ]] && echo - || echo "$(f %.2f "$(val "$row.front_csw")")+$(f %.2f "$(val "$row.front_csp")")")" \
      "$(f %.2f "$(val "$row.app_csw")")+$(f %.2f "$(val "$row.app_csp")")"
  done
  echo "  /proc/PID/task/*/status over the measured run, medians: the threads waited (voluntary_ctxt_switches) +"
  echo "  were preempted (nonvoluntary_ctxt_switches), per request."
  echo
  if [[ $COUNTS == 1 ]]; then
    printf "%-${W}s %14s %14s\n" "system calls per request" "front" "app"
    for row in "${LISTED[@]}"; do
      [[ -n $(val "$row.cnt.requests") && $(val "$row.cnt.requests") != - ]] || continue
      printf "%-${W}s %14s %14s\n" "$row" "$(f %.2f "$(val "$row.front_sys")")" "$(f %.2f "$(val "$row.app_sys")")"
    done
    echo "  COUNTS=1: perf stat -e raw_syscalls:sys_enter on each process during one more run of round 1, over wrk's requests."
    echo
  fi
  printf "%-$(( W > 15 ? W : 14 ))s %-26s %8s %12s  %-9s %s\n" row "target (issue)" measured "cpu x nginx" target verdict
  target_line gsup-tcp "req/s x nginx (TCP app)" x_nginx ge "$TARGET_TCP"
  target_line gsup-unix "req/s x nginx (UNIX app)" x_nginx ge "$TARGET_UNIX"
  target_line gsup-tcp "p99 x nginx" p99_x_nginx le "$TARGET_P99"
  target_line gsup-unix "p99 x nginx" p99_x_nginx le "$TARGET_P99"
  target_line gsup-static-4k "req/s x nginx (4 KiB file)" x_nginx ge "$TARGET_STATIC"
  target_line gsup-static-1m "req/s x nginx (1 MiB file)" x_nginx ge "$TARGET_STATIC"
  target_line gsup-tls "req/s x nginx (TLS, wrk)" x_nginx ge "$TARGET_TLS"
  [[ $H2LOAD == 1 ]] && target_line gsup-tls "req/s x nginx (TLS, h2)" h2_x_nginx ge "$TARGET_TLS"
  target_line gsup-gunicorn "req/s x nginx (Gunicorn)" x_nginx ge "$TARGET_APP"
  target_line gsup-gunicorn-unix "req/s x nginx (Gunicorn)" x_nginx ge "$TARGET_APP"
  target_line gsup-proxy-1m "MB/s x nginx (1 MiB GET)" x_nginx ge "$TARGET_LARGE"
  target_line gsup-upload-1m "MB/s x nginx (1 MiB POST)" x_nginx ge "$TARGET_LARGE"
  target_line gsup-idle "req/s x gsup-tcp (idle)" x_base ge "$TARGET_IDLE"
  target_line gsup-idle "bytes per idle connection" idle_b_open le "$TARGET_IDLE_B"
  target_line gsup-close "req/s x nginx (close)" x_nginx ge "$TARGET_CLOSE"
  target_line gsup-tls-close "handshakes/s x nginx" x_nginx ge "$TARGET_CLOSE"
  target_line gsup-tls-new "new handshakes/s x nginx" x_nginx ge "$TARGET_TLS"
  if [[ " ${LISTED[*]} " == *" gsup-idle "* ]]; then
    echo "(gsup-idle's req/s line is against gsup-tcp of the same round, its cpu column gsup-tcp's us/req over gsup-idle's)"
  fi
  local row
  for row in "${ACTIVE[@]}"; do
    num "$(val "$row.mbs")" && printf "%-$(( W + 1 ))s %8s MB/s (median)\n" "$row" "$(val "$row.mbs")"
  done
  idle_report
  pairs_report
  if [[ " ${ACTIVE[*]} " == *"-tls-close "* ]]; then
    echo
    echo "TLS handshakes per second (wrk -H 'Connection: close' over https: a new connection and handshake per request, the"
    echo "  session resumed from wrk's previous connection (its ticket), not a full handshake; medians):"
    for row in "${ACTIVE[@]}"; do
      [[ $row == *-tls-close ]] || continue
      printf "%-${W}s %8s handshakes/s %6s x nginx-tls-close  range %s\n" "$row" "$(f %.0f "$(val "$row.rps")")" \
        "$(f %.2f "$(val "$row.x_nginx")")" "$(val "$row.x_nginx_range")"
    done
  fi
  hs_report
  if [[ $H2LOAD == 1 && " ${ACTIVE[*]} " == *"-tls "* ]]; then
    echo
    echo "h2load over h2 (-n $H2_REQUESTS -c $CONNS -m $H2_STREAMS, after each TLS row's wrk run; medians, x nginx-tls per round):"
    for row in "${ACTIVE[@]}"; do
      [[ $row == *-tls ]] || continue
      printf '%-15s %8s req/s %6s x nginx-tls  range %s\n' "$row" "$(f %.0f "$(val "$row.h2_rps")")" \
        "$(f %.2f "$(val "$row.h2_x_nginx")")" "$(val "$row.h2_x_nginx_range")"
    done
  fi

  if (( ${#PROFILES[@]} )); then
    echo
    local p
    for p in "${PROFILES[@]}"; do
      echo "profile: $p (top of self time):"
      awk '/^# ---- self/{on=1; next} /^# ----/{on=0} on' "$p" | head -n 12 | sed 's/^/  /'
    done
  fi
  print_notes
  if busy_at_start; then
    echo "note: the machine was busy (load ${LOAD_START%% *} on $NCPU cpus at the start): quote the ratios, not the absolute figures"
  fi
}

# row_kinds : what the opt-in rows of this run do, for the report's head
row_kinds() {
  local k=() a=" ${ACTIVE[*]} "
  [[ $a == *-gunicorn* ]] && k+=("*-gunicorn*: GET / from Gunicorn ($GUNICORN_WORKERS sync workers)")
  [[ $a == *-proxy-1m* ]] && k+=("*-proxy-1m: GET /1m, a 1 MiB answer from the app")
  [[ $a == *-upload-1m* ]] && k+=("*-upload-1m: POST /body with 1 MiB (wrk -s)")
  [[ $a == *-idle\ * ]] && k+=("*-idle: $IDLE_CONNS idle keep-alive connections open during the run")
  [[ $a == *-close\ * ]] && k+=("*-close: wrk -H 'Connection: close'")
  [[ $a == *-tls-new\ * ]] && k+=("*-tls-new: internal/handshake, $HS_CONNS workers, a new connection and full TLS handshake per GET / (no resumption)")
  (( ${#k[@]} )) || return 0
  printf '%s; ' "${k[@]}" | sed 's/; $//'
}

# hs_report : the tls-new rows: new handshakes per second, CPU per handshake,
# and what the handshakes negotiated (summed over the rounds)
hs_report() {
  [[ " ${ACTIVE[*]} " == *"-tls-new "* ]] || return 0
  local row key neg
  echo
  echo "New TLS handshakes per second (internal/handshake: $HS_CONNS workers, each a loop of dial, full handshake with a fresh"
  echo "  tls.Config and no session cache, GET / with Connection: close, the 200 read, close; offered: TLS ${HS_TLS:-1.2 and 1.3},"
  echo "  groups ${HS_CURVES:-"Go's defaults"}; medians, x nginx-tls-new per round; front us = CPU per new handshake):"
  for row in "${ACTIVE[@]}"; do
    [[ $row == *-tls-new ]] || continue
    neg=
    for key in "${!R[@]}"; do
      [[ $key == "$row.hs.tls"* || $key == "$row.hs.group."* ]] && neg+="${key#"$row.hs."}=${R[$key]} "
    done
    # shellcheck disable=SC2086
    neg=$(printf '%s\n' $neg | sort | xargs)
    printf "%-${W}s %8s handshakes/s %6s x nginx  range %s  front %s us  cpu x nginx %s  resumed %s\n" "$row" \
      "$(f %.0f "$(val "$row.rps")")" "$(f %.2f "$(val "$row.x_nginx")")" "$(val "$row.x_nginx_range")" \
      "$(f %.1f "$(val "$row.front_us")")" "$(f %.2f "$(val "$row.cpu_x_nginx")")" "${R["$row.hs.resumed"]:-0}"
    printf "%-${W}s negotiated: %s\n" "" "${neg:-none}"
  done
}

# idle_report : the idle rows' memory and their req/s against the same front
# without the idle connections
idle_report() {
  [[ " ${ACTIVE[*]} " == *"-idle "* ]] || return 0
  local row fmt="%-${W}s %8s %8s %8s %8s %8s %8s %8s %8s %-10s %8s\n"
  echo
  echo "idle rows: $IDLE_CONNS keep-alive connections, one GET / answered on each, then idle through the measured run. The front's"
  echo "  RSS (nginx master + worker; the gsup process alone) after a warm-up, with them open, and after they closed (fds back"
  echo "  to their count before, then 1 s); B/conn = RSS growth / connections answered. Medians; req/s against the same"
  echo "  front without idle connections (nginx, gsup-tcp) in the same round, and the same in CPU per request (as cpu x nginx)."
  printf "$fmt" "" "" "fds" "RSS MB" "RSS MB" "RSS MB" "B/conn" "B/conn" "req/s x" "" "cpu x"
  printf "$fmt" row answered held before open after open after "no-idle" range "no-idle"
  for row in "${ACTIVE[@]}"; do
    [[ $row == *-idle ]] || continue
    printf "$fmt" "$row" "$(f %.0f "$(val "$row.idle_n")")" "$(f %.0f "$(val "$row.idle_fds")")" \
      "$(mb "$(val "$row.rss0_kb")")" "$(mb "$(val "$row.rss1_kb")")" "$(mb "$(val "$row.rss2_kb")")" \
      "$(f %.0f "$(val "$row.idle_b_open")")" "$(f %.0f "$(val "$row.idle_b_after")")" \
      "$(f %.2f "$(val "$row.x_base")")" "$(val "$row.x_base_range")" "$(f %.2f "$(val "$row.cpu_x_base")")"
  done
}
mb() { if num "$1"; then calc "printf \"%.1f\", $1 / 1024"; else printf '%s' "$1"; fi; }

target_line() {  # target_line ROW LABEL KEY ge|le LIMIT
  local row=$1 label=$2 key=$3 op=$4 limit=$5 v verdict=FAIL sign vf=%.2f
  [[ " ${LISTED[*]} " == *" $row "* ]] || return 0
  sign='>='; [[ $op == le ]] && sign='<='
  v=$(val "$row.$key")
  if [[ -n ${R["$row.skip"]-} ]]; then
    verdict="- (row skipped)"
  elif [[ $key == x_base && " ${ACTIVE[*]} " != *" $(base_row "$row") "* ]]; then
    verdict="- ($(base_row "$row") not in ROWS)"
  elif ! num "$v"; then
    verdict="FAIL (no figure)"
  elif [[ $op == ge ]]; then
    calc "exit !($v >= $limit)" && verdict=PASS
  else
    calc "exit !($v <= $limit)" && verdict=PASS
  fi
  if [[ $verdict == PASS && $(val "$row.errors") != 0 ]]; then verdict="PASS (but $(val "$row.errors") errors)"; fi
  local est=
  [[ $key == x_nginx ]] && est=$(f %.2f "$(val "$row.cpu_x_nginx")")
  [[ $key == x_base ]] && est=$(f %.2f "$(val "$row.cpu_x_base")")
  [[ $key == idle_b_* ]] && vf=%.0f
  printf "%-$(( W > 15 ? W : 14 ))s %-26s %8s %12s  %-9s %s\n" "$row" "$label" "$(f "$vf" "$v")" "$est" "$sign $limit" "$verdict"
}

summarize
save_report http
