#!/usr/bin/env bash
# R1 on a real broker: COUNT order requests (default 1,000,000), `stepstream run` (a release
# build) killed with SIGKILL KILLS times (default 5) at random moments and restarted at once.
# At the end every request must have a result; prints the duplicate count, the stall after
# each kill (from the kill to the first result written by the restarted process) and the
# total time, as one line starting with `R1 RESULT`.
#
#   scripts/chaos/r1.sh [--count N] [--kills K] [--binary PATH] [--seed S] [--slow-every M]
#
# --slow-every M makes every M-th request wait two seconds (the others are orders), so
# results finish out of order above slow ones.
# --binary runs another stepstream build (e.g. an older one, to compare); without it the
# release build of this checkout is built and used. The broker is $KAFKA_BOOTSTRAP if set,
# else one of the script's own (started in .cache/kafka/run/chaos-r1 and stopped at the end).
# The driver is the ignored test `r1_chaos_from_env` in tests/crash_kafka.rs.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count=1000000 kills=5 binary="" seed="" slow_every=""
while (($#)); do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --slow-every) slow_every="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "r1.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$repo"

if [[ -z "$binary" ]]; then
  nice -n 10 cargo build --release --bin stepstream >&2
  binary="$repo/target/release/stepstream"
fi
[[ -x "$binary" ]] || { echo "r1.sh: $binary is not an executable" >&2; exit 2; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
  export KAFKA_RUN_DIR="$repo/.cache/kafka/run/chaos-r1"
  kafka_env="$(scripts/kafka/start.sh)"
  export "$kafka_env"
  trap 'KAFKA_RUN_DIR="$repo/.cache/kafka/run/chaos-r1" scripts/kafka/stop.sh' EXIT
fi

log="$(mktemp -t stepstream-r1.XXXXXX.log)"
echo "r1.sh: $count requests, $kills kills, binary $binary, broker $KAFKA_BOOTSTRAP; log $log" >&2
set +e
R1_COUNT="$count" R1_KILLS="$kills" R1_BIN="$binary" R1_SEED="$seed" R1_SLOW_EVERY="$slow_every" \
  nice -n 10 cargo test --test crash_kafka r1_chaos_from_env -- --ignored --exact --nocapture \
  >"$log" 2>&1
rc=$?
set -e
grep -E '^r1: (kill|binary)' "$log" >&2 || true
if ! grep '^R1 RESULT' "$log"; then
  tail -n 40 "$log" >&2
fi
exit "$rc"
