#!/usr/bin/env bash
# Creates benchmarks/.venv and installs the baselines `make bench` compares libbackprop with:
# numpy, PyTorch (CPU build) and JAX (CPU). Run by `make bench-baselines`; safe to run again.
#
# PyTorch is pinned to 2.13.0+cpu. On our machines that wheel sits in pip's local wheel folder
# (find-links, see `pip config list`); elsewhere pip finds it through PYTORCH_INDEX (PyTorch's
# CPU wheel index). JAX comes from PyPI; when it cannot be installed the script says so and goes
# on, and `make bench` reports JAX as skipped.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
PYTHON="${PYTHON:-python3}"
PYTORCH_INDEX="${PYTORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

log() { printf 'bench-baselines: %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$venv" || { log "could not create the virtual environment"; exit 1; }
fi
py="$venv/bin/python"

"$py" -m pip install -q --upgrade pip >/dev/null 2>&1 || true

log "installing numpy"
"$py" -m pip install -q numpy || { log "numpy failed to install"; exit 1; }

if "$py" -c 'import torch, sys; sys.exit(torch.__version__ != "2.13.0+cpu")' 2>/dev/null; then
    log "torch 2.13.0+cpu already installed"
else
    log "installing torch==2.13.0+cpu"
    "$py" -m pip install -q "torch==2.13.0+cpu" \
        || "$py" -m pip install -q "torch==2.13.0+cpu" --extra-index-url "$PYTORCH_INDEX" \
        || log "torch could not be installed: make bench will skip PyTorch"
fi

if "$py" -c 'import jax' 2>/dev/null; then
    log "jax already installed"
else
    log "installing jax[cpu]"
    "$py" -m pip install -q "jax[cpu]" \
        || log "jax[cpu] could not be installed: make bench will skip JAX"
fi

"$py" - <<'PY'
import importlib
for name in ("numpy", "torch", "jax", "jaxlib"):
    try:
        module = importlib.import_module(name)
        print(f"bench-baselines: {name} {module.__version__}")
    except Exception as error:  # report, do not fail: the benchmark skips what is missing
        print(f"bench-baselines: {name} not available ({type(error).__name__}: {error})")
PY
