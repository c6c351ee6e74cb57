"""Exceptions raised for the library's status codes.

Every failing call of libbackprop returns a bp_status and leaves a message for the calling thread
in bp_last_error(). :func:`check` turns that pair into an exception: one class per status, all
derived from :class:`BackpropError`, each carrying ``.status`` and the library's ``.message``.
Where a built-in exception means the same thing, the class derives from it too, so that
``except ValueError`` also catches an invalid argument or a shape mismatch.
"""

from __future__ import annotations

from typing import Optional, Type, Union

from . import _capi
from ._capi import Status

__all__ = [
    "BackpropError", "InvalidArgumentError", "InvalidHandleError", "ShapeError", "StateError",
    "BusyError", "OutOfMemoryError", "NonFiniteError", "BackpropIOError", "FormatError",
    "InternalError", "check", "error_class",
]


class BackpropError(Exception):
    """A libbackprop call failed.

    Attributes:
        status: the :class:`~backprop.Status` (an int for a status this package does not know).
        message: what went wrong, as the library described it.
    """

    status: Optional[Union[Status, int]] = None

    def __init__(self, message: str = "", status: Optional[Union[Status, int]] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.status is None:
            return "libbackprop call failed"
        return _capi.lib.bp_status_string(self.status).decode("utf-8", "replace")


class InvalidArgumentError(BackpropError, ValueError):
    """BP_ERR_INVALID_ARGUMENT: a NULL pointer, a wrong element count, an unknown enum value..."""

    status = Status.INVALID_ARGUMENT


class InvalidHandleError(BackpropError, ValueError):
    """BP_ERR_INVALID_HANDLE: a closed, freed or foreign handle, or a node not in the graph."""

    status = Status.INVALID_HANDLE


class ShapeError(BackpropError, ValueError):
    """BP_ERR_SHAPE: shapes that an op cannot combine."""

    status = Status.SHAPE


class StateError(BackpropError):
    """BP_ERR_STATE: a call out of order, such as backward before forward."""

    status = Status.STATE


class BusyError(BackpropError):
    """BP_ERR_BUSY: the handle is in use by another thread."""

    status = Status.BUSY


class OutOfMemoryError(BackpropError, MemoryError):
    """BP_ERR_OUT_OF_MEMORY: an allocation failed or a size is too large to represent."""

    status = Status.OUT_OF_MEMORY


class NonFiniteError(BackpropError, ArithmeticError):
    """BP_ERR_NONFINITE: NaN or infinity where a finite number is required."""

    status = Status.NONFINITE


class BackpropIOError(BackpropError, OSError):
    """BP_ERR_IO: a file could not be read or written."""

    status = Status.IO


class FormatError(BackpropError, ValueError):
    """BP_ERR_FORMAT: malformed data."""

    status = Status.FORMAT


class InternalError(BackpropError):
    """BP_ERR_INTERNAL: a bug in the library; please report it."""

    status = Status.INTERNAL


_CLASSES = {cls.status: cls for cls in (
    InvalidArgumentError, InvalidHandleError, ShapeError, StateError, BusyError,
    OutOfMemoryError, NonFiniteError, BackpropIOError, FormatError, InternalError)}


def error_class(status: Union[Status, int]) -> Type[BackpropError]:
    """The exception class for a (non-OK) status; BackpropError for an unknown one."""
    try:
        return _CLASSES[Status(status)]
    except (ValueError, KeyError):
        return BackpropError


def check(status: Union[Status, int]) -> None:
    """Returns if `status` is OK; otherwise raises its exception with the library's message.

    Call it right after the failed call, on the same thread: bp_last_error() is per thread and
    holds the message of the most recent failure only.
    """
    if status == Status.OK:
        return
    message = _capi.lib.bp_last_error().decode("utf-8", "replace")
    cls = error_class(status)
    if cls is BackpropError:
        raise BackpropError(message, status=int(status))
    raise cls(message)
