#!/usr/bin/env bash
# The header compiles cleanly on its own as C99, C11 and C++, as it promises.
#
#   Tests/abi/check_header.sh [include/backprop.h]
#
# Each language compiles a file that includes only backprop.h, with -Wall -Wextra -pedantic
# -Werror, and uses a few of its declarations so that they are really parsed. The C++ build also
# checks that the functions have C linkage (the extern "C" guards): their mangled names would
# not match the library's.
set -euo pipefail

case "${1:-}" in
    "") HEADER="" ;;
    /*) HEADER="$1" ;;
    *) HEADER="$PWD/$1" ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "$HEADER" ] || HEADER="$PWD/include/backprop.h"
CC="${CC:-cc}"
CXX="${CXX:-c++}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$HEADER" "$tmp/backprop.h"

cat >"$tmp/use.c" <<'SRC'
#include "backprop.h"
#include "backprop.h" /* the include guard works */

int uses_the_header(void);
int uses_the_header(void) {
    bp_graph *graph = 0;
    bp_node node = 0;
    bp_status status = bp_graph_create(BP_FLOAT32, &graph);
    (void)bp_graph_input(graph, 0, 0, &node);
    (void)bp_status_string(status);
    return BP_VERSION_NUMBER + BP_MAX_RANK + (int)BP_ERR_INTERNAL + (int)BP_LOSS_CROSS_ENTROPY;
}
SRC
cp "$tmp/use.c" "$tmp/use.cpp"

failed=0
compile() { # description, command...
    local what="$1"
    shift
    if "$@" >"$tmp/log" 2>&1; then
        echo "check_header: ok: $what"
    else
        echo "check_header: FAIL: $what"
        sed 's/^/    /' "$tmp/log"
        failed=1
    fi
}
warnings=(-Wall -Wextra -pedantic -Werror)
compile "C99" "$CC" -std=c99 "${warnings[@]}" -I"$tmp" -c "$tmp/use.c" -o "$tmp/c99.o"
compile "C11" "$CC" -std=c11 "${warnings[@]}" -I"$tmp" -c "$tmp/use.c" -o "$tmp/c11.o"
if command -v "$CXX" >/dev/null 2>&1; then
    compile "C++11" "$CXX" -std=c++11 "${warnings[@]}" -I"$tmp" -c "$tmp/use.cpp" -o "$tmp/cxx.o"
    compile "C++17" "$CXX" -std=c++17 "${warnings[@]}" -I"$tmp" -c "$tmp/use.cpp" -o "$tmp/cxx.o"
    # C linkage: the undefined references are plain bp_ names, not mangled ones.
    if nm -u "$tmp/cxx.o" | grep -q '_Z.*bp_'; then
        echo "check_header: FAIL: C++ sees mangled bp_ names (missing extern \"C\"):"
        nm -u "$tmp/cxx.o" | grep '_Z.*bp_' | sed 's/^/    /'
        failed=1
    else
        echo "check_header: ok: C linkage from C++"
    fi
else
    echo "check_header: FAIL: no C++ compiler ($CXX)"
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    echo "check_header: FAILED"
    exit 1
fi
echo "check_header: ok"
