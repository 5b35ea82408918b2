# shellcheck shell=bash disable=SC2034
# (SC2034: the variables defined here are used by the scripts that source this file.)
# Shared settings and helpers for scripts/kafka/*.sh. Sourced, not run.
#
# Environment (all optional):
#   KAFKA_VERSION        Kafka version to fetch/run            (default 3.9.1)
#   KAFKA_CACHE_DIR      cache root                            (default <repo>/.cache/kafka)
#   KAFKA_RUN_DIR        state dir of one broker instance      (default $KAFKA_CACHE_DIR/run/current)
#   KAFKA_M2_REPO        Maven local repository for fetch.sh   (default: Maven's own, ~/.m2/repository)
#   JAVA                 java executable                       (default $JAVA_HOME/bin/java, else java)

KAFKA_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KAFKA_SCRIPT_DIR/../.." && pwd)"

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-$REPO_ROOT/.cache/kafka}"
KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$KAFKA_CACHE_DIR/run/current}"
# Make user-given paths absolute: the broker is started from inside its run dir.
[[ "$KAFKA_CACHE_DIR" == /* ]] || KAFKA_CACHE_DIR="$PWD/$KAFKA_CACHE_DIR"
[[ "$KAFKA_RUN_DIR" == /* ]] || KAFKA_RUN_DIR="$PWD/$KAFKA_RUN_DIR"
KAFKA_VERSION_DIR="$KAFKA_CACHE_DIR/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_VERSION_DIR/libs"
KAFKA_FETCH_MARKER="$KAFKA_VERSION_DIR/.fetched"

if [[ -z "${JAVA:-}" ]]; then
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  else
    JAVA=java
  fi
fi

# JVM flags for the short-lived CLI tools: start fast, stay small.
KAFKA_TOOL_JVM_OPTS=(-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

# Wall-clock microseconds, and "N.Ns" elapsed since such a timestamp (bash 5+).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
elapsed_since() {
  local ms=$((($(now_us) - $1) / 1000))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

log() { printf '[kafka] %s\n' "$*" >&2; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

# Run a Kafka CLI class with the cached classpath, logging WARN+ to stderr.
kafka_tool() {
  local cls="$1"
  shift
  "$JAVA" "${KAFKA_TOOL_JVM_OPTS[@]}" \
    -Dlog4j.configuration="file:$KAFKA_SCRIPT_DIR/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$cls" "$@"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# True if process $1 exists and has not exited (a zombie has). Unlike is_our_broker this holds
# from the fork on: a broker just launched is a shell until it has exec'd java, which on a busy
# machine takes long enough for a startup loop to see it (CI failed on that race once).
process_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 1
  state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# True if $1 is a live (non-zombie) process started by start.sh for run dir $2.
is_our_broker() {
  local pid="$1" run_dir="$2" cmdline
  process_alive "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"kafka.Kafka $run_dir/server.properties"* ]]
}

# Serialise start/stop on one run dir: opens fd 9 on a lock file beside it.
lock_run_dir() {
  local lock_file="$KAFKA_RUN_DIR.lock"
  mkdir -p "$(dirname "$KAFKA_RUN_DIR")"
  exec 9>"$lock_file"
  flock -w 180 9 || die "timed out waiting for lock $lock_file"
}
