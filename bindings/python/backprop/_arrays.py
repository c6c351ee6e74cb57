"""How values cross into the library: the one rule for every array argument of the package.

1. A numpy array whose element type the C call takes directly (float32 or float64 for graph
   values, float32 for network inputs and targets, int32 for class labels) and that is
   C-contiguous, aligned and in native byte order is passed as it is, without a copy: the
   library reads the caller's memory during the call.
2. Anything else is first made an array with ``numpy.asarray``; it must hold real numbers
   (bool, integer or floating point), otherwise TypeError. Unless that array now meets rule 1,
   it is converted once: copied into a new C-contiguous array of the target element type (the
   graph's dtype, float32 for networks; int32 for labels, which must be integers that fit).

Arrays going out (values, gradients, network outputs) are always new arrays that own their
memory: the library writes into them, and nothing else refers to them.
"""

from __future__ import annotations

import ctypes
from typing import Any, Iterable, Tuple

import numpy as np
import numpy.typing as npt

__all__ = ["passes_as_is", "real_array", "label_array", "float_pointer", "int32_pointer"]

_INT32 = np.iinfo(np.int32)


def passes_as_is(array: np.ndarray, dtypes: Iterable[np.dtype]) -> bool:
    """Whether `array` can go to the library without a copy: one of `dtypes`, C-contiguous,
    aligned, native byte order."""
    flags = array.flags
    return (any(array.dtype == dtype for dtype in dtypes) and array.dtype.isnative
            and flags.c_contiguous and flags.aligned)


def real_array(values: npt.ArrayLike, accepted: Tuple[np.dtype, ...], target: np.dtype,
               what: str) -> np.ndarray:
    """`values` as an array the library can read: as it is when it meets rule 1 for one of the
    `accepted` dtypes, else one copy converted to `target`. Raises TypeError (naming `what`) for
    anything that is not real numbers."""
    array = np.asarray(values)
    if passes_as_is(array, accepted):
        return array
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be real numbers, got an array of dtype {array.dtype}")
    # np.array rather than np.ascontiguousarray: the latter turns a 0-d array into shape (1,).
    return np.array(array, dtype=target, order="C", copy=True)


def label_array(values: npt.ArrayLike, what: str) -> np.ndarray:
    """Class labels as C-contiguous int32: an int32 array that meets rule 1 as it is, any other
    integers copied once after checking that they fit. TypeError for anything but integers."""
    array = np.asarray(values)
    if passes_as_is(array, (np.dtype(np.int32),)):
        return array
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integer class indices, got an array of dtype "
                        f"{array.dtype}")
    if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
        raise ValueError(f"{what} must fit in int32")
    return np.array(array, dtype=np.int32, order="C", copy=True)


def float_pointer(array: np.ndarray) -> Any:
    """A ctypes pointer (float * or double *) to the data of a float32 or float64 array. The
    caller keeps the array alive for the duration of the call."""
    ctype = ctypes.c_float if array.dtype == np.float32 else ctypes.c_double
    return array.ctypes.data_as(ctypes.POINTER(ctype))


def int32_pointer(array: np.ndarray) -> Any:
    """A ctypes int32_t * to the data of an int32 array (kept alive by the caller)."""
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
