#!/usr/bin/env bash
# Runs stepstream's libFuzzer targets (fuzz/) one after another and reports each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz (pinned) if missing, builds the targets with the nightly toolchain,
# writes seed corpora from the repository's data (scripts/fuzz_seeds.py) into fuzz/corpus/,
# then runs each target for SECONDS_PER_TARGET (default 60) and prints its executions,
# exec/s, coverage growth, peak memory, slowest input and whether it found a crash, a
# timeout or an out-of-memory input.
# Crash artefacts land in fuzz/artifacts/TARGET/, logs in fuzz/logs/ (both ignored by git).
# Exits 1 if any target found something.
#
# Environment: FUZZ_NICE (default 15) niceness of the runs; FUZZ_TIMEOUT (default 10)
# seconds one input may take; FUZZ_RSS_MB (default 2048) memory one run may use;
# STEPSTREAM_CONFORMANCE_DIR, more definitions to seed from.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.1
ALL_TARGETS=(asl_parse asl_exec jsonpath template intrinsic timestamp request json_read)

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
case "$seconds" in '' | *[!0-9]*) echo "SECONDS_PER_TARGET must be a number, got '$seconds'" >&2; exit 2 ;; esac

dict_of() {
  case "$1" in
    asl_parse | asl_exec) echo asl ;;
    json_read) echo request ;;
    *) echo "$1" ;;
  esac
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
fi
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

cd "$root/fuzz"
# No sanitizer: the code under test is safe Rust, and AddressSanitizer breaks the C build
# of librdkafka (rdkafka-sys) that the stepstream library links.
build=(-O -s none)
nice -n "${FUZZ_NICE:-15}" cargo +nightly fuzz build "${build[@]}"
python3 "$root/scripts/fuzz_seeds.py" corpus >/dev/null
mkdir -p logs

found=0
printf '%-10s %8s %12s %9s %14s %8s %9s %s\n' target seconds executions exec/s coverage peak-MB slowest-s finding
for t in "${targets[@]}"; do
  mkdir -p "artifacts/$t"
  log="logs/$t.log"
  before=$(find "artifacts/$t" -type f | wc -l)
  set +e
  nice -n "${FUZZ_NICE:-15}" cargo +nightly fuzz run "${build[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -dict="dict/$(dict_of "$t").dict" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"$log" 2>&1
  rc=$?
  set -e
  execs=$(awk -F': *' '/^stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  rate=$(awk -F': *' '/^stat::average_exec_per_sec/ {print $NF}' "$log" | tail -1)
  rss=$(awk -F': *' '/^stat::peak_rss_mb/ {print $NF}' "$log" | tail -1)
  slowest=$(awk -F': *' '/^stat::slowest_unit_time_sec/ {print $NF}' "$log" | tail -1)
  cov0=$(grep -m1 -o 'INITED cov: [0-9]*' "$log" | awk '{print $3}')
  cov1=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  after=$(find "artifacts/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    found=1
    what=$(grep -m1 -o 'ERROR: libFuzzer: [a-z-]*\|panicked at [^ ]*' "$log" || echo "exit $rc")
    finding="FOUND ($what; see fuzz/$log and fuzz/artifacts/$t/)"
  else
    finding=none
  fi
  printf '%-10s %8s %12s %9s %14s %8s %9s %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
    "${cov0:-?}->${cov1:-?}" "${rss:-?}" "${slowest:-?}" "$finding"
done
exit "$found"
