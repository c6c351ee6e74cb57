#!/usr/bin/env bash
# Installs what building and testing libbackprop needs on a Debian 12 machine that already has
# the Swift toolchain (at /opt/swift) and a CPython with pip. Safe to run again and again: it
# checks first, and touches apt or pip only for what is missing, so a second run takes a second.
#
#   scripts/setup.sh            (as root, or with sudo available; no prompts)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Debian packages:
#   libopenblas-dev  CBLAS for the matrix products (the Swift target links it through pkg-config)
#   pkg-config       how SwiftPM finds OpenBLAS's include and library paths
#   gcc, libc6-dev   `cc` for the C examples and tests
#   g++              to check that the header compiles as C++
#   make             the front door itself (present whenever this runs through `make setup`)
#   binutils         `nm` and `readelf` for the export and loading checks
#   cmake            the install check builds a program with find_package(backprop)
#   valgrind         make valgrind-test: the C tests leak nothing and touch no freed memory
# (pkg-config also serves the install check. The header check's clang is the Swift toolchain's.)
APT_PACKAGES=(libopenblas-dev pkg-config gcc g++ libc6-dev make binutils cmake valgrind)

# Python packages for the binding's tests and examples; hatchling builds its wheel; safetensors
# (the reference reader) checks that our checkpoints are real safetensors files; scikit-learn
# (imported as sklearn) for backprop.sklearn, tqdm for fit's progress bar, matplotlib for
# examples/plot_training.py, hypothesis for the API-sequence fuzzer (tests/test_fuzz_api.py).
PIP_MODULES=(numpy pytest hatchling safetensors sklearn tqdm matplotlib hypothesis)
# The pip name of a module, where it differs from the import name.
pip_name() { if [ "$1" = sklearn ]; then echo scikit-learn; else echo "$1"; fi; }

log() { printf 'setup: %s\n' "$*"; }

# Run as root directly; otherwise go through sudo (without prompting) when it exists.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

apt_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    apt_installed "$pkg" || missing_apt+=("$pkg")
done

if [ "${#missing_apt[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing_apt[*]}"
    # The package lists may be stale or absent on a fresh machine: refresh them only when
    # something is actually missing.
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing_apt[@]}"
else
    log "Debian packages present: ${APT_PACKAGES[*]}"
fi

PYTHON="${PYTHON:-python3}"
missing_pip=()
for mod in "${PIP_MODULES[@]}"; do
    "$PYTHON" -c "import $mod" >/dev/null 2>&1 || missing_pip+=("$(pip_name "$mod")")
done

if [ "${#missing_pip[@]}" -gt 0 ]; then
    log "installing Python packages: ${missing_pip[*]}"
    # A Python managed by Debian refuses pip installs (PEP 668); fall back to Debian's builds
    # of the same packages there.
    if ! "$PYTHON" -m pip install -q --disable-pip-version-check "${missing_pip[@]}"; then
        log "pip failed; trying Debian's python3 packages"
        deb=()
        for mod in "${missing_pip[@]}"; do deb+=("python3-${mod/scikit-learn/sklearn}"); done
        as_root apt-get update -q
        as_root apt-get install -y -q --no-install-recommends "${deb[@]}"
    fi
else
    log "Python packages present: ${PIP_MODULES[*]}"
fi

# The toolchain is not installed here (it comes with the machine); say clearly if it is absent.
if ! command -v "${SWIFT:-swift}" >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
    log "warning: no Swift toolchain found (expected /opt/swift/usr/bin/swift)"
fi

log "done"
