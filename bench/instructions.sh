#!/usr/bin/env bash
# instructions.sh - the front's own instructions per request, gsup next to
# nginx, counted by valgrind's callgrind: the same count for the same
# binary and load whatever else the machine does, where http.sh's req/s
# and CPU times move with the machine's phase. It counts user-space
# instructions only (a system call is one instruction; the kernel's work,
# about two thirds of either front's CPU, is not counted) and says nothing
# of time: under callgrind a front runs one thread at a time, some fifty
# times slower.
#
# Rows (ROWS, default "nginx gsup nginx-gunicorn gsup-gunicorn"):
#   nginx           wrk -> nginx (one process: master_process off) -> the
#                   upstream app (bench/internal/upstream), upstream block
#                   with keepalive 64, HTTP/1.1, Connection "", access log to
#                   a file: http.sh's nginx row
#   gsup            wrk -> gsup -> the same app: http.sh's gsup-tcp row
#   nginx-gunicorn, gsup-gunicorn
#                   the same fronts before Gunicorn (2 sync workers, the
#                   bench WSGI app): a new app connection per request
#   nginx-close, gsup-close
#                   the nginx and gsup rows with wrk -H 'Connection: close':
#                   a new client connection per request (http.sh's close
#                   rows; not in the default rows)
#
# Each row: the front starts under callgrind with its counting off, wrk
# warms it up (2 s), the counting is switched on (callgrind_control -i on),
# wrk runs (DURATION, default 10 s; 50 connections, one thread, on CPU 1;
# the front and its app on CPU 0), the counting is switched off and the
# count taken; the requests are the access log's lines written meanwhile.
# gsup runs with GODEBUG=asyncpreemptoff=1 (callgrind stops on the
# runtime's preemption signals). ROUNDS (default 2) runs every row again;
# the table shows each round's count.
#
# Needs valgrind, nginx, wrk (Debian packages; INSTALL=1 installs them as
# root) and, for the Gunicorn rows, gunicorn (GUNICORN=path, else on PATH).
#
#   GSUP_BIN=path   (default: go build -o bench/.work/gsup . from the repo root)
#   KEEP_WORK=1     keep the callgrind files (callgrind_annotate FILE shows
#                   where the instructions go)
#   CACHE=1         simulate the caches too (--cache-sim=yes, valgrind's
#                   model of this machine's L1 and last-level caches; slower)
#                   and report each run's simulated misses per request
#   FIELDS=browser  each request carries ten fields a browser sends (User-
#                   Agent, Accept, Accept-Language, Accept-Encoding, Referer,
#                   Cookie, Upgrade-Insecure-Requests, three Sec-Fetch-*;
#                   about 420 bytes) where wrk alone sends only Host: every
#                   front then parses, checks, forwards and logs them
#
# Usage: bash bench/instructions.sh
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
source "$BENCH/lib.sh"
t_start=$(date +%s)
GSUP_BIN=${GSUP_BIN:-}
GSUP_GIVEN=$GSUP_BIN

ROWS=${ROWS:-nginx gsup nginx-gunicorn gsup-gunicorn}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-50}
FIELD_ARGS=()
case ${FIELDS:-} in
  '') ;;
  browser)
    FIELD_ARGS=(
      -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
      -H 'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
      -H 'Accept-Language: en-US,en;q=0.5'
      -H 'Accept-Encoding: gzip, deflate, br'
      -H 'Referer: http://example.com/'
      -H 'Cookie: session=abc123; theme=dark'
      -H 'Upgrade-Insecure-Requests: 1'
      -H 'Sec-Fetch-Dest: document'
      -H 'Sec-Fetch-Mode: navigate'
      -H 'Sec-Fetch-Site: same-origin'
    ) ;;
  *) echo "FIELDS: browser or nothing, not $FIELDS" >&2; exit 2 ;;
esac
FRONT_PORT=${FRONT_PORT:-18610}
APP_PORT=${APP_PORT:-18620}

if [[ ${INSTALL:-} == 1 ]]; then
  need=()
  for p in valgrind nginx wrk; do command -v "$p" >/dev/null || need+=("$p"); done
  [[ $ROWS == *gunicorn* ]] && ! command -v gunicorn >/dev/null && need+=(gunicorn)
  install_debs "instructions.sh needs them" "${need[@]}"
  stop_services "/run/nginx.pid" nginx
fi
for p in valgrind callgrind_control nginx wrk; do
  command -v "$p" >/dev/null || { log "$p is missing (Debian package ${p/callgrind_control/valgrind}; INSTALL=1 installs it)"; exit 1; }
done
GUNICORN=${GUNICORN:-$(command -v gunicorn || true)}

WORK=$BENCH/.work/instructions-$(date +%Y%m%d-%H%M%S)-$$
BIN=$WORK/bin
mkdir -p "$BIN"
FRONT_PID=
APP_PID=

stop_pid() {  # stop_pid PID : TERM, then KILL after 10 s
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$FRONT_PID"
  stop_pid "$APP_PID"
  if [[ ${KEEP_WORK:-} != 1 ]]; then rm -rf "$WORK"; else log "work files kept in $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the upstream app"
(cd "$REPO" && go build -o "$BIN/upstream" ./bench/internal/upstream)
prepare_gsup
[[ -n $GSUP_BIN ]] || { log "no gsup: $GSUP_NOTE"; exit 1; }

gunicorn_cmd() {  # gunicorn_cmd ADDR : Gunicorn's command line, http.sh's
  echo "$GUNICORN -w 2 -k sync -b $1 --backlog 2048 --graceful-timeout 5 --chdir $REPO/bench/internal/wsgi wsgi_hello:app"
}

nginx_conf() {  # nginx_conf DIR : nginx.conf for the row in DIR
  cat <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $1/tmp/client; proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/f; uwsgi_temp_path $1/tmp/u; scgi_temp_path $1/tmp/s;
    access_log $1/access.log;
    keepalive_requests 1000000; keepalive_timeout 75s;
    upstream app { server 127.0.0.1:$APP_PORT; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$FRONT_PORT backlog=4096;
        location / {
            proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
}

declare -A R
# run_row ROW ROUND : R[ROW.ROUND] = instructions per request, or a reason
run_row() {
  local row=$1 round=$2 dir=$WORK/$1-$2 url="http://127.0.0.1:$FRONT_PORT/"
  mkdir -p "$dir/tmp"
  local vg=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/callgrind.out")
  [[ ${CACHE:-} == 1 ]] && vg+=(--cache-sim=yes)
  case $row in
    nginx*)
      if [[ $row == *gunicorn ]]; then
        # shellcheck disable=SC2046
        taskset -c 0 $(gunicorn_cmd "127.0.0.1:$APP_PORT") >"$dir/app.log" 2>&1 & APP_PID=$!
      else
        taskset -c 0 "$BIN/upstream" -addr "127.0.0.1:$APP_PORT" >"$dir/app.log" 2>&1 & APP_PID=$!
      fi
      nginx_conf "$dir" >"$dir/nginx.conf"
      taskset -c 0 "${vg[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/front.log" 2>&1 & FRONT_PID=$!
      ;;
    gsup*)
      if [[ $row == *gunicorn ]]; then
        printf 'web: exec %s\n' "$(gunicorn_cmd '127.0.0.1:$PORT')" >"$dir/Procfile"
      else
        printf 'web: exec %s\n' "$BIN/upstream" >"$dir/Procfile"
      fi
      GODEBUG=asyncpreemptoff=1 taskset -c 0 "${vg[@]}" "$GSUP_BIN" start -f "$dir/Procfile" \
        -b "127.0.0.1:$FRONT_PORT" --port "$APP_PORT" --access-logfile "$dir/access.log" \
        --control "$dir/gsup.sock" >"$dir/front.log" 2>&1 & FRONT_PID=$!
      ;;
  esac
  local ok=0
  for _ in $(seq 600); do
    if curl -fs -o /dev/null "$url"; then ok=1; break; fi
    kill -0 "$FRONT_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $ok != 1 ]]; then
    R[$row.$round]="did not answer"
  else
    local args=("${FIELD_ARGS[@]}")
    [[ $row == *-close ]] && args+=(-H 'Connection: close')
    taskset -c 1 wrk -t1 -c"$CONNS" -d2 "${args[@]}" "$url" >/dev/null
    local l0 l1
    l0=$(wc -l <"$dir/access.log")
    callgrind_control -i on "$FRONT_PID" >/dev/null 2>&1
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "${args[@]}" "$url" >"$dir/wrk.txt"
    callgrind_control -i off "$FRONT_PID" >/dev/null 2>&1
    # the access log's lines of the measured requests are written by now:
    # both fronts write each one before the next request on its connection
    l1=$(wc -l <"$dir/access.log")
    callgrind_control -d "$FRONT_PID" >/dev/null 2>&1
    local ir=
    for _ in $(seq 100); do
      ir=$(awk '/^(summary|totals):/ {print $2}' "$dir"/callgrind.out.* 2>/dev/null | sort -n | tail -1)
      [[ -n $ir ]] && break
      sleep 0.1
    done
    if [[ -z $ir || $((l1 - l0)) -le 0 ]]; then
      R[$row.$round]="no count"
    else
      R[$row.$round]=$((ir / (l1 - l0)))
      R[$row.$round.n]=$((l1 - l0))
      R[$row.$round.allocs]=$(awk -v n=$((l1 - l0)) -f "$BENCH/allocs.awk" "$dir"/callgrind.out.*)
      if [[ ${CACHE:-} == 1 ]]; then
        R[$row.$round.cache]=$(awk -v n=$((l1 - l0)) '
          /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
          /^(summary|totals):/ { for (i = 2; i <= NF; i++) v[name[i]] = $i }
          END { printf "L1 instruction misses %.0f, L1 data misses %.0f, last-level misses %.1f (instructions %.1f, data reads %.1f, data writes %.1f)",
            v["I1mr"] / n, (v["D1mr"] + v["D1mw"]) / n, (v["ILmr"] + v["DLmr"] + v["DLmw"]) / n, v["ILmr"] / n, v["DLmr"] / n, v["DLmw"] / n }' "$dir"/callgrind.out.*)
      fi
    fi
  fi
  stop_pid "$FRONT_PID"; FRONT_PID=
  stop_pid "$APP_PID"; APP_PID=
}

for round in $(seq "$ROUNDS"); do
  for row in $ROWS; do
    if [[ $row == *gunicorn && -z $GUNICORN ]]; then R[$row.$round]="no gunicorn"; continue; fi
    log "$row round $round"
    run_row "$row" "$round"
    log "$row round $round: ${R[$row.$round]} instructions per request"
  done
done

report() {
  echo "instructions per request (callgrind), front on CPU 0, wrk -t1 -c$CONNS ${DURATION}s on CPU 1"
  [[ ${FIELDS:-} == browser ]] && echo "each request with ten browser fields (FIELDS=browser, about 420 bytes)"
  if [[ -n $GSUP_GIVEN ]]; then
    echo "gsup: $GSUP_BIN"
  else
    echo "gsup: built from $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet HEAD 2>/dev/null || echo ' with changes')"
  fi
  printf '%-16s' row
  for round in $(seq "$ROUNDS"); do printf '%12s' "round $round"; done
  printf '%10s %10s\n' median "x nginx"
  local row ref
  for row in $ROWS; do
    printf '%-16s' "$row"
    local vals=()
    for round in $(seq "$ROUNDS"); do printf '%12s' "${R[$row.$round]}"; vals+=("${R[$row.$round]}"); done
    R[$row.med]=$(median "${vals[@]}")
    [[ ${R[$row.med]} == - ]] || R[$row.med]=$(printf '%.0f' "${R[$row.med]}")
    ref=nginx; [[ $row == *gunicorn ]] && ref=nginx-gunicorn; [[ $row == *-close ]] && ref=nginx-close
    local ratio=-
    if [[ $row == gsup* && ${R[$row.med]} != - && ${R[$ref.med]-} != - && -n ${R[$ref.med]-} ]]; then
      ratio=$(awk -v a="${R[$row.med]}" -v b="${R[$ref.med]}" 'BEGIN{printf "%.2f", a/b}')
    fi
    printf '%10s %10s\n' "${R[$row.med]}" "$ratio"
  done
  echo "heap allocations per request (calls into the allocator: Go's runtime.mallocgc, C's malloc family), by round:"
  for row in $ROWS; do
    local a=()
    for round in $(seq "$ROUNDS"); do a+=("${R[$row.$round.allocs]:--}"); done
    echo "  $row: ${a[*]}"
  done
  if [[ ${CACHE:-} == 1 ]]; then
    echo "simulated cache misses per request (callgrind --cache-sim=yes):"
    for row in $ROWS; do
      for round in $(seq "$ROUNDS"); do
        echo "  $row round $round: ${R[$row.$round.cache]:--}"
      done
    done
  fi
}
save_report instructions
