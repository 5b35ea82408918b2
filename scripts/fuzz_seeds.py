#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets in fuzz/ from the repository's own data.

Usage: scripts/fuzz_seeds.py OUT_DIR [CONFORMANCE_CASES_DIR]

Definitions come from benches/workloads/, examples/ and (if given or found) the AWS-recorded
conformance cases; paths, templates, intrinsic calls and timestamps are pulled out of those
definitions, and a few hand-written edge cases are added. Files are named by content hash,
so running it again adds nothing twice.
"""
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ["asl_parse", "asl_exec", "jsonpath", "template", "intrinsic", "timestamp", "request",
           "json_read"]
PATH_KEYS = {"InputPath", "OutputPath", "ResultPath", "ItemsPath", "Variable", "SecondsPath",
             "TimestampPath", "TimeoutSecondsPath", "HeartbeatSecondsPath", "ErrorPath", "CausePath"}
TEMPLATE_KEYS = {"Parameters", "ResultSelector", "ItemSelector", "Assign", "Result"}
# Hand-written seeds: the grammar's corners that the recorded data may not reach.
EXTRA = {
    "jsonpath": ["$", "$$", "$x", "$.a", "$['keys with space']['x.y']", "$.arr[-1]", "$.arr[1:3]",
                 "$.arr[::2]", "$.arr[0,2]", "$..c", "$.objs[?(@.price > 10)].id",
                 "$.objs[?(@.tag == 'x' || !@.price)]", "$.objs[?(@.id in [1,2])]", "$.arr.length()",
                 "$.*", "$['a','b']", "$$.Map.Item.Value", "$list[2].three", "$.nest..e"],
    "intrinsic": ["States.Format('{} and {}', $.a, $.c)", "States.StringToJson($.json)",
                  "States.JsonToString($.nest)", "States.Array(1, 'x', null, true, $.arr)",
                  "States.ArrayPartition($.nums, 2)", "States.ArrayContains($.arr, 3)",
                  "States.ArrayRange(1, 9, 2)", "States.ArrayGetItem($.arr, 1)",
                  "States.ArrayLength($.arr)", "States.ArrayUnique($.nums)",
                  "States.Base64Encode($.c)", "States.Base64Decode($.b64)",
                  "States.Hash($.c, 'SHA-256')", "States.JsonMerge($.nest, $.objs[0], false)",
                  "States.MathRandom(1, 10)", "States.MathAdd($.a, -3)",
                  "States.StringSplit($.s, ',;')", "States.UUID()",
                  "States.Format('x\\\\{\\\\}', States.ArrayLength(States.Array($x, $list)))"],
    "timestamp": ["2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123456789+18:00",
                  "0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-18:00", "2024-02-29T00:00:00Z",
                  "2026-11-21T10:00:60Z", "2026-11-21t10:00:00z"],
    "json_read": ["-0", "1e400", "0.1e-400", "123456789012345678901", "-9223372036854775809",
                  "18446744073709551616", "1.7976931348623157e308", "0.30000000000000004",
                  '"\\ud800"', '"\\ud83d\\ude00"', '"\\u0000\\t\\/"', '{"a":1,"a":2}',
                  "[" * 101 + "]" * 101, ' { "k" : [ true , false , null ] } ', "[1,]", "{\"a\"}"],
    "request": [b"\x00" + json.dumps({"stateMachine": "m", "name": "n", "input": {"a": [1, {"b": None}]}}).encode(),
                b"\x01[1,2,3]", b"\x06{\"input\":{}}", b"\x08", b"\x00\"\xff\"", b"\x00" + b"[" * 70 + b"]" * 70,
                b"\x00{\"stateMachine\":\"m\",\"name\":\"" + "é".encode() * 81 + b"\"}"],
}


def write(out, target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def walk(v, out):
    """Pulls paths, templates, intrinsic calls and timestamps out of a definition."""
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, str):
                if k in PATH_KEYS or k.endswith("Path") or (k.endswith(".$") and x.startswith("$")):
                    write(out, "jsonpath", x)
                if k.endswith(".$") and x.startswith("States."):
                    write(out, "intrinsic", x)
                if k.startswith("Timestamp") or k == "Timestamp":
                    write(out, "timestamp", x)
            if k in TEMPLATE_KEYS and isinstance(x, (dict, list)):
                write(out, "template", json.dumps(x))
            walk(x, out)
    elif isinstance(v, list):
        for x in v:
            walk(x, out)


def definitions(cases_dir):
    for name in sorted(os.listdir(os.path.join(ROOT, "benches", "workloads"))):
        w = json.load(open(os.path.join(ROOT, "benches", "workloads", name)))
        yield w["definition"], w.get("input")
    # Examples come in two layouts: a definition with its input, or a runnable folder
    # whose state-machines/ holds definitions without one.
    for ex in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        d = os.path.join(ROOT, "examples", ex)
        if os.path.isfile(os.path.join(d, "definition.asl.json")):
            inp = os.path.join(d, "input.json")
            yield (json.load(open(os.path.join(d, "definition.asl.json"))),
                   json.load(open(inp)) if os.path.isfile(inp) else None)
        machines = os.path.join(d, "state-machines")
        if os.path.isdir(machines):
            for name in sorted(os.listdir(machines)):
                if name.endswith(".json"):
                    yield json.load(open(os.path.join(machines, name))), None
    if cases_dir and os.path.isdir(cases_dir):
        for name in sorted(os.listdir(cases_dir)):
            case = json.load(open(os.path.join(cases_dir, name)))
            if isinstance(case.get("definition"), dict):
                yield case["definition"], case.get("input")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    cases = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
        "STEPSTREAM_CONFORMANCE_DIR", os.path.join(ROOT, "..", "shared", "conformance", "cases"))
    for t in TARGETS:
        os.makedirs(os.path.join(out, t), exist_ok=True)
    for definition, inp in definitions(cases):
        text = json.dumps(definition, indent=1)
        write(out, "asl_parse", text)
        # asl_exec reads "definition NUL input"; keep the seeds small enough to mutate well.
        if len(text) < 4096:
            write(out, "asl_exec", json.dumps(definition) + "\0" + json.dumps(inp if inp is not None else {}))
        if inp is not None:
            write(out, "request", b"\x00" + json.dumps({"stateMachine": "m", "input": inp}).encode())
            write(out, "json_read", json.dumps(inp))
        walk(definition, out)
    for t, seeds in EXTRA.items():
        for s in seeds:
            write(out, t, s)
    for t in TARGETS:
        print(f"{t}: {len(os.listdir(os.path.join(out, t)))} seeds")


if __name__ == "__main__":
    main()
