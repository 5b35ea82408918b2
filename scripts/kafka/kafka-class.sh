#!/usr/bin/env bash
# Run any Kafka class with the cached classpath (like Kafka's kafka-run-class.sh),
# with a small, fast-starting JVM and WARN-level logging to stderr. Examples:
#   scripts/kafka/kafka-class.sh org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --list
#   scripts/kafka/kafka-class.sh kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_BOOTSTRAP" --topic t
#   scripts/kafka/kafka-class.sh org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$KAFKA_BOOTSTRAP" --topic t --from-beginning
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

(($# >= 1)) || die "usage: $0 CLASS [ARGS...]"
"$KAFKA_SCRIPT_DIR/fetch.sh"
cls="$1"
shift
exec "$JAVA" "${KAFKA_TOOL_JVM_OPTS[@]}" \
  -Dlog4j.configuration="file:$KAFKA_SCRIPT_DIR/tools-log4j.properties" \
  -cp "$KAFKA_LIBS/*" "$cls" "$@"
