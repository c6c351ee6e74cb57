"""Turns the backtraces of the allocation tracer into function names.

    BENCH_ALLOC_TRACE=10 LD_PRELOAD=build/bench/libmalloc_count.so \\
        build/bench/bench alloc --layers 784,256,128,10 --batch 64 --threads 1 2>&1 \\
        | python3 benchmarks/symbolize.py

glibc's backtrace_symbols_fd prints frames as `/path/lib.so(+0x1234)[0x7f...]` when the function
is not exported, which is the case for everything inside libbackprop but the bp_* entry points.
This looks each offset up with addr2line (the library keeps its symbol table) and demangles Swift
names with `swift demangle --simplified` when the toolchain is on PATH.
"""

import re
import shutil
import subprocess
import sys
from collections import defaultdict

FRAME = re.compile(r"^(?P<path>/[^\s(]+)\((?P<symbol>[^)+]*)\+?(?P<offset>0x[0-9a-f]+)?\)")


def addr2line(path, offsets):
    if not offsets or not shutil.which("addr2line"):
        return {}
    out = subprocess.run(["addr2line", "-f", "-e", path, *offsets], capture_output=True,
                         text=True).stdout.splitlines()
    return {offset: out[2 * i] for i, offset in enumerate(offsets) if 2 * i < len(out)}


def demangle(names):
    swift = shutil.which("swift-demangle") or shutil.which("swift")
    if not names or not swift:
        return names
    command = [swift, "--simplified"] if swift.endswith("demangle") else [swift, "demangle",
                                                                         "--simplified"]
    out = subprocess.run(command, input="\n".join(names) + "\n", capture_output=True, text=True)
    lines = out.stdout.splitlines()
    return lines if len(lines) == len(names) else names


def main():
    lines = sys.stdin.read().splitlines()
    wanted = defaultdict(set)
    for line in lines:
        m = FRAME.match(line)
        if m and not m.group("symbol") and m.group("offset"):
            wanted[m.group("path")].add(m.group("offset"))
    names = {}
    for path, offsets in wanted.items():
        for offset, name in addr2line(path, sorted(offsets)).items():
            names[(path, offset)] = name
    keys = list(names)
    for key, name in zip(keys, demangle([names[k] for k in keys])):
        names[key] = name
    for line in lines:
        m = FRAME.match(line)
        if m and (m.group("path"), m.group("offset")) in names:
            short = m.group("path").rsplit("/", 1)[-1]
            print(f"    {short}: {names[(m.group('path'), m.group('offset'))]}")
        elif m:
            short = m.group("path").rsplit("/", 1)[-1]
            print(f"    {short}: {m.group('symbol') or m.group('offset')}")
        else:
            print(line)


if __name__ == "__main__":
    main()
