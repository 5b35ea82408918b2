#!/usr/bin/env bash
# Profile-guided optimization, measured so that the profile cannot just fit its inputs:
# builds the workloads bench instrumented, trains it on one set of workloads (each in a
# steady-state loop, as a shard runs executions), builds it again with that profile, and
# times it against the plain build on a *different* set of workloads
# (benches/alternate.sh, in both orders).
#
#   bash benches/pgo.sh [rounds=3] [executions=10000]
#
# PGO_TRAIN and PGO_MEASURE (space-separated workload names) override the two sets.
# PGO_TRAIN_CASES=DIR trains on a folder of AWS-recorded conformance cases instead (each
# run 200 times in a row; e.g. ../shared/conformance/cases), and all twelve workloads
# are then measured unless PGO_MEASURE says otherwise.
# PGO_PROFILE_ONLY=1 stops once the profile is built and prints its path (for
# `STEPSTREAM_BENCH_PROFILE=... bash benches/compare.sh`).
# Needs llvm-profdata of rustc's own LLVM version (added with `rustup component add
# llvm-tools` when missing).
# Takes ~15 minutes on 2 cores (two fat-LTO builds besides the plain one); run it with
# nothing else on the machine, as every timing here.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} n=${2:-10000}
read -r -a train <<<"${PGO_TRAIN:-choice-strings catch-paths map-items parallel-fanout wait-loop article-choice-jsonata order-jsonata}"
cases=${PGO_TRAIN_CASES:-}
if [ -n "$cases" ]; then
  [ -d "$cases" ] || { echo "PGO_TRAIN_CASES: no folder $cases" >&2; exit 2; }
  cases=$(realpath "$cases")
  train=()
  all="order choice-heavy pass-reshape article-choice retry-catch etl-intrinsics map-parallel choice-strings catch-paths map-items parallel-fanout wait-loop"
  read -r -a measure <<<"${PGO_MEASURE:-$all}"
else
  read -r -a measure <<<"${PGO_MEASURE:-order choice-heavy pass-reshape article-choice retry-catch etl-intrinsics map-parallel}"
fi
for w in "${measure[@]}"; do
  for t in "${train[@]}"; do
    [ "$w" != "$t" ] || { echo "$w is in both sets: the measure would not be fair" >&2; exit 2; }
  done
done

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
# A fresh machine has no llvm-tools: add them, as scripts/release.sh does.
if [ ! -x "$profdata" ] && command -v rustup >/dev/null; then
  rustup component add llvm-tools >&2
fi
[ -x "$profdata" ] || { echo "no $profdata: rustup component add llvm-tools" >&2; exit 1; }

# Builds the workloads bench with extra RUSTFLAGS into its own target folder; prints the
# binary's path.
source benches/bench_bin.sh
bench_bin() {
  RUSTFLAGS="$1" CARGO_TARGET_DIR="$2" workloads_bench_bin
}

dir=target/pgo
rm -rf "$dir/data"
mkdir -p "$dir/data"
echo "instrumented build" >&2
gen=$(bench_bin "-Cprofile-generate=$PWD/$dir/data" "$dir/gen")
if [ -n "$cases" ]; then
  LLVM_PROFILE_FILE="$PWD/$dir/data/cases-%p.profraw" STEPSTREAM_BENCH_TRAIN="$cases:200" "$gen" >&2 \
    || { echo "training on $cases failed" >&2; exit 1; }
fi
for w in "${train[@]}"; do
  # A tenth as many runs of the slow workloads: the profile needs counts, not time.
  runs=20000
  case $w in map-items) runs=1000 ;; choice-heavy | pass-reshape | etl-intrinsics | map-parallel | order-jsonata) runs=5000 ;; esac
  LLVM_PROFILE_FILE="$PWD/$dir/data/$w-%p.profraw" STEPSTREAM_BENCH_LOOP="$w:$runs" "$gen" >&2 \
    || { echo "training run of $w failed" >&2; exit 1; }
done
"$profdata" merge -o "$dir/merged.profdata" "$dir"/data/*.profraw
if [ -n "${PGO_PROFILE_ONLY:-}" ]; then
  echo "$PWD/$dir/merged.profdata"
  exit 0
fi
echo "plain build" >&2
plain=$(bench_bin "" target)
echo "build with the profile" >&2
# rustc warns that its allocator shims changed shape since the profile: harmless.
rm -rf "$dir/use" # no crate may keep code built with an earlier profile of this path
used=$(bench_bin "-Cprofile-use=$PWD/$dir/merged.profdata" "$dir/use")
echo "trained on: ${cases:-${train[*]}}"
echo "A = plain build, B = built with the profile"
bash benches/alternate.sh "$plain" "$used" "$rounds" "$n" "${measure[@]}"
echo "and the other way round (B/A is plain over profiled here)"
bash benches/alternate.sh "$used" "$plain" "$rounds" "$n" "${measure[@]}"
