#!/usr/bin/env bash
# The library is self-contained: it needs no Swift toolchain at run time.
#
#   Tests/abi/check_loading.sh [build/lib/libbackprop.so]
#
# Checks that
#   1. its SONAME is libbackprop.so.0 and ldd finds every dependency, none from /opt/swift and no
#      libswift* (the Swift runtime is linked in statically);
#   2. a C program built with plain cc against it runs with an empty environment, finding the
#      library through LD_LIBRARY_PATH only, and also through its rpath only;
#   3. Python's ctypes loads it by absolute path with an empty environment.
# Each program runs under `env -i`, so no PATH or LD_LIBRARY_PATH of the caller leaks in.
set -euo pipefail

# A path given is taken from the caller's directory; the default from the repository root.
case "${1:-}" in
    "") LIB="" ;;
    /*) LIB="$1" ;;
    *) LIB="$PWD/$1" ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "$LIB" ] || LIB="$PWD/build/lib/libbackprop.so"
CC="${CC:-cc}"
PYTHON="${PYTHON:-python3}"

[ -f "$LIB" ] || { echo "check_loading: $LIB not found (run make lib)"; exit 1; }
LIB_ABS="$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")"
LIB_DIR="$(dirname "$LIB_ABS")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "check_loading: FAIL: $*"; failed=1; }
pass() { echo "check_loading: ok: $*"; }

# 1. Dependencies and SONAME.
soname="$(readelf -d "$LIB_ABS" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
if [ "$soname" = "libbackprop.so.0" ]; then
    pass "SONAME is $soname"
else
    fail "SONAME is '${soname}', expected libbackprop.so.0"
fi
[ -e "$LIB_DIR/libbackprop.so.0" ] || fail "$LIB_DIR/libbackprop.so.0 (the SONAME link) is missing"

ldd_out="$(env -i ldd "$LIB_ABS" 2>&1)" || true
if grep -E '/opt/swift|libswift|not found' <<<"$ldd_out" >"$tmp/bad_deps"; then
    fail "ldd shows Swift toolchain libraries or missing ones:"
    sed 's/^/    /' "$tmp/bad_deps"
else
    pass "ldd: $(awk '{print $1}' <<<"$ldd_out" | tr '\n' ' ')"
fi

# 2. A plain C program. Built without rpath, it finds the library through LD_LIBRARY_PATH alone.
"$CC" -std=c11 -Iinclude examples/circuit.c -o "$tmp/circuit" -L"$LIB_DIR" -lbackprop -lm
if env -i LD_LIBRARY_PATH="$LIB_DIR" "$tmp/circuit" >"$tmp/out" 2>&1 &&
    grep -q 'f = -12' "$tmp/out"; then
    pass "C program runs under env -i with only LD_LIBRARY_PATH=$LIB_DIR"
else
    fail "C program under env -i LD_LIBRARY_PATH=$LIB_DIR:"
    sed 's/^/    /' "$tmp/out"
fi
#    Built with an rpath, it needs no environment at all.
"$CC" -std=c11 -Iinclude examples/circuit.c -o "$tmp/circuit_rpath" -L"$LIB_DIR" -lbackprop \
    -Wl,-rpath,"$LIB_DIR" -lm
if env -i "$tmp/circuit_rpath" >"$tmp/out" 2>&1 && grep -q 'f = -12' "$tmp/out"; then
    pass "C program with rpath runs under env -i"
else
    fail "C program with rpath under env -i:"
    sed 's/^/    /' "$tmp/out"
fi

# 3. Python ctypes. Use the interpreter's real path: a version-manager shim would need PATH.
python_exe="$("$PYTHON" -c 'import sys; print(sys.executable)')"
script="import ctypes
lib = ctypes.CDLL('$LIB_ABS')
lib.bp_version.restype = ctypes.c_char_p
print(lib.bp_version().decode())"
if version="$(env -i "$python_exe" -c "$script" 2>&1)"; then
    pass "ctypes.CDLL loads it under env -i (bp_version() = $version)"
else
    fail "ctypes.CDLL under env -i:"
    sed 's/^/    /' <<<"$version"
fi

if [ "$failed" -ne 0 ]; then
    echo "check_loading: FAILED"
    exit 1
fi
echo "check_loading: ok"
