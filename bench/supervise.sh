#!/usr/bin/env bash
# supervise.sh - gsup next to runit and supervisord, in one run, on the same
# machine and the same children. Four figures per supervisor:
#
#   restart    SIGKILL a long-running child; ms until a new pid runs the child
#              program again (median / p90 / max over RESTARTS kills, N children)
#   start      ms from launching the supervisor to FLEET children running
#              (median of START_RUNS launches)
#   RSS        the supervisor's VmRSS with FLEET children, its helper processes
#              (runit's runsv, gsup's guard) counted apart, plus PSS sums
#   throughput lines/s from WRITERS children writing LINES lines each as fast as
#              they can, through the supervisor, into files; every line checked
#              (none lost, none split or glued, none twice, prefix as expected)
#
# Rows (SUPERVISORS, default "direct supervisord runit gsup"):
#   direct       throughput only: the writers append straight to one file, no
#                supervisor in the data path (the machine's ceiling)
#   supervisord  supervisord -n, one [program] with numprocs=COUNT
#   runit        runsvdir on a private service directory (one runsv per child;
#                throughput through one svlogd per writer), stopped with SIGHUP
#   gsup         $GSUP_BIN start -f Procfile --no-serve --control DIR/gsup.sock,
#                one process type scaled with -m TYPE=COUNT; stopped with SIGTERM
#   gsup-types   the same with COUNT process types of one instance each
#
# Knobs (environment):
#   N=10 RESTARTS=10 RESTART_AGE=2s FLEET=100 START_RUNS=5
#   WRITERS=10 LINES=200000 CHUNK=4096 SPLIT_WRITES=0
#   PHASES="restart start throughput" SUPERVISORS="..." KEEP_WORK=0
#   GSUP_BIN=path (default: go build -o bench/.work/gsup . from the repo root)
#   GSUP_ARGS='start -f {procfile} --no-serve --control {dir}/gsup.sock {formation}'
#             ({formation} becomes "-m TYPE=COUNT" for the gsup row, nothing for gsup-types)
#   GSUP_PREFIX_RE='[0-9]{2}:[0-9]{2}:[0-9]{2} [A-Za-z0-9_./-]+ *\| '  (empty: no prefix check)
#   SVLOGD_ARGS=  (extra svlogd options, e.g. "-b 65536")
#   INSTALL=1     install missing runit / supervisor first (Debian, root; no service left enabled)
#
# Every wait is bounded. Each supervisor runs in its own session with an
# environment tag that its whole tree inherits; whatever outlives a phase is
# found by that tag (or by running a program from this run's bin directory)
# and killed by pid. Work files live under bench/.work/ (git-ignored).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BENCH/lib.sh"   # also REPO, and PATH with Go's and the sbin folders

N=${N:-10}
RESTARTS=${RESTARTS:-10}
RESTART_AGE=${RESTART_AGE:-2s}
FLEET=${FLEET:-100}
START_RUNS=${START_RUNS:-5}
WRITERS=${WRITERS:-10}
LINES=${LINES:-200000}
CHUNK=${CHUNK:-4096}
SPLIT_WRITES=${SPLIT_WRITES:-0}
PHASES=${PHASES:-restart start throughput}
SUPERVISORS=${SUPERVISORS:-direct supervisord runit gsup}
GSUP_BIN=${GSUP_BIN:-}
GSUP_ARGS=${GSUP_ARGS:-'start -f {procfile} --no-serve --control {dir}/gsup.sock {formation}'}
GSUP_PREFIX_RE=${GSUP_PREFIX_RE-'[0-9]{2}:[0-9]{2}:[0-9]{2} [A-Za-z0-9_./-]+ *\| '}
SVLOGD_ARGS=${SVLOGD_ARGS:-}
KEEP_WORK=${KEEP_WORK:-0}

INSTALL=${INSTALL:-0}

# INSTALL=1: install the missing peers from Debian's packages (root only), with
# service starts denied during the install (policy-rc.d), runit without its
# Recommends (runit-run would run a system runsvdir on /etc/service), and the
# supervisor service disabled at boot and stopped if its package started it.
install_peers() {
  local need=()
  command -v supervisord >/dev/null || need+=(supervisor)
  { command -v runsvdir && command -v runsv && command -v svlogd; } >/dev/null || need+=(runit)
  (( ${#need[@]} )) || return 0
  install_debs "missing rows will be skipped" "${need[@]}"
  stop_services "/run/supervisord.pid /var/run/supervisord.pid" supervisor
}
[[ $INSTALL == 1 ]] && install_peers

SUPERVISORD=${SUPERVISORD:-$(command -v supervisord || true)}
RUNSVDIR=${RUNSVDIR:-$(command -v runsvdir || true)}
SVLOGD=${SVLOGD:-$(command -v svlogd || true)}

declare -A R   # R[row.key] = value
NOTES=()
new_run supervise

# --- build --------------------------------------------------------------------------
log "building the probe"
(cd "$REPO" && go build -o "$PROBE" ./bench/internal/probe)
cp "$(command -v sleep)" "$BIN/ch"   # the long-running child: a private copy of sleep
cp "$PROBE" "$BIN/wr"                # the throughput child: "wr writer ..."
CH=$BIN/ch
WR=$BIN/wr

GSUP_NOTE=
if [[ " $SUPERVISORS " == *" gsup"* ]]; then prepare_gsup; fi

available() {
  case $1 in
    direct) return 0 ;;
    supervisord) [[ -x $SUPERVISORD ]] ;;
    runit) [[ -x $RUNSVDIR && -x $SVLOGD ]] && command -v runsv >/dev/null ;;
    gsup|gsup-types) [[ -n $GSUP_BIN ]] ;;
    *) return 1 ;;
  esac
}

# --- configurations ---------------------------------------------------------------
# conf ROW DIR KIND COUNT : write ROW's configuration in DIR for COUNT children of
# KIND (sleep | writer); set LAUNCH (argv), STOP_SIG, OUT_FILES (globs, writer only),
# PREFIX (writer only) and SUP_STDOUT (where the supervisor's stdout goes).

child_cmd() {  # child_cmd KIND DIR
  if [[ $1 == sleep ]]; then
    echo "$CH 100000"
  else
    local split=
    [[ $SPLIT_WRITES == 1 ]] && split=" -split"
    echo "$WR writer -lines $LINES -chunk $CHUNK$split -go $2/go"
  fi
}

conf_supervisord() {
  local dir=$1 kind=$2 count=$3 cmd logto=NONE name=child
  cmd=$(child_cmd "$kind" "$dir")
  [[ $kind == writer ]] && name=writer
  if [[ $kind == writer ]]; then
    mkdir -p "$dir/logs"
    logto="$dir/logs/%(program_name)s_%(process_num)03d.log"
    OUT_FILES=("$dir/logs/*.log")
  fi
  cat >"$dir/supervisord.conf" <<EOF
[supervisord]
nodaemon=true
logfile=$dir/supervisord.log
pidfile=$dir/supervisord.pid
childlogdir=$dir
loglevel=info

[program:$name]
command=$cmd
numprocs=$count
process_name=%(program_name)s_%(process_num)03d
autostart=true
autorestart=true
startsecs=1
redirect_stderr=true
stdout_logfile=$logto
stdout_logfile_maxbytes=0
stdout_logfile_backups=0
EOF
  LAUNCH=("$SUPERVISORD" -n -c "$dir/supervisord.conf")
  STOP_SIG=TERM
  PREFIX=
}

conf_runit() {
  local dir=$1 kind=$2 count=$3 cmd i s name=child
  cmd=$(child_cmd "$kind" "$dir")
  [[ $kind == writer ]] && name=writer
  mkdir -p "$dir/service"
  for i in $(seq -w 1 "$count"); do
    s=$dir/service/$name$i
    mkdir -p "$s"
    printf '#!/bin/sh\nexec %s 2>&1\n' "$cmd" >"$s/run"
    chmod +x "$s/run"
    if [[ $kind == writer ]]; then
      # runsv pipes the service's output into its log service: svlogd, one per
      # writer, into logs/writerNN/current; "s0" in its config turns rotation off.
      mkdir -p "$s/log" "$dir/logs/$name$i"
      printf 's0\n' >"$dir/logs/$name$i/config"
      printf '#!/bin/sh\nexec %s %s %s\n' "$SVLOGD" "$SVLOGD_ARGS" "$dir/logs/$name$i" >"$s/log/run"
      chmod +x "$s/log/run"
    fi
  done
  # runsvdir does not trust a directory modified within the current second
  # (it might still be being written) and looks again a second later; a
  # real service directory is old, so date ours back.
  touch -d "@$(( $(date +%s) - 10 ))" "$dir/service"
  OUT_FILES=("$dir/logs/*/current")
  LAUNCH=("$RUNSVDIR" "$dir/service")
  STOP_SIG=HUP   # runsvdir's "stop everything"; TERM would leave every runsv running
  PREFIX=
}

conf_gsup() {
  local row=$1 dir=$2 kind=$3 count=$4 cmd i type formation args
  cmd=$(child_cmd "$kind" "$dir")
  type=child; [[ $kind == writer ]] && type=writer
  if [[ $row == gsup ]]; then
    printf '%s: %s\n' "$type" "$cmd" >"$dir/Procfile"
    formation="-m $type=$count"
  else
    for i in $(seq -w 1 "$count"); do printf '%s%s: %s\n' "$type" "$i" "$cmd"; done >"$dir/Procfile"
    formation=
  fi
  args=${GSUP_ARGS//\{procfile\}/$dir/Procfile}
  args=${args//\{dir\}/$dir}
  args=${args//\{formation\}/$formation}
  read -r -a LAUNCH <<<"$args"   # the template is split on blanks, never globbed
  LAUNCH=("$GSUP_BIN" "${LAUNCH[@]}")
  STOP_SIG=TERM
  OUT_FILES=("$dir/out.log")
  SUP_STDOUT=$dir/out.log
  PREFIX=$GSUP_PREFIX_RE
}

conf_direct() {
  read -r -a LAUNCH <<<"$(child_cmd writer "$1")"
  STOP_SIG=TERM
  OUT_FILES=("$1/out.log")
  SUP_STDOUT=$1/out.log
  PREFIX=
}

conf() {  # conf ROW DIR KIND COUNT
  OUT_FILES=(); SUP_STDOUT=$2/supervisor.out
  mkdir -p "$2"
  case $1 in
    supervisord) conf_supervisord "$2" "$3" "$4" ;;
    runit) conf_runit "$2" "$3" "$4" ;;
    gsup|gsup-types) conf_gsup "$1" "$2" "$3" "$4" ;;
    direct) conf_direct "$2" ;;
  esac
}

# --- results ----------------------------------------------------------------------
# probe_run ROW KEYPREFIX LIMIT_S PROBE-ARGS... : run the probe (killed after LIMIT_S
# in any case), keep its key=value output in R[ROW.KEYPREFIX+key]
probe_run() {
  local row=$1 pre=$2 limit=$3 out k v
  shift 3
  out=$WORK/$row.${pre%.}.result
  if ! timeout --foreground --kill-after=10 "$limit" "$PROBE" "$@" >"$out" 2>>"$WORK/$row.${pre%.}.log"; then
    log "$row: probe $1 failed or timed out (see $WORK/$row.${pre%.}.log)"
  fi
  while IFS='=' read -r k v; do
    [[ -n $k ]] && R["$row.$pre$k"]=$v
  done <"$out"
  return 0
}


# --- phases -----------------------------------------------------------------------
# Each phase goes through the rows in turn (start: one launch of every row, then
# the next round), so that a burst of load on the machine does not land on one
# supervisor only.


# no_figure ROW PHASE-KEY DIR : note why a phase gave no figure
no_figure() {
  local row=$1 pre=$2 dir=$3 why lines
  why="$(val "$row.${pre}children") children running, exit $(val "$row.${pre}exit")"
  if [[ -s $dir/supervisor.err ]]; then
    lines=$(grep -iE 'error|fatal|fail|warn|usage|invalid|unknown' "$dir/supervisor.err" | head -n 2 || true)
    [[ -n $lines ]] || lines=$(head -n 2 "$dir/supervisor.err")
    why+=", stderr: $(tr '\n' ' ' <<<"$lines" | cut -c1-240)"
  fi
  note "$row: ${pre%.}: no figure ($why)"
}

leftovers() {  # leftovers ROW PHASE-KEY : note what outlived the stop signal
  local l
  l=$(val "$1.${2}left")
  [[ $l == none || $l == - ]] || note "$1: ${2%.}: still running 2 s after the stop signal: $l (killed)"
}

phase_restart() {
  local row=$1 dir=$WORK/$row/restart age_s=10
  conf "$row" "$dir" sleep "$N"
  [[ $RESTART_AGE =~ ^([0-9]+)(\.[0-9]+)?s$ ]] && age_s=$(( BASH_REMATCH[1] + 1 ))
  probe_run "$row" restart. $(( RESTARTS * (6 + age_s) + 120 )) restart \
    -dir "$dir" -stdout "$SUP_STDOUT" -stderr "$dir/supervisor.err" -tag "$RUNID/$row/restart/" -bindir "$BIN" \
    -stop-signal "$STOP_SIG" -exe "$CH" -n "$N" -kills "$RESTARTS" -age "$RESTART_AGE" -- "${LAUNCH[@]}"
  log "$row: restart ms [$(val "$row.restart.restart_ms")] median $(val "$row.restart.restart_median"), stop $(val "$row.restart.stop_ms") ms, left $(val "$row.restart.left")"
  [[ $(val "$row.restart.restart_median") =~ ^[0-9.]+$ ]] || no_figure "$row" restart. "$dir"
  leftovers "$row" restart.
}

start_once() {  # start_once ROW K
  local row=$1 k=$2 dir=$WORK/$1/start-$2
  conf "$row" "$dir" sleep "$FLEET"
  probe_run "$row" "start$k." 150 start \
    -dir "$dir" -stdout "$SUP_STDOUT" -stderr "$dir/supervisor.err" -tag "$RUNID/$row/start-$k/" -bindir "$BIN" \
    -stop-signal "$STOP_SIG" -exe "$CH" -n "$FLEET" -- "${LAUNCH[@]}"
  log "$row: start #$k: $(val "$row.start$k.start_ms") ms, RSS $(val "$row.start$k.rss_kb") kB, helpers $(val "$row.start$k.helpers") $(val "$row.start$k.helpers_rss_kb") kB, stop $(val "$row.start$k.stop_ms") ms, left $(val "$row.start$k.left")"
  [[ $(val "$row.start$k.start_ms") =~ ^[0-9.]+$ ]] || no_figure "$row" "start$k." "$dir"
  leftovers "$row" "start$k."
}

start_summary() {  # start_summary ROW : medians over the launches
  local row=$1 k key
  local -A vals=()
  for k in $(seq 1 "$START_RUNS"); do
    for key in start_ms rss_kb pss_kb helpers_n helpers_rss_kb helpers_pss_kb total_rss_kb total_pss_kb stop_ms; do
      vals[$key]+=" $(val "$row.start$k.$key")"
    done
  done
  for key in "${!vals[@]}"; do
    # shellcheck disable=SC2086
    R["$row.start.$key"]=$(median ${vals[$key]})
  done
  R["$row.start.helpers"]=$(val "$row.start1.helpers")
}

phase_throughput() {
  local row=$1 dir=$WORK/$row/throughput direct=() files=() f
  conf "$row" "$dir" writer "$WRITERS"
  if [[ $row == direct ]]; then
    direct=(-direct)
    [[ $SPLIT_WRITES == 1 ]] && note "direct: with SPLIT_WRITES=1 writers sharing one file interleave mid-line, nothing puts lines back together: its check is expected to fail"
  fi
  for f in "${OUT_FILES[@]}"; do files+=(-files "$f"); done
  probe_run "$row" tput. 420 throughput "${direct[@]}" \
    -dir "$dir" -stdout "$SUP_STDOUT" -stderr "$dir/supervisor.err" -tag "$RUNID/$row/throughput/" -bindir "$BIN" \
    -stop-signal "$STOP_SIG" -exe "$WR" -writers "$WRITERS" -lines "$LINES" -go "$dir/go" \
    -prefix "$PREFIX" "${files[@]}" -- "${LAUNCH[@]}"
  log "$row: throughput $(val "$row.tput.lines_per_s") lines/s in $(val "$row.tput.secs") s, check $(val "$row.tput.check") (other lines $(val "$row.tput.other_lines"), files $(val "$row.tput.files"), peak RSS $(val "$row.tput.hwm_kb") kB)"
  [[ $(val "$row.tput.samples") =~ ^-?$ ]] || note "$row: throughput: sample lines: $(val "$row.tput.samples")"
  [[ $(val "$row.tput.lines_per_s") =~ ^[0-9.]+$ ]] || no_figure "$row" tput. "$dir"
  [[ $row == direct ]] || leftovers "$row" tput.
  # the output files can be large; they are not needed any more
  [[ $KEEP_WORK == 1 ]] || rm -rf "$dir/logs" "$dir/out.log"
  return 0
}

versions() {
  local v=()
  [[ -x $SUPERVISORD ]] && v+=("supervisord $("$SUPERVISORD" --version 2>&1 | head -n1)")
  [[ -x $RUNSVDIR ]] && v+=("runit $(dpkg-query -W -f='${Version}' runit 2>/dev/null || echo '?')")
  [[ -n $GSUP_BIN ]] && v+=("gsup $GSUP_BIN")
  v+=("$(go version | awk '{print $3}')")
  join_comma "${v[@]}"
}

# --- run ----------------------------------------------------------------------------
skip_reason() {
  case $1 in
    gsup|gsup-types) echo "${GSUP_NOTE:-"set GSUP_BIN"}" ;;
    supervisord|runit) echo "not installed (INSTALL=1 installs it)" ;;
    *) echo "unknown row" ;;
  esac
}
t_start=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "$(nproc) cpus, load $LOAD_START; rows: $SUPERVISORS; phases: $PHASES"
# shellcheck disable=SC2086
pick_rows $SUPERVISORS

for phase in $PHASES; do
  case $phase in
    restart|throughput)
      for row in "${ACTIVE[@]}"; do
        [[ $row == direct && $phase != throughput ]] && continue
        log "$row: $phase"
        "phase_$phase" "$row"
      done ;;
    start)
      for k in $(seq 1 "$START_RUNS"); do
        for row in "${ACTIVE[@]}"; do
          [[ $row == direct ]] && continue
          # a row whose first launch never got all its children up is not tried again
          if (( k > 1 )) && ! [[ $(val "$row.start1.start_ms") =~ ^[0-9.]+$ ]]; then continue; fi
          start_once "$row" "$k"
        done
      done
      for row in "${ACTIVE[@]}"; do
        [[ $row == direct ]] || start_summary "$row"
      done ;;
    *) log "unknown phase $phase (restart, start, throughput)"; exit 2 ;;
  esac
done

# --- report -------------------------------------------------------------------------
fmt_int() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]] && printf "%.0f" "$1" || printf '%s' "$1"; }

report() {
  local split_note="whole lines per write"
  [[ $SPLIT_WRITES == 1 ]] && split_note="writes cut mid-line"
  echo
  echo "Supervision: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cpus, load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: $(versions)"
  echo "restart: $N children, $RESTARTS SIGKILLs, each victim up >= $RESTART_AGE | start, RSS: $FLEET children, median of $START_RUNS launches | throughput: $WRITERS writers x $LINES lines, writes <= $CHUNK B ($split_note)"
  [[ -n $GSUP_NOTE ]] && echo "note: $GSUP_NOTE"
  echo
  printf '%-12s %9s %9s %9s | %9s | %10s %-11s %10s %10s %10s | %10s  %s\n' \
    "" "restart" "ms" "" "start" "RSS kB" "helpers" "helpers" "total" "total" "throughput" ""
  printf '%-12s %9s %9s %9s | %9s | %10s %-11s %10s %10s %10s | %10s  %s\n' \
    supervisor median p90 max "ms" supervisor "" "RSS kB" "RSS kB" "PSS kB" "lines/s" check
  local row h
  for row in "${LISTED[@]}"; do
    if [[ -n ${R["$row.skip"]-} ]]; then
      printf '%-12s skipped: %s\n' "$row" "${R["$row.skip"]}"; continue
    fi
    h=$(val "$row.start.helpers"); [[ $h == none ]] && h=-
    printf '%-12s %9s %9s %9s | %9s | %10s %-11s %10s %10s %10s | %10s  %s\n' "$row" \
      "$(val "$row.restart.restart_median")" "$(val "$row.restart.restart_p90")" "$(val "$row.restart.restart_max")" \
      "$(val "$row.start.start_ms")" \
      "$(fmt_int "$(val "$row.start.rss_kb")")" "$h" "$(fmt_int "$(val "$row.start.helpers_rss_kb")")" \
      "$(fmt_int "$(val "$row.start.total_rss_kb")")" "$(fmt_int "$(val "$row.start.total_pss_kb")")" \
      "$(val "$row.tput.lines_per_s")" "$(val "$row.tput.check")"
  done

  print_notes
  if busy_at_start; then
    echo "note: the machine was busy when the run started (load ${LOAD_START%% *} on $(nproc) cpus): expect noisy latencies"
  fi

  local g
  for g in gsup gsup-types; do
    [[ " ${LISTED[*]} " == *" $g "* && -z ${R["$g.skip"]-} ]] || continue
    echo
    printf '%-26s %14s %10s %10s %12s %-8s %-22s %s\n' "$g / peer" "vs supervisord" "vs runit" "vs direct" "$g" "" "target (issue)" ""
    ratio_line "$g" "restart median" restart.restart_median ms lt 10 "< 10 ms"
    ratio_line "$g" "restart p90" restart.restart_p90 ms
    ratio_line "$g" "start $FLEET" start.start_ms ms lt 1000 "< 1 s"
    ratio_line "$g" "RSS supervisor process" start.rss_kb kB lt 20480 "< 20 MB (20480 kB)"
    ratio_line "$g" "RSS with helpers" start.total_rss_kb kB
    ratio_line "$g" "PSS with helpers" start.total_pss_kb kB
    ratio_line "$g" "throughput" tput.lines_per_s lines/s ge 500000 ">= 500k/s, intact"
  done
}

# ratio_line GSUPROW LABEL KEY UNIT [OP LIMIT TARGETTEXT] : gsup's figure over each
# peer's, and the issue's target (OP lt: below LIMIT; ge: at least LIMIT, check ok)
ratio_line() {
  local g=$1 label=$2 key=$3 unit=$4 op=${5:-} limit=${6:-} ttext=${7:--} mine peer cols=() verdict=
  mine=$(val "$g.$key")
  for peer in supervisord runit direct; do
    peer=$(val "$peer.$key")
    if [[ $mine =~ ^[0-9.]+$ && $peer =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($peer > 0)}"; then
      cols+=("$(awk "BEGIN{printf \"%.2fx\", $mine / $peer}")")
    else
      cols+=("-")
    fi
  done
  local phase=${key%%.*}
  [[ $phase == tput ]] && phase=throughput
  if [[ " $PHASES " != *" $phase "* ]]; then
    return 0
  elif [[ -n $op ]]; then
    verdict=FAIL
    if ! [[ $mine =~ ^[0-9.]+$ ]]; then
      verdict="FAIL (no figure)"
    elif [[ $op == lt ]]; then
      awk "BEGIN{exit !($mine < $limit)}" && verdict=PASS
    else
      awk "BEGIN{exit !($mine >= $limit)}" && verdict=PASS
      [[ $(val "$g.tput.check") == ok ]] || verdict="FAIL (check: $(val "$g.tput.check"))"
    fi
  fi
  printf '%-26s %14s %10s %10s %12s %-8s %-22s %s\n' "$label" "${cols[0]}" "${cols[1]}" "${cols[2]}" "$mine" "$unit" "$ttext" "$verdict"
}

save_report supervise
