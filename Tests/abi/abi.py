#!/usr/bin/env python3
"""The ABI of libbackprop, recorded and checked.

    python3 Tests/abi/abi.py check [--header H] [--lib L]   (make abi-check runs this)
    python3 Tests/abi/abi.py update [--allow-break]         (make abi-update runs this)

Two committed files record what programs built against libbackprop.so.N rely on:

  Tests/abi/symbols.txt  every exported function: its name, its C signature (as clang spells the
                         type, parameter names left out) and the version that added it;
  Tests/abi/layout.txt   every public type: the size and alignment of each struct, the offset,
                         size and type of each field, the value of each enum constant and the
                         size of each enum, what each typedef stands for, and the value of each
                         integer macro (BP_VERSION_* aside, which change by design).

`check` compares the header (parsed by clang, measured by a program compiled with $CC) and the
library's exports (nm -D) with them. Within one SONAME the ABI may only grow:
  - a function the library exports or the header declares that symbols.txt lacks fails until it
    is recorded with `make abi-update` (additions are deliberate);
  - a recorded function that is gone, or whose signature changed, fails: programs linked against
    libbackprop.so.N would break;
  - a recorded field, enum value, typedef or macro that is gone or different fails; a struct that
    begins with `size_t size` (an options struct) may grow at its end, other structs may not;
  - anything new in the layout fails until recorded with `make abi-update`.

`update` rewrites both files from the header. It refuses to drop or change a recorded entry,
unless the header's major version (and so the SONAME) went up since the files were written, or
--allow-break is given (`make abi-update ABI_BREAK=1`): only for entries that were never
released.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SYMBOLS = os.path.join(HERE, "symbols.txt")
LAYOUT = os.path.join(HERE, "layout.txt")

SYMBOLS_PREAMBLE = """\
# The functions libbackprop exports, with their C signatures: the library's ABI, together with
# layout.txt. One line each: name | signature | the version that added it.
#
# Tests/abi/abi.py (make abi-check) fails when the library or the header has a function this
# list lacks, or lacks or changes one it has. After adding a function to include/backprop.h,
# run `make abi-update` and commit this file with the change. Lines are never removed or
# changed within one SONAME: programs linked against it rely on them.
"""

LAYOUT_PREAMBLE = """\
# The layout of every public type in include/backprop.h: the other half of the ABI (see
# symbols.txt). Struct sizes and alignments, field offsets, sizes and types, enum values and
# sizes, typedefs, and integer macros. Written by `make abi-update`; checked by make abi-check.
# Within one SONAME entries are never removed or changed, except that a struct beginning with
# `size_t size` (an options struct) may grow at its end.
"""


def fail_usage(message):
    print(f"abi: {message}")
    sys.exit(2)


def find_clang():
    candidates = [os.environ.get("CLANG", "")]
    swift = shutil.which("swift")
    if swift:
        candidates.append(os.path.join(os.path.dirname(swift), "clang"))
    candidates += ["/opt/swift/usr/bin/clang", shutil.which("clang") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    fail_usage("no clang found (set CLANG, or install the Swift toolchain or Debian's clang)")


def header_version(header):
    text = open(header, encoding="utf-8").read()
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"^#define BP_VERSION_{part}\s+(\d+)", text, re.M)
        if not match:
            fail_usage(f"{header} has no BP_VERSION_{part}")
        parts.append(int(match.group(1)))
    return parts


# ---- reading the header ----------------------------------------------------------------------

class Api:
    """What the header declares: functions with signatures, and the layout entries."""

    def __init__(self, header):
        self.header = header
        self.major, minor, patch = header_version(header)
        self.version = f"{self.major}.{minor}.{patch}"
        self.soname = f"libbackprop.so.{self.major}"
        self.functions = {}  # name -> signature
        self.structs = {}  # name -> [(field, type)]
        self.enums = {}  # name -> [constant]
        self.typedefs = {}  # name -> underlying type
        self.macros = []
        self._parse()
        self.layout = self._measure()

    def _parse(self):
        clang = find_clang()
        result = subprocess.run(
            [clang, "-x", "c", "-std=c11", "-Xclang", "-ast-dump=json", "-fsyntax-only",
             self.header],
            capture_output=True, text=True)
        if result.returncode != 0:
            fail_usage(f"clang cannot parse {self.header}:\n{result.stderr}")
        ast = json.loads(result.stdout)
        for node in ast.get("inner", []):
            name = node.get("name", "")
            kind = node["kind"]
            if not name.startswith("bp_"):
                continue
            if kind == "FunctionDecl":
                self.functions[name] = node["type"]["qualType"]
            elif kind == "RecordDecl" and node.get("completeDefinition"):
                self.structs[name] = [(field["name"], field["type"]["qualType"])
                                      for field in node.get("inner", [])
                                      if field["kind"] == "FieldDecl"]
            elif kind == "EnumDecl":
                self.enums[name] = [c["name"] for c in node.get("inner", [])
                                    if c["kind"] == "EnumConstantDecl"]
            elif kind == "TypedefDecl":
                self.typedefs[name] = node["type"]["qualType"]
        text = open(self.header, encoding="utf-8").read()
        for match in re.finditer(r"^#define\s+(BP_[A-Z0-9_]+)[ \t]+(.+)$", text, re.M):
            name, value = match.group(1), match.group(2)
            if name.startswith("BP_VERSION_") or value.lstrip().startswith('"'):
                continue
            self.macros.append(name)

    def _measure(self):
        """Compiles and runs a program printing every layout entry, in a stable order."""
        lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "backprop.h"',
                 'int main(void) {']
        emit = lambda fmt, *args: lines.append(
            '    printf(' + json.dumps(fmt + "\n") + "".join(", " + a for a in args) + ');')
        for struct, fields in sorted(self.structs.items()):
            prefixed = bool(fields) and fields[0] == ("size", "size_t")
            emit(f"struct {struct} size %zu align %zu" + (" size-prefixed" if prefixed else ""),
                 f"sizeof(struct {struct})", f"_Alignof(struct {struct})")
            for field, ftype in fields:
                emit(f"field {struct}.{field} offset %zu size %zu type {ftype}",
                     f"offsetof(struct {struct}, {field})",
                     f"sizeof(((struct {struct} *)0)->{field})")
        for enum, constants in sorted(self.enums.items()):
            emit(f"enum {enum} size %zu", f"sizeof(enum {enum})")
            for constant in constants:
                emit(f"constant {enum}.{constant} value %lld", f"(long long){constant}")
        for typedef, target in sorted(self.typedefs.items()):
            # A struct's or enum's size is on its own line, where a struct may grow.
            if target.startswith("struct ") and target[len("struct "):] not in self.structs:
                emit(f"typedef {typedef} = {target} (opaque)")
            elif target.startswith(("struct ", "enum ")):
                emit(f"typedef {typedef} = {target}")
            else:
                emit(f"typedef {typedef} = {target} size %zu", f"sizeof({typedef})")
        for macro in sorted(self.macros):
            emit(f"macro {macro} value %lld", f"(long long)({macro})")
        lines += ["    return 0;", "}"]
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "layout.c")
            program = os.path.join(tmp, "layout")
            with open(source, "w") as out:
                out.write("\n".join(lines) + "\n")
            cc = os.environ.get("CC", "cc")
            build = subprocess.run([cc, "-std=c11", "-I", os.path.dirname(self.header), source,
                                    "-o", program], capture_output=True, text=True)
            if build.returncode != 0:
                fail_usage(f"the layout program does not compile:\n{build.stderr}")
            run = subprocess.run([program], capture_output=True, text=True, check=True)
        return run.stdout.splitlines()


def exported_functions(lib):
    result = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    if result.returncode != 0:
        fail_usage(f"nm cannot read {lib}: {result.stderr.strip()}")
    names = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "T" and parts[2].startswith("bp_"):
            names.add(parts[2].split("@")[0])
    return names


# ---- the recorded files ----------------------------------------------------------------------

def read_records(path):
    """The soname line and the entries of symbols.txt or layout.txt (comments skipped)."""
    soname, entries = None, []
    if not os.path.exists(path):
        return soname, entries
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        if line.startswith("soname "):
            soname = line.split()[1]
        else:
            entries.append(line)
    return soname, entries


def symbol_entries(entries):
    """name -> (signature, since) from symbols.txt lines."""
    table = {}
    for line in entries:
        name, signature, since = [part.strip() for part in line.split("|")]
        table[name] = (signature, since)
    return table


def layout_key(line):
    """The identity of a layout entry: what it describes, not its value."""
    words = line.split()
    return f"{words[0]} {words[1]}"


def struct_may_grow(old, new):
    """True when `new` is `old` with only the size of a size-prefixed struct grown."""
    o, n = old.split(), new.split()
    if o[0] != "struct" or "size-prefixed" not in o or o[:2] != n[:2]:
        return False
    return o[4:] == n[4:] and int(n[3]) >= int(o[3])


def compare(api, recorded_symbols, recorded_layout, exports):
    """Differences between the recorded ABI and the current one, as (additions, breaks)."""
    additions, breaks = [], []
    for name, signature in sorted(api.functions.items()):
        if name not in recorded_symbols:
            additions.append(f"function {name}: {signature}")
        elif recorded_symbols[name][0] != signature:
            breaks.append(f"function {name}: signature was {recorded_symbols[name][0]}, "
                          f"is now {signature}")
    for name in sorted(recorded_symbols):
        if name not in api.functions:
            breaks.append(f"function {name}: recorded, but no longer declared in the header")
        elif exports is not None and name not in exports:
            breaks.append(f"function {name}: recorded, but not exported by the library")
    if exports is not None:
        for name in sorted(exports - set(recorded_symbols) - set(api.functions)):
            additions.append(f"function {name}: exported by the library (and not declared)")

    current = {layout_key(line): line for line in api.layout}
    recorded = {layout_key(line): line for line in recorded_layout}
    for key, line in recorded.items():
        if key not in current:
            breaks.append(f"layout: gone: {line}")
        elif current[key] != line and not struct_may_grow(line, current[key]):
            breaks.append(f"layout: was {line}\n            is  {current[key]}")
    for key, line in current.items():
        if key not in recorded:
            additions.append(f"layout: new: {line}")
    return additions, breaks


def write_files(api, recorded_symbols):
    with open(SYMBOLS, "w", encoding="utf-8") as out:
        out.write(SYMBOLS_PREAMBLE)
        out.write(f"soname {api.soname}\n")
        for name, signature in sorted(api.functions.items()):
            since = recorded_symbols.get(name, (None, api.version))[1]
            out.write(f"{name} | {signature} | {since}\n")
    with open(LAYOUT, "w", encoding="utf-8") as out:
        out.write(LAYOUT_PREAMBLE)
        out.write(f"soname {api.soname}\n")
        for line in api.layout:
            out.write(line + "\n")


def relative(path):
    return os.path.relpath(path, ROOT)


# ---- commands ----------------------------------------------------------------------------------

def check(args):
    api = Api(args.header)
    exports = exported_functions(args.lib) if args.lib else None
    symbols_soname, symbol_lines = read_records(SYMBOLS)
    layout_soname, layout_lines = read_records(LAYOUT)
    if not symbol_lines or not layout_lines:
        print(f"abi: FAIL: {relative(SYMBOLS)} or {relative(LAYOUT)} is missing or empty: "
              "run `make abi-update` and commit them")
        return 1
    if symbols_soname != api.soname or layout_soname != api.soname:
        print(f"abi: FAIL: the recorded ABI is that of {symbols_soname}, the header's version "
              f"{api.version} makes {api.soname}: after a major version change, run "
              "`make abi-update` to start the new ABI's record")
        return 1
    additions, breaks = compare(api, symbol_entries(symbol_lines), layout_lines, exports)
    if breaks:
        print(f"abi: FAIL: {len(breaks)} change(s) break programs built against {api.soname}:")
        for line in breaks:
            print(f"    {line}")
        print("  Restore what was removed or changed (new struct fields go at the end of options "
              "structs; new enum constants take new values). A deliberate break needs a new major "
              "version in the header (and so a new SONAME).")
    if additions:
        print(f"abi: FAIL: {len(additions)} addition(s) not yet recorded in "
              f"{relative(SYMBOLS)} / {relative(LAYOUT)}:")
        for line in additions:
            print(f"    {line}")
        print("  If they are deliberate, run `make abi-update` and commit the two files with them.")
    if breaks or additions:
        return 1
    print(f"abi: ok: {len(api.functions)} functions"
          + (f" (all exported by {args.lib})" if args.lib else "")
          + f" and {len(api.layout)} layout entries match the record of {api.soname}")
    return 0


def update(args):
    api = Api(args.header)
    symbols_soname, symbol_lines = read_records(SYMBOLS)
    _, layout_lines = read_records(LAYOUT)
    recorded_symbols = symbol_entries(symbol_lines)
    new_abi = symbols_soname != api.soname
    if not new_abi:
        additions, breaks = compare(api, recorded_symbols, layout_lines, None)
        if breaks and not args.allow_break:
            print(f"abi-update: refusing: {len(breaks)} recorded entries of {api.soname} would be "
                  "removed or changed:")
            for line in breaks:
                print(f"    {line}")
            print("  Programs built against the library rely on them. If they were never "
                  "released, run `make abi-update ABI_BREAK=1`; otherwise raise the header's "
                  "major version.")
            return 1
        for line in breaks:
            print(f"abi-update: dropped or changed (ABI_BREAK=1): {line}")
        for line in additions:
            print(f"abi-update: recorded {line}")
        if not additions and not breaks:
            print("abi-update: nothing new")
    else:
        recorded_symbols = {}
        print(f"abi-update: starting the record of {api.soname}")
    write_files(api, recorded_symbols)
    print(f"abi-update: wrote {relative(SYMBOLS)} ({len(api.functions)} functions) and "
          f"{relative(LAYOUT)} ({len(api.layout)} entries)")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "update"):
        command = sub.add_parser(name)
        command.add_argument("--header", default=os.path.join(ROOT, "include", "backprop.h"))
        if name == "check":
            command.add_argument("--lib", help="also compare the library's exported functions")
        else:
            command.add_argument("--allow-break", action="store_true")
    args = parser.parse_args()
    args.header = os.path.abspath(args.header)
    if getattr(args, "lib", None):
        args.lib = os.path.abspath(args.lib)
    return check(args) if args.command == "check" else update(args)


if __name__ == "__main__":
    sys.exit(main())
