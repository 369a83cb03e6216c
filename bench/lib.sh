# lib.sh - shared by supervise.sh and http.sh (sourced; bash).

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
