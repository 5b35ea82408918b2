#!/usr/bin/env python3
"""The training run of the profile-guided release build (scripts/release.sh).

    python3 scripts/pgo_train.py [--repeat N] [--demo N] [--log FILE] BINARY FOLDER...

Runs BINARY (an instrumented stepstream) as a shard runs executions, back to back in one
process, since a profile of one execution per process is a profile of start-up:
  - each machine of the FOLDERs `exec --clock virtual --repeat N` times. A folder is a
    machine when it holds definition.asl.json (input.json, mocks.json beside it, as in
    examples/), else each *.json in it is a case file with "definition", "input" and
    optional "mocks" or "tasks" (as the AWS-recorded conformance corpus);
  - then, with --demo N, the pipeline: `run --demo N` of the etl machine on the embedded
    broker, on the repository's config only (no STEPSTREAM_* variable of this shell, no
    listening port).
Exits 1 when a run crashed or hung, when fewer than half of the machines ran, or when
the demo failed: a training that ran nothing would give a start-up profile.
tests/cli.rs runs it on examples/ with the test build, so that a change of the CLI that
breaks it is seen in CI.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

PREFIX = "pgo_train:"


def machines(folders):
    """Each machine to train on: a folder of definition.asl.json, or a case file."""
    found = []
    for folder in folders:
        if not os.path.isdir(folder):
            sys.exit(f"{PREFIX} no folder {folder}")
        if os.path.isfile(os.path.join(folder, "definition.asl.json")):
            found.append(folder)
            continue
        found += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".json")]
    return found


def exec_files(machine, tmp):
    """exec's file arguments for one machine ({} when it has no definition)."""
    if os.path.isdir(machine):
        names = {"definition": "definition.asl.json", "input": "input.json", "mocks": "mocks.json"}
        paths = {k: os.path.join(machine, f) for k, f in names.items()}
        return {k: p for k, p in paths.items() if os.path.isfile(p)}
    try:
        with open(machine) as f:
            case = json.load(f)
    except ValueError as e:
        print(f"{PREFIX} skipping {machine}: {e}", file=sys.stderr)
        return {}
    files = {}
    for key in ("definition", "input", "mocks", "tasks"):
        if isinstance(case, dict) and case.get(key) is not None:
            files[key] = os.path.join(tmp, key + ".json")
            with open(files[key], "w") as f:
                json.dump(case[key], f)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--demo", type=int, default=0, help="demo requests through the pipeline (0: none)")
    ap.add_argument("--log", default=os.devnull, help="where the demo's output goes")
    args = ap.parse_args()

    runs = machines(args.folders)
    ran = refused = broken = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, machine in enumerate(runs):
            files = exec_files(machine, tmp)
            if "definition" not in files:
                continue
            cmd = [args.binary, "exec", "--clock", "virtual", "--repeat", str(args.repeat)]
            for key, path in files.items():
                cmd += ["--" + key, path]
            # Exit 0 or 1: the executions ran (a case AWS recorded as failing fails here
            # too). Exit 2: refused before running (a definition AWS refused as well, or an
            # argument this build does not read). Anything else is a crash.
            try:
                r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
            except subprocess.TimeoutExpired:
                broken += 1
                print(f"{PREFIX} {machine} did not end in 60 s", file=sys.stderr)
                continue
            if r.returncode in (0, 1):
                ran += 1
            elif r.returncode == 2:
                refused += 1
            else:
                broken += 1
                print(f"{PREFIX} {machine} exited {r.returncode}: {r.stderr.decode()[-500:]}", file=sys.stderr)
            if (i + 1) % 100 == 0:
                print(f"{PREFIX} {i + 1} of {len(runs)} machines", file=sys.stderr)
    print(f"{PREFIX} {ran} machines ran {args.repeat} executions each, {refused} refused before"
          f" running, {broken} crashed or hung", file=sys.stderr)
    if broken or ran < max(1, len(runs) // 2):
        sys.exit(f"{PREFIX} too few machines ran for a profile of executions")

    if args.demo > 0:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPSTREAM_")}
        env.update(STEPSTREAM_METRICS_LISTEN="off", STEPSTREAM_API_LISTEN="off")
        cmd = [args.binary, "run", "--demo", str(args.demo), "--demo-machine", "etl",
               "--demo-input", "config/demo/etl-input.json"]
        try:
            with open(args.log, "w") as log:
                r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=600)
        except subprocess.TimeoutExpired:
            sys.exit(f"{PREFIX} the demo pipeline did not end in 600 s (its output: {args.log})")
        if r.returncode != 0:
            sys.exit(f"{PREFIX} the demo pipeline exited {r.returncode} (its output: {args.log})")
        print(f"{PREFIX} the demo pipeline ran {args.demo} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
