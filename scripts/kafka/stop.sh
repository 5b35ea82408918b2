#!/usr/bin/env bash
# Stop the broker started by start.sh (SIGTERM; SIGKILL after
# $KAFKA_STOP_TIMEOUT seconds, default 30) and delete its run dir
# ($KAFKA_RUN_DIR, default <repo>/.cache/kafka/run/current).
# Succeeds (and says so) if no broker is running there.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

lock_run_dir

pid=""
[[ -f "$KAFKA_RUN_DIR/pid" ]] && pid="$(cat "$KAFKA_RUN_DIR/pid")"

if [[ -n "$pid" ]] && is_our_broker "$pid" "$KAFKA_RUN_DIR"; then
  SECONDS=0
  t0="$(now_us)"
  kill -TERM "$pid" 2>/dev/null || true
  while is_our_broker "$pid" "$KAFKA_RUN_DIR" && ((SECONDS < STOP_TIMEOUT)); do
    sleep 0.1
  done
  if is_our_broker "$pid" "$KAFKA_RUN_DIR"; then
    log "broker (pid $pid) still running after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      is_our_broker "$pid" "$KAFKA_RUN_DIR" || break
      sleep 0.1
    done
    is_our_broker "$pid" "$KAFKA_RUN_DIR" && die "broker (pid $pid) survived SIGKILL; run dir kept"
  fi
  log "stopped broker (pid $pid) in $(elapsed_since "$t0")"
else
  log "no broker running in $KAFKA_RUN_DIR"
fi

rm -rf "$KAFKA_RUN_DIR"
