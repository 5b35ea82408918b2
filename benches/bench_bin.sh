# Sourced by the bench scripts: `workloads_bench_bin` builds the workloads bench with the
# caller's environment (RUSTFLAGS, CARGO_TARGET_DIR, CARGO_PROFILE_BENCH_DEBUG, ...) and
# prints the path of its binary (nothing when the build made none).
workloads_bench_bin() {
  cargo bench --bench workloads --no-run --message-format=json \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "workloads" and m.get("executable"):
        print(m["executable"])'
}
