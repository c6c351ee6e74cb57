#!/usr/bin/env bash
# `make install` gives C users what they need, and `make uninstall` takes exactly that away.
#
#   Tests/abi/check_install.sh [build/lib/libbackprop.so]
#
# Into a temporary prefix that already holds some unrelated files, it checks that
#   1. `make install PREFIX=...` writes the library as libbackprop.so.X.Y.Z (the header's version)
#      with the SONAME link and the development link, the header, backprop.pc and the CMake
#      package files, and nothing else;
#   2. pkg-config finds it (PKG_CONFIG_PATH into the prefix): the version is the header's, and
#      the examples build with `cc $(pkg-config --cflags --libs backprop)` and run;
#   3. CMake finds it: find_package(backprop <version>) gives the imported target
#      backprop::backprop, a C and a C++ program build with it and run, and a request for the
#      next major version is refused;
#   4. the installed tree is relocatable: moved elsewhere, CMake and `pkg-config --define-prefix`
#      still find it there;
#   5. DESTDIR stages the same files under another root, with paths that name the real prefix;
#   6. `make uninstall PREFIX=...` removes every installed file and leaves the unrelated ones.
set -euo pipefail

# A path given is taken from the caller's directory; the default from the repository root.
case "${1:-}" in
    "") LIB="" ;;
    /*) LIB="$1" ;;
    *) LIB="$PWD/$1" ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
[ -n "$LIB" ] || LIB="$ROOT/build/lib/libbackprop.so"
CC="${CC:-cc}"
MAKE="${MAKE:-make}"
HEADER="$ROOT/include/backprop.h"

[ -f "$LIB" ] || { echo "check_install: $LIB not found (run make lib)"; exit 1; }
for tool in pkg-config cmake readelf; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "check_install: FAIL: $tool is not installed (make setup installs it)"; exit 1; }
done

macro() { sed -n "s/^#define $1  *\([0-9][0-9]*\).*/\1/p" "$HEADER"; }
MAJOR="$(macro BP_VERSION_MAJOR)"
VERSION="$MAJOR.$(macro BP_VERSION_MINOR).$(macro BP_VERSION_PATCH)"
SONAME="libbackprop.so.$MAJOR"
REALNAME="libbackprop.so.$VERSION"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
PREFIX="$tmp/prefix"
failed=0
fail() { echo "check_install: FAIL: $*"; failed=1; }
pass() { echo "check_install: ok: $*"; }
show() { sed 's/^/    /' "$1"; }

# Runs make quietly, showing its output only when it fails.
run_make() { # target, variables...
    if ! "$MAKE" --no-print-directory -C "$ROOT" "$@" LIB="$LIB" >"$tmp/make.log" 2>&1; then
        fail "make $*:"
        show "$tmp/make.log"
        return 1
    fi
}

# Every path under a directory (files, links and directories), relative to it, sorted.
listing() { (cd "$1" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort); }

# ---- 1. install ---------------------------------------------------------------------------------
# Unrelated files that must survive install and uninstall.
mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/other" "$PREFIX/include"
echo other >"$PREFIX/lib/libother.so.1"
ln -s libother.so.1 "$PREFIX/lib/libother.so"
echo other >"$PREFIX/include/other.h"
echo other >"$PREFIX/lib/pkgconfig/other.pc"
echo other >"$PREFIX/lib/cmake/other/otherConfig.cmake"
listing "$PREFIX" >"$tmp/before"

run_make install PREFIX="$PREFIX" || { echo "check_install: FAILED"; exit 1; }
listing "$PREFIX" >"$tmp/after_install"
cat >"$tmp/expected_new" <<EOF
include/backprop.h
lib/$REALNAME
lib/$SONAME
lib/cmake/backprop
lib/cmake/backprop/backpropConfig.cmake
lib/cmake/backprop/backpropConfigVersion.cmake
lib/libbackprop.so
lib/pkgconfig/backprop.pc
EOF
LC_ALL=C sort -o "$tmp/expected_new" "$tmp/expected_new"
comm -13 "$tmp/before" "$tmp/after_install" >"$tmp/new"
if cmp -s "$tmp/new" "$tmp/expected_new"; then
    pass "make install wrote exactly the 7 files (and lib/cmake/backprop) for version $VERSION"
else
    fail "make install wrote a different set of paths (< expected, > written):"
    diff "$tmp/expected_new" "$tmp/new" | grep '^[<>]' | sed 's/^/    /' || true
fi
comm -23 "$tmp/before" "$tmp/after_install" >"$tmp/lost"
[ ! -s "$tmp/lost" ] || { fail "make install removed unrelated paths:"; show "$tmp/lost"; }

lib_dir="$PREFIX/lib"
if [ -f "$lib_dir/$REALNAME" ] && [ ! -L "$lib_dir/$REALNAME" ] && [ -x "$lib_dir/$REALNAME" ]; then
    installed_soname="$(readelf -d "$lib_dir/$REALNAME" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
    if [ "$installed_soname" = "$SONAME" ]; then
        pass "$REALNAME is an executable regular file with SONAME $SONAME"
    else
        fail "$REALNAME has SONAME '$installed_soname', expected $SONAME"
    fi
    cmp -s "$LIB" "$lib_dir/$REALNAME" || fail "$REALNAME differs from $LIB"
else
    fail "$lib_dir/$REALNAME is not an executable regular file"
fi
check_link() { # link, expected target
    local target
    target="$(readlink "$lib_dir/$1" 2>/dev/null || true)"
    if [ "$target" = "$2" ]; then
        pass "lib/$1 -> $2"
    else
        fail "lib/$1 should be a link to $2, is '${target:-(not a link)}'"
    fi
}
check_link "$SONAME" "$REALNAME"
check_link libbackprop.so "$SONAME"
cmp -s "$HEADER" "$PREFIX/include/backprop.h" ||
    fail "the installed backprop.h differs from $HEADER"
for file in include/backprop.h lib/pkgconfig/backprop.pc lib/cmake/backprop/backpropConfig.cmake \
    lib/cmake/backprop/backpropConfigVersion.cmake; do
    mode="$(stat -c %a "$PREFIX/$file" 2>/dev/null || echo missing)"
    [ "$mode" = 644 ] || fail "$file has mode $mode, expected 644"
done

# ---- 2. pkg-config ------------------------------------------------------------------------------
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
pc_version="$(pkg-config --modversion backprop 2>&1 || true)"
if [ "$pc_version" = "$VERSION" ]; then
    pass "pkg-config --modversion backprop = $VERSION"
else
    fail "pkg-config --modversion backprop gave '$pc_version', expected $VERSION"
fi
if pkg-config --validate backprop >"$tmp/validate" 2>&1; then
    pass "pkg-config --validate backprop"
else
    fail "pkg-config --validate backprop:"
    show "$tmp/validate"
fi
flags="$(pkg-config --cflags --libs backprop)"
expected_flags="-I$PREFIX/include -L$PREFIX/lib -lbackprop"
if [ "$(echo $flags)" = "$expected_flags" ]; then
    pass "pkg-config --cflags --libs backprop = $flags"
else
    fail "pkg-config --cflags --libs backprop gave '$flags', expected '$expected_flags'"
fi

# The examples compile against the installed header only (no -Iinclude of this tree) and run
# with the installed library, found through LD_LIBRARY_PATH alone (pkg-config adds no rpath).
for example in circuit xor; do
    # shellcheck disable=SC2086 # the flags are words
    if "$CC" -std=c11 -Wall -Wextra -pedantic -Werror "$ROOT/examples/$example.c" \
        -o "$tmp/$example" $(pkg-config --cflags --libs backprop) -lm >"$tmp/cc.log" 2>&1; then
        needed="$(readelf -d "$tmp/$example" |
            sed -n 's/.*(NEEDED).*\[\(libbackprop[^]]*\)\].*/\1/p')"
        [ "$needed" = "$SONAME" ] || fail "$example needs '$needed', expected $SONAME"
        if env -i LD_LIBRARY_PATH="$PREFIX/lib" "$tmp/$example" >"$tmp/run.log" 2>&1; then
            pass "examples/$example.c built with pkg-config runs (needs $needed)"
        else
            fail "examples/$example.c built with pkg-config fails to run:"
            show "$tmp/run.log"
        fi
    else
        fail "examples/$example.c does not build with pkg-config's flags:"
        show "$tmp/cc.log"
    fi
done

# ---- 3. CMake -----------------------------------------------------------------------------------
next_major=$((MAJOR + 1))
mkdir -p "$tmp/project"
cp "$ROOT/examples/circuit.c" "$tmp/project/circuit.c"
cat >"$tmp/project/version.cpp" <<'SRC'
// A C++ program using the installed package: the header's C linkage and the imported target.
#include <backprop.h>

#include <cstdio>
#include <cstring>

int main() {
    bp_graph *graph = nullptr;
    if (bp_graph_create(BP_FLOAT32, &graph) != BP_OK) {
        std::printf("bp_graph_create failed: %s\n", bp_last_error());
        return 1;
    }
    bp_graph_free(graph);
    std::printf("libbackprop %s\n", bp_version());
    return std::strcmp(bp_version(), BP_VERSION_STRING) == 0 ? 0 : 1;
}
SRC
cat >"$tmp/project/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.13)
project(uses_backprop LANGUAGES C CXX)

# The next major version is a different ABI: it must not be accepted.
find_package(backprop $next_major.0 QUIET)
if(backprop_FOUND)
  message(FATAL_ERROR "find_package(backprop $next_major.0) accepted version \${backprop_VERSION}")
endif()

find_package(backprop $VERSION REQUIRED)
if(NOT backprop_VERSION STREQUAL "$VERSION")
  message(FATAL_ERROR "backprop_VERSION is '\${backprop_VERSION}', expected $VERSION")
endif()
if(NOT TARGET backprop::backprop)
  message(FATAL_ERROR "find_package(backprop) made no target backprop::backprop")
endif()
message(STATUS "backprop_DIR=\${backprop_DIR}")

add_executable(circuit circuit.c)
target_link_libraries(circuit PRIVATE backprop::backprop m)
add_executable(version version.cpp)
set_target_properties(version PROPERTIES CXX_STANDARD 11 CXX_STANDARD_REQUIRED ON)
target_link_libraries(version PRIVATE backprop::backprop)
EOF

# Configures and builds the project against a prefix, then runs both programs with an empty
# environment: CMake's build rpath points at the library it linked.
cmake_build() { # prefix, build directory, description
    if ! cmake -S "$tmp/project" -B "$2" -DCMAKE_PREFIX_PATH="$1" \
        >"$tmp/cmake.log" 2>&1 || ! cmake --build "$2" >>"$tmp/cmake.log" 2>&1; then
        fail "$3: the CMake project does not configure or build:"
        show "$tmp/cmake.log"
        return
    fi
    local dir
    dir="$(sed -n 's/.*backprop_DIR=//p' "$tmp/cmake.log")"
    if [ "$dir" != "$1/lib/cmake/backprop" ]; then
        fail "$3: CMake found backprop in '$dir', expected $1/lib/cmake/backprop"
        return
    fi
    if env -i "$2/circuit" >"$tmp/run.log" 2>&1 && grep -q 'f = -12' "$tmp/run.log" &&
        env -i "$2/version" >"$tmp/run.log" 2>&1; then
        pass "$3: find_package(backprop $VERSION) builds a C and a C++ program that run"
    else
        fail "$3: the programs built with CMake fail to run:"
        show "$tmp/run.log"
    fi
}
cmake_build "$PREFIX" "$tmp/build" "CMake"

# ---- 4. relocation ------------------------------------------------------------------------------
mv "$PREFIX" "$tmp/moved"
cmake_build "$tmp/moved" "$tmp/build-moved" "CMake, prefix moved"
moved_flags="$(PKG_CONFIG_PATH="$tmp/moved/lib/pkgconfig" pkg-config --define-prefix --cflags \
    --libs backprop 2>&1 || true)"
if [ "$(echo $moved_flags)" = "-I$tmp/moved/include -L$tmp/moved/lib -lbackprop" ]; then
    pass "pkg-config --define-prefix, prefix moved: $moved_flags"
else
    fail "pkg-config --define-prefix after moving the prefix gave '$moved_flags'"
fi
mv "$tmp/moved" "$PREFIX"

# ---- 5. DESTDIR ---------------------------------------------------------------------------------
stage="$tmp/stage"
if run_make install DESTDIR="$stage" PREFIX=/opt/backprop-staged; then
    listing "$stage/opt/backprop-staged" >"$tmp/staged"
    grep -v '^include$\|^lib$\|^lib/pkgconfig$\|^lib/cmake$' "$tmp/staged" \
        >"$tmp/staged_files" || true
    staged_pc="$stage/opt/backprop-staged/lib/pkgconfig/backprop.pc"
    if cmp -s "$tmp/staged_files" "$tmp/expected_new" &&
        grep -qx 'prefix=/opt/backprop-staged' "$staged_pc"; then
        pass "DESTDIR stages the same files, with prefix=/opt/backprop-staged in backprop.pc"
    else
        fail "DESTDIR staging differs:"
        show "$tmp/staged"
    fi
    if run_make uninstall DESTDIR="$stage" PREFIX=/opt/backprop-staged; then
        left="$(find "$stage" -type f -o -type l)"
        [ -z "$left" ] || fail "make uninstall with DESTDIR left: $left"
    fi
fi

# ---- 6. uninstall -------------------------------------------------------------------------------
if run_make uninstall PREFIX="$PREFIX"; then
    listing "$PREFIX" >"$tmp/after_uninstall"
    if cmp -s "$tmp/before" "$tmp/after_uninstall"; then
        pass "make uninstall removed everything it installed and nothing else"
    else
        fail "after make uninstall the prefix differs from before install (< before, > after):"
        diff "$tmp/before" "$tmp/after_uninstall" | grep '^[<>]' | sed 's/^/    /' || true
    fi
fi

if [ "$failed" -ne 0 ]; then
    echo "check_install: FAILED"
    exit 1
fi
echo "check_install: ok"
