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
# Each row: wrk, CONNS keep-alive connections, DURATION seconds, --latency,
# after a WARMUP-second wrk run that is not counted. Rounds are interleaved
# (every row once, then the next round) and the table shows medians.
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
#   DURATION=10 CONNS=50 ROUNDS=3 WARMUP=1 THREADS=2 (wrk threads)
#   ROWS="direct nginx haproxy gsup-tcp gsup-unix nginx-static-4k gsup-static-4k
#         nginx-static-1m gsup-static-1m" (also: nginx-buffered nginx-tls gsup-tls)
#   H2LOAD=1        TLS rows: after wrk, h2load -n H2_REQUESTS=20000 -c CONNS
#                   -m H2_STREAMS=10 over h2 (Debian nghttp2-client), its
#                   req/s reported apart; 0: no h2load
#   PIN=1           servers (front + app) on CPU SERVER_CPU=0, wrk on LOAD_CPU=1
#   ACCESS_LOG=1    0: no access log in any front
#   PROFILE=1       one extra, uncounted wrk run per gsup row (round 1) under
#                   perf record -g on the gsup process; report in bench/.work/
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
GSUP_BIN=${GSUP_BIN:-}
GSUP_ARGS=${GSUP_ARGS:-'start {config} -b {listen} --port {port} --access-logfile {access_log} --control {dir}/gsup.sock'}
KEEP_WORK=${KEEP_WORK:-0}
INSTALL=${INSTALL:-0}
H2LOAD=${H2LOAD:-1}
H2_REQUESTS=${H2_REQUESTS:-20000}
H2_STREAMS=${H2_STREAMS:-10}

# the issue's targets for gsup
TARGET_TCP=0.65    # req/s x nginx, TCP upstream
TARGET_UNIX=0.75   # req/s x nginx, UNIX upstream
TARGET_P99=2       # p99 at most this many times nginx's
TARGET_STATIC=1.0  # req/s (and MB/s) x nginx's for a static file
TARGET_TLS=1.0     # req/s x nginx's over TLS (wrk HTTP/1.1, h2load h2)

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
H2LOAD_BIN=$(command -v h2load || true)
if [[ -z $WRK ]]; then log "wrk is missing (INSTALL=1 installs it)"; exit 1; fi

new_run http
APP=$BIN/upstream
STARTED=()             # pids of the servers started (each leads its own session and process group)

cleanup_first() {
  local p
  for p in "${STARTED[@]+"${STARTED[@]}"}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}

# --- build ------------------------------------------------------------------------
log "building the probe and the upstream app"
(cd "$REPO" && go build -o "$PROBE" ./bench/internal/probe && go build -o "$APP" ./bench/internal/upstream)

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

available() {
  case $1 in
    direct) return 0 ;;
    nginx|nginx-buffered|nginx-static-4k|nginx-static-1m|nginx-tls) [[ -n $NGINX ]] ;;
    haproxy) [[ -n $HAPROXY ]] ;;
    gsup-tcp|gsup-unix|gsup-static-4k|gsup-static-1m|gsup-tls) [[ -n $GSUP_BIN ]] ;;
    *) return 1 ;;
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
# static_size ROW : the size in bytes of the file the row asks for, or nothing
static_size() {
  case $1 in
    *-static-4k) echo 4096 ;;
    *-static-1m) echo 1048576 ;;
  esac
}
# ref_row ROW : the row whose figures ROW's ratios are taken against
ref_row() {
  case $1 in
    *-static-*) echo "nginx-static-${1##*-}" ;;
    *-tls) echo nginx-tls ;;
    *) echo nginx ;;
  esac
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

conf_nginx() {  # conf_nginx DIR PORT BUFFERED STATIC TLS
  local d=$1 port=$2 buffered=$3 static=${4:-0} tls=${5:-0} al loc listen
  mkdir -p "$d/tmp"
  al=off
  if [[ $ACCESS_LOG == 1 ]]; then
    al=$d/access.log
    [[ $buffered == 1 ]] && al+=" combined buffer=64k flush=1s"
  fi
  loc='location /'
  if [[ $static == 1 ]]; then
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
  if [[ $tls == 1 ]]; then
    listen="127.0.0.1:$port ssl http2 backlog=4096;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY"
  fi
  cat >"$d/nginx.conf" <<EOF
# one worker on the server CPU; private pid, logs and temp paths
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;

events {
    worker_connections 4096;
}

http {
    client_body_temp_path $d/tmp/client;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;

    access_log $al;
    # wrk's connections are never closed by the front during a run
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    upstream app {
        server 127.0.0.1:$UP_PORT;
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
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
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
  local row=$1 round=$2 port config args al
  TAG=$row-r$round; DIR=$WORK/$TAG; READY=0; FRONT_PID=; FRONT_CPU=(); APP_CPU=("$UP_PID"); ALOG=; ERRLOG=; URL_PATH=/
  mkdir -p "$DIR"
  if [[ $row == direct ]]; then
    URL=http://127.0.0.1:$UP_PORT; READY=1
    return 0
  fi
  port=$("$PROBE" freeport)
  URL=http://127.0.0.1:$port
  [[ $row == *-tls ]] && URL=https://127.0.0.1:$port
  case $row in
    *-static-4k) URL_PATH=/4k.bin ;;
    *-static-1m) URL_PATH=/1m.bin ;;
  esac
  case $row in
    nginx|nginx-buffered|nginx-static-*|nginx-tls)
      conf_nginx "$DIR" "$port" "$([[ $row == nginx-buffered ]] && echo 1 || echo 0)" "$([[ $row == nginx-static-* ]] && echo 1 || echo 0)" \
        "$([[ $row == nginx-tls ]] && echo 1 || echo 0)"
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
    gsup-tcp|gsup-unix|gsup-static-*|gsup-tls)
      if [[ $row == gsup-tcp || $row == gsup-tls ]]; then
        printf 'web: exec %s\n' "$APP" >"$DIR/Procfile"
        config="-f $DIR/Procfile"
      elif [[ $row == gsup-static-* ]]; then
        printf '[process.web]\ncommand = "exec %s"\n\n[serve]\nroot = "%s"\n' "$APP" "$WWW" >"$DIR/gsup.toml"
        config="-c $DIR/gsup.toml"
      else
        printf '[process.web]\ncommand = "exec %s"\nlisten = "unix"\n' "$APP" >"$DIR/gsup.toml"
        config="-c $DIR/gsup.toml"
      fi
      al=$(alog_path "$DIR"); ALOG=$al
      args=$GSUP_ARGS
      if [[ -z $al ]]; then
        args=${args//--access-logfile \{access_log\}/}
      fi
      args=${args//\{config\}/$config}
      args=${args//\{listen\}/127.0.0.1:$port}
      args=${args//\{port\}/$("$PROBE" freeport)}
      args=${args//\{dir\}/$DIR}
      args=${args//\{access_log\}/$al}
      [[ $row == gsup-tls ]] && args+=" --certfile $CERT --keyfile $KEY"
      local argv
      read -r -a argv <<<"$args"   # split on blanks, never globbed
      ERRLOG=$DIR/stderr.log
      start_server "$TAG" "$DIR" "$DIR/stdout.log" "$DIR/stderr.log" "$GSUP_BIN" "${argv[@]}"
      FRONT_PID=$SRV_PID; FRONT_CPU=("$FRONT_PID")
      APP_CPU=(-tree -exe "$APP" "$FRONT_PID") ;;
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
  [[ -n $FRONT_PID ]] || return 0
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
    --latency --timeout 5s "$URL$URL_PATH" >"$2" 2>&1 || true
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
  local row=$1 round=$2 k=$1.r$2 f0=- f1=- a0=- a1=- l0 l1 req
  wrk_run "$WARMUP" "$DIR/warmup.txt"
  kvs "$k.s0" stats_kv
  [[ -n $FRONT_PID ]] && { kvs "$k.c0f" "$PROBE" cpu -hz "$HZ" "${FRONT_CPU[@]}"; f0=$(val "$k.c0f.cpu_us"); }
  kvs "$k.c0a" "$PROBE" cpu -hz "$HZ" "${APP_CPU[@]}"; a0=$(val "$k.c0a.cpu_us")
  sleep 0.2; l0=$(lines_of "$ALOG")   # what the warm-up logged has reached the file by now (gsup flushes within 150 ms)

  local w0 w1
  cpu_split "$k.cs0"; children_us; w0=$CHILD_US
  wrk_run "$DURATION" "$DIR/wrk.txt"
  children_us; w1=$CHILD_US; cpu_split "$k.cs1"
  R["$k.wrk_cpu"]=$(( w1 - w0 ))

  [[ -n $FRONT_PID ]] && { kvs "$k.c1f" "$PROBE" cpu -hz "$HZ" "${FRONT_CPU[@]}"; f1=$(val "$k.c1f.cpu_us"); }
  kvs "$k.c1a" "$PROBE" cpu -hz "$HZ" "${APP_CPU[@]}"; a1=$(val "$k.c1a.cpu_us")
  R["$k.load"]=$(cut -d' ' -f1 /proc/loadavg)
  kvs "$k.s1" stats_kv
  kvs "$k" "$PROBE" wrk "$DIR/wrk.txt"
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
    note "$row round $round: wrk gave no figure: $(head -n 3 "$DIR/wrk.txt" | tr '\n' ' ' | cut -c1-300)"
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
  log "$row r$round: $(val "$k.rps") req/s, p50 $(val "$k.p50_ms") ms, p99 $(val "$k.p99_ms") ms, errors $(val "$k.errors"), front $(val "$k.front_us") µs/req, app $(val "$k.app_us") µs/req, cpu$SERVER_CPU ours/other/idle $(val "$k.srv_ours")/$(val "$k.srv_other")/$(val "$k.srv_idle") %, cpu$LOAD_CPU wrk/other/idle $(val "$k.load_wrk")/$(val "$k.load_other")/$(val "$k.load_idle") %, app conns $(val "$k.upconns"), app requests $(val "$k.upreqs"), logged $(val "$k.logged"), load $(val "$k.load")"
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
  timeout --foreground --kill-after=5 $(( DURATION + 30 )) "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$PERF" record -F 999 -g \
    -p "$FRONT_PID" -o "$data" -- sleep "$DURATION" >"$DIR/perf-record.log" 2>&1 &
  local perf_pid=$!
  sleep 0.3
  wrk_run "$DURATION" "$DIR/wrk-profile.txt"
  wait "$perf_pid" 2>/dev/null || true
  if [[ ! -s $data ]]; then
    note "PROFILE=1: perf record gave nothing for $row: $(tail -n 2 "$DIR/perf-record.log" | tr '\n' ' ')"
    return 0
  fi
  {
    echo "# $row: perf record -F 999 -g on the gsup process during ${DURATION}s of wrk ($CONNS connections); $(date -u +%FT%TZ)"
    echo "# wrk during the profile: $(grep -E 'Requests/sec' "$DIR/wrk-profile.txt" | tr -s ' ')"
    echo "# ---- self time by symbol"
    timeout 120 "$PERF" report -i "$data" --stdio --no-children --sort symbol --percent-limit 0.5 -g none 2>/dev/null | grep -vE '^#|^$' | sed -E 's/( +-)+ *$//' || true
    echo "# ---- with callees (children), by symbol"
    timeout 120 "$PERF" report -i "$data" --stdio --children --sort symbol --percent-limit 3 -g none 2>/dev/null | grep -vE '^#|^$' | sed -E 's/( +-)+ *$//' || true
  } >"$out"
  PROFILES+=("$out")
  log "$row: profile in $out"
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

# --- run ------------------------------------------------------------------------------
t_start=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "$NCPU cpus, load $LOAD_START; rows: $ROWS; $ROUNDS round(s) of ${DURATION}s, $CONNS connections; PIN=$PIN"
PROFILES=()
skip_reason() {
  case $1 in
    gsup-*) echo "${GSUP_NOTE:-"no gsup binary"}" ;;
    nginx|nginx-buffered|haproxy) echo "not installed (INSTALL=1 installs it)" ;;
    *) echo "unknown row" ;;
  esac
}
# shellcheck disable=SC2086
pick_rows $ROWS

make_www
[[ " ${ACTIVE[*]} " == *"-tls "* ]] && make_cert
if [[ $H2LOAD == 1 && -z $H2LOAD_BIN && " ${ACTIVE[*]} " == *"-tls "* ]]; then
  note "H2LOAD=1: h2load is not installed (nghttp2-client); no h2 figures"; H2LOAD=0
fi
start_shared_app
for round in $(seq 1 "$ROUNDS"); do
  for row in "${ACTIVE[@]}"; do
    log "round $round: $row"
    if row_start "$row" "$round"; then
      measure "$row" "$round"
      if [[ $PROFILE == 1 && $round == 1 && $row == gsup-* ]]; then profile "$row"; fi
      if [[ $H2LOAD == 1 && $row == *-tls ]]; then h2load_run "$row" "$round"; fi
    fi
    row_stop "$row" "$round"
  done
done
stop_server "$UP_PID" app

# --- report ---------------------------------------------------------------------------
summarize() {  # per row: medians over rounds, ratios to nginx per round, then their median
  local row r k key vals ratios p99r cpur ref
  for row in "${ACTIVE[@]}"; do
    ref=$(ref_row "$row")
    for key in rps h2_rps p50_ms p99_ms front_us app_us srv_us upconns srv_ours srv_other srv_idle load_wrk load_other load_idle; do
      vals=()
      for r in $(seq 1 "$ROUNDS"); do vals+=("$(val "$row.r$r.$key")"); done
      R["$row.$key"]=$(median "${vals[@]}")
    done
    local errs=0 n=0
    ratios=(); p99r=(); cpur=(); local h2r=()
    for r in $(seq 1 "$ROUNDS"); do
      k=$row.r$r
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
    local size
    size=$(static_size "$row")
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
  echo
  echo "HTTP front: $(date -u +%Y-%m-%dT%H:%MZ), $NCPU cpus, $([[ $PIN == 1 ]] && echo "front + app pinned to cpu $SERVER_CPU, wrk to cpu $LOAD_CPU" || echo unpinned)"
  echo "wrk: $THREADS threads, $CONNS keep-alive connections, ${DURATION}s per run after ${WARMUP}s of warm-up, GET / (6-byte body; static rows: a 4 KiB or 1 MiB file); $ROUNDS interleaved round(s), medians; access logs $([[ $ACCESS_LOG == 1 ]] && echo on || echo off)"
  echo "load average: at start $LOAD_START; 1-min after each run $(range "${loads[@]+"${loads[@]}"}" | sed 's/-/ to /'); at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: $(versions)"
  [[ -n $GSUP_NOTE ]] && echo "note: $GSUP_NOTE"
  echo
  local fmt='%-15s %7s %6s %7s %6s %7s %-10s %7s | %6s %6s %7s | %-11s %-11s %5s\n' trio
  trio() {  # trio ROW A B C : "a/b/c" of the medians
    local out="" x
    for x in "$2" "$3" "$4"; do out+="$(f %.0f "$(val "$1.$x")")/"; done
    echo "${out%/}"
  }
  printf "$fmt" "" "" "p50" "p99" "" "req/s" "" "p99" "front" "app" "cpu" "cpu$SERVER_CPU %" "cpu$LOAD_CPU %" "app"
  printf "$fmt" row "req/s" ms ms errors "x nginx" "range" "x nginx" "us/req" "us/req" "x nginx" "srv/oth/idl" "wrk/oth/idl" conns
  for row in "${LISTED[@]}"; do
    if [[ -n ${R["$row.skip"]-} ]]; then printf '%-15s skipped: %s\n' "$row" "${R["$row.skip"]}"; continue; fi
    if [[ $(val "$row.rounds") == 0 ]]; then printf '%-15s no figure (see notes)\n' "$row"; continue; fi
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
  echo "  TLS rows against nginx-tls."
  echo "front us/req: utime+stime of the front's own processes / wrk's request count (nginx master + worker, haproxy, the gsup"
  echo "  process without its children); app us/req: the same for the upstream app."
  echo "cpu x nginx: nginx's (front + app) us/req over this row's: the req/s ratio the row would have if the server cpu did"
  echo "  nothing else (the figure to trust when other work shares the machine)."
  echo "cpu$SERVER_CPU %: where the server cpu's time went during the run: front + app / other processes (and steal) / idle."
  echo "cpu$LOAD_CPU %: the same for the load cpu: wrk / other / idle. Much 'other' on either = the row was slowed by other work."
  echo "app conns: connections the app accepted during the measured run (a front that keeps upstream connections opens ~0)."
  echo
  printf '%-14s %-26s %8s %12s  %-9s %s\n' row "target (issue)" measured "cpu x nginx" target verdict
  target_line gsup-tcp "req/s x nginx (TCP app)" x_nginx ge "$TARGET_TCP"
  target_line gsup-unix "req/s x nginx (UNIX app)" x_nginx ge "$TARGET_UNIX"
  target_line gsup-tcp "p99 x nginx" p99_x_nginx le "$TARGET_P99"
  target_line gsup-unix "p99 x nginx" p99_x_nginx le "$TARGET_P99"
  target_line gsup-static-4k "req/s x nginx (4 KiB file)" x_nginx ge "$TARGET_STATIC"
  target_line gsup-static-1m "req/s x nginx (1 MiB file)" x_nginx ge "$TARGET_STATIC"
  target_line gsup-tls "req/s x nginx (TLS, wrk)" x_nginx ge "$TARGET_TLS"
  [[ $H2LOAD == 1 ]] && target_line gsup-tls "req/s x nginx (TLS, h2)" h2_x_nginx ge "$TARGET_TLS"
  local row
  for row in "${ACTIVE[@]}"; do
    num "$(val "$row.mbs")" && printf '%-16s %8s MB/s (median)\n' "$row" "$(val "$row.mbs")"
  done
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

target_line() {  # target_line ROW LABEL KEY ge|le LIMIT
  local row=$1 label=$2 key=$3 op=$4 limit=$5 v verdict=FAIL sign
  [[ " ${LISTED[*]} " == *" $row "* ]] || return 0
  sign='>='; [[ $op == le ]] && sign='<='
  v=$(val "$row.$key")
  if [[ -n ${R["$row.skip"]-} ]]; then
    verdict="- (row skipped)"
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
  printf '%-14s %-26s %8s %12s  %-9s %s\n' "$row" "$label" "$(f %.2f "$v")" "$est" "$sign $limit" "$verdict"
}

summarize
save_report http
