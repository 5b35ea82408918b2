#!/usr/bin/env bash
# Start a real single-node Kafka broker (KRaft, combined broker+controller) on
# 127.0.0.1 for integration tests, wait until it serves metadata, then print
#   KAFKA_BOOTSTRAP=127.0.0.1:<port>
# on stdout (the only thing printed on stdout; progress goes to stderr).
#
# State lives in $KAFKA_RUN_DIR (default <repo>/.cache/kafka/run/current):
#   bootstrap   host:port of the PLAINTEXT listener
#   pid         PID of the broker JVM
#   env         KAFKA_BOOTSTRAP=... and KAFKA_PID=... lines, for `source`
#   server.properties, log4j.properties, data/ (log.dirs), logs/server.log
#
# If a broker started by this script is already alive in $KAFKA_RUN_DIR, it is
# reused (its address is printed again). Concurrent calls with the same run dir
# are serialised with flock, so the second one reuses the first one's broker.
# For a second, independent broker use another KAFKA_RUN_DIR.
#
# Environment (optional, see also _common.sh):
#   KAFKA_START_TIMEOUT     seconds to wait for readiness        (default 60)
#   KAFKA_HEAP_OPTS         broker heap flags                    (default -Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS          other broker JVM flags               (default G1 with short pauses)
#   KAFKA_EXTRA_PROPERTIES  extra server.properties lines, newline-separated,
#                           appended last (so they override the defaults)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
read -r -a JVM_OPTS <<<"${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true}"

# Pick a random TCP port on 127.0.0.1 that nothing listens on, below the
# kernel's ephemeral range (so no outgoing connection can be using it either).
# Bind races with other processes are handled by retrying the whole start.
pick_port() {
  local eph_lo eph_hi lo hi port _
  read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range || { eph_lo=32768 eph_hi=60999; }
  if ((eph_lo > 12000)); then
    lo=10000 hi=$((eph_lo - 1))
  elif ((eph_hi < 63000)); then
    lo=$((eph_hi + 1)) hi=65535
  else
    lo=20000 hi=60000
  fi
  for _ in $(seq 1 200); do
    port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    if [[ " $* " != *" $port "* ]] && ! port_open "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "could not find a free port in $lo-$hi"
}

# Kafka cluster ids are 16 random bytes, base64url without padding (what
# `kafka.tools.StorageTool random-uuid` prints); generated here to save a JVM start.
random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return 0; }
  done
}

write_config() {
  local broker_port="$1" controller_port="$2"
  cat >"$KAFKA_RUN_DIR/server.properties" <<EOF
# Written by scripts/kafka/start.sh: single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$broker_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_RUN_DIR/data

# Tests create their topics explicitly.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=4
default.replication.factor=1
min.insync.replicas=1

# Internal topics on one node, and few partitions so they are created fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4

# Fast consumer groups: no initial rebalance delay; let tests use short sessions.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Small machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
    printf '\n# From KAFKA_EXTRA_PROPERTIES.\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$KAFKA_RUN_DIR/server.properties"
  fi

  cat >"$KAFKA_RUN_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$KAFKA_RUN_DIR/logs/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.kafka.log.LogCleaner=WARN
EOF
}

show_logs() {
  local f
  for f in "$KAFKA_RUN_DIR/logs/stdout.log" "$KAFKA_RUN_DIR/logs/server.log"; do
    [[ -s "$f" ]] || continue
    printf '[kafka] --- last lines of %s ---\n' "$f" >&2
    tail -n 40 "$f" | sed 's/^/    /' >&2
  done
}

kill_broker() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    is_our_broker "$pid" "$KAFKA_RUN_DIR" || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Launch and wait for readiness. Returns 0 when ready, 2 if the broker died
# because a port was taken (caller retries with new ports), 1 otherwise.
launch_and_wait() {
  local broker_port="$1" controller_port="$2" deadline="$3" pid
  local bootstrap="127.0.0.1:$broker_port"

  rm -rf "$KAFKA_RUN_DIR/data" "$KAFKA_RUN_DIR/logs"
  mkdir -p "$KAFKA_RUN_DIR/data" "$KAFKA_RUN_DIR/logs"
  write_config "$broker_port" "$controller_port"

  if ! kafka_tool kafka.tools.StorageTool format \
    --cluster-id "$(random_cluster_id)" \
    --config "$KAFKA_RUN_DIR/server.properties" \
    >"$KAFKA_RUN_DIR/logs/format.log" 2>&1; then
    log "formatting KRaft storage failed:"
    sed 's/^/    /' "$KAFKA_RUN_DIR/logs/format.log" >&2
    return 1
  fi

  # exec keeps the PID; fd 9 (our flock) must not leak into the broker.
  (
    cd "$KAFKA_RUN_DIR"
    exec nohup "$JAVA" "${HEAP_OPTS[@]}" "${JVM_OPTS[@]}" \
      -XX:ErrorFile="$KAFKA_RUN_DIR/logs/hs_err_%p.log" \
      -Dlog4j.configuration="file:$KAFKA_RUN_DIR/log4j.properties" \
      -Dkafka.logs.dir="$KAFKA_RUN_DIR/logs" \
      -cp "$KAFKA_LIBS/*" \
      kafka.Kafka "$KAFKA_RUN_DIR/server.properties" \
      </dev/null >"$KAFKA_RUN_DIR/logs/stdout.log" 2>&1 9>&-
  ) &
  pid=$!
  echo "$pid" >"$KAFKA_RUN_DIR/pid"

  # 1) The JVM is up and the broker has finished startup (it logs this after
  #    the controller has elected itself and the broker has been unfenced).
  until grep -q 'Kafka Server started' "$KAFKA_RUN_DIR/logs/server.log" 2>/dev/null &&
    port_open "$broker_port"; do
    if ! process_alive "$pid"; then
      if grep -qs 'Address already in use' "$KAFKA_RUN_DIR/logs/server.log" "$KAFKA_RUN_DIR/logs/stdout.log"; then
        return 2
      fi
      log "broker process $pid exited during startup"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "broker not started after ${START_TIMEOUT}s"
      kill_broker "$pid"
      return 1
    fi
    sleep 0.1
  done

  # 2) A real client round-trip: an Admin metadata request (list topics).
  local remaining=$((deadline - SECONDS))
  ((remaining > 5)) || remaining=5
  if ! timeout "$remaining" "$KAFKA_SCRIPT_DIR/kafka-class.sh" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$bootstrap" --list >"$KAFKA_RUN_DIR/logs/probe.log" 2>&1; then
    log "broker port is open but a metadata request (TopicCommand --list) failed:"
    sed 's/^/    /' "$KAFKA_RUN_DIR/logs/probe.log" >&2
    kill_broker "$pid"
    return 1
  fi
  return 0
}

abort_start() {
  trap - INT TERM
  log "interrupted, stopping the broker being started"
  [[ -n "${LAUNCHER_PID:-}" ]] && kill "$LAUNCHER_PID" 2>/dev/null
  [[ -f "$KAFKA_RUN_DIR/pid" ]] && kill_broker "$(cat "$KAFKA_RUN_DIR/pid")"
  rm -rf "$KAFKA_RUN_DIR"
  exit 130
}

main() {
  "$KAFKA_SCRIPT_DIR/fetch.sh"
  command -v "$JAVA" >/dev/null || die "java not found (set JAVA or JAVA_HOME)"

  lock_run_dir

  # Reuse a live broker from an earlier start.sh with the same run dir.
  if [[ -f "$KAFKA_RUN_DIR/pid" && -f "$KAFKA_RUN_DIR/bootstrap" ]]; then
    local old_pid
    old_pid="$(cat "$KAFKA_RUN_DIR/pid")"
    if is_our_broker "$old_pid" "$KAFKA_RUN_DIR" && port_open "$(cut -d: -f2 "$KAFKA_RUN_DIR/bootstrap")"; then
      log "reusing running broker (pid $old_pid) in $KAFKA_RUN_DIR"
      echo "KAFKA_BOOTSTRAP=$(cat "$KAFKA_RUN_DIR/bootstrap")"
      return 0
    fi
  fi
  if [[ -f "$KAFKA_RUN_DIR/pid" ]] && is_our_broker "$(cat "$KAFKA_RUN_DIR/pid")" "$KAFKA_RUN_DIR"; then
    log "stopping unresponsive broker left in $KAFKA_RUN_DIR"
    kill_broker "$(cat "$KAFKA_RUN_DIR/pid")"
  fi
  rm -rf "$KAFKA_RUN_DIR"
  mkdir -p "$KAFKA_RUN_DIR"

  # If we are interrupted before the broker is ready, do not leave it behind.
  trap 'abort_start' INT TERM

  SECONDS=0
  local t0
  t0="$(now_us)"
  local deadline=$((SECONDS + START_TIMEOUT)) attempt broker_port controller_port rc
  for attempt in 1 2 3; do
    broker_port="$(pick_port)"
    controller_port="$(pick_port "$broker_port")"
    log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$broker_port (controller :$controller_port) in $KAFKA_RUN_DIR"
    # As a background job so that `set -e` stays in force inside it (bash
    # ignores -e in a function called from a `||` or `if` context).
    rc=0
    launch_and_wait "$broker_port" "$controller_port" "$deadline" &
    LAUNCHER_PID=$!
    wait "$LAUNCHER_PID" || rc=$?
    if ((rc == 0)); then
      local bootstrap="127.0.0.1:$broker_port"
      echo "$bootstrap" >"$KAFKA_RUN_DIR/bootstrap"
      printf 'KAFKA_BOOTSTRAP=%s\nKAFKA_PID=%s\n' "$bootstrap" "$(cat "$KAFKA_RUN_DIR/pid")" >"$KAFKA_RUN_DIR/env"
      trap - INT TERM
      log "ready in $(elapsed_since "$t0") (pid $(cat "$KAFKA_RUN_DIR/pid"), logs in $KAFKA_RUN_DIR/logs)"
      echo "KAFKA_BOOTSTRAP=$bootstrap"
      return 0
    fi
    if ((rc == 2 && attempt < 3)); then
      log "port taken while starting (attempt $attempt), retrying with other ports"
      continue
    fi
    break
  done

  show_logs
  rm -f "$KAFKA_RUN_DIR/pid" "$KAFKA_RUN_DIR/bootstrap"
  die "Kafka did not become ready; state and logs kept in $KAFKA_RUN_DIR"
}

main "$@"
