#!/usr/bin/env python3
"""docs/OPS.md lists every graph op of the header, with a true Python name.

    python3 Tests/docs/check_ops.py [include/backprop.h] [docs/OPS.md]

An op constructor is a bp_graph_* function whose last parameter is the `bp_node *out` that
receives the new node (leaves included). Fails when
  - the header has an op constructor that no table row of docs/OPS.md names in its first column;
  - a row names a bp_graph_ function the header does not declare (a removed or renamed op);
  - a row's Python name is not marked "(planned)" but backprop.Graph has no such method
    (bindings/python/backprop/graph.py);
  - a planned Python name is not the C name without `bp_graph_` (the naming rule).
A planned name that the binding now has is reported as a note: "(planned)" can go.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRAPH_PY = os.path.join(ROOT, "bindings", "python", "backprop", "graph.py")


def op_constructors(header):
    cc = os.environ.get("CC", "cc")
    text = subprocess.run(cc.split() + ["-E", "-P", "-x", "c", header], capture_output=True,
                          text=True, check=True).stdout
    flat = " ".join(text.split())
    ops = set()
    for match in re.finditer(r"\b(bp_graph_\w+)\s*\(([^;]*)\)\s*;", flat):
        if re.search(r"bp_node\s*\*\s*\w+\s*$", match.group(2)):
            ops.add(match.group(1))
    return ops


def graph_methods():
    """The public methods of class Graph in the Python binding."""
    if not os.path.exists(GRAPH_PY):
        return set()
    text = open(GRAPH_PY, encoding="utf-8").read()
    match = re.search(r"^class Graph\b.*?(?=^class |\Z)", text, re.M | re.S)
    body = match.group(0) if match else ""
    return set(re.findall(r"^    def ([a-z][a-z0-9_]*)\s*\(", body, re.M))


def rows(ops_md):
    """(line, C name, Python cell) of every table row whose first cell names a bp_graph_ op."""
    found = []
    for number, line in enumerate(open(ops_md, encoding="utf-8"), 1):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and line.lstrip().startswith("|"):
            name = re.fullmatch(r"`(bp_graph_\w+)`", cells[0])
            if name:
                found.append((number, name.group(1), cells[1]))
    return found


def main():
    header = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "include", "backprop.h")
    ops_md = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "OPS.md")
    shown = os.path.relpath(ops_md, ROOT)
    ops = op_constructors(header)
    methods = graph_methods()
    failures, notes = [], []
    listed = {}
    for number, name, python in rows(ops_md):
        listed[name] = number
        if name not in ops:
            failures.append(f"{shown}:{number}: {name} is not an op constructor in the header")
        first = re.search(r"`([A-Za-z_][A-Za-z0-9_]*)`", python)
        if not first:
            failures.append(f"{shown}:{number}: {name}: no Python name in the second column")
            continue
        method = first.group(1)
        if "(planned)" in python:
            if method != name[len("bp_graph_"):]:
                failures.append(f"{shown}:{number}: {name}: the planned Python name should be "
                                f"`{name[len('bp_graph_'):]}`, not `{method}`")
            if method in methods:
                notes.append(f"{shown}:{number}: Graph.{method} exists now: drop \"(planned)\"")
        elif method not in methods:
            failures.append(f"{shown}:{number}: {name}: Graph.{method} is not in "
                            f"{os.path.relpath(GRAPH_PY, ROOT)}; mark it \"(planned)\"")
    for name in sorted(ops - set(listed)):
        failures.append(f"{shown}: {name} (declared in the header) is missing: add a row with its "
                        "Python name and its gradient")
    for note in notes:
        print(f"check_ops: note: {note}")
    if failures:
        print(f"check_ops: FAIL: {len(failures)} problem(s):")
        for failure in failures:
            print(f"    {failure}")
        return 1
    planned = sum(1 for _, _, python in rows(ops_md) if "(planned)" in python)
    print(f"check_ops: ok: all {len(ops)} op constructors of the header are in {shown} "
          f"({len(ops) - planned} in the Python binding, {planned} planned)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
