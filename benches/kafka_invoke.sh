#!/usr/bin/env bash
# Request-reply throughput: N executions (default 10,000) of a one-Task machine whose
# arn:stepstream:::kafka:invoke call waits for a Python worker's reply
# (tests/fixtures/kafka_invoke/worker.py, WORKERS of them in one group, default 2), through
# a release `stepstream run` on the broker of scripts/kafka/start.sh ($KAFKA_BOOTSTRAP).
# Prints the time from the first request to the last result, every result checked.
#   cargo build --release --bin stepstream
#   kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
#   bash benches/kafka_invoke.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
workers="${WORKERS:-2}"
bin="${STEPSTREAM_BIN:-$PWD/target/release/stepstream}"
: "${KAFKA_BOOTSTRAP:?start the broker first: scripts/kafka/start.sh}"
py="$(bash scripts/ops/venv.sh)"
id="$(date +%s)-$$"
dir="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
for t in requests results errors work replies; do
    scripts/kafka/create-topic.sh "bench-$t-$id" 4 >/dev/null
done
mkdir "$dir/machines"
cat > "$dir/machines/invoke.asl.json" <<EOF
{"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "arn:stepstream:::kafka:invoke",
  "Parameters": {"Topic": "bench-work-$id", "Key.\$": "\$.id", "Value": {"n.\$": "\$.n"}},
  "ResultPath": "\$.answer", "End": true}}}
EOF
cat > "$dir/stepstream.toml" <<EOF
[kafka]
brokers = "$KAFKA_BOOTSTRAP"
group_id = "bench-$id"
auto_offset_reset = "earliest"
[topics]
results = "bench-results-$id"
errors = "bench-errors-$id"
[[inputs]]
topic = "bench-requests-$id"
state_machine = "invoke"
[engine]
state_machines_dir = "$dir/machines"
shards = 2
max_in_flight_per_shard = 10000
[metrics]
listen = "off"
topic = ""
[tasks]
max_concurrency = 100000
[tasks.kafka]
reply_topic = "bench-replies-$id"
EOF
for i in $(seq 1 "$workers"); do
    "$py" tests/fixtures/kafka_invoke/worker.py --bootstrap "$KAFKA_BOOTSTRAP" \
        --topic "bench-work-$id" --group "bench-workers-$id" --name "w$i" > "$dir/w$i.log" 2>&1 &
    pids+=($!)
done
"$bin" run --config "$dir/stepstream.toml" > "$dir/run.log" 2>&1 &
pids+=($!)
# The workers' group join and the pipeline's start take a few seconds.
sleep 10
"$py" benches/kafka_invoke_drive.py "$KAFKA_BOOTSTRAP" "bench-requests-$id" "bench-results-$id" "$n"
