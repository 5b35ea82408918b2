#!/usr/bin/env bash
# Installs the pinned peer (from package-lock.json) on first use, then runs the harness.
#   benches/peers/run.sh [--seconds 5] [--workload NAME]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -d "$here/node_modules/aws-local-stepfunctions" ]; then
  npm ci --prefix "$here" --no-audit --no-fund >&2  # keep stdout for results
fi
exec node "$here/run.mjs" "$@"
