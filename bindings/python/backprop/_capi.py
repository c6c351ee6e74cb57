"""The C interface of libbackprop, declared for ctypes.

This module mirrors ``include/backprop.h`` one to one and in the same order: the version the
declarations were written for, the enumerations (as IntEnums), the opaque handle types, and every
function with its argument types and result type. It holds no logic beyond finding and loading
the library; the Pythonic classes (:mod:`backprop.graph`, :mod:`backprop.network`) are built on it.

The library is looked for, in this order:

1. the path in the ``BACKPROP_LIBRARY`` environment variable; when it is set, it is the only
   place tried, so that asking for a particular build never silently loads another one;
2. ``libbackprop.so`` next to this file (where an installed wheel carries it);
3. ``build/lib/libbackprop.so`` in the source tree this package sits in (``make lib`` puts it
   there).

If no candidate loads, :class:`LibraryNotFoundError` names every place tried and why each failed.
A library whose ``bp_version()`` differs from :data:`HEADER_VERSION` is refused with
:class:`LibraryVersionError`.
"""

from __future__ import annotations

import ctypes
import enum
import os
from typing import List, Tuple
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_size_t, c_uint, c_uint64
from pathlib import Path

__all__ = [
    "HEADER_VERSION", "HEADER_VERSION_NUMBER", "MAX_RANK",
    "Status", "DType", "Reduction", "Activation", "Loss",
    "GraphHandle", "NetHandle", "DECLARATIONS",
    "LibraryNotFoundError", "LibraryVersionError", "lib", "library_path",
]

# ------------------------------------------------------------------------------------------------
# Version
# ------------------------------------------------------------------------------------------------

#: The version of include/backprop.h these declarations were written for (BP_VERSION_STRING).
HEADER_VERSION = "0.1.0"
#: BP_VERSION_NUMBER of that header: MAJOR * 10000 + MINOR * 100 + PATCH.
HEADER_VERSION_NUMBER = 100

# ------------------------------------------------------------------------------------------------
# Status codes and element types, enumerations
# ------------------------------------------------------------------------------------------------


class Status(enum.IntEnum):
    """bp_status: what a fallible call returns. OK is 0."""

    OK = 0
    INVALID_ARGUMENT = 1
    INVALID_HANDLE = 2
    SHAPE = 3
    STATE = 4
    BUSY = 5
    OUT_OF_MEMORY = 6
    NONFINITE = 7
    IO = 8
    FORMAT = 9
    INTERNAL = 10


#: BP_MAX_RANK: the largest rank of a node.
MAX_RANK = 8


class DType(enum.IntEnum):
    """bp_dtype: the element type of a graph."""

    FLOAT32 = 0
    FLOAT64 = 1


class Reduction(enum.IntEnum):
    """bp_reduction: how a loss reduces its terms (as in PyTorch)."""

    MEAN = 0
    SUM = 1
    NONE = 2


class Activation(enum.IntEnum):
    """bp_activation: the activation of a dense layer."""

    NONE = 0
    RELU = 1
    SIGMOID = 2
    TANH = 3


class Loss(enum.IntEnum):
    """bp_loss: the loss of a network."""

    MSE = 0
    CROSS_ENTROPY = 1


# ------------------------------------------------------------------------------------------------
# C types
# ------------------------------------------------------------------------------------------------

# Enumerations cross the C ABI as int.
bp_status = c_int
bp_dtype = c_int
bp_reduction = c_int
bp_activation = c_int
bp_loss = c_int
bp_node = c_int32


class _BpGraph(ctypes.Structure):
    """struct bp_graph: opaque."""


class _BpNet(ctypes.Structure):
    """struct bp_net: opaque."""


#: bp_graph *: a graph handle. ``GraphHandle()`` is NULL.
GraphHandle = POINTER(_BpGraph)
#: bp_net *: a network handle. ``NetHandle()`` is NULL.
NetHandle = POINTER(_BpNet)

_size_p = POINTER(c_size_t)
_node_p = POINTER(bp_node)
_float_p = POINTER(c_float)
_double_p = POINTER(c_double)

# ------------------------------------------------------------------------------------------------
# Functions: (name, result type, argument types), in the order of the header
# ------------------------------------------------------------------------------------------------

_GRAPH_LEAF = (GraphHandle, _size_p, c_size_t, _node_p)
_GRAPH_BINARY = (GraphHandle, bp_node, bp_node, _node_p)
_GRAPH_UNARY = (GraphHandle, bp_node, _node_p)
_NET_WIDTH = (NetHandle, _size_p)
_NET_FORWARD = (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t)

DECLARATIONS = (
    # Version
    ("bp_version", c_char_p, ()),
    ("bp_version_number", c_uint, ()),
    # Status codes and errors
    ("bp_status_string", c_char_p, (bp_status,)),
    ("bp_last_error", c_char_p, ()),
    # Graph
    ("bp_graph_create", bp_status, (bp_dtype, POINTER(GraphHandle))),
    ("bp_graph_free", bp_status, (GraphHandle,)),
    ("bp_graph_dtype", bp_status, (GraphHandle, POINTER(bp_dtype))),
    ("bp_graph_input", bp_status, _GRAPH_LEAF),
    ("bp_graph_parameter", bp_status, _GRAPH_LEAF),
    ("bp_graph_constant", bp_status, _GRAPH_LEAF),
    ("bp_graph_add", bp_status, _GRAPH_BINARY),
    ("bp_graph_sub", bp_status, _GRAPH_BINARY),
    ("bp_graph_mul", bp_status, _GRAPH_BINARY),
    ("bp_graph_div", bp_status, _GRAPH_BINARY),
    ("bp_graph_maximum", bp_status, _GRAPH_BINARY),
    ("bp_graph_minimum", bp_status, _GRAPH_BINARY),
    ("bp_graph_neg", bp_status, _GRAPH_UNARY),
    ("bp_graph_exp", bp_status, _GRAPH_UNARY),
    ("bp_graph_log", bp_status, _GRAPH_UNARY),
    ("bp_graph_relu", bp_status, _GRAPH_UNARY),
    ("bp_graph_sigmoid", bp_status, _GRAPH_UNARY),
    ("bp_graph_tanh", bp_status, _GRAPH_UNARY),
    ("bp_graph_matmul", bp_status, _GRAPH_BINARY),
    ("bp_graph_sum", bp_status, _GRAPH_UNARY),
    ("bp_graph_mean", bp_status, _GRAPH_UNARY),
    ("bp_graph_mse_loss", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_cross_entropy", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_set_value", bp_status, (GraphHandle, bp_node, _float_p, c_size_t)),
    ("bp_graph_set_value_f64", bp_status, (GraphHandle, bp_node, _double_p, c_size_t)),
    ("bp_graph_forward", bp_status, (GraphHandle,)),
    ("bp_graph_backward", bp_status, (GraphHandle, bp_node)),
    ("bp_graph_zero_grad", bp_status, (GraphHandle,)),
    ("bp_graph_value", bp_status, (GraphHandle, bp_node, _float_p, c_size_t)),
    ("bp_graph_value_f64", bp_status, (GraphHandle, bp_node, _double_p, c_size_t)),
    ("bp_graph_grad", bp_status, (GraphHandle, bp_node, _float_p, c_size_t)),
    ("bp_graph_grad_f64", bp_status, (GraphHandle, bp_node, _double_p, c_size_t)),
    ("bp_graph_shape", bp_status, (GraphHandle, bp_node, _size_p, c_size_t, _size_p)),
    ("bp_graph_size", bp_status, (GraphHandle, bp_node, _size_p)),
    ("bp_graph_node_count", bp_status, (GraphHandle, _size_p)),
    ("bp_graph_check_gradients", bp_status,
     (GraphHandle, bp_node, c_double, c_double, c_double, POINTER(c_int), _double_p)),
    # Network
    ("bp_net_create", bp_status, (c_size_t, c_uint64, POINTER(NetHandle))),
    ("bp_net_free", bp_status, (NetHandle,)),
    ("bp_net_add_dense", bp_status, (NetHandle, c_size_t, bp_activation)),
    ("bp_net_set_loss", bp_status, (NetHandle, bp_loss)),
    ("bp_net_input_width", bp_status, _NET_WIDTH),
    ("bp_net_output_width", bp_status, _NET_WIDTH),
    ("bp_net_layer_count", bp_status, _NET_WIDTH),
    ("bp_net_parameter_count", bp_status, _NET_WIDTH),
    ("bp_net_forward", bp_status, _NET_FORWARD),
    ("bp_net_backward", bp_status, (NetHandle, _float_p, c_size_t, _float_p)),
    ("bp_net_backward_labels", bp_status, (NetHandle, POINTER(c_int32), c_size_t, _float_p)),
    ("bp_net_update", bp_status, (NetHandle, c_float)),
    ("bp_net_zero_grad", bp_status, (NetHandle,)),
    ("bp_net_train_step", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t, c_float, _float_p)),
    ("bp_net_train_step_labels", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, POINTER(c_int32), c_size_t, c_float, _float_p)),
    ("bp_net_predict", bp_status, _NET_FORWARD),
    ("bp_net_graph", bp_status, (NetHandle, POINTER(GraphHandle))),
    ("bp_net_layer_nodes", bp_status, (NetHandle, c_size_t, _node_p, _node_p)),
)

# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------

LIBRARY_NAME = "libbackprop.so"
ENVIRONMENT_VARIABLE = "BACKPROP_LIBRARY"


class LibraryNotFoundError(ImportError):
    """No libbackprop.so could be loaded. The message lists every place tried and why it failed."""


class LibraryVersionError(ImportError):
    """The loaded libbackprop.so is not the version these declarations were written for, or it
    lacks some of the functions of the header."""


def candidates() -> List[Tuple[Path, str]]:
    """The places to look for the library, in order, as (path, description) pairs."""
    explicit = os.environ.get(ENVIRONMENT_VARIABLE)
    if explicit:
        return [(Path(explicit), f"${ENVIRONMENT_VARIABLE}")]
    package_dir = Path(__file__).resolve().parent
    repository_dir = package_dir.parent.parent.parent
    return [
        (package_dir / LIBRARY_NAME, "the package folder"),
        (repository_dir / "build" / "lib" / LIBRARY_NAME, "the source tree's build folder"),
    ]


def check_version(found: str, path: object) -> None:
    """Refuses a library whose version string is not HEADER_VERSION."""
    if found != HEADER_VERSION:
        raise LibraryVersionError(
            f"{path} is libbackprop {found}, but this Python package was written for "
            f"libbackprop {HEADER_VERSION}; install the matching library or point "
            f"${ENVIRONMENT_VARIABLE} at it")


def _declare(library: ctypes.CDLL, path: Path) -> None:
    missing = []
    for name, restype, argtypes in DECLARATIONS:
        try:
            function = getattr(library, name)
        except AttributeError:
            missing.append(name)
            continue
        function.restype = restype
        function.argtypes = argtypes
    if missing:
        raise LibraryVersionError(
            f"{path} does not export {', '.join(missing)}: it is not a libbackprop "
            f"{HEADER_VERSION} build")


def load() -> Tuple[ctypes.CDLL, Path]:
    """Finds, loads and declares the library; returns (CDLL, path)."""
    tried = []
    places = candidates()
    for path, where in places:
        if not path.is_file():
            tried.append(f"  {path} ({where}): no such file")
            continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError as error:
            tried.append(f"  {path} ({where}): {error}")
            continue
        _declare(library, path)
        check_version(library.bp_version().decode("ascii", "replace"), path)
        return library, path
    note = ""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        note = (f"\n(${ENVIRONMENT_VARIABLE} is set, so it is the only place tried; unset it to "
                f"search the package folder and the source tree's build folder)")
    raise LibraryNotFoundError(
        "could not load libbackprop; tried:\n" + "\n".join(tried) + note +
        f"\nBuild it with `make lib` in the source tree, or set ${ENVIRONMENT_VARIABLE} to the "
        f"path of {LIBRARY_NAME}.")


#: The loaded library, with every function of the header declared.
lib, library_path = load()
