#!/usr/bin/env bash
# soak.sh - mixed traffic, reloads and killed instances against gsup for a while
#
# Starts gsup in front of two instances of bench/internal/upstream and runs
# bench/internal/soak against it for DURATION: keep-alive GETs, POSTs with
# bodies, clients that abort mid-response, WebSockets, stalled bodies
# (body_timeout) and slowloris heads, with SIGHUP reloads of gsup and SIGKILLs
# of instances every few seconds. Prints a table every 10 s (requests served
# and failed, gsup's VmRSS and fds) and a summary: failures split into "in
# flight to a killed instance" and the rest (lost), RSS and fds first / last /
# max, and the processes left after gsup's graceful stop (must be 0).
#
# Knobs (environment):
#   DURATION=10m KILL_EVERY=5s HUP_EVERY=13s BODY_TIMEOUT=5s
#   SOAK_ARGS="" (more flags for the soak client, e.g. "-get 8 -ws 2")
#   ACCESS_LOG=1 (gsup's access log in the run directory)
#   GSUP_BIN=path (default: go build -o bench/.work/gsup . from the repo root)
#   SAVE=1: also write the report to bench/results/YYYY-MM-DD-soak.txt
#   KEEP_WORK=0 (the run directory is kept anyway when the soak fails)
#
# Only loopback addresses. Stops by itself after DURATION (plus at most a
# minute); on any exit gsup gets TERM, then everything of its session and
# of the run's tag is killed.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
DURATION=${DURATION:-10m}
KILL_EVERY=${KILL_EVERY:-5s}
HUP_EVERY=${HUP_EVERY:-13s}
BODY_TIMEOUT=${BODY_TIMEOUT:-5s}
SOAK_ARGS=${SOAK_ARGS:-}
ACCESS_LOG=${ACCESS_LOG:-1}
GSUP_BIN=${GSUP_BIN:-}
SAVE=${SAVE:-0}
KEEP_WORK=${KEEP_WORK:-0}

source "$BENCH/lib.sh"

RUNID=soak-$(date +%Y%m%d-%H%M%S)-$$
WORK=$BENCH/.work/$RUNID
BIN=$WORK/bin
mkdir -p "$BIN"
touch "$BIN/.bench-bin"
GSUP_PID=
STATUS=1

cleanup() {
  if [[ -n $GSUP_PID ]]; then
    kill -TERM "$GSUP_PID" 2>/dev/null || true
    "$BIN/probe" waitexit -pid "$GSUP_PID" -timeout 20s >/dev/null 2>&1 || true
    kill -KILL -- "-$GSUP_PID" 2>/dev/null || true
  fi
  "$BIN/probe" reap -tag "$RUNID/" -bindir "$BIN" >/dev/null 2>&1 || true
  if [[ $KEEP_WORK == 1 || $STATUS != 0 ]]; then log "run directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the upstream app, the soak client and the probe"
(cd "$REPO" && go build -o "$BIN/upstream" ./bench/internal/upstream && go build -o "$BIN/soak" ./bench/internal/soak &&
  go build -o "$BIN/probe" ./bench/internal/probe)
prepare_gsup
[[ -n $GSUP_BIN ]] || { log "no gsup: $GSUP_NOTE"; exit 1; }
ulimit -n "$(ulimit -Hn)"

PORT=$("$BIN/probe" freeport)
# The instances' ports (2, and 2 more during a reload) below the ephemeral
# range: an outgoing connection's port there would make a restart fail.
APP_PORT=$("$BIN/probe" freeport -run 8)
ALOG=
[[ $ACCESS_LOG == 1 ]] && ALOG=$WORK/access.log
cat >"$WORK/gsup.toml" <<EOF
control = "$WORK/gsup.sock"
port = $APP_PORT

[env]
SOAK_SEEN = "$WORK/seen"

[process.web]
command = "exec $BIN/upstream"
scale = 2
stop_timeout = "5s"

[serve]
bind = ["127.0.0.1:$PORT"]
graceful_timeout = "5s"
body_timeout = "$BODY_TIMEOUT"
access_logfile = "$ALOG"
EOF

(cd "$WORK" && exec env GSUPBENCH_TAG="$RUNID/" setsid "$GSUP_BIN" start -c gsup.toml) \
  >"$WORK/stdout.log" 2>"$WORK/stderr.log" </dev/null &
GSUP_PID=$!
if ! "$BIN/probe" waithttp -url "http://127.0.0.1:$PORT/healthz" -timeout 30s -pid "$GSUP_PID" >/dev/null; then
  log "gsup did not serve: $(tail -n 5 "$WORK/stderr.log")"
  exit 1
fi

rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -n $(git -C "$REPO" status --porcelain -uno 2>/dev/null) ]] && rev+="+changes"
OUT=$WORK/report.txt
{
  echo "soak: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg) at start; gsup $rev, $(go version | awk '{print $3}')"
  echo "gsup in front of 2 instances of bench/internal/upstream; body_timeout $BODY_TIMEOUT, graceful_timeout 5s, access log $([[ $ACCESS_LOG == 1 ]] && echo on || echo off)"
  echo "$DURATION of traffic; an instance SIGKILLed every $KILL_EVERY, gsup SIGHUPed every $HUP_EVERY${SOAK_ARGS:+; client flags: $SOAK_ARGS}"
  echo
} | tee "$OUT"

soak_rc=0
# shellcheck disable=SC2086
"$BIN/soak" -addr "127.0.0.1:$PORT" -pid "$GSUP_PID" -exe "$BIN/upstream" -seen "$WORK/seen" \
  -duration "$DURATION" -kill-every "$KILL_EVERY" -hup-every "$HUP_EVERY" -body-timeout "$BODY_TIMEOUT" \
  $SOAK_ARGS | tee -a "$OUT" || soak_rc=$?

# gsup's graceful stop, then what is left of its session or carries the tag
t0=$(date +%s%N)
kill -TERM "$GSUP_PID" 2>/dev/null || true
"$BIN/probe" waitexit -pid "$GSUP_PID" -timeout 30s >"$WORK/waitexit.txt" || true
stop=timeout
grep -q '^exit_ms=[0-9]' "$WORK/waitexit.txt" && stop=$(( ($(date +%s%N) - t0) / 1000000 ))  # from the TERM
left=$("$BIN/probe" left -sid "$GSUP_PID" -tag "$RUNID/" -timeout 2s)
left_n=$(sed -n 's/^left_n=//p' <<<"$left")
# the app's copies must be gone too, whatever session they ended up in
apps=$({ find /proc -maxdepth 2 -name exe -lname "$BIN/upstream" 2>/dev/null || true; } | wc -l)
gsup_rc=0; wait "$GSUP_PID" 2>/dev/null || gsup_rc=$?
GSUP_PID=
{
  echo "gsup stopped by TERM in ${stop:-?} ms (exit status $gsup_rc); processes left after the stop: $left_n$([[ $left_n != 0 ]] && echo " ($(sed -n 's/^left=//p' <<<"$left"))"), app processes left: $apps"
  if grep -qE 'level=(warning|error|fatal)|\[(WARNING|ERROR|CRITICAL)\]' "$WORK/stderr.log"; then
    echo "gsup's warnings and errors, by message (count):"
    grep -E 'level=(warning|error|fatal)|\[(WARNING|ERROR|CRITICAL)\]' "$WORK/stderr.log" |
      sed -E 's/^\[[^]]*\] \[[0-9]+\] //; s/:[0-9]+\b/:N/g; s/[0-9]+(\.[0-9]+)?(ms|s|µs)\b/N\2/g; s/\bpid=[0-9]+/pid=N/g' |
      sort | uniq -c | sort -rn | awk 'NR <= 12' | sed 's/^/  /' # awk reads it all: no SIGPIPE under pipefail
  fi
} | tee -a "$OUT"
mkdir -p "$BENCH/.work"
cp "$OUT" "$BENCH/.work/last-soak.txt"
if [[ $SAVE == 1 ]]; then
  mkdir -p "$BENCH/results"
  cp "$OUT" "$BENCH/results/$(date -u +%Y-%m-%d)-soak.txt"
  log "saved to bench/results/$(date -u +%Y-%m-%d)-soak.txt"
fi
[[ $soak_rc == 0 && $left_n == 0 && $apps == 0 ]] && STATUS=0
exit "$STATUS"
