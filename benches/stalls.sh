#!/usr/bin/env bash
# Where one workload's time waits, by source line: the workloads bench built with line
# tables (into target/lines, so the release build is untouched), one workload's loop
# under `perf record`, then the hottest functions and, in each, the instructions that
# hold the most samples with the source line they come from.
#
#   bash benches/stalls.sh <workload> [executions=300000] [functions=6]
#
# A load right after a call, holding a large share of its function's samples, is the
# usual find here: a value returned through memory in narrow writes and copied on at once
# with wider loads (BENCHMARKS.md, "Shared Choice lookups, stalls of the Wait state").
# Confirm a fix with benches/alternate.sh in both orders: on this VM code placement alone
# moves a workload by 1-3 %.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
workload=$1 n=${2:-300000} top=${3:-6}
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
[ -f "benches/workloads/$workload.json" ] || { echo "no workload benches/workloads/$workload.json" >&2; exit 2; }
source benches/bench_bin.sh
bin=$(CARGO_TARGET_DIR=target/lines CARGO_PROFILE_BENCH_DEBUG=line-tables-only workloads_bench_bin)
[ -n "$bin" ] || { echo "could not build the workloads bench" >&2; exit 1; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
STEPSTREAM_BENCH_LOOP="$workload:$n" perf record -q -F 2999 -o "$data" "$bin" >&2
echo "== hottest functions (share of all samples)"
perf report -i "$data" --no-children --stdio 2>/dev/null \
  | awk -v top="$top" '/^ +[0-9.]+%/ && k++ < top {print}' | sed 's/  \+/  /g'
perf report -i "$data" --no-children --stdio 2>/dev/null \
  | awk -v top="$top" '/^ +[0-9.]+%/ && k++ < top {sub(/^.*\[\.\] /, ""); print}' \
  | while IFS= read -r f; do
      echo "== $f: instructions with the most samples (share of the function's)"
      perf annotate -i "$data" --stdio -l -s "$f" </dev/null 2>/dev/null \
        | grep -E '^ +[0-9]+\.[0-9]+ +: ' | sort -rn | awk 'NR <= 5' | cut -c1-140 || true
    done
