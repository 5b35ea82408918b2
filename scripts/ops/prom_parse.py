#!/usr/bin/env python3
"""Parses Prometheus' text exposition format from stdin with prometheus_client's parser.

Prints one JSON object: {"samples": [{"family", "type", "name", "labels", "value"}]}.
A line the parser rejects fails the run (exit 1): the tests use this to check that
/metrics is valid text format, not only that it has the right numbers.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            value = s.value
            if value != value or value in (float("inf"), float("-inf")):
                value = str(value)
            samples.append(
                {
                    "family": family.name,
                    "type": family.type,
                    "name": s.name,
                    "labels": dict(s.labels),
                    "value": value,
                }
            )
    json.dump({"samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
