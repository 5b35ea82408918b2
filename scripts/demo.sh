#!/usr/bin/env bash
# The main job out of the box: builds stepstream, starts the pipeline on an embedded
# broker, feeds it order requests (default 100000) with a live throughput/latency line,
# and prints a summary. No external service is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
cargo build --release --quiet
exec target/release/stepstream run --demo "${1:-100000}"
