"""Helpers shared by the tests."""

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from backprop import _capi

PYTHON_DIR = Path(__file__).resolve().parent.parent
REPOSITORY = PYTHON_DIR.parent.parent
HEADER = REPOSITORY / "include" / "backprop.h"
lib = _capi.lib


def run_python(code=None, *args, env=None, cwd=None, timeout=300):
    """Runs `python3 -c code` (or `python3 args...`) with this package importable; returns the
    CompletedProcess."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(PYTHON_DIR)] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else []))
    environment.update(env or {})
    command = [sys.executable] + (["-c", code] if code is not None else []) + list(args)
    return subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def last_error():
    return lib.bp_last_error().decode("utf-8", "replace")


def sizes(*dims):
    """A size_t array for a shape."""
    return (ctypes.c_size_t * len(dims))(*dims)


def floats(values, ctype=ctypes.c_float):
    values = list(values)
    return (ctype * len(values))(*values)


def new_graph(dtype=_capi.DType.FLOAT32):
    handle = _capi.GraphHandle()
    status = lib.bp_graph_create(dtype, ctypes.byref(handle))
    assert status == _capi.Status.OK, last_error()
    return handle


def leaf(graph, kind, *dims):
    function = {"input": lib.bp_graph_input, "parameter": lib.bp_graph_parameter,
                "constant": lib.bp_graph_constant}[kind]
    out = _capi.bp_node()
    status = function(graph, sizes(*dims) if dims else None, len(dims), ctypes.byref(out))
    assert status == _capi.Status.OK, last_error()
    return out.value


def node_count(graph):
    out = ctypes.c_size_t()
    assert lib.bp_graph_node_count(graph, ctypes.byref(out)) == _capi.Status.OK, last_error()
    return out.value


def new_net(input_width=2, layers=((3, _capi.Activation.TANH), (2, _capi.Activation.NONE)),
            seed=1, loss=_capi.Loss.MSE):
    handle = _capi.NetHandle()
    assert lib.bp_net_create(input_width, seed, ctypes.byref(handle)) == 0, last_error()
    for units, activation in layers:
        assert lib.bp_net_add_dense(handle, units, activation) == 0, last_error()
    assert lib.bp_net_set_loss(handle, loss) == 0, last_error()
    return handle


def float_array(array):
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array, array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
