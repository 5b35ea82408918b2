#!/usr/bin/env bash
# P3 in one run: stepstream's criterion workload benches and the Node peer
# (aws-local-stepfunctions 3.0.0, benches/peers/) on the same five workloads, same
# machine, back to back; prints exec/s for both and the ratio.
#   bash benches/compare.sh [PEER_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "stepstream: cargo bench --bench workloads (executions/*)" >&2
cargo bench --quiet --bench workloads -- 'executions/' --warm-up-time 1 --measurement-time 3 \
  --output-format bencher >"$out/ours.txt" 2>/dev/null
echo "peer: benches/peers/run.sh --seconds $seconds" >&2
bash benches/peers/run.sh --seconds "$seconds" >"$out/peer.txt"

python3 - "$out/ours.txt" "$out/peer.txt" <<'PY'
import json, re, sys
ours = {}
for line in open(sys.argv[1]):
    m = re.match(r"test executions/(\S+)\s+\.\.\. bench:\s+([\d,]+) ns/iter", line)
    if m:
        ours[m.group(1)] = 1e9 / int(m.group(2).replace(",", ""))
peer = {}
for line in open(sys.argv[2]):
    if line.startswith("PEER_JSON "):
        peer = json.loads(line[len("PEER_JSON "):])
print(f"{'workload':<16}{'stepstream exec/s':>20}{'peer exec/s':>14}{'ratio':>9}")
for name in ["order", "article-choice", "choice-heavy", "map-parallel", "retry-catch"]:
    o, p = ours.get(name), peer.get(name)
    ratio = f"{o / p:.1f}x" if o and p else "n/a"
    print(f"{name:<16}{o or 0:>20,.0f}{p or 0:>14,.0f}{ratio:>9}")
PY
