#!/usr/bin/env bash
# The library exports exactly the functions the header declares, and nothing else.
#
#   Tests/abi/check_exports.sh [build/lib/libbackprop.so] [include/backprop.h]
#
# Compares the defined dynamic symbols of the library (`nm -D --defined-only`) with the bp_*
# functions declared in the header. Fails, listing the differences, when
#   - a declared function is not exported (a C program using it would not link),
#   - an exported bp_* function is not declared (an undocumented entry point),
#   - an exported bp_* name is not a function (type T), or
#   - any exported symbol does not start with bp_ (the Swift runtime or core leaking out).
set -euo pipefail

# Paths given are taken from the caller's directory; the defaults from the repository root.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
LIB="$(absolute "${1:-}")"
HEADER="$(absolute "${2:-}")"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "${1:-}" ] || LIB="$PWD/build/lib/libbackprop.so"
[ -n "${2:-}" ] || HEADER="$PWD/include/backprop.h"
CC="${CC:-cc}"

[ -f "$LIB" ] || { echo "check_exports: $LIB not found (run make lib)"; exit 1; }
[ -f "$HEADER" ] || { echo "check_exports: $HEADER not found"; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Declared functions: run the header through the preprocessor (which drops the comments and
# the macros), then take every bp_ identifier that is directly followed by "(".
"$CC" -E -P -x c "$HEADER" \
    | grep -oE '\bbp_[A-Za-z0-9_]+[[:space:]]*\(' \
    | sed -E 's/[[:space:]]*\($//' | sort -u >"$tmp/declared"

# Exported symbols: "address type name" lines; version suffixes (name@VER) are dropped. nm
# prints global symbols with an upper-case type letter (u, v and w are global too). A lower-case
# type is a local symbol: the linker may leave symbols that the version script hid in the
# dynamic table with local binding, where no other object can bind to them. Those are not
# exports; they are only counted.
nm -D --defined-only "$LIB" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $2, $3 }' \
    | sort -u >"$tmp/all"
awk '$1 ~ /^[A-Zuvw]$/' "$tmp/all" >"$tmp/exported"
awk '$1 !~ /^[A-Zuvw]$/' "$tmp/all" >"$tmp/local"

awk '$2 ~ /^bp_/ && $1 == "T" { print $2 }' "$tmp/exported" | sort -u >"$tmp/exported_functions"
awk '$2 ~ /^bp_/ && $1 != "T" { print $1, $2 }' "$tmp/exported" >"$tmp/not_functions"
awk '$2 !~ /^bp_/ { print $1, $2 }' "$tmp/exported" >"$tmp/foreign"

comm -23 "$tmp/declared" "$tmp/exported_functions" >"$tmp/missing"
comm -13 "$tmp/declared" "$tmp/exported_functions" >"$tmp/undeclared"

failed=0
report() { # title file
    if [ -s "$2" ]; then
        echo "check_exports: $1 ($(wc -l <"$2")):"
        sed 's/^/    /' "$2"
        failed=1
    fi
}
report "declared in $HEADER but not exported by $LIB" "$tmp/missing"
report "exported by $LIB but not declared in $HEADER" "$tmp/undeclared"
report "bp_ symbols exported that are not functions (nm type shown)" "$tmp/not_functions"
report "exported symbols without the bp_ prefix (nm type shown)" "$tmp/foreign"

declared=$(wc -l <"$tmp/declared")
exported=$(wc -l <"$tmp/exported")
if [ "$declared" -eq 0 ]; then
    echo "check_exports: found no declarations in $HEADER"
    failed=1
fi
if [ "$failed" -ne 0 ]; then
    echo "check_exports: FAILED"
    exit 1
fi
echo "check_exports: ok: $exported exported symbols, all bp_ functions, matching the" \
    "$declared declared in $HEADER ($(wc -l <"$tmp/local") hidden local entries in the table)"
