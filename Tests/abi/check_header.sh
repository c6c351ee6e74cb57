#!/usr/bin/env bash
# The header compiles cleanly on its own, with gcc and with clang, as C99, C11 and C17 and as
# C++11 and C++17, as it promises.
#
#   Tests/abi/check_header.sh [include/backprop.h]
#
# Each compiler and language standard compiles a file that includes only backprop.h (twice: the
# include guard), with -Wall -Wextra -pedantic -Werror, plus -Wstrict-prototypes (C) and -Wundef.
# The file takes the address of every function the header declares and names every type, so
# that each declaration is really used; the list comes from the header itself, so new functions
# are covered without touching this script. The C++ objects are then checked for C linkage (the
# extern "C" guards): a mangled bp_ name would not match the library's.
#
# Compilers: $CC and $CXX (default cc and c++, gcc on Debian), and clang: $CLANG / $CLANGXX, else
# the Swift toolchain's (/opt/swift/usr/bin/clang, or next to `swift` on PATH), else Debian's.
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

find_clang() { # clang or clang++
    local swift_dir
    swift_dir="$(dirname "$(command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)")"
    local on_path
    on_path="$(command -v "$1" 2>/dev/null || true)"
    for candidate in "$swift_dir/$1" "/opt/swift/usr/bin/$1" "$on_path"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
}
CLANG="${CLANG:-$(find_clang clang)}"
CLANGXX="${CLANGXX:-$(find_clang clang++)}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$HEADER" "$tmp/backprop.h"

# The declared functions and types, from the preprocessed header (no comments, no macros).
"$CC" -E -P -x c "$HEADER" >"$tmp/preprocessed"
grep -oE '\bbp_[A-Za-z0-9_]+[[:space:]]*\(' "$tmp/preprocessed" | sed -E 's/[[:space:]]*\($//' \
    | sort -u >"$tmp/functions"
# Type names: the name every typedef introduces (struct, enum, integer and function types),
# read with the struct and enum bodies removed.
tr '\n' ' ' <"$tmp/preprocessed" | sed -E 's/\{[^{}]*\}//g' | grep -oE 'typedef[^;]*;' \
    | sed -E -e 's/typedef .*\(\*[[:space:]]*(bp_[A-Za-z0-9_]+)\).*/\1/' \
             -e 's/typedef .*[^A-Za-z0-9_](bp_[A-Za-z0-9_]+)[[:space:]]*;$/\1/' \
    | grep -E '^bp_[A-Za-z0-9_]+$' | sort -u >"$tmp/types"

[ -s "$tmp/functions" ] || { echo "check_header: FAIL: found no functions in $HEADER"; exit 1; }

{
    echo '#include "backprop.h"'
    echo '#include "backprop.h" /* the include guard works */'
    echo
    echo '/* Every function, by address: a function pointer type any of them converts to. */'
    echo 'typedef void (*any_function)(void);'
    echo 'extern const any_function functions[];'
    echo 'const any_function functions[] = {'
    sed 's/.*/    (any_function)\&&,/' "$tmp/functions"
    echo '};'
    echo
    echo '/* Every type, named (by pointer, which opaque handle types allow too). */'
    echo 'extern const size_t sizes[];'
    echo 'const size_t sizes[] = {'
    sed 's/.*/    sizeof(& *),/' "$tmp/types"
    echo '};'
    echo
    echo 'int uses_the_header(void);'
    echo 'int uses_the_header(void) {'
    echo '    bp_node none = BP_NO_NODE;'
    echo '    return (int)sizes[0] + (int)none +'
    echo '           BP_VERSION_NUMBER + BP_VERSION_MAJOR + BP_VERSION_MINOR + BP_VERSION_PATCH +'
    echo '           (int)sizeof BP_VERSION_STRING + BP_MAX_RANK + (int)BP_OK;'
    echo '}'
} >"$tmp/use.c"
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
warnings=(-Wall -Wextra -pedantic -Werror -Wundef)

# C linkage: the C++ object's undefined references are plain bp_ names, not mangled ones.
check_linkage() { # compiler name, object
    local declared referenced
    nm -u "$2" >"$tmp/undefined"
    declared="$(wc -l <"$tmp/functions")"
    referenced="$(grep -cE ' bp_[A-Za-z0-9_]+$' "$tmp/undefined" || true)"
    if grep -E '_Z.*bp_' "$tmp/undefined" >"$tmp/mangled"; then
        echo "check_header: FAIL: $1 sees mangled bp_ names (missing extern \"C\"):"
        sed 's/^/    /' "$tmp/mangled"
        failed=1
    elif [ "$referenced" -ne "$declared" ]; then
        echo "check_header: FAIL: $1: the object references $referenced bp_ functions, the" \
            "header declares $declared"
        failed=1
    else
        echo "check_header: ok: $1: C linkage for all $declared functions"
    fi
}

for pair in "gcc:$CC:$CXX" "clang:$CLANG:$CLANGXX"; do
    IFS=: read -r family c cxx <<<"$pair"
    if [ -z "$c" ] || ! command -v "$c" >/dev/null 2>&1; then
        echo "check_header: FAIL: no $family C compiler found"
        failed=1
    else
        for std in c99 c11 c17; do
            compile "$family ($c) -std=$std" "$c" -std="$std" "${warnings[@]}" -Wstrict-prototypes \
                -I"$tmp" -c "$tmp/use.c" -o "$tmp/$family-$std.o"
        done
    fi
    if [ -z "$cxx" ] || ! command -v "$cxx" >/dev/null 2>&1; then
        echo "check_header: FAIL: no $family C++ compiler found"
        failed=1
        continue
    fi
    for std in c++11 c++17; do
        compile "$family ($cxx) -std=$std" "$cxx" -std="$std" "${warnings[@]}" -I"$tmp" \
            -c "$tmp/use.cpp" -o "$tmp/$family-$std.o"
    done
    [ ! -f "$tmp/$family-c++17.o" ] || check_linkage "$family C++17" "$tmp/$family-c++17.o"
done

if [ "$failed" -ne 0 ]; then
    echo "check_header: FAILED"
    exit 1
fi
echo "check_header: ok: $(wc -l <"$tmp/functions") functions and $(wc -l <"$tmp/types") types"
