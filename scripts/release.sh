#!/usr/bin/env bash
# The release build we ship: profile-guided (PGO). Builds stepstream instrumented, trains
# it, and builds it again with the profile; the result is target/pgo-release/stepstream.
#
#   bash scripts/release.sh [CASES_DIR...]
#
# Training, each part in one process as a shard runs executions back to back:
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
# llvm-tools` when missing) and python3. About three release builds' time (~10 minutes
# on 2 cores); the plain `cargo build --release` stays the build the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ] && command -v rustup >/dev/null; then
  rustup component add llvm-tools >&2
fi
[ -x "$profdata" ] || { echo "release.sh: no $profdata (rustup component add llvm-tools)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "release.sh: python3 is needed to read the training cases" >&2; exit 1; }

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
# Arguments: the instrumented binary, then case folders and example folders (an example
# folder holds definition.asl.json).
python3 - "$gen" "$@" ${examples[@]+"${examples[@]}"} <<'PY'
import json, os, subprocess, sys, tempfile
gen, folders = sys.argv[1], sys.argv[2:]
runs, ran, refused, broken = [], 0, 0, 0
for folder in folders:
    if os.path.isfile(os.path.join(folder, "definition.asl.json")):
        runs.append(folder)
        continue
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            runs.append(os.path.join(folder, name))
with tempfile.TemporaryDirectory() as tmp:
    for i, run in enumerate(runs):
        if os.path.isdir(run):
            files = {k: os.path.join(run, f) for k, f in
                     [("definition", "definition.asl.json"), ("input", "input.json"), ("mocks", "mocks.json")]}
            files = {k: f for k, f in files.items() if os.path.isfile(f)}
        else:
            try:
                case = json.load(open(run))
            except ValueError as e:
                print(f"release.sh: skipping {run}: {e}", file=sys.stderr)
                continue
            files = {}
            for key in ("definition", "input", "mocks", "tasks"):
                if case.get(key) is not None:
                    files[key] = os.path.join(tmp, key + ".json")
                    json.dump(case[key], open(files[key], "w"))
        if "definition" not in files:
            continue
        cmd = [gen, "exec", "--clock", "virtual", "--repeat", "200"]
        for key, path in files.items():
            cmd += ["--" + key, path]
        # Exit 0 or 1: the executions ran (a case AWS recorded as failing fails here too).
        # Exit 2: refused before running (a definition AWS refused as well, or arguments
        # this build no longer reads); anything else is a crash.
        try:
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
            if r.returncode in (0, 1):
                ran += 1
            elif r.returncode == 2:
                refused += 1
            else:
                broken += 1
                print(f"release.sh: {run} exited {r.returncode}: {r.stderr.decode()[-500:]}", file=sys.stderr)
        except subprocess.TimeoutExpired:
            broken += 1
            print(f"release.sh: {run} did not end in 60 s", file=sys.stderr)
        if (i + 1) % 100 == 0:
            print(f"release.sh: {i + 1} of {len(runs)} machines", file=sys.stderr)
print(f"release.sh: {ran} machines ran 200 executions each, {refused} refused before running,"
      f" {broken} crashed or hung", file=sys.stderr)
# Most of the corpus must run, or the profile would be the start-up path's.
sys.exit(1 if broken or ran < max(1, len(runs) // 2) else 0)
PY
# Only the repository's config: no STEPSTREAM_* variable from this shell (a broker of
# its own, say), and no listening port that a running stack may hold.
if ! env $(env | sed -n 's/^\(STEPSTREAM_[A-Za-z0-9_]*\)=.*/-u \1/p') \
  STEPSTREAM_METRICS_LISTEN=off STEPSTREAM_API_LISTEN=off \
  "$gen" run --demo 20000 --demo-machine etl --demo-input config/demo/etl-input.json >"$dir/demo.log" 2>&1; then
  tail -20 "$dir/demo.log" >&2
  echo "release.sh: the demo pipeline failed under the instrumented build ($dir/demo.log)" >&2
  exit 1
fi
"$profdata" merge -o "$dir/merged.profdata" "$dir"/data/*.profraw

echo "release.sh: build with the profile" >&2
# From scratch: cargo looks at the profile file's time only for this package, so crates
# from the registry would keep code built with an earlier profile of the same path.
rm -rf "$dir/use"
# rustc may warn that a few functions changed shape since the profile (its allocator
# shims): harmless, they are not ours.
build "-Cprofile-use=$dir/merged.profdata" "$dir/use"
cp "$dir/use/$host/release/stepstream" "$dir/stepstream"
echo "$dir/stepstream"
