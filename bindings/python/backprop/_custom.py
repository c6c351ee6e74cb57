"""Custom ops written in Python (internal): ctypes callbacks over bp_graph_custom.

The library calls three C functions per custom op: shape (when the op is added), forward and
backward (from bp_graph_forward / bp_graph_backward, on the calling thread, with the GIL taken
back by ctypes). Each callback here wraps the library's buffers in numpy views
(np.ctypeslib.as_array over the raw pointer: no copy), runs the Python code, and returns 0, or 1
when the Python code raised. ctypes would print and swallow an exception escaping a callback, so
every exception is caught, remembered for the calling thread, and returned as a non-zero status;
:func:`check_call` then raises the library's error with the original exception as its
``__cause__``.

The callbacks (CFUNCTYPE objects) must live as long as the graph that calls them:
:func:`make_op` returns them with the op, and the Graph keeps them (its network's list for a
network's graph).
"""

from __future__ import annotations

import ctypes
import numbers
import operator
import threading
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from . import _capi
from ._capi import Status
from .errors import error_class, check

__all__ = ["SimpleGate", "make_op", "check_call"]

_pending = threading.local()


def _remember(error: BaseException) -> None:
    """Keeps the first exception of a failing library call on this thread."""
    if getattr(_pending, "error", None) is None:
        _pending.error = error


def check_call(status: int) -> None:
    """:func:`backprop.errors.check` for calls that may run Python callbacks: a failure caused
    by an exception in a callback is raised with that exception as its cause and its text
    appended to the library's message."""
    error = getattr(_pending, "error", None)
    _pending.error = None
    if status == Status.OK:
        return
    if error is None:
        check(status)
        return
    message = _capi.lib.bp_last_error().decode("utf-8", "replace")
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    cls = error_class(status)
    raise cls(f"{message}: {detail}") from error


def _shape_of(tensor: Any) -> Tuple[int, ...]:
    return tuple(tensor.shape[i] for i in range(tensor.rank)) if tensor.rank else ()


def _view(tensor: Any, ctype: Any, writable: bool) -> Optional[np.ndarray]:
    """A numpy view of a bp_tensor's data (None when its data is NULL)."""
    if not tensor.data:
        return None
    buffer = (ctype * tensor.count).from_address(tensor.data)
    array = np.ctypeslib.as_array(buffer).reshape(_shape_of(tensor))
    if not writable:
        array.flags.writeable = False
    return array


def _as_shape(value: Any, what: str) -> Tuple[int, ...]:
    if isinstance(value, numbers.Integral):
        value = (value,)
    try:
        dims = tuple(operator.index(d) for d in value)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints, got {value!r}") from None
    if len(dims) > _capi.MAX_RANK or any(d < 1 for d in dims):
        raise ValueError(f"{what} must have rank at most {_capi.MAX_RANK} and dimensions of at "
                         f"least 1, got {dims}")
    return dims


def _store(out: np.ndarray, values: Any, what: str) -> None:
    """Writes `values` into the output view: an array of its shape, or a single number."""
    array = np.asarray(values)
    if array.shape != out.shape and array.size != 1:
        raise ValueError(f"{what} returned shape {array.shape}, but the op's output has shape "
                         f"{out.shape}")
    out[...] = array.reshape(()) if array.shape != out.shape else array


def add_gradients(grads: Any, views: Sequence[Optional[np.ndarray]],
                  shapes: Sequence[Tuple[int, ...]], what: str) -> None:
    """Adds what a backward returned into the input gradient views (+=)."""
    count = len(views)
    if count == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if grads is None:
        grads = (None,) * count
    grads = tuple(grads)
    if len(grads) != count:
        raise ValueError(f"{what} returned {len(grads)} gradients for {count} inputs")
    for index, (grad, view, shape) in enumerate(zip(grads, views, shapes)):
        if grad is None or view is None:
            continue
        array = np.asarray(grad)
        if array.shape != shape and array.size != 1:
            raise ValueError(f"{what} returned a gradient of shape {array.shape} for input "
                             f"{index}, whose shape is {shape}")
        view += array.reshape(()) if array.shape != shape else array


class SimpleGate:
    """The callbacks of Graph.custom: forward(*xs) -> y and backward(grad, *xs) -> grads."""

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any],
                 input_count: int) -> None:
        self.forward_function = forward
        self.backward_function = backward
        self.input_count = input_count

    def forward(self, inputs: List[np.ndarray], output: np.ndarray) -> None:
        _store(output, self.forward_function(*inputs), "forward")

    def backward(self, inputs: List[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 grads: List[Optional[np.ndarray]]) -> None:
        if all(view is None for view in grads):
            return
        result = self.backward_function(grad, *inputs)
        add_gradients(result, grads, [x.shape for x in inputs], "backward")


def make_op(gate: Any, shape: Any, name: str, dtype: np.dtype) -> Tuple[Any, Any]:
    """A bp_custom_op for `gate` (an object with forward(inputs, output) and backward(inputs,
    output, grad, input_grads)), and what must stay alive as long as the graph."""
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double

    def shape_callback(userdata: Any, inputs: Any, count: int, out_shape: Any,
                       out_rank: Any) -> int:
        try:
            shapes = [_shape_of(inputs[i]) for i in range(count)]
            if shape is None:
                dims = shapes[0] if shapes else ()
            elif callable(shape):
                dims = _as_shape(shape(*shapes), f"custom op '{name}': shape()")
            else:
                dims = _as_shape(shape, f"custom op '{name}': shape")
            for i, d in enumerate(dims):
                out_shape[i] = d
            out_rank[0] = len(dims)
            return 0
        except BaseException as error:  # noqa: B902 - every exception must become a status
            _remember(error)
            return 1

    def forward_callback(userdata: Any, inputs: Any, count: int, output: Any) -> int:
        try:
            views = [_view(inputs[i], ctype, False) for i in range(count)]
            gate.forward(views, _view(output[0], ctype, True))
            return 0
        except BaseException as error:  # noqa: B902
            _remember(error)
            return 1

    def backward_callback(userdata: Any, inputs: Any, count: int, output: Any,
                          output_grad: Any, input_grads: Any) -> int:
        try:
            views = [_view(inputs[i], ctype, False) for i in range(count)]
            grads = [_view(input_grads[i], ctype, True) for i in range(count)]
            gate.backward(views, _view(output[0], ctype, False),
                          _view(output_grad[0], ctype, False), grads)
            return 0
        except BaseException as error:  # noqa: B902
            _remember(error)
            return 1

    callbacks = (_capi.bp_custom_shape_fn(shape_callback),
                 _capi.bp_custom_forward_fn(forward_callback),
                 _capi.bp_custom_backward_fn(backward_callback))
    encoded = name.encode("utf-8")
    op = _capi.bp_custom_op(ctypes.sizeof(_capi.bp_custom_op), encoded, *callbacks, None)
    return op, (callbacks, encoded, gate)
