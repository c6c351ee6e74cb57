#!/usr/bin/env python3
"""Every public declaration in the header has a comment: the header is the API's reference.

    python3 Tests/abi/check_comments.py [include/backprop.h]

A declaration is a function prototype, a typedef (struct, enum, handle, integer or callback
type) or a #define of a BP_ macro. It is documented when a comment block ends on the line right
above it, or right above the group it belongs to: declarations on consecutive lines, with no
blank line between them, share the comment above the first (bp_graph_input, _parameter and
_constant, say). A #define may instead carry its comment at the end of its own line.

Every enum constant is documented too: by a comment at the end of its line, or on the line(s)
right above it inside the enum.

Every function that returns bp_status says how it fails: its comment block (or its group's)
names its errors ("Errors: ...", "fail", "as bp_x"), or says it never fails; functions in a
section or subsection whose banner states the errors for all of them (the ops) are covered by
that banner. Functions that return something else say "Never fails" or how they report failure.

Prints each gap with its line number and fails when there is one.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Words that show a comment says how a call fails (or that it cannot).
ERROR_WORDS = re.compile(r"\bErrors?\b|\bfails?\b|\bas bp_[a-z0-9_]+", re.I)


class Item:
    """Header lines: a comment block, a blank line, a preprocessor line or a declaration."""

    def __init__(self, kind, first, last, text, trailing_comment=False):
        self.kind = kind  # "comment", "blank", "pp", "define", "decl"
        self.first = first  # 1-based line numbers
        self.last = last
        self.text = text
        self.trailing_comment = trailing_comment
        self.names = []


def strip_comments(code):
    return re.sub(r"/\*.*?\*/", " ", code, flags=re.S)


def items_of(lines):
    items = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            items.append(Item("blank", i + 1, i + 1, line))
            i += 1
        elif stripped.startswith("/*"):
            start = i
            while "*/" not in lines[i]:
                i += 1
            items.append(Item("comment", start + 1, i + 1, "\n".join(lines[start:i + 1])))
            i += 1
        elif stripped.startswith("#") or stripped.startswith('extern "C"') or stripped == "}":
            # Preprocessor lines, and the C++ guard's `extern "C" {` and its closing brace.
            match = re.match(r"#\s*define\s+(BP_[A-Z0-9_]+)", stripped)
            if match:
                item = Item("define", i + 1, i + 1, line, trailing_comment="/*" in line)
                item.names = [match.group(1)]
            else:
                item = Item("pp", i + 1, i + 1, line)
            items.append(item)
            i += 1
        else:
            # A statement: up to the `;` that ends it outside braces (struct and enum bodies).
            start, depth, text = i, 0, []
            while i < len(lines):
                code = strip_comments(lines[i])
                text.append(lines[i])
                depth += code.count("{") - code.count("}")
                if depth <= 0 and code.rstrip().endswith(";"):
                    break
                i += 1
            body = "\n".join(text)
            item = Item("decl", start + 1, i + 1, body)
            code = strip_comments(body)
            if code.strip().startswith("typedef"):
                flat = re.sub(r"\{.*\}", " ", code, flags=re.S)
                name = (re.search(r"\(\s*\*\s*(bp_\w+)\s*\)", flat)
                        or re.search(r"(bp_\w+)\s*;", flat))
                item.names = [name.group(1)] if name else []
                item.kind = "decl"
            else:
                name = re.search(r"\b(bp_\w+)\s*\(", code)
                item.names = [name.group(1)] if name else []
            items.append(item)
            i += 1
    return items


def documentation(items, index):
    """The comment items documenting items[index] (its own, then its group's), or []."""
    j = index - 1
    while j >= 0 and items[j].kind in ("decl", "define"):
        j -= 1
    if j >= 0 and items[j].kind == "comment" and items[j].last == items[j + 1].first - 1:
        return [items[j]]
    return []


def banners(items, index):
    """The section and subsection banners above items[index], nearest first."""
    found = []
    for j in range(index - 1, -1, -1):
        banner = re.search(r"^\s*/?\*\s*(-{5,}|-{2,} \w)", items[j].text, re.M)
        if items[j].kind == "comment" and banner:
            found.append(items[j])
            if re.search(r"^/\* -{20,}", items[j].text, re.M):
                break  # a top-level section banner: stop there
    return found


def check(header):
    lines = open(header, encoding="utf-8").read().split("\n")
    items = items_of(lines)
    gaps = []
    counts = {"functions": 0, "types": 0, "macros": 0, "constants": 0}

    for index, item in enumerate(items):
        if item.kind not in ("decl", "define") or not item.names:
            continue
        name = item.names[0]
        if item.kind == "define":
            counts["macros"] += 1
        elif strip_comments(item.text).strip().startswith("typedef"):
            counts["types"] += 1
        else:
            counts["functions"] += 1
        docs = documentation(items, index)
        documented = bool(docs) or item.trailing_comment
        if not documented:
            gaps.append((item.first, f"{name}: no comment right above it or above its group"))

        code = strip_comments(item.text)
        is_function = item.kind == "decl" and not code.strip().startswith("typedef")
        if is_function and documented:
            text = " ".join(d.text for d in docs)
            # Op constructors (a new node through `bp_node *out`) may rely on a banner above
            # that states the errors of every op.
            op = (name.startswith("bp_graph_")
                  and re.search(r"bp_node\s*\*\s*\w+\s*\)\s*;\s*$", code))
            covered = op and any(re.search(r"fail with", b.text) for b in banners(items, index))
            if not ERROR_WORDS.search(text) and not covered:
                gaps.append((item.first, f"{name}: its comment does not say how it fails "
                                         "(\"Errors: ...\", or \"Never fails\")"))

        # Enum constants: a trailing comment, or a comment on the lines right above.
        if re.match(r"\s*typedef\s+enum\b", code):
            body_lines = item.text.split("\n")
            for offset, body_line in enumerate(body_lines):
                constant = re.match(r"\s*(BP_[A-Z0-9_]+)\s*(=|,|$)", body_line)
                if not constant:
                    continue
                counts["constants"] += 1
                above = body_lines[offset - 1].strip() if offset > 0 else ""
                if "/*" not in body_line and not above.endswith("*/"):
                    gaps.append((item.first + offset, f"{constant.group(1)} (in {name}): "
                                                  "no comment on its line or above it"))
    return gaps, counts


def main():
    header = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "include", "backprop.h")
    gaps, counts = check(header)
    shown = os.path.relpath(header, ROOT) if header.startswith(ROOT + os.sep) else header
    if gaps:
        print(f"check_comments: FAIL: {len(gaps)} declaration(s) in {shown} lack documentation:")
        for line, message in sorted(gaps):
            print(f"    {shown}:{line}: {message}")
        print("  Put a comment right above each (or above its group of declarations): what it "
              "does, who owns what, and which status it returns for which bad input.")
        return 1
    print(f"check_comments: ok: {counts['functions']} functions, {counts['types']} types, "
          f"{counts['macros']} macros and {counts['constants']} enum constants in {shown} "
          "are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
