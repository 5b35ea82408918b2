#!/usr/bin/env bash
# The whole test suite: the AWS-recorded conformance corpus (every case, failures listed),
# unit tests, CLI tests, and the pipeline's integration tests against a real Apache Kafka
# broker (KRaft, 127.0.0.1), which this script fetches from Maven Central, starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh
# The Lambda Runtime Interface Emulator and awslambdaric for tests/lambda_*.rs (quick when installed).
bash scripts/lambda/setup.sh >/dev/null
# moto's server and boto3 for tests/aws_*.rs (quick when installed).
bash scripts/aws/setup.sh >/dev/null
# prometheus_client, hadolint and docker-compose for tests/metrics_kafka.rs and tests/docker_files.rs,
# confluent-kafka for the Python task workers of tests/kafka_invoke.rs.
STEPSTREAM_OPS_PYTHON="$(bash scripts/ops/venv.sh)"
export STEPSTREAM_OPS_PYTHON
cargo build --all-targets --quiet

kafka_env="$(scripts/kafka/start.sh)"
export "$kafka_env"
trap 'scripts/kafka/stop.sh' EXIT
echo "Kafka broker for the integration tests: $KAFKA_BOOTSTRAP" >&2

status=0
# The conformance runner prints every failing case with its reason and the pass count.
cargo test --test conformance -- --nocapture || status=1
# Benches are built above but not run: timing belongs to `cargo bench`, not to the suite.
cargo test --lib --bins --tests --no-fail-fast -- --skip aws_recorded_conformance_cases || status=1
exit "$status"
