#!/usr/bin/env bash
# Create a topic (replication factor 1) on the broker started by start.sh:
#   scripts/kafka/create-topic.sh NAME PARTITIONS [extra TopicCommand args...]
# e.g. extra args: --if-not-exists, --config cleanup.policy=compact
# The broker address is $KAFKA_BOOTSTRAP if set, else $KAFKA_RUN_DIR/bootstrap.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

(($# >= 2)) || die "usage: $0 NAME PARTITIONS [extra TopicCommand args...]"
name="$1"
partitions="$2"
shift 2
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$partitions'"

bootstrap="${KAFKA_BOOTSTRAP:-}"
if [[ -z "$bootstrap" ]]; then
  [[ -f "$KAFKA_RUN_DIR/bootstrap" ]] || die "no running broker: $KAFKA_RUN_DIR/bootstrap missing (run scripts/kafka/start.sh, or set KAFKA_BOOTSTRAP)"
  bootstrap="$(cat "$KAFKA_RUN_DIR/bootstrap")"
fi

# TopicCommand prints "Created topic NAME." on success.
exec "$KAFKA_SCRIPT_DIR/kafka-class.sh" org.apache.kafka.tools.TopicCommand \
  --bootstrap-server "$bootstrap" --create \
  --topic "$name" --partitions "$partitions" --replication-factor 1 "$@"
