#!/usr/bin/env bash
# Starts the order workflow's four Lambda functions (orders.py), each in its own AWS
# Lambda Runtime Interface Emulator on 127.0.0.1:9101-9104 (their Runtime APIs on
# 9201-9204), as stepstream.toml beside this file expects. Ctrl-C stops them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
eval "$("$here/../../scripts/lambda/setup.sh" | sed 's/^/export /')"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
port=9101
for fn in validate_order reserve_inventory charge_customer ship_order; do
  (cd "$here" && exec "$LAMBDA_RIE" \
     --runtime-interface-emulator-address "127.0.0.1:$port" \
     --runtime-api-address "127.0.0.1:$((port + 100))" \
     "$LAMBDA_PYTHON" -m awslambdaric "orders.$fn") &
  pids+=("$!")
  echo "orders.$fn on http://127.0.0.1:$port/2015-03-31/functions/function/invocations" >&2
  port=$((port + 1))
done
wait
