"""Data files: CSV tables read by the library into numpy arrays.

    x, y = backprop.data.load_csv("examples/data/digits.csv")    # label in the last column
    x, y = load_csv("houses.csv", label_column=0, label_dtype="float32")   # regression
    x = load_csv("features.csv", label_column=None, header=False)

The library parses the file (numbers only; see the CSV rules in include/backprop.h) and reports
a malformed one with :class:`~backprop.FormatError` naming the line and column, e.g.
``line 7, column 3: "abc" is not a number``.
"""

from __future__ import annotations

import ctypes
import operator
import os
from typing import Any, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _capi
from ._arrays import float_pointer, int32_pointer
from ._capi import DatasetHandle, lib
from .errors import check

__all__ = ["load_csv"]


def _free_dataset(handle: Any) -> None:
    lib.bp_dataset_free(handle)


def load_csv(path: Union[str, "os.PathLike[str]"], label_column: Optional[int] = -1,
             header: bool = True, delimiter: str = ",", label_dtype: Any = np.int32,
             max_bytes: Optional[int] = None
             ) -> Union[npt.NDArray[np.float32],
                        Tuple[npt.NDArray[np.float32], npt.NDArray[Any]]]:
    """Reads a CSV file of numbers.

    Args:
        path: the file.
        label_column: the label's column, 0-based (negative counts from the end; -1, the
            default, is the last column), or None when every column is a feature.
        header: whether the first non-blank line names the columns (it is skipped).
        delimiter: the one character between fields.
        label_dtype: int32 (the default: whole-number class labels, for cross-entropy) or
            float32 (regression targets).
        max_bytes: refuse larger files (the library's default is 1 GiB).

    Returns (features [rows, features] float32, labels [rows]) or, with label_column None, the
    features alone. Raises FormatError for a malformed file, BackpropIOError (an OSError) for
    one that cannot be read.
    """
    options = _capi.bp_csv_options()
    check(lib.bp_csv_options_default(ctypes.byref(options)))
    encoded_delimiter = delimiter.encode("utf-8") if isinstance(delimiter, str) else b""
    if len(encoded_delimiter) != 1:
        raise ValueError(f"delimiter must be one single-byte character, got {delimiter!r}")
    options.delimiter = encoded_delimiter
    options.has_header = int(bool(header))
    options.has_label = int(label_column is not None)
    if label_column is not None:
        options.label_column = operator.index(label_column)
    if max_bytes is not None:
        options.max_bytes = operator.index(max_bytes)
    wanted = np.dtype(label_dtype)
    if label_column is not None and wanted not in (np.dtype(np.int32), np.dtype(np.float32)):
        raise ValueError(f"label_dtype must be int32 or float32, got {wanted}")

    handle = DatasetHandle()
    check(lib.bp_dataset_load_csv(os.fsencode(os.fspath(path)), ctypes.byref(options),
                                  ctypes.byref(handle)))
    try:
        rows, features = ctypes.c_size_t(), ctypes.c_size_t()
        check(lib.bp_dataset_size(handle, ctypes.byref(rows), ctypes.byref(features)))
        x = np.empty((rows.value, features.value), dtype=np.float32)
        check(lib.bp_dataset_features(handle, float_pointer(x), x.size))
        if label_column is None:
            return x
        if wanted == np.dtype(np.int32):
            y = np.empty(rows.value, dtype=np.int32)
            check(lib.bp_dataset_labels(handle, int32_pointer(y), y.size))
        else:
            y = np.empty(rows.value, dtype=np.float32)
            check(lib.bp_dataset_targets(handle, float_pointer(y), y.size))
        return x, y
    finally:
        _free_dataset(handle)
