#!/usr/bin/env bash
# Times two builds of the workloads bench against each other on this noisy VM (timings
# move ±15-30 % within minutes): each round runs every workload's loop
# (`STEPSTREAM_BENCH_LOOP=<workload>:<n>`, parse + run + write as P1's iteration) once with
# each binary in turn, and the best ns per execution of each is kept, the run the VM
# disturbed least. Build the two binaries first, e.g.
#
#   git worktree add /tmp/before <rev>
#   (cd /tmp/before && cargo bench --bench workloads --no-run)   # prints the binary's path
#   cargo bench --bench workloads --no-run
#   bash benches/alternate.sh /tmp/before/target/release/deps/workloads-<hash> \
#        target/release/deps/workloads-<hash> [rounds=5] [executions=100000] [workload ...]
#
# ALTERNATE_EXEC=1 times two `stepstream` binaries instead (e.g. target/release/stepstream
# and the profile-guided target/pgo-release/stepstream of scripts/release.sh), each
# workload through `stepstream exec --repeat <executions> --clock virtual`: the same
# parse + run + write per execution, in the shipped binary.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
a=$(realpath "$1") b=$(realpath "$2") rounds=${3:-5} n=${4:-100000}
shift $(( $# < 4 ? $# : 4 ))
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(order article-choice choice-heavy map-parallel retry-catch)
for bin in "$a" "$b"; do [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }; done
# Run from the repository root: the bench reads benches/workloads/.
cd "$(dirname "$0")/.."
if [ -n "${ALTERNATE_EXEC:-}" ]; then
  split=$(mktemp -d)
  trap 'rm -rf "$split"' EXIT
  # Each workload file's definition, input and task specs, as exec reads them.
  python3 - "$split" "${workloads[@]}" <<'PY'
import json, os, sys
for w in sys.argv[2:]:
    doc = json.load(open(f"benches/workloads/{w}.json"))
    os.makedirs(f"{sys.argv[1]}/{w}")
    for key in ("definition", "input", "tasks"):
        json.dump(doc.get(key) or {}, open(f"{sys.argv[1]}/{w}/{key}.json", "w"))
PY
fi
ns() {
  local out
  if [ -n "${ALTERNATE_EXEC:-}" ]; then
    local d="$split/$2"
    out=$("$1" exec --definition "$d/definition.json" --input "$d/input.json" --tasks "$d/tasks.json" \
      --clock virtual --repeat "$n" 2>&1 >/dev/null) || { echo "$1 failed on $2: $out" >&2; exit 1; }
    sed -nE "s/^$n executions in .* ms: ([0-9]+) ns each, .*/\1/p" <<<"$out"
    return
  fi
  out=$(STEPSTREAM_BENCH_LOOP="$2:$n" "$1" 2>&1) || { echo "$1 failed on $2: $out" >&2; exit 1; }
  sed -nE "s/^$2: $n executions, .*, ([0-9]+) ns per execution$/\1/p" <<<"$out"
}
printf '%-16s %12s %12s %8s\n' workload "A ns/exec" "B ns/exec" "B/A"
for w in "${workloads[@]}"; do
  best_a='' best_b=''
  for ((r = 0; r < rounds; r++)); do
    t=$(ns "$a" "$w"); [ -z "$best_a" ] || [ "$t" -lt "$best_a" ] && best_a=$t
    t=$(ns "$b" "$w"); [ -z "$best_b" ] || [ "$t" -lt "$best_b" ] && best_b=$t
  done
  printf '%-16s %12s %12s %8s\n' "$w" "$best_a" "$best_b" \
    "$(python3 -c "print(f'{$best_b / $best_a:.3f}')")"
done
