#!/usr/bin/env bash
# P3 in one run: stepstream's criterion workload benches and both peers on every workload
# in benches/workloads/ (or in the folder STEPSTREAM_WORKLOADS_DIR names: all three read
# it), same machine, back to back; prints exec/s for each and the ratio
# to the fastest peer that ran the workload correctly; beside it, each workload's floor, P3's
# budget, and the ratio to the Node peer timed with JSON text in and out as ours is.
#   bash benches/compare.sh [PEER_SECONDS]
# Peers: aws-local-stepfunctions 3.0.0 on Node (benches/peers/) and fakecloud-stepfunctions
# 0.51 (its stand-alone harness in ../shared/peers/fakecloud, AGPL: built and run, never
# linked; built into target/peers because ../shared is read-only).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
fakecloud_dir="${STEPSTREAM_FAKECLOUD_DIR:-../shared/peers/fakecloud}"
workloads_dir="${STEPSTREAM_WORKLOADS_DIR:-benches/workloads}"
[ -d "$workloads_dir" ] || { echo "no workload folder $workloads_dir" >&2; exit 2; }
# An absolute path: the bench runs from the package root, the Node harness from anywhere.
STEPSTREAM_WORKLOADS_DIR="$(cd "$workloads_dir" && pwd)"
export STEPSTREAM_WORKLOADS_DIR

# STEPSTREAM_BENCH_PROFILE=<.profdata> times stepstream built with that profile (PGO; make
# one trained on the conformance corpus with `PGO_PROFILE_ONLY=1 PGO_TRAIN_CASES=...
# bash benches/pgo.sh`), in its own target folder; the peers are the same either way.
profile="${STEPSTREAM_BENCH_PROFILE:-}"
build_env=()
if [ -n "$profile" ]; then
  [ -f "$profile" ] || { echo "STEPSTREAM_BENCH_PROFILE: no file $profile" >&2; exit 2; }
  build_env=(RUSTFLAGS="-Cprofile-use=$(realpath "$profile")" CARGO_TARGET_DIR=target/pgo/use)
  # From scratch: no crate may keep code built with an earlier profile of the same path.
  rm -rf target/pgo/use
  echo "stepstream built with the profile $profile (PGO)"
else
  echo "stepstream: plain release build (no profile)"
fi
echo "stepstream: cargo bench --bench workloads (executions/*, floor/*)" >&2
env ${build_env[@]+"${build_env[@]}"} cargo bench --quiet --bench workloads -- '^(executions|floor)/' \
  --warm-up-time 1 --measurement-time 3 --output-format bencher >"$out/ours.txt" 2>/dev/null

echo "peer 1: benches/peers/run.sh --seconds $seconds" >&2
# A workload the peer cannot run (it has no JSONata, say) is reported as n/a, not fatal.
bash benches/peers/run.sh --seconds "$seconds" >"$out/node.txt" || true
# The same peer timed like our iteration: JSON text in, JSON text out (not P3's ratio; a
# like-for-like figure beside it).
echo "peer 1 again, JSON in/out: benches/peers/run.sh --seconds $seconds --json-io" >&2
bash benches/peers/run.sh --seconds "$seconds" --json-io >"$out/node-json.txt" || true

: >"$out/fakecloud.txt"
if [ -f "$fakecloud_dir/Cargo.toml" ]; then
  echo "peer 2: fakecloud-bench (building $fakecloud_dir into target/peers)" >&2
  CARGO_TARGET_DIR=target/peers cargo build --quiet --release --locked \
    --manifest-path "$fakecloud_dir/Cargo.toml" >&2
  for w in "$STEPSTREAM_WORKLOADS_DIR"/*.json; do
    target/peers/release/fakecloud-bench --seconds "$seconds" "$w" >>"$out/fakecloud.txt" \
      2>>"$out/fakecloud.err" || echo "peer 2: $(basename "$w") failed" >&2
  done
else
  echo "peer 2: $fakecloud_dir not found; reported as n/a" >&2
fi

python3 - "$out/ours.txt" "$out/node.txt" "$out/fakecloud.txt" "$out/node-json.txt" <<'PY'
import json, re, sys
ours, floor = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"test (executions|floor)/(\S+)\s+\.\.\. bench:\s+([\d,]+) ns/iter", line)
    if m:
        ns = int(m.group(3).replace(",", ""))
        if m.group(1) == "executions":
            ours[m.group(2)] = 1e9 / ns
        else:
            floor[m.group(2)] = ns
def peer_json(path):
    for line in open(path):
        if line.startswith("PEER_JSON "):
            return {k: v for k, v in json.loads(line[len("PEER_JSON "):]).items() if v}
    return {}
node, node_json = peer_json(sys.argv[2]), peer_json(sys.argv[4])
fake = {}
for line in open(sys.argv[3]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    # retry-catch's Cause differs only in how Lambda errors are encoded (see its README).
    if r.get("failures") == 0 and r.get("mismatches_ignoring_lambda_cause_encoding") == 0:
        fake[r["workload"]] = r["exec_per_s"]
fmt = lambda v: f"{v:,.0f}" if v else "n/a"
# "vs fastest" is P3's ratio. Then, in ns per execution: ours, P3's budget (a hundredth of
# the fastest peer's time) and the floor (reading the request and writing it back, no
# state run; `floor/*` in benches/workloads.rs). Last, the ratio to the Node peer timed
# with JSON text in and out as our iteration is (`run.mjs --json-io`).
print(f"{'workload':<24}{'stepstream':>12}{'node peer':>12}{'fakecloud':>12}{'vs fastest':>12}"
      f"{'ns/exec':>10}{'100x budget':>13}{'floor':>8}{'vs node, JSON io':>18}")
for name in sorted(ours):
    o, n, f = ours[name], node.get(name), fake.get(name)
    fastest = max([p for p in (n, f) if p], default=None)
    ratio = f"{o / fastest:.1f}x" if fastest else "n/a"
    budget = f"{1e9 / (100 * fastest):,.0f}" if fastest else "n/a"
    fl = f"{floor[name]:,}" if name in floor else "n/a"
    nj = node_json.get(name)
    like = f"{o / nj:.1f}x" if nj else "n/a"
    print(f"{name:<24}{fmt(o):>12}{fmt(n):>12}{fmt(f):>12}{ratio:>12}"
          f"{1e9 / o:>10,.0f}{budget:>13}{fl:>8}{like:>18}")
PY
