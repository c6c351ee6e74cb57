#!/usr/bin/env bash
# Every function the header declares is called in the C tests (test_bad_input.c, or the test
# file of its own area, such as test_io.c), so that a new function cannot arrive without its
# bad-input tests; and every size-prefixed struct (one that begins with `size_t size`) has a
# test named test_<struct>_size_too_small in some Tests/c/test_*.c (test_abi.c has them), so
# that a new options struct cannot arrive without a check that the library refuses a caller's
# struct that is too small.
#
#   Tests/c/check_coverage.sh [include/backprop.h]
set -euo pipefail

case "${1:-}" in
    "") HEADER="" ;;
    /*) HEADER="$1" ;;
    *) HEADER="$PWD/$1" ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "$HEADER" ] || HEADER="$PWD/include/backprop.h"
TESTS=(Tests/c/test_*.c)
CC="${CC:-cc}"

# The declared functions, as in Tests/abi/check_exports.sh.
declared="$("$CC" -E -P -x c "$HEADER" | grep -oE '\bbp_[A-Za-z0-9_]+[[:space:]]*\(' \
    | sed -E 's/[[:space:]]*\($//' | sort -u)"

missing=()
for name in $declared; do
    grep -qE "\b${name}\b" "${TESTS[@]}" || missing+=("$name")
done

failed=0
if [ "${#missing[@]}" -gt 0 ]; then
    echo "check_coverage: no test in Tests/c uses ${#missing[@]} declared function(s):"
    printf '    %s\n' "${missing[@]}"
    failed=1
else
    echo "check_coverage: ok: all $(wc -w <<<"$declared") declared functions appear in" \
        "Tests/c/test_*.c"
fi

# Size-prefixed structs: `typedef struct name { size_t size; ...`, comments and line breaks gone.
prefixed="$("$CC" -E -P -x c "$HEADER" | tr '\n' ' ' \
    | grep -oE 'struct[[:space:]]+bp_\w+[[:space:]]*\{[[:space:]]*size_t[[:space:]]+size[[:space:]]*;' \
    | sed -E 's/struct[[:space:]]+(bp_[A-Za-z0-9_]+).*/\1/' | sort -u)"
untested=()
for name in $prefixed; do
    grep -qE "RUN\(test_${name}_size_too_small\)" Tests/c/test_*.c || untested+=("$name")
done
if [ "${#untested[@]}" -gt 0 ]; then
    echo "check_coverage: ${#untested[@]} size-prefixed struct(s) without a" \
        "test_<struct>_size_too_small in Tests/c/test_*.c (see test_abi.c):"
    printf '    %s\n' "${untested[@]}"
    failed=1
else
    echo "check_coverage: ok: all $(wc -w <<<"$prefixed") size-prefixed structs have a" \
        "size_too_small test"
fi
exit "$failed"
