#!/usr/bin/env python3
"""Prints which top-level module of src/ uses which (`crate::X` outside test modules) as a
Mermaid graph, then every pair of modules that use each other. README's Layout shows it.

    python3 scripts/dev/module_graph.py
"""
import collections
import os
import re

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
TOP = {e[:-3] if e.endswith(".rs") else e for e in os.listdir(SRC)} - {"lib", "main"}

edges = collections.defaultdict(set)
for root, _, files in os.walk(SRC):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        top = os.path.relpath(path, SRC).split(os.sep)[0].removesuffix(".rs")
        if top not in TOP:
            continue
        text = open(path, encoding="utf-8").read()
        # Test modules may reach anywhere; the graph is about the product's code.
        cut = text.find("#[cfg(test)]\nmod tests")
        text = text if cut < 0 else text[:cut]
        for used in re.findall(r"crate::(\w+)", text):
            if used != top and used in TOP:
                edges[top].add(used)

print("```mermaid\ngraph LR")
for a in sorted(edges):
    for b in sorted(edges[a]):
        print(f"  {a} --> {b}")
print("```")
pairs = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
print("modules that use each other:", ", ".join(f"{a} <-> {b}" for a, b in pairs) or "none")
