#!/usr/bin/env python3
"""Compares two builds of libbackprop on one training configuration, in alternating runs.

    python3 benchmarks/compare.py OLD NEW [--layers 784,256,128,10] [--batch 256]
                                          [--threads 1] [--rounds 11]

OLD and NEW are libbackprop.so files, or folders holding one (a copy of build/lib made before a
change, and build/lib after it). Each round runs the C harness once with each (`bench train`,
three timings of 0.3 s after its warm-up; the median timing counts), in an order that swaps from
round to round, and prints NEW's rate over OLD's. The median of those ratios is the comparison:
this machine's speed drifts by several percent from one minute to the next, which moves both
runs of a round alike, and alternating keeps either build from owning the fast minutes.

Each run goes through run.py's `run_json`, as `make bench` runs it: one-thread runs pinned to
one CPU, the BLAS thread variables set to the thread count, OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed. Needs the harness (`make build/bench/bench`).
"""
import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from run import BENCH, run_json


def library_file(path):
    """The libbackprop.so that `path` names, itself or inside it."""
    path = Path(path)
    library = path / "libbackprop.so" if path.is_dir() else path
    if not library.is_file():
        sys.exit(f"compare: no libbackprop.so at {path}")
    return library


def staged(library, folder):
    """A folder holding `library` under both names the harness may load (it links the soname)."""
    folder.mkdir()
    for name in ("libbackprop.so", "libbackprop.so.0"):
        shutil.copyfile(library, folder / name)
    return folder


def rate(folder, args):
    """Steps per second of one run of the harness with the library in `folder`."""
    command = [str(BENCH), "train", "--layers", args.layers, "--batch", str(args.batch),
               "--threads", str(args.threads), "--seconds", "0.3", "--repeats", "3"]
    records = run_json(command, args.threads, {"LD_LIBRARY_PATH": str(folder)})
    if not records or "error" in records[-1]:
        sys.exit(f"compare: {' '.join(command)} failed: {records[-1]['error'] if records else 'no output'}")
    return records[-1]["steps_per_timing"] / statistics.median(records[-1]["seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--layers", default="784,256,128,10")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    if not BENCH.is_file():
        sys.exit(f"compare: {BENCH} is missing: run make build/bench/bench")
    if args.rounds < 1 or args.batch < 1 or args.threads < 1:
        sys.exit("compare: --rounds, --batch and --threads must be at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        old = staged(library_file(args.old), Path(scratch) / "old")
        new = staged(library_file(args.new), Path(scratch) / "new")
        ratios = []
        print(f"{args.layers}, batch {args.batch}, {args.threads} thread(s): steps/s old, new, new/old")
        for round_index in range(args.rounds):
            order = (old, new) if round_index % 2 == 0 else (new, old)
            rates = {folder: rate(folder, args) for folder in order}
            ratios.append(rates[new] / rates[old])
            print(f"{rates[old]:10.1f} {rates[new]:10.1f} {ratios[-1]:7.3f}", flush=True)
    print(f"median {statistics.median(ratios):.4f}, lowest {min(ratios):.3f}, highest {max(ratios):.3f} "
          f"over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
