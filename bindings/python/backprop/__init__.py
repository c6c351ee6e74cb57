"""libbackprop for Python: a backpropagation engine behind a small C interface.

Two faces over one engine:

- :class:`Graph` and :class:`Node`: build a computational graph from leaves and ops, run it
  forward, backpropagate from a scalar, read values and gradients as numpy arrays.
- :class:`Network`: a feed-forward network of dense layers with the training loop's steps
  (``zero_grad``, ``forward``, ``backward``, ``update``) as methods, and the whole loop
  (``fit``, ``evaluate``), checkpoints (``save``, ``load``) and pickling.

Named as in PyTorch and scikit-learn:

- :mod:`backprop.nn`: ``Sequential(Linear(...), ReLU(), Dropout(...), LayerNorm(...), ...)``,
  ``History``, ``clip_grad_norm_``; :mod:`backprop.optim`: ``SGD``, ``Adam``, ``AdamW``,
  ``RMSprop``, ``Adagrad`` and :mod:`backprop.optim.lr_scheduler`.
- :class:`Function` and :meth:`Graph.custom`: gates written in Python with numpy.
- :mod:`backprop.data`: ``load_csv``. :mod:`backprop.sklearn` (needs scikit-learn):
  ``MLPClassifier``, ``MLPRegressor``.

Importing the package loads libbackprop.so (see :mod:`backprop._capi` for where it is looked for);
failures of the library are raised as :class:`BackpropError` subclasses.

numpy arrays: float32 and float64 C-contiguous arrays are read by the library without a copy;
anything else is converted once (the rule is in :mod:`backprop._arrays`). Results are new arrays
that own their memory.

Threads: ctypes releases the GIL for the duration of every library call, so while one thread is
in a long forward, backward or training step, other Python threads run. Distinct graphs and
networks may be used from different threads at once; one object used from two threads at once
makes one of the calls raise :class:`BusyError` (it is never corrupted).

Lifetime: graphs and networks free their library handle exactly once, on ``close()``, at the end
of a ``with`` block, when garbage collected, or at interpreter exit, whichever comes first.
"""

from __future__ import annotations

from ._capi import (
    HEADER_VERSION as __version__,
    Activation,
    DType,
    LibraryNotFoundError,
    LibraryVersionError,
    Loss,
    Reduction,
    Status,
    library_path,
)
from .errors import (
    BackpropError,
    BackpropIOError,
    BusyError,
    FormatError,
    InternalError,
    InvalidArgumentError,
    InvalidHandleError,
    NonFiniteError,
    OutOfMemoryError,
    ShapeError,
    StateError,
)
from .graph import Graph, Node
from .network import Network
from .autograd import Function, FunctionContext
from . import data, nn, optim

__all__ = [
    "__version__", "library_path", "library_version", "set_num_threads", "get_num_threads",
    "Graph", "Node", "Network", "Function", "FunctionContext", "nn", "optim", "data",
    "Status", "DType", "Reduction", "Activation", "Loss",
    "BackpropError", "InvalidArgumentError", "InvalidHandleError", "ShapeError", "StateError",
    "BusyError", "OutOfMemoryError", "NonFiniteError", "BackpropIOError", "FormatError",
    "InternalError", "LibraryNotFoundError", "LibraryVersionError",
]


def library_version() -> str:
    """The version of the loaded libbackprop.so, as "MAJOR.MINOR.PATCH"."""
    from ._capi import lib

    return lib.bp_version().decode("ascii")


def set_num_threads(threads: int) -> None:
    """Sets how many threads the library's matrix products may use, for the whole process, as
    ``torch.set_num_threads`` does. A product large enough to gain is cut into ranges of its
    output, computed at once on the calling thread and the library's worker threads, by the
    library's own kernel (float32, on CPUs with AVX2 and FMA; the same bits at any thread count)
    or by BLAS on one thread. The library keeps its OpenBLAS at one thread. Elementwise work
    runs on the calling thread.

    More threads than the CPUs this process may run on (its affinity mask) are clamped to that
    number. :func:`get_num_threads` reports the number in effect. Raises
    :class:`InvalidArgumentError` for ``threads < 1``.
    """
    from ._capi import lib
    from .errors import check

    check(lib.bp_set_num_threads(threads))


def get_num_threads() -> int:
    """The number of threads in effect: the last :func:`set_num_threads` after its clamp to the
    CPUs this process may run on, or BLAS's default (one per CPU)."""
    from ._capi import lib

    return int(lib.bp_get_num_threads())
