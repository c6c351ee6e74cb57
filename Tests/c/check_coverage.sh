#!/usr/bin/env bash
# Every function the header declares is called in test_bad_input.c, so that a new function
# cannot arrive without its bad-input tests.
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
TESTS=Tests/c/test_bad_input.c
CC="${CC:-cc}"

# The declared functions, as in Tests/abi/check_exports.sh.
declared="$("$CC" -E -P -x c "$HEADER" | grep -oE '\bbp_[A-Za-z0-9_]+[[:space:]]*\(' \
    | sed -E 's/[[:space:]]*\($//' | sort -u)"

missing=()
for name in $declared; do
    grep -qE "\b${name}\b" "$TESTS" || missing+=("$name")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "check_coverage: $TESTS never uses ${#missing[@]} declared function(s):"
    printf '    %s\n' "${missing[@]}"
    exit 1
fi
echo "check_coverage: ok: all $(wc -w <<<"$declared") declared functions appear in $TESTS"
