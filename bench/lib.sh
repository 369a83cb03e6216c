# lib.sh - shared by the bench scripts (sourced, with BENCH set to bench/; bash).

REPO=$(cd "$BENCH/.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

note() { NOTES+=("$*"); }

median() {  # median VALUE... (non-numbers ignored; "-" when none)
  printf '%s\n' "$@" | { grep -E '^-?[0-9]+(\.[0-9]+)?$' || true; } | sort -g |
    awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# prepare_gsup: make GSUP_BIN usable — build it into $BENCH/.work/gsup from
# $REPO when it is empty — or, when that fails, empty it and say why in
# GSUP_NOTE (the gsup rows are then skipped). Build output goes to $WORK.
prepare_gsup() {
  GSUP_NOTE=
  if [[ -z $GSUP_BIN ]]; then
    GSUP_BIN=$BENCH/.work/gsup
    log "building gsup: go build -o $GSUP_BIN ."
    rm -f "$GSUP_BIN"
    if ! (cd "$REPO" && go build -o "$GSUP_BIN" .) >"$WORK/gsup-build.log" 2>&1; then
      GSUP_NOTE="gsup build failed: $(head -n 3 "$WORK/gsup-build.log" | tr '\n' ' ')"
      log "$GSUP_NOTE; gsup rows skipped"
      GSUP_BIN=
    fi
  elif [[ ! -x $GSUP_BIN ]]; then
    GSUP_NOTE="GSUP_BIN=$GSUP_BIN is not executable"
    log "$GSUP_NOTE; gsup rows skipped"
    GSUP_BIN=
  fi
}

val() { local x=${R["$1"]-}; echo "${x:--}"; }   # R[KEY], or "-"

# install_debs WHY-IF-FAILED PKG... : apt-get install the Debian packages
# (root only, without their Recommends) while a policy-rc.d denies service
# starts; on failure logs "install failed; WHY-IF-FAILED". Returns 0.
install_debs() {
  local why=$1
  shift
  (( $# )) || return 0
  if [[ $(id -u) != 0 ]]; then log "INSTALL=1: not root, cannot install $*"; return 0; fi
  log "installing $*"
  (
    made=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1
    fi
    trap '[[ $made == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  ) || log "install failed; $why"
}

# stop_services "PIDFILE..." SERVICE... : stop what an install started anyway
# (TERM to the pid in each pid file) and keep the services from starting at boot
stop_services() {
  local pf svc
  for pf in $1; do
    if [[ -s $pf ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then kill -TERM "$(cat "$pf")" || true; fi
  done
  shift
  for svc; do
    if command -v systemctl >/dev/null; then systemctl disable "$svc" >/dev/null 2>&1 || true; fi
    if command -v update-rc.d >/dev/null; then update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
  done
}

# new_run NAME : RUNID, the run's folder WORK and its BIN (marked, so that the
# probe may match processes by it) and PROBE's path; on
# any exit run_cleanup runs (a script's own cleanup_first, if it has one, then
# the probe kills whatever carries the run's tag or runs a program from BIN).
new_run() {
  RUNID=$1-$(date +%Y%m%d-%H%M%S)-$$
  WORK=$BENCH/.work/$RUNID
  BIN=$WORK/bin
  PROBE=$BIN/probe
  mkdir -p "$BIN"
  : >"$BIN/.bench-bin"   # the probe matches processes by this directory only when it holds this mark
  trap run_cleanup EXIT
  trap 'exit 130' INT TERM
}

run_cleanup() {
  if declare -F cleanup_first >/dev/null; then cleanup_first; fi
  if [[ -x $PROBE ]]; then
    "$PROBE" reap -tag "$RUNID/" -bindir "$BIN" >/dev/null 2>&1 || true
  fi
  if [[ $KEEP_WORK != 1 ]]; then rm -rf "$WORK"; else log "work files kept in $WORK"; fi
}

# pick_rows ROW... : LISTED (every row, in order) and ACTIVE (those the
# script's available ROW accepts); each other row gets R[ROW.skip] from the
# script's skip_reason ROW, and a log line.
pick_rows() {
  local row
  LISTED=(); ACTIVE=()
  for row; do
    LISTED+=("$row")
    if available "$row"; then ACTIVE+=("$row"); continue; fi
    R["$row.skip"]=$(skip_reason "$row")
    log "$row: skipped (${R["$row.skip"]})"
  done
}

join_comma() { local IFS=,; echo "$*" | sed 's/,/, /g'; }   # join_comma ITEM... : "a, b, c"

# print_notes : the NOTES, each on a "note:" line after a blank one
print_notes() {
  if (( ${#NOTES[@]} )); then
    echo
    printf 'note: %s\n' "${NOTES[@]}"
  fi
}

busy_at_start() {  # the 1-min load average at the start was above half the CPUs
  awk -v l="${LOAD_START%% *}" -v c="$(nproc)" 'BEGIN{exit !(l > c / 2)}'
}

# save_report NAME : the script's report, printed and saved as
# .work/last-NAME.txt, then the time the run took
save_report() {
  mkdir -p "$BENCH/.work"
  report | tee "$BENCH/.work/last-$1.txt"
  echo "elapsed: $(( $(date +%s) - t_start )) s" | tee -a "$BENCH/.work/last-$1.txt"
}
