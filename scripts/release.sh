#!/usr/bin/env bash
# The release build we ship: profile-guided (PGO) where that pays. Builds stepstream
# instrumented, trains it, builds it again with the profile, and times it against a plain
# build; the faster is target/pgo-release/stepstream.
#
#   bash scripts/release.sh [CASES_DIR...]
#
# Training (scripts/pgo_train.py), each part in one process as a shard runs executions
# back to back:
#  - every case file (JSON with "definition", "input", optional "mocks" or "tasks") of the
#    folders given, by default the AWS-recorded corpus ../shared/conformance/cases when it
#    is there: `stepstream exec --clock virtual --repeat 200` each;
#  - only when there is no case folder, the folders of examples/ the same way
#    (definition.asl.json, input.json, mocks.json);
#  - the pipeline itself: `stepstream run --demo 20000` of the etl machine on the embedded
#    broker (request decoding, the shard loop, result encoding, the producer).
# With the corpus, none of it is one of the benchmark workloads (three of examples/ are,
# and so is the demo's default machine, order: hence etl), so their times say what the
# profile does for machines it never saw: 0.76-0.90 of the plain build's time on all
# twelve (`ALTERNATE_EXEC=1 bash benches/alternate.sh`, BENCHMARKS.md "The profile-guided
# release build").
#
# Needs llvm-profdata of rustc's own LLVM (installed here with `rustup component add
# llvm-tools` when missing) and python3. About four release builds' time (~13 minutes
# on 2 cores); the plain `cargo build --release` stays the build the tests use. The
# profile-guided binary is shipped only where it measures faster (RELEASE_PGO below).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ] && command -v rustup >/dev/null; then
  rustup component add llvm-tools >&2
fi
[ -x "$profdata" ] || { echo "release.sh: no $profdata (rustup component add llvm-tools)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "release.sh: python3 is needed for the training (scripts/pgo_train.py)" >&2; exit 1; }

if [ $# -eq 0 ] && [ -d ../shared/conformance/cases ]; then
  set -- ../shared/conformance/cases
fi
for d in "$@"; do
  [ -d "$d" ] || { echo "release.sh: no folder $d" >&2; exit 2; }
done
examples=()
if [ $# -eq 0 ]; then
  echo "release.sh: no case folder given and no ../shared/conformance/cases;" \
    "training on examples/ and the demo pipeline only (a narrower profile)" >&2
  for d in examples/*/; do [ -f "$d/definition.asl.json" ] && examples+=("$d"); done
fi

dir=$PWD/target/pgo-release
rm -rf "$dir/data"
mkdir -p "$dir/data"
# --target keeps RUSTFLAGS off build scripts and proc macros: only stepstream's own
# code (and its dependencies) is instrumented and optimized with the profile.
build() {
  RUSTFLAGS="$1" CARGO_TARGET_DIR="$2" cargo build --release --locked --quiet --bin stepstream --target "$host"
}

echo "release.sh: instrumented build" >&2
build "-Cprofile-generate=$dir/data" "$dir/gen"
gen="$dir/gen/$host/release/stepstream"

echo "release.sh: training" >&2
export LLVM_PROFILE_FILE="$dir/data/%p-%m.profraw"
python3 scripts/pgo_train.py --repeat 200 --demo 20000 --log "$dir/demo.log" \
  "$gen" "$@" ${examples[@]+"${examples[@]}"}
"$profdata" merge -o "$dir/merged.profdata" "$dir"/data/*.profraw

echo "release.sh: build with the profile" >&2
# From scratch: the profile's path is the same every run, and no crate may keep code
# built with an earlier profile (every crate is rebuilt when the profile changes anyway).
rm -rf "$dir/use"
# rustc may warn that a few functions changed shape since the profile (its allocator
# shims): harmless, they are not ours.
build "-Cprofile-use=$dir/merged.profdata" "$dir/use"
pgo_bin="$dir/use/$host/release/stepstream"
cp "$pgo_bin" "$dir/stepstream"

# Whether the profile pays may depend on the CPU: this binary ran at 0.76-0.90 of the
# plain build's time on a Zen 2 VM and 0.84-0.96 on an AVX-512 Intel one, but the workloads
# bench built with benches/pgo.sh's profile was 0.95-1.14 there (BENCHMARKS.md "Back on an
# AVX-512 VM").
# RELEASE_PGO=auto (the default) times both builds here, alternated, on four benchmark
# workloads the training never ran, and ships the plain one unless the profile-guided one
# is faster (geometric mean of the time ratios); =always keeps the profile unmeasured.
case "${RELEASE_PGO:-auto}" in
  always) ;;
  auto)
    echo "release.sh: plain build, to time against the profile-guided one on this machine" >&2
    build "" "$dir/plain"
    plain_bin="$dir/plain/$host/release/stepstream"
    table=$(ALTERNATE_EXEC=1 bash benches/alternate.sh "$plain_bin" "$pgo_bin" 3 20000 \
      order retry-catch choice-heavy article-choice)
    echo "$table" >&2
    ratio=$(awk 'NR > 1 && $4 + 0 > 0 { s += log($4); n++ } END { printf "%.3f", n ? exp(s / n) : 1 }' <<<"$table")
    if awk -v r="$ratio" 'BEGIN { exit !(r < 1) }'; then
      echo "release.sh: profile-guided build kept (its time / the plain build's: $ratio)" >&2
    else
      echo "release.sh: the profile does not pay on this CPU (its time / the plain build's: $ratio); shipping the plain build" >&2
      cp "$plain_bin" "$dir/stepstream"
    fi
    ;;
  *) echo "release.sh: RELEASE_PGO must be auto or always" >&2; exit 2 ;;
esac
echo "$dir/stepstream"
