#!/usr/bin/env bash
# The four places the version lives agree: the header's macros, bp_version(),
# bp_version_number() and the library's SONAME.
#
#   Tests/abi/check_version.sh [build/lib/libbackprop.so] [include/backprop.h]
#
# Checks that BP_VERSION_STRING is "MAJOR.MINOR.PATCH" and BP_VERSION_NUMBER is
# MAJOR * 10000 + MINOR * 100 + PATCH (with MINOR and PATCH below 100, so the number orders
# versions); that the loaded library's bp_version() and bp_version_number() return the same;
# and that its SONAME is libbackprop.so.MAJOR, the name `make install` and `make lib` link.
set -euo pipefail

absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
LIB="$(absolute "${1:-}")"
HEADER="$(absolute "${2:-}")"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "${1:-}" ] || LIB="$PWD/build/lib/libbackprop.so"
[ -n "${2:-}" ] || HEADER="$PWD/include/backprop.h"
CC="${CC:-cc}"

[ -f "$LIB" ] || { echo "check_version: $LIB not found (run make lib)"; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$HEADER" "$tmp/backprop.h"
mkdir "$tmp/lib"
cp "$LIB" "$tmp/lib/libbackprop.so"

cat >"$tmp/version.c" <<'SRC'
#include <stdio.h>

#include "backprop.h"

int main(void) {
    printf("macros %d %d %d %s %ld\n", BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH,
           BP_VERSION_STRING, (long)BP_VERSION_NUMBER);
    printf("library %s %u\n", bp_version(), bp_version_number());
    return 0;
}
SRC
# Linked by file name, so the program loads exactly this library whatever its SONAME is.
"$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I"$tmp" "$tmp/version.c" -o "$tmp/version" \
    "$tmp/lib/libbackprop.so" -Wl,-rpath,"$tmp/lib"
soname="$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
[ -z "$soname" ] || ln -sf libbackprop.so "$tmp/lib/$soname"
env -i "$tmp/version" >"$tmp/out"
read -r _ major minor patch string number <<<"$(grep '^macros' "$tmp/out")"
read -r _ lib_string lib_number <<<"$(grep '^library' "$tmp/out")"

failed=0
expect() { # description, got, want
    if [ "$2" = "$3" ]; then
        echo "check_version: ok: $1 = $2"
    else
        echo "check_version: FAIL: $1 is '$2', expected '$3'"
        failed=1
    fi
}
expect "BP_VERSION_STRING" "$string" "$major.$minor.$patch"
expect "BP_VERSION_NUMBER" "$number" "$((major * 10000 + minor * 100 + patch))"
if [ "$minor" -ge 100 ] || [ "$patch" -ge 100 ]; then
    echo "check_version: FAIL: MINOR and PATCH must stay below 100 for BP_VERSION_NUMBER" \
        "to order versions"
    failed=1
fi
expect "bp_version()" "$lib_string" "$string"
expect "bp_version_number()" "$lib_number" "$number"
expect "the SONAME of $(basename "$LIB")" "$soname" "libbackprop.so.$major"

if [ "$failed" -ne 0 ]; then
    echo "check_version: FAILED"
    exit 1
fi
echo "check_version: ok"
