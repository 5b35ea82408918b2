#!/usr/bin/env bash
# Resolve the Kafka broker + CLI tools (kafka_2.13, kafka-tools, reload4j
# logging) and all their runtime dependencies from Maven Central into
#   $KAFKA_CACHE_DIR/<version>/libs      (default <repo>/.cache/kafka/<version>/libs)
# so they can be run with `java -cp 'libs/*' ...`.
#
# Idempotent: a marker file written after success (it records the version and
# a hash of pom.xml) makes later runs a no-op; editing pom.xml re-fetches.
# Safe to run concurrently (flock).
#
# Maven local repository: by default Maven's own (~/.m2/repository), not one
# inside .cache/. CI runs in a fresh clone of the repo on the same machine, so a
# repo-local Maven repo would be empty on every CI run and every run would
# re-download ~50 MB; ~/.m2 survives between clones and makes a "cold" libs/
# dir a local copy of a few seconds. Set KAFKA_M2_REPO to use another one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

POM="$KAFKA_SCRIPT_DIR/pom.xml"

fetch_stamp() {
  printf 'kafka %s pom %s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

up_to_date() {
  [[ -f "$KAFKA_FETCH_MARKER" && -d "$KAFKA_LIBS" ]] &&
    [[ "$(cat "$KAFKA_FETCH_MARKER")" == "$(fetch_stamp)" ]]
}

up_to_date && exit 0

mkdir -p "$KAFKA_VERSION_DIR"
exec 8>"$KAFKA_VERSION_DIR/.fetch.lock"
flock -w 600 8 || die "timed out waiting for another fetch.sh ($KAFKA_VERSION_DIR/.fetch.lock)"
up_to_date && exit 0 # another process finished the fetch while we waited

command -v mvn >/dev/null || die "mvn not found on PATH (need Maven 3.6+ and Java 17)"
command -v "$JAVA" >/dev/null || die "java not found (set JAVA or JAVA_HOME)"

# One progress line: "... fetching ..." now, " done (...)" appended on success.
printf '[kafka] fetching Kafka %s jars from Maven Central into %s ...' "$KAFKA_VERSION" "$KAFKA_LIBS" >&2
t0="$(now_us)"

tmp_libs="$KAFKA_VERSION_DIR/libs.tmp.$$"
mvn_log="$KAFKA_VERSION_DIR/fetch.log"
rm -rf "$tmp_libs"
trap 'rm -rf "$tmp_libs"' EXIT

mvn_args=(-q -B -Dstyle.color=never -f "$POM"
  "-Dkafka.version=$KAFKA_VERSION"
  dependency:copy-dependencies
  -DincludeScope=runtime
  "-DoutputDirectory=$tmp_libs")
if [[ -n "${KAFKA_M2_REPO:-}" ]]; then
  mvn_args+=("-Dmaven.repo.local=$KAFKA_M2_REPO")
fi

if ! mvn "${mvn_args[@]}" >"$mvn_log" 2>&1; then
  {
    printf '\n[kafka] ERROR: Maven could not resolve org.apache.kafka:kafka_2.13:%s and its dependencies.\n' "$KAFKA_VERSION"
    printf '[kafka] Is Maven Central reachable? Last lines of %s:\n' "$mvn_log"
    tail -n 30 "$mvn_log" | sed 's/^/    /'
  } >&2
  exit 1
fi

missing=()
for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" \
  "kafka-clients-$KAFKA_VERSION.jar" 'reload4j-*.jar' 'slf4j-reload4j-*.jar'; do
  compgen -G "$tmp_libs/$jar" >/dev/null || missing+=("$jar")
done
if ((${#missing[@]})); then
  printf '\n' >&2
  die "fetch incomplete, missing: ${missing[*]} (see $mvn_log)"
fi

rm -rf "$KAFKA_LIBS"
mv "$tmp_libs" "$KAFKA_LIBS"
fetch_stamp >"$KAFKA_FETCH_MARKER"
printf ' done (%s jars, %s)\n' "$(find "$KAFKA_LIBS" -name '*.jar' | wc -l)" "$(elapsed_since "$t0")" >&2
