#!/usr/bin/env bash
# Start the broker of an existing run dir again, on the same ports and with the same data
# (no formatting), e.g. after it was killed; print KAFKA_BOOTSTRAP=127.0.0.1:<port> once it
# serves metadata. For tests of a broker restart under load. If the broker is still alive it
# is left alone and its address printed.
#
# Environment: KAFKA_RUN_DIR (the run dir start.sh made), KAFKA_START_TIMEOUT (default 60),
# KAFKA_HEAP_OPTS / KAFKA_JVM_OPTS as for start.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
read -r -a JVM_OPTS <<<"${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true}"

[[ -f "$KAFKA_RUN_DIR/server.properties" && -f "$KAFKA_RUN_DIR/bootstrap" ]] ||
  die "no broker run dir at $KAFKA_RUN_DIR (start one with start.sh first)"

lock_run_dir
bootstrap="$(cat "$KAFKA_RUN_DIR/bootstrap")"
port="${bootstrap##*:}"
if [[ -f "$KAFKA_RUN_DIR/pid" ]] && is_our_broker "$(cat "$KAFKA_RUN_DIR/pid")" "$KAFKA_RUN_DIR"; then
  log "broker (pid $(cat "$KAFKA_RUN_DIR/pid")) is still running in $KAFKA_RUN_DIR"
  echo "KAFKA_BOOTSTRAP=$bootstrap"
  exit 0
fi

SECONDS=0
t0="$(now_us)"
log "restarting Kafka on $bootstrap with the data in $KAFKA_RUN_DIR/data"
mkdir -p "$KAFKA_RUN_DIR/logs"
# A marker so that readiness is read from this start's log lines only.
marker="restart-$(now_us)"
echo "[$marker]" >>"$KAFKA_RUN_DIR/logs/server.log"
(
  cd "$KAFKA_RUN_DIR"
  exec nohup "$JAVA" "${HEAP_OPTS[@]}" "${JVM_OPTS[@]}" \
    -XX:ErrorFile="$KAFKA_RUN_DIR/logs/hs_err_%p.log" \
    -Dlog4j.configuration="file:$KAFKA_RUN_DIR/log4j.properties" \
    -Dkafka.logs.dir="$KAFKA_RUN_DIR/logs" \
    -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$KAFKA_RUN_DIR/server.properties" \
    </dev/null >>"$KAFKA_RUN_DIR/logs/stdout.log" 2>&1 9>&-
) &
pid=$!
echo "$pid" >"$KAFKA_RUN_DIR/pid"
printf 'KAFKA_BOOTSTRAP=%s\nKAFKA_PID=%s\n' "$bootstrap" "$pid" >"$KAFKA_RUN_DIR/env"

until sed -n "/\[$marker\]/,\$p" "$KAFKA_RUN_DIR/logs/server.log" 2>/dev/null | grep -q 'Kafka Server started' &&
  port_open "$port"; do
  process_alive "$pid" || die "broker process $pid exited while restarting (see $KAFKA_RUN_DIR/logs)"
  ((SECONDS < START_TIMEOUT)) || die "broker not restarted after ${START_TIMEOUT}s (see $KAFKA_RUN_DIR/logs)"
  sleep 0.1
done
log "restarted in $(elapsed_since "$t0") (pid $pid)"
echo "KAFKA_BOOTSTRAP=$bootstrap"
