"""Library handles that are freed exactly once (internal).

A Graph or Network keeps its handle in an :class:`Owned` box. The box, not the object, is what
``weakref.finalize`` holds on to, so the object can still be collected; and the box is what
every path that frees goes through: ``close()``, garbage collection, and interpreter exit
(``weakref.finalize`` runs the finalizers of objects still alive from ``atexit``). Whichever
comes first frees the handle and clears the box, so the others find nothing left to free, and an
object whose handle was freed at exit reads as closed instead of passing a freed handle on.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from ._capi import Status

__all__ = ["Owned"]


class Owned:
    """A handle and the function that frees it (None for a borrowed handle, which is only
    forgotten). :meth:`release` frees it at most once, from any thread."""

    __slots__ = ("handle", "_free", "_lock")

    def __init__(self, handle: Any, free: Optional[Callable[[Any], Optional[int]]]) -> None:
        self.handle = handle
        self._free = free
        self._lock = threading.Lock()

    def release(self) -> Optional[int]:
        """Frees the handle if it is still held; returns the library's status (None when there
        was nothing to free or the library could not be called). On BP_ERR_BUSY the handle is
        kept, so that a later close, collection or exit tries again."""
        with self._lock:
            handle = self.handle
            if handle is None:
                return None
            status = Status.OK if self._free is None else self._free(handle)
            if status != Status.BUSY:
                self.handle = None
            return status
