#!/usr/bin/env bash
# Instructions per whole execution (parse, run, write) of each workload, counted by
# callgrind: a figure that does not move with this shared VM's speed, for comparing two
# builds of a change whose effect is smaller than the timing noise (±15-30 % here).
# Instructions are not time (cache misses and stalls are not in them): confirm a gain
# with the criterion benches before claiming one.
#
#   bash benches/instructions.sh [workload ...]     (default: the five P3 workloads)
#
# Needs valgrind (`apt-get install valgrind`). Each workload runs 1,000 and 3,000
# executions; the difference over 2,000 leaves out loading and the first runs' warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(order article-choice choice-heavy map-parallel retry-catch)
source benches/bench_bin.sh
bin=$(workloads_bench_bin)
[ -n "$bin" ] || { echo "could not build the workloads bench" >&2; exit 1; }
count() {
  local out n
  out=$(RUST_BACKTRACE=0 STEPSTREAM_BENCH_LOOP="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1) || true
  n=$(awk '/Collected :/ {print $4}' <<<"$out")
  if [ -z "$n" ] || ! grep -q "^$1: $2 executions" <<<"$out"; then
    echo "running $1 under callgrind failed:" >&2
    grep -v '^==' <<<"$out" | tail -5 >&2
    exit 1
  fi
  echo "$n"
}
printf '%-24s %s\n' workload instructions/execution
for w in "${workloads[@]}"; do
  a=$(count "$w" 1000)
  b=$(count "$w" 3000)
  printf '%-24s %d\n' "$w" $(( (b - a) / 2000 ))
done
