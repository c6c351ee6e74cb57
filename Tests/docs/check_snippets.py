#!/usr/bin/env python3
"""The C programs in the documentation compile and run, so they cannot drift from the library.

    python3 Tests/docs/check_snippets.py [--lib build/lib/libbackprop.so] docs/C-API.md ...

In a markdown file, an HTML comment on the line right before a fenced block marks it:

    <!-- prelude -->   a ```c block put in front of every compiled block after it in the file
                       (the includes and the CHECK macro the examples share);
    <!-- compile -->   a ```c block that, after the prelude, is a whole program: it is compiled
                       as C99 with -Wall -Wextra -pedantic -Werror against include/backprop.h and
                       the library, and run; it must exit with status 0;
    <!-- output -->    a ``` block that must equal, line for line, what the compiled block
                       before it printed on stdout (trailing spaces aside).

Unmarked ```c blocks are fragments for reading and are not compiled. Fails when a marked block
does not compile, exits non-zero or prints something else, naming the file and line; and when a
file has no compiled block at all (a marker lost in an edit).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = re.compile(r"^\s*<!--\s*(prelude|compile|output)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```")


class Block:
    def __init__(self, marker, line, language, text):
        self.marker = marker  # "prelude", "compile", "output" or None
        self.line = line  # 1-based line of the opening fence
        self.language = language
        self.text = text


def blocks_of(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, marker, i = [], None, 0
    while i < len(lines):
        match = MARKER.match(lines[i])
        if match:
            marker = match.group(1)
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence:
            language = lines[i].strip()[3:].strip()
            start = i
            i += 1
            body = []
            while i < len(lines) and not FENCE.match(lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append(Block(marker, start + 1, language, "\n".join(body) + "\n"))
            marker = None
        elif lines[i].strip():
            marker = None  # a marker applies only to the block right after it
        i += 1
    return blocks


def check_file(path, lib_dir, cc, tmp):
    shown = os.path.relpath(path, ROOT)
    failures, compiled, prelude = [], 0, ""
    last_output = None  # (line, stdout) of the latest compiled block
    for block in blocks_of(path):
        if block.marker == "prelude":
            if block.language != "c":
                failures.append(f"{shown}:{block.line}: a prelude must be a ```c block")
            prelude += block.text
            continue
        if block.marker == "output":
            if last_output is None:
                failures.append(f"{shown}:{block.line}: an output block with no compiled "
                                "block before it")
                continue
            want = [line.rstrip() for line in block.text.rstrip("\n").split("\n")]
            got = [line.rstrip() for line in last_output[1].rstrip("\n").split("\n")]
            if want != got:
                failures.append(f"{shown}:{block.line}: the program at line {last_output[0]} "
                                "printed\n"
                                + "".join(f"        {line}\n" for line in got)
                                + "    but the document shows\n"
                                + "".join(f"        {line}\n" for line in want))
            last_output = None
            continue
        if block.marker != "compile":
            continue
        if block.language != "c":
            failures.append(f"{shown}:{block.line}: only ```c blocks can be compiled")
            continue
        compiled += 1
        name = f"{os.path.splitext(os.path.basename(path))[0]}_line{block.line}"
        source = os.path.join(tmp, name + ".c")
        program = os.path.join(tmp, name)
        with open(source, "w", encoding="utf-8") as out:
            out.write(f"/* {shown}, the block at line {block.line}, after the prelude */\n")
            out.write(prelude)
            out.write(f'\n#line {block.line + 1} "{shown}"\n')
            out.write(block.text)
        build = subprocess.run(
            cc.split() + ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror",
                          "-I", os.path.join(ROOT, "include"), source, "-o", program,
                          "-L", lib_dir, "-lbackprop", "-Wl,-rpath," + lib_dir, "-lm"],
            capture_output=True, text=True)
        if build.returncode != 0:
            failures.append(f"{shown}:{block.line}: does not compile:\n"
                            + "".join(f"        {line}\n" for line in build.stderr.splitlines()))
            last_output = None
            continue
        try:
            run = subprocess.run([program], capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            failures.append(f"{shown}:{block.line}: did not finish within 120 s")
            last_output = None
            continue
        if run.returncode != 0:
            failures.append(f"{shown}:{block.line}: exited with status {run.returncode}:\n"
                            + "".join(f"        {line}\n" for line in
                                      (run.stdout + run.stderr).splitlines()[-15:]))
        last_output = (block.line, run.stdout)
    if compiled == 0:
        failures.append(f"{shown}: no <!-- compile --> block found")
    return compiled, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default=os.path.join(ROOT, "build", "lib", "libbackprop.so"))
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    files = args.files or [os.path.join(ROOT, "docs", "C-API.md")]
    if not os.path.exists(args.lib):
        print(f"check_snippets: {args.lib} not found (run make lib)")
        return 1
    lib_dir = os.path.dirname(os.path.abspath(args.lib))
    cc = os.environ.get("CC", "cc")
    total, failures = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            compiled, file_failures = check_file(os.path.abspath(path), lib_dir, cc, tmp)
            total += compiled
            failures += file_failures
    if failures:
        print(f"check_snippets: FAIL: {len(failures)} problem(s):")
        for failure in failures:
            print(f"    {failure}")
        return 1
    print(f"check_snippets: ok: {total} programs in {', '.join(os.path.relpath(f) for f in files)} "
          "compile as C99 and run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
