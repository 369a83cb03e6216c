#!/usr/bin/env bash
# burst.sh - does gsup's memory come back after a burst of connections?
#
# Starts gsup in front of bench/internal/upstream, reads its VmRSS, opens N
# idle connections to the front at once (bench/internal/burst), holds them
# until gsup has accepted them all, closes them, and reads gsup's VmRSS and
# open fds over the next WAIT seconds. Target (issue 8): RSS WAIT seconds
# after the close < 2x the RSS before.
#
# Knobs (environment):
#   N=15000 WAIT=60 PORT=18431 (the front; the app gets PORT+1)
#   SEND="" (idle connections); SEND='GET / HTTP/1.1\r\n': each sends the
#     start of a request head, so that it reaches gsup at once although TCP
#     binds defer idle connections (TCP_DEFER_ACCEPT)
#   GSUP_BIN=path (default: go build -o bench/.work/gsup . from the repo root)
#   KEEP_WORK=0
#
# Only loopback addresses. Everything it starts is stopped on exit (gsup by
# TERM, then KILL after 10 s; the burst client by KILL).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
N=${N:-15000}
WAIT=${WAIT:-60}
PORT=${PORT:-18431}
GSUP_BIN=${GSUP_BIN:-}
KEEP_WORK=${KEEP_WORK:-0}
SEND=${SEND:-}

source "$BENCH/lib.sh"

WORK=$BENCH/.work/burst-$(date +%Y%m%d-%H%M%S)-$$
BIN=$WORK/bin
mkdir -p "$BIN"
GSUP_PID=
CLIENT_PID=

cleanup() {
  [[ -n $CLIENT_PID ]] && kill -KILL "$CLIENT_PID" 2>/dev/null || true
  if [[ -n $GSUP_PID ]] && kill -0 "$GSUP_PID" 2>/dev/null; then
    kill -TERM "$GSUP_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$GSUP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GSUP_PID" 2>/dev/null || true
  fi
  if [[ $KEEP_WORK != 1 ]]; then rm -rf "$WORK"; else log "work files kept in $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

log "building the upstream app and the burst client"
(cd "$REPO" && go build -o "$BIN/upstream" ./bench/internal/upstream && go build -o "$BIN/burst" ./bench/internal/burst)
prepare_gsup
[[ -n $GSUP_BIN ]] || { log "no gsup: $GSUP_NOTE"; exit 1; }

# The client needs N fds, gsup N plus its own.
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < N + 512 )); then
  log "the open files limit ($(ulimit -n)) is below N+512; lower N"
  exit 1
fi

printf 'web: exec %s\n' "$BIN/upstream" >"$WORK/Procfile"
(cd "$WORK" && exec "$GSUP_BIN" start -f Procfile -b "127.0.0.1:$PORT" --port $((PORT + 1)) \
  --control "$WORK/gsup.sock" >"$WORK/stdout.log" 2>"$WORK/stderr.log") &
GSUP_PID=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" || { log "gsup did not serve: $(tail -n 5 "$WORK/stderr.log")"; exit 1; }
# Some ordinary traffic first, so that "before" is a gsup that has served.
for _ in $(seq 200); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/"; done
sleep 2
rss_before=$(rss_kb "$GSUP_PID")
anon_before=$(anon_kb "$GSUP_PID")
fds_before=$(fds "$GSUP_PID")
log "gsup pid $GSUP_PID: VmRSS ${rss_before} kB, $fds_before fds before the burst"

"$BIN/burst" -n "$N" -send "$SEND" -hold-until "$WORK/release" -max 120s "127.0.0.1:$PORT" >"$WORK/burst.log" 2>&1 &
CLIENT_PID=$!
for _ in $(seq 1200); do [[ -e $WORK/release.open ]] && break; sleep 0.1; done
opened=$(cat "$WORK/release.open" 2>/dev/null || echo 0)
# Until gsup holds them all (or stops gaining).
last=0
for _ in $(seq 300); do
  now=$(fds "$GSUP_PID")
  (( now >= fds_before + opened )) && break
  (( now == last )) && sleep 0.5 && [[ $(fds "$GSUP_PID") == "$now" ]] && break
  last=$now
  sleep 0.1
done
rss_peak=$(rss_kb "$GSUP_PID")
anon_peak=$(anon_kb "$GSUP_PID")
fds_peak=$(fds "$GSUP_PID")
log "opened $opened connections${SEND:+ (each sent $SEND)}: VmRSS ${rss_peak} kB, $fds_peak fds"
touch "$WORK/release"
wait "$CLIENT_PID" || true
CLIENT_PID=
t0=$(date +%s)

printf '\n%-22s %10s %10s %8s\n' "gsup after the close" "VmRSS kB" "anon kB" "fds"
printf '%-22s %10s %10s %8s\n' "before the burst" "$rss_before" "$anon_before" "$fds_before"
printf '%-22s %10s %10s %8s\n' "$opened connections" "$rss_peak" "$anon_peak" "$fds_peak"
for at in 1 5 10 30 "$WAIT"; do
  (( at > WAIT )) && continue
  while (( $(date +%s) - t0 < at )); do sleep 0.2; done
  printf '%-22s %10s %10s %8s\n' "+${at}s" "$(rss_kb "$GSUP_PID")" "$(anon_kb "$GSUP_PID")" "$(fds "$GSUP_PID")"
done
rss_after=$(rss_kb "$GSUP_PID")
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" && served=yes || served=NO
ratio=$(awk -v a="$rss_after" -v b="$rss_before" 'BEGIN {printf "%.2f", a / b}')
verdict=FAIL
awk -v r="$ratio" 'BEGIN {exit !(r < 2)}' && verdict=PASS
printf '\nRSS %ss after the close / before: %sx (target < 2x): %s; still serving: %s\n' "$WAIT" "$ratio" "$verdict" "$served"
grep -E 'level=(warning|error)|\[(WARNING|ERROR)\]' "$WORK/stderr.log" | head -n 5 || true
