#!/usr/bin/env bash
# Starts moto's server on 127.0.0.1:5000 and creates what the ETL workflow uses
# (setup.py: 20 orders, a topic, queues, an EventBridge rule). Ctrl-C stops it.
# Then, from the repository root, with AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing:
#   stepstream exec --config examples/etl/stepstream.toml \
#     --definition examples/etl/state-machines/etl.asl.json --input '{"orderId": "ORD-00003"}'
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
eval "$("$here/../../scripts/aws/setup.sh" | sed 's/^/export /')"
"$(dirname "$AWS_PYTHON")/moto_server" -H 127.0.0.1 -p 5000 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break
  sleep 0.1
done
"$AWS_PYTHON" "$here/setup.py" http://127.0.0.1:5000 20
echo "moto on http://127.0.0.1:5000 with the ETL resources; Ctrl-C stops it" >&2
wait "$pid"
