"""Graph and Node: reverse-mode automatic differentiation from Python.

A :class:`Graph` owns a bp_graph. Build it once from leaves (inputs, parameters, constants) and
ops, then run it as often as needed::

    with Graph("float64") as g:
        x = g.input(3)
        y = (x * x).sum()          # Python scalars and operators build nodes too
        g.set_value(x, [1.0, 2.0, 3.0])
        g.forward()
        g.backward(y)
        g.grad(x)                  # array([2., 4., 6.])

Every op of the C header is a method of :class:`Graph`, named as in PyTorch where PyTorch has
the op (``relu``, ``gelu(approximate="tanh")``, ``leaky_relu(negative_slope=)``, ``mse_loss``,
``binary_cross_entropy_with_logits``, ``cross_entropy``...), and most are also methods or
operators of :class:`Node` (``x ** 2``, ``x < y``, ``abs(x)``, ``x.sum(axis=1, keepdims=True)``,
``x.T``, ``x[:, 1:3]``). Operands may be nodes of the same graph, or Python numbers and numpy
arrays, which become new constants.

Values go in as numpy arrays or anything numpy can turn into an array of real numbers. A float32
or float64 array that is C-contiguous is read by the library where it is, without a copy (the
library converts to the graph's dtype as it reads); anything else is converted once into a new
array of the graph's dtype (see :mod:`backprop._arrays` for the exact rule). Values and
gradients come out as new numpy arrays of the node's shape that own their memory.

Custom gates written in Python (:meth:`Graph.custom`, :class:`backprop.Function`) receive numpy
views of the library's buffers; an exception raised in one fails the forward or backward call
that ran it, which raises :class:`~backprop.BackpropError` with the original exception as its
``__cause__``.

Errors of the library are raised as :class:`~backprop.BackpropError` subclasses; mistakes caught
before the call (a wrong array shape, a node of another graph) as ValueError or TypeError
subclasses with a message naming what was expected.

ctypes releases the GIL for the duration of every library call, so a long forward, backward or
gradient check lets other Python threads run meanwhile.
"""

from __future__ import annotations

import ctypes
import numbers
import operator
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _capi, _custom
from ._arrays import float_pointer, real_array
from ._lifetime import Owned
from ._capi import MAX_RANK, NO_NODE, Comparison, DType, GeluApproximation, GraphHandle, \
    ReduceOp, Reduction, lib
from .errors import InvalidHandleError, check

__all__ = ["Graph", "Node", "DTypeLike", "ShapeLike", "Operand", "AxisLike"]

#: What names an element type: "float32", "float64", a numpy dtype or type, or a DType.
DTypeLike = Union[str, np.dtype, type, DType]
#: A shape: a sequence of non-negative ints, or one int n for a vector (n,).
ShapeLike = Union[int, Sequence[int]]
#: An operand of an op: a Node of the same graph, or values that become a new constant.
Operand = Union["Node", float, npt.ArrayLike]
#: Axes to reduce over: None (all of them), one int, or a sequence of ints; negative ones count
#: from the end.
AxisLike = Optional[Union[int, Sequence[int]]]

_BOTH_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_NUMPY_DTYPES = {DType.FLOAT32: np.dtype(np.float32), DType.FLOAT64: np.dtype(np.float64)}
_REDUCTIONS = {"mean": Reduction.MEAN, "sum": Reduction.SUM, "none": Reduction.NONE}
_COMPARISONS = {"eq": Comparison.EQ, "==": Comparison.EQ, "ne": Comparison.NE,
                "!=": Comparison.NE, "lt": Comparison.LT, "<": Comparison.LT,
                "le": Comparison.LE, "<=": Comparison.LE, "gt": Comparison.GT,
                ">": Comparison.GT, "ge": Comparison.GE, ">=": Comparison.GE}
_REDUCE_OPS = {"sum": ReduceOp.SUM, "mean": ReduceOp.MEAN, "max": ReduceOp.MAX,
               "min": ReduceOp.MIN, "logsumexp": ReduceOp.LOGSUMEXP}
_GELU = {"none": GeluApproximation.EXACT, "exact": GeluApproximation.EXACT,
         "tanh": GeluApproximation.TANH}


def _dtype_code(dtype: DTypeLike) -> DType:
    """The DType for "float32", "float64", a numpy dtype or a DType."""
    if isinstance(dtype, DType):
        return dtype
    if dtype is None:
        raise TypeError("dtype must be float32 or float64, got None")
    try:
        numpy_dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from error
    for code, candidate in _NUMPY_DTYPES.items():
        if numpy_dtype == candidate:
            return code
    raise ValueError(f"dtype must be float32 or float64, got {numpy_dtype}")


def _reduction_code(reduction: Union[str, Reduction]) -> Reduction:
    if isinstance(reduction, Reduction):
        return reduction
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(
            f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}") from None


def _enum_code(table: Dict[Any, Any], enum_type: type, value: Any, what: str) -> Any:
    if isinstance(value, enum_type):
        return value
    try:
        return table[value]
    except (KeyError, TypeError):
        names = ", ".join(repr(k) for k in table if isinstance(k, str) and k.isalpha())
        raise ValueError(f"{what} must be one of {names}, got {value!r}") from None


def _shape_tuple(shape: ShapeLike) -> Tuple[int, ...]:
    """A shape as a tuple of non-negative ints; an int n means (n,)."""
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"a shape is a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"a shape has no negative dimensions, got {dims}")
    return dims


def _dims_argument(dims: Tuple[Any, ...], what: str) -> Tuple[int, ...]:
    """Varargs that may also be one sequence: reshape(2, 3) or reshape((2, 3))."""
    if len(dims) == 1 and not isinstance(dims[0], numbers.Integral):
        dims = tuple(dims[0])
    try:
        return tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"{what} takes ints, got {dims!r}") from None


def _axis(axis: int, rank: int, what: str) -> int:
    """A possibly negative axis as an index in [0, rank)."""
    axis = operator.index(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"{what}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def _free_graph(handle: Any) -> Optional[int]:
    """Frees a graph handle; returns the status. Runs from close(), from garbage collection or at
    interpreter exit, when the library may already be going away: then it does nothing."""
    try:
        return lib.bp_graph_free(handle)
    except Exception:  # pragma: no cover - interpreter shutdown
        return None


class Node:
    """A node of a :class:`Graph`: the graph and the node's id, nothing more.

    Operators build new nodes with other nodes of the same graph, Python numbers and numpy
    arrays (which become constants): ``+ - * / ** @``, unary ``-`` and ``abs()``, and the
    comparisons ``< <= > >=``, which give 1.0 where they hold and 0.0 elsewhere, with no
    gradient. ``==`` and ``!=`` compare nodes themselves (so nodes can be dict keys); the
    elementwise forms are :meth:`eq` and :meth:`ne`. A node has no truth value.

    Indexing takes slices with step 1 and ints along any axes, ``None`` and ``...``
    (``x[:, 1:3]``, ``x[0]``, ``x[..., None]``), and a node or an integer array of indices,
    which gathers rows (``table[indices]``, an embedding lookup).

    ``.value``, ``.grad`` and ``.shape`` read from the graph.
    """

    __slots__ = ("graph", "id")
    # Make numpy hand `array + node` over to Node.__radd__ instead of looping over the array.
    __array_ufunc__ = None

    graph: Graph
    id: int

    def __init__(self, graph: Graph, id: int) -> None:
        self.graph = graph
        self.id = int(id)

    def __repr__(self) -> str:
        try:
            return f"Node(id={self.id}, shape={self.shape})"
        except Exception:
            return f"Node(id={self.id})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return self.graph is other.graph and self.id == other.id

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return not (self.graph is other.graph and self.id == other.id)

    def __hash__(self) -> int:
        return hash((id(self.graph), self.id))

    def __bool__(self) -> bool:
        raise TypeError("a Node has no truth value; run the graph forward and read .value")

    # Reading
    @property
    def shape(self) -> Tuple[int, ...]:
        """The node's shape, a tuple of ints (``()`` for a scalar)."""
        return self.graph.shape(self)

    @property
    def ndim(self) -> int:
        """The node's rank (number of axes)."""
        return len(self.graph.shape(self))

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.graph.size(self)

    @property
    def value(self) -> npt.NDArray[Any]:
        """A new array holding the node's values (op nodes need a forward first). Setting it
        is :meth:`Graph.set_value`."""
        return self.graph.value(self)

    @value.setter
    def value(self, values: npt.ArrayLike) -> None:
        self.graph.set_value(self, values)

    @property
    def grad(self) -> npt.NDArray[Any]:
        """A new array holding the node's gradient."""
        return self.graph.grad(self)

    def backward(self) -> None:
        """Backpropagates from this node, which must be a scalar (see :meth:`Graph.backward`)."""
        self.graph.backward(self)

    def item(self) -> float:
        """The value of a one-element node as a Python float."""
        return float(self.graph.value(self).reshape(()))

    # Arithmetic operators
    def __add__(self, other: Operand) -> Node:
        return self.graph.add(self, other)

    def __radd__(self, other: Operand) -> Node:
        return self.graph.add(other, self)

    def __sub__(self, other: Operand) -> Node:
        return self.graph.sub(self, other)

    def __rsub__(self, other: Operand) -> Node:
        return self.graph.sub(other, self)

    def __mul__(self, other: Operand) -> Node:
        return self.graph.mul(self, other)

    def __rmul__(self, other: Operand) -> Node:
        return self.graph.mul(other, self)

    def __truediv__(self, other: Operand) -> Node:
        return self.graph.div(self, other)

    def __rtruediv__(self, other: Operand) -> Node:
        return self.graph.div(other, self)

    def __pow__(self, other: Operand) -> Node:
        return self.graph.pow(self, other)

    def __rpow__(self, other: Operand) -> Node:
        return self.graph.pow(self.graph._operands(other)[0], self)

    def __matmul__(self, other: Operand) -> Node:
        return self.graph.matmul(self, other)

    def __rmatmul__(self, other: Operand) -> Node:
        return self.graph.matmul(other, self)

    def __neg__(self) -> Node:
        return self.graph.neg(self)

    def __pos__(self) -> Node:
        return self

    def __abs__(self) -> Node:
        return self.graph.abs(self)

    # Comparisons: nodes of 0.0 and 1.0 (== and != compare the nodes themselves; see eq, ne)
    def __lt__(self, other: Operand) -> Node:
        return self.graph.lt(self, other)

    def __le__(self, other: Operand) -> Node:
        return self.graph.le(self, other)

    def __gt__(self, other: Operand) -> Node:
        return self.graph.gt(self, other)

    def __ge__(self, other: Operand) -> Node:
        return self.graph.ge(self, other)

    def eq(self, other: Operand) -> Node:
        """1.0 where self == other elementwise, else 0.0 (no gradient)."""
        return self.graph.eq(self, other)

    def ne(self, other: Operand) -> Node:
        """1.0 where self != other elementwise, else 0.0 (no gradient)."""
        return self.graph.ne(self, other)

    def __getitem__(self, key: Any) -> Node:
        return self.graph.getitem(self, key)

    # Elementwise functions
    def abs(self) -> Node:
        """|self|, as :meth:`Graph.abs`."""
        return self.graph.abs(self)

    def exp(self) -> Node:
        """e**self, as :meth:`Graph.exp`."""
        return self.graph.exp(self)

    def log(self) -> Node:
        """The natural logarithm, as :meth:`Graph.log`."""
        return self.graph.log(self)

    def sqrt(self) -> Node:
        """The square root, as :meth:`Graph.sqrt`."""
        return self.graph.sqrt(self)

    def square(self) -> Node:
        """self**2, as :meth:`Graph.square`."""
        return self.graph.square(self)

    def reciprocal(self) -> Node:
        """1 / self, as :meth:`Graph.reciprocal`."""
        return self.graph.reciprocal(self)

    def pow(self, exponent: Operand) -> Node:
        """self ** exponent, as :meth:`Graph.pow`."""
        return self.graph.pow(self, exponent)

    def relu(self) -> Node:
        """max(self, 0), as :meth:`Graph.relu`."""
        return self.graph.relu(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Node:
        """self where positive, else negative_slope * self, as :meth:`Graph.leaky_relu`."""
        return self.graph.leaky_relu(self, negative_slope)

    def elu(self, alpha: float = 1.0) -> Node:
        """ELU, as :meth:`Graph.elu`."""
        return self.graph.elu(self, alpha)

    def gelu(self, approximate: str = "none") -> Node:
        """GELU, exact or with approximate="tanh", as :meth:`Graph.gelu`."""
        return self.graph.gelu(self, approximate)

    def silu(self) -> Node:
        """self * sigmoid(self), as :meth:`Graph.silu`."""
        return self.graph.silu(self)

    def softplus(self) -> Node:
        """ln(1 + e**self), as :meth:`Graph.softplus`."""
        return self.graph.softplus(self)

    def sigmoid(self) -> Node:
        """1 / (1 + e**-self), as :meth:`Graph.sigmoid`."""
        return self.graph.sigmoid(self)

    def tanh(self) -> Node:
        """tanh(self), as :meth:`Graph.tanh`."""
        return self.graph.tanh(self)

    def detach(self) -> Node:
        """The same values with no gradient behind them, as :meth:`Graph.detach`."""
        return self.graph.detach(self)

    def clamp(self, min: Optional[float] = None, max: Optional[float] = None) -> Node:
        """self limited to [min, max], as :meth:`Graph.clamp`."""
        return self.graph.clamp(self, min, max)

    def maximum(self, other: Operand) -> Node:
        """The larger of self and other elementwise, as :meth:`Graph.maximum`."""
        return self.graph.maximum(self, other)

    def minimum(self, other: Operand) -> Node:
        """The smaller of self and other elementwise, as :meth:`Graph.minimum`."""
        return self.graph.minimum(self, other)

    def where(self, condition: Operand, other: Operand) -> Node:
        """self where condition != 0, else other (torch's Tensor.where), as
        :meth:`Graph.where`."""
        return self.graph.where(condition, self, other)

    def matmul(self, other: Operand) -> Node:
        """self @ other, as :meth:`Graph.matmul`."""
        return self.graph.matmul(self, other)

    def dropout(self, p: float = 0.5) -> Node:
        """Dropout with probability p in the graph's training mode, as :meth:`Graph.dropout`."""
        return self.graph.dropout(self, p)

    def layer_norm(self, normalized_shape: ShapeLike, weight: Optional[Operand] = None,
                   bias: Optional[Operand] = None, eps: float = 1e-5) -> Node:
        """Layer normalization over the trailing axes, as :meth:`Graph.layer_norm`."""
        return self.graph.layer_norm(self, normalized_shape, weight, bias, eps)

    # Reductions
    def sum(self, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The sum over `axis` (all axes by default), as :meth:`Graph.sum`."""
        return self.graph.sum(self, axis, keepdims)

    def mean(self, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The mean over `axis` (all axes by default), as :meth:`Graph.mean`."""
        return self.graph.mean(self, axis, keepdims)

    def max(self, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The maximum over `axis` (all axes by default), as :meth:`Graph.max`."""
        return self.graph.max(self, axis, keepdims)

    def min(self, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The minimum over `axis` (all axes by default), as :meth:`Graph.min`."""
        return self.graph.min(self, axis, keepdims)

    def logsumexp(self, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """log(sum(exp(self))) over `axis`, as :meth:`Graph.logsumexp`."""
        return self.graph.logsumexp(self, axis, keepdims)

    # Layout
    def reshape(self, *shape: Any) -> Node:
        """The same elements under a new shape (one dimension may be -1), as
        :meth:`Graph.reshape`."""
        return self.graph.reshape(self, _dims_argument(shape, "reshape"))

    def permute(self, *dims: Any) -> Node:
        """Axes reordered: output axis i is input axis dims[i], as :meth:`Graph.permute`."""
        return self.graph.permute(self, _dims_argument(dims, "permute"))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Node:
        """Axes dim0 and dim1 swapped (the last two by default), as :meth:`Graph.transpose`."""
        return self.graph.transpose(self, dim0, dim1)

    @property
    def T(self) -> Node:
        """The axes in reverse order (numpy's ``.T``): the transpose of a matrix."""
        rank = self.ndim
        if rank < 2:
            return self
        if rank == 2:
            return self.graph.transpose(self)
        return self.graph.permute(self, tuple(range(rank - 1, -1, -1)))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Node:
        """Axes start_dim..end_dim merged into one, as :meth:`Graph.flatten`."""
        return self.graph.flatten(self, start_dim, end_dim)

    def unsqueeze(self, axis: int) -> Node:
        """A new axis of size 1 at `axis`, as :meth:`Graph.unsqueeze`."""
        return self.graph.unsqueeze(self, axis)

    def squeeze(self, axis: AxisLike = None) -> Node:
        """Axes of size 1 removed, as :meth:`Graph.squeeze`."""
        return self.graph.squeeze(self, axis)

    def softmax(self, axis: int = -1) -> Node:
        """Softmax along `axis`, as :meth:`Graph.softmax`."""
        return self.graph.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Node:
        """Log-softmax along `axis`, as :meth:`Graph.log_softmax`."""
        return self.graph.log_softmax(self, axis)


class Graph:
    """A computational graph with reverse-mode differentiation (a bp_graph).

    Args:
        dtype: the element type of every value and gradient: "float32" (the default) or
            "float64", or the numpy equivalents.

    The graph is freed by :meth:`close`, by leaving a ``with`` block, when it is garbage
    collected, or at interpreter exit, whichever comes first, and exactly once. Using a closed
    graph raises :class:`~backprop.InvalidHandleError`.

    One graph may be used from one thread at a time; a call made while another thread is inside
    the library with the same graph raises :class:`~backprop.BusyError`. The GIL is released
    during library calls, so distinct graphs run in parallel from Python threads.
    """

    dtype: np.dtype
    """The numpy dtype of the graph's values and gradients (float32 or float64)."""

    def __init__(self, dtype: DTypeLike = "float32") -> None:
        code = _dtype_code(dtype)
        handle = GraphHandle()
        check(lib.bp_graph_create(code, ctypes.byref(handle)))
        self._setup(Owned(handle, _free_graph), code, owner=None)
        self._finalizer: Optional[weakref.finalize] = weakref.finalize(self, self._box.release)

    @classmethod
    def _borrow(cls, handle: Any, owner: Any) -> Graph:
        """A Graph over a handle that `owner` (a Network) owns: never freed here, keeps the owner
        alive, and stops working once the owner is closed."""
        graph = cls.__new__(cls)
        code = ctypes.c_int()
        check(lib.bp_graph_dtype(handle, ctypes.byref(code)))
        graph._setup(Owned(handle, None), DType(code.value), owner=owner)
        graph._finalizer = None
        return graph

    def _setup(self, box: Owned, code: DType, owner: Any) -> None:
        self._box = box
        self._code = code
        self._owner = owner
        self._shapes: Dict[int, Tuple[int, ...]] = {}
        self._training = True
        # What custom ops' callbacks need kept alive as long as the graph itself: for a borrowed
        # graph that is the network's lifetime, so the list lives there.
        self._keepalive: List[Any] = owner._keepalive if owner is not None else []
        self.dtype = _NUMPY_DTYPES[code]

    # Lifetime
    def close(self) -> None:
        """Frees the graph. Closing twice is harmless. A borrowed graph (``Network.graph``) is
        only detached: the network keeps its graph. Raises :class:`~backprop.BusyError` (and
        stays open) while another thread is using the graph."""
        status = self._box.release()
        if status is None:
            return  # closed already (or freed at exit)
        if status == _capi.Status.BUSY:
            check(status)  # in use by another thread: stays open
        if self._finalizer is not None:
            self._finalizer.detach()
        check(status)

    @property
    def closed(self) -> bool:
        """Whether the graph can no longer be used."""
        return self._box.handle is None or (self._owner is not None and self._owner.closed)

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<Graph closed>"
        return f"<Graph dtype={self.dtype} nodes={self.node_count}>"

    def _h(self) -> Any:
        handle = self._box.handle
        if handle is None:
            raise InvalidHandleError("the Graph is closed")
        if self._owner is not None and self._owner.closed:
            raise InvalidHandleError("the Network that owns this Graph is closed")
        return handle

    def _own(self, node: Node) -> Node:
        if not isinstance(node, Node):
            raise TypeError(f"expected a Node, got {type(node).__name__}")
        if node.graph is not self:
            raise InvalidHandleError(f"node {node.id} belongs to another Graph")
        return node

    def _operands(self, *operands: Operand) -> List[Node]:
        """Nodes of this graph for the operands of an op: Nodes as they are, numbers and arrays
        as new constants. Every Node is checked before any constant is added."""
        for x in operands:
            if isinstance(x, Node):
                self._own(x)
            elif not isinstance(x, (numbers.Real, np.ndarray, np.generic, list, tuple)):
                raise TypeError(f"cannot use a {type(x).__name__} as a graph operand")
        return [x if isinstance(x, Node) else self._constant_from(x) for x in operands]

    def _constant_from(self, values: npt.ArrayLike) -> Node:
        array = real_array(values, _BOTH_FLOATS, self.dtype, "an operand")
        node = self.constant(array.shape)
        self._write(node, array)
        return node

    # Leaves
    def _leaf(self, function: Any, shape: ShapeLike, value: Optional[npt.ArrayLike]) -> Node:
        handle = self._h()
        dims = _shape_tuple(shape)
        out = _capi.bp_node()
        array = (ctypes.c_size_t * len(dims))(*dims) if dims else None
        check(function(handle, array, len(dims), ctypes.byref(out)))
        self._shapes[out.value] = dims
        node = Node(self, out.value)
        if value is not None:
            self.set_value(node, np.broadcast_to(np.asarray(value), dims)
                           if np.ndim(value) == 0 else value)
        return node

    def input(self, shape: ShapeLike, value: Optional[npt.ArrayLike] = None) -> Node:
        """Adds an input of the given shape: a leaf whose value you set and whose gradient is
        computed. Starts at zero, or at `value` (an array of the shape, or one number)."""
        return self._leaf(lib.bp_graph_input, shape, value)

    def parameter(self, shape: ShapeLike, value: Optional[npt.ArrayLike] = None) -> Node:
        """Adds a parameter: like an input, and what an optimizer updates. Starts at zero, or at
        `value` (an array of the shape, or one number)."""
        return self._leaf(lib.bp_graph_parameter, shape, value)

    def constant(self, shape: ShapeLike, value: Optional[npt.ArrayLike] = None) -> Node:
        """Adds a constant: a leaf whose value you set, with no gradient. Starts at zero, or at
        `value` (an array of the shape, or one number)."""
        return self._leaf(lib.bp_graph_constant, shape, value)

    # Building blocks of the op methods
    def _new(self, function: Any, *args: Any) -> Node:
        out = _capi.bp_node()
        check(function(self._h(), *args, ctypes.byref(out)))
        return Node(self, out.value)

    def _binary(self, function: Any, a: Operand, b: Operand, *extra: Any) -> Node:
        self._h()
        a, b = self._operands(a, b)
        return self._new(function, a.id, b.id, *extra)

    def _unary(self, function: Any, x: Operand, *extra: Any) -> Node:
        self._h()
        (x,) = self._operands(x)
        return self._new(function, x.id, *extra)

    # Elementwise arithmetic
    def add(self, a: Operand, b: Operand) -> Node:
        """a + b, broadcasting as numpy does."""
        return self._binary(lib.bp_graph_add, a, b)

    def sub(self, a: Operand, b: Operand) -> Node:
        """a - b, broadcasting."""
        return self._binary(lib.bp_graph_sub, a, b)

    def mul(self, a: Operand, b: Operand) -> Node:
        """a * b elementwise, broadcasting."""
        return self._binary(lib.bp_graph_mul, a, b)

    def div(self, a: Operand, b: Operand) -> Node:
        """a / b elementwise, broadcasting."""
        return self._binary(lib.bp_graph_div, a, b)

    def pow(self, a: Operand, b: Operand) -> Node:
        """a ** b elementwise. A Python number as the exponent is :meth:`pow_scalar` (the
        exponent is no node and gets no gradient); otherwise both broadcast, and d/db is taken as
        0 where a == 0 and b >= 0 (as PyTorch)."""
        if isinstance(b, numbers.Real) and not isinstance(b, bool) and not isinstance(a, bool):
            return self.pow_scalar(a, float(b))
        return self._binary(lib.bp_graph_pow, a, b)

    def pow_scalar(self, x: Operand, exponent: float) -> Node:
        """x ** exponent for a finite number `exponent`; its gradient exponent * x**(exponent-1)
        is 0 when the exponent is 0."""
        return self._unary(lib.bp_graph_pow_scalar, x, float(exponent))

    def maximum(self, a: Operand, b: Operand) -> Node:
        """The larger of a and b elementwise; on a tie the gradient is split evenly."""
        return self._binary(lib.bp_graph_maximum, a, b)

    def minimum(self, a: Operand, b: Operand) -> Node:
        """The smaller of a and b elementwise; on a tie the gradient is split evenly."""
        return self._binary(lib.bp_graph_minimum, a, b)

    def clamp(self, x: Operand, min: Optional[float] = None,
              max: Optional[float] = None) -> Node:
        """x limited to [min, max] (either may be None), as torch.clamp: maximum with min, then
        minimum with max; the gradient is 0 where x is clamped, and split on a tie."""
        (out,) = self._operands(x)
        if min is not None:
            out = self.maximum(out, min)
        if max is not None:
            out = self.minimum(out, max)
        return out

    # Comparisons and selection
    def compare(self, a: Operand, b: Operand, op: Union[str, Comparison]) -> Node:
        """1.0 where `a op b` holds, else 0.0, broadcasting; no gradient. `op` is "eq", "ne",
        "lt", "le", "gt", "ge" (or "==", "!=", "<", "<=", ">", ">=")."""
        code = _enum_code(_COMPARISONS, Comparison, op, "comparison")
        return self._binary(lib.bp_graph_compare, a, b, code)

    def eq(self, a: Operand, b: Operand) -> Node:
        """1.0 where a == b, else 0.0 (no gradient)."""
        return self.compare(a, b, Comparison.EQ)

    def ne(self, a: Operand, b: Operand) -> Node:
        """1.0 where a != b, else 0.0 (no gradient)."""
        return self.compare(a, b, Comparison.NE)

    def lt(self, a: Operand, b: Operand) -> Node:
        """1.0 where a < b, else 0.0 (no gradient)."""
        return self.compare(a, b, Comparison.LT)

    def le(self, a: Operand, b: Operand) -> Node:
        """1.0 where a <= b, else 0.0 (no gradient)."""
        return self.compare(a, b, Comparison.LE)

    def gt(self, a: Operand, b: Operand) -> Node:
        """1.0 where a > b, else 0.0 (no gradient)."""
        return self.compare(a, b, Comparison.GT)

    def ge(self, a: Operand, b: Operand) -> Node:
        """1.0 where a >= b, else 0.0 (no gradient)."""
        return self.compare(a, b, Comparison.GE)

    def where(self, condition: Operand, a: Operand, b: Operand) -> Node:
        """a where condition != 0, else b (the three broadcast together). The gradient flows only
        into the branch taken, so NaN or infinity in the other never reaches it; the condition
        gets none."""
        self._h()
        condition, a, b = self._operands(condition, a, b)
        return self._new(lib.bp_graph_where, condition.id, a.id, b.id)

    # Elementwise functions
    def neg(self, x: Operand) -> Node:
        """-x."""
        return self._unary(lib.bp_graph_neg, x)

    def abs(self, x: Operand) -> Node:
        """|x|, with gradient 0 at 0 (as PyTorch)."""
        return self._unary(lib.bp_graph_abs, x)

    def exp(self, x: Operand) -> Node:
        """e**x."""
        return self._unary(lib.bp_graph_exp, x)

    def log(self, x: Operand) -> Node:
        """The natural logarithm (-inf at 0 with gradient +inf; NaN below 0)."""
        return self._unary(lib.bp_graph_log, x)

    def sqrt(self, x: Operand) -> Node:
        """The square root (gradient +inf at 0, as PyTorch)."""
        return self._unary(lib.bp_graph_sqrt, x)

    def square(self, x: Operand) -> Node:
        """x**2."""
        return self._unary(lib.bp_graph_square, x)

    def reciprocal(self, x: Operand) -> Node:
        """1 / x."""
        return self._unary(lib.bp_graph_reciprocal, x)

    def relu(self, x: Operand) -> Node:
        """max(x, 0), with gradient 0 at 0."""
        return self._unary(lib.bp_graph_relu, x)

    def leaky_relu(self, x: Operand, negative_slope: float = 0.01) -> Node:
        """x where x > 0, else negative_slope * x (torch.nn.functional.leaky_relu)."""
        return self._unary(lib.bp_graph_leaky_relu, x, float(negative_slope))

    def elu(self, x: Operand, alpha: float = 1.0) -> Node:
        """x where x > 0, else alpha * (e**x - 1) (torch.nn.functional.elu)."""
        return self._unary(lib.bp_graph_elu, x, float(alpha))

    def gelu(self, x: Operand, approximate: str = "none") -> Node:
        """x times the standard normal CDF of x: exact with approximate="none" (erf), or
        PyTorch's approximate="tanh" form."""
        code = _enum_code(_GELU, GeluApproximation, approximate, "approximate")
        return self._unary(lib.bp_graph_gelu, x, code)

    def silu(self, x: Operand) -> Node:
        """x * sigmoid(x) (also called swish)."""
        return self._unary(lib.bp_graph_silu, x)

    def softplus(self, x: Operand) -> Node:
        """ln(1 + e**x) without overflow; x itself above 20 (PyTorch's threshold)."""
        return self._unary(lib.bp_graph_softplus, x)

    def sigmoid(self, x: Operand) -> Node:
        """1 / (1 + e**-x), without overflow."""
        return self._unary(lib.bp_graph_sigmoid, x)

    def tanh(self, x: Operand) -> Node:
        """tanh(x)."""
        return self._unary(lib.bp_graph_tanh, x)

    def detach(self, x: Operand) -> Node:
        """x itself with no gradient behind it (PyTorch's detach)."""
        return self._unary(lib.bp_graph_detach, x)

    # Matrix products
    def matmul(self, a: Operand, b: Operand, transpose_a: bool = False,
               transpose_b: bool = False) -> Node:
        """The matrix product of a [..., m, k] and b [..., k, n], giving [..., m, n]: leading
        axes are a batch that broadcasts as in numpy's matmul. Both need rank 2 or more. With
        transpose_a or transpose_b, that operand's last two axes are swapped first (no copy is
        made)."""
        if transpose_a or transpose_b:
            return self.matmul_transposed(a, b, transpose_a, transpose_b)
        return self._binary(lib.bp_graph_matmul, a, b)

    def matmul_transposed(self, a: Operand, b: Operand, transpose_a: bool = False,
                          transpose_b: bool = False) -> Node:
        """:meth:`matmul` with either operand's last two axes swapped first."""
        return self._binary(lib.bp_graph_matmul_transposed, a, b, int(bool(transpose_a)),
                            int(bool(transpose_b)))

    def linear(self, x: Operand, weight: Operand, bias: Optional[Operand] = None) -> Node:
        """x @ weight.T + bias, with weight [out, in] as torch.nn.functional.linear."""
        out = self.matmul_transposed(x, weight, False, True)
        return out if bias is None else self.add(out, bias)

    # Reductions
    def reduce(self, x: Operand, op: Union[str, ReduceOp], axis: AxisLike = None,
               keepdims: bool = False) -> Node:
        """Reduces x over `axis` (None: every axis; an int or a sequence of ints, negative ones
        counting from the end) with "sum", "mean", "max", "min" or "logsumexp". With keepdims
        the reduced axes stay as size 1. max and min split the gradient among ties."""
        code = _enum_code(_REDUCE_OPS, ReduceOp, op, "op")
        if axis is None:
            axes: Tuple[int, ...] = ()
        elif isinstance(axis, numbers.Integral):
            axes = (operator.index(axis),)
        else:
            axes = tuple(operator.index(a) for a in axis)
            if not axes:
                raise ValueError("axis: give at least one axis, or None for all of them")
        array = (ctypes.c_int32 * len(axes))(*axes) if axes else None
        return self._unary(lib.bp_graph_reduce, x, code, array, len(axes), int(bool(keepdims)))

    def sum(self, x: Operand, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The sum over `axis` (all axes by default: a scalar), as numpy's sum."""
        if axis is None and not keepdims:
            return self._unary(lib.bp_graph_sum, x)
        return self.reduce(x, ReduceOp.SUM, axis, keepdims)

    def mean(self, x: Operand, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The mean over `axis` (all axes by default: a scalar)."""
        if axis is None and not keepdims:
            return self._unary(lib.bp_graph_mean, x)
        return self.reduce(x, ReduceOp.MEAN, axis, keepdims)

    def max(self, x: Operand, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The maximum over `axis` (torch.amax): the gradient is split evenly among ties."""
        return self.reduce(x, ReduceOp.MAX, axis, keepdims)

    def min(self, x: Operand, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """The minimum over `axis` (torch.amin): the gradient is split evenly among ties."""
        return self.reduce(x, ReduceOp.MIN, axis, keepdims)

    def logsumexp(self, x: Operand, axis: AxisLike = None, keepdims: bool = False) -> Node:
        """log(sum(exp(x))) over `axis`, stable: the maximum is subtracted first."""
        return self.reduce(x, ReduceOp.LOGSUMEXP, axis, keepdims)

    # Layout
    def reshape(self, x: Operand, shape: ShapeLike) -> Node:
        """The same elements under `shape`; one dimension may be -1 and is then inferred."""
        (x,) = self._operands(x)
        dims = list(shape) if not isinstance(shape, numbers.Integral) else [shape]
        dims = [operator.index(d) for d in dims]
        if dims.count(-1) > 1:
            raise ValueError(f"reshape: only one dimension can be -1, got {tuple(dims)}")
        if -1 in dims:
            known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
            size = x.size
            if known == 0 or size % known:
                raise ValueError(f"reshape: cannot reshape {x.shape} into {tuple(dims)}")
            dims[dims.index(-1)] = size // known
        dims_tuple = _shape_tuple(dims)
        array = (ctypes.c_size_t * len(dims_tuple))(*dims_tuple) if dims_tuple else None
        return self._new(lib.bp_graph_reshape, x.id, array, len(dims_tuple))

    def permute(self, x: Operand, dims: Sequence[int]) -> Node:
        """Axes reordered: output axis i is input axis dims[i] (negative ones count from the
        end), as torch.permute."""
        (x,) = self._operands(x)
        rank = x.ndim
        order = tuple(operator.index(d) for d in dims)
        if len(order) != rank:
            raise ValueError(f"permute: a node of rank {rank} needs {rank} axes, got {order}")
        order = tuple(_axis(d, rank, "permute") for d in order)
        array = (ctypes.c_size_t * rank)(*order) if rank else None
        return self._new(lib.bp_graph_permute, x.id, array, rank)

    def transpose(self, x: Operand, dim0: int = -2, dim1: int = -1) -> Node:
        """x with axes dim0 and dim1 swapped, the last two by default (as torch.transpose)."""
        (x,) = self._operands(x)
        rank = x.ndim
        if rank < 2:
            raise ValueError(f"transpose needs rank 2 or more, got shape {x.shape}")
        a, b = _axis(dim0, rank, "transpose"), _axis(dim1, rank, "transpose")
        if {a, b} == {rank - 2, rank - 1}:
            return self._new(lib.bp_graph_transpose, x.id)
        order = list(range(rank))
        order[a], order[b] = order[b], order[a]
        return self.permute(x, order)

    def flatten(self, x: Operand, start_dim: int = 0, end_dim: int = -1) -> Node:
        """x with axes start_dim..end_dim (inclusive) merged into one, as torch.flatten."""
        (x,) = self._operands(x)
        shape = x.shape
        if not shape:
            return self.reshape(x, (1,))
        start, end = _axis(start_dim, len(shape), "flatten"), _axis(end_dim, len(shape),
                                                                    "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
        return self.reshape(x, shape[:start] + (merged,) + shape[end + 1:])

    def unsqueeze(self, x: Operand, axis: int) -> Node:
        """x with a new axis of size 1 at `axis` (negative counts from the end of the result)."""
        (x,) = self._operands(x)
        shape = list(x.shape)
        position = _axis(axis, len(shape) + 1, "unsqueeze")
        shape.insert(position, 1)
        return self.reshape(x, shape)

    def squeeze(self, x: Operand, axis: AxisLike = None) -> Node:
        """x without its axes of size 1 (all of them, or those in `axis`)."""
        (x,) = self._operands(x)
        shape = x.shape
        if axis is None:
            drop = {i for i, d in enumerate(shape) if d == 1}
        else:
            axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
            drop = {_axis(a, len(shape), "squeeze") for a in axes}
            for a in drop:
                if shape[a] != 1:
                    raise ValueError(f"squeeze: axis {a} of shape {shape} is not of size 1")
        return self.reshape(x, tuple(d for i, d in enumerate(shape) if i not in drop))

    def concat(self, nodes: Sequence[Operand], axis: int = 0) -> Node:
        """The nodes joined along `axis` (torch.cat); their other axes must agree."""
        self._h()
        nodes = self._operands(*nodes)
        if not nodes:
            raise ValueError("concat needs at least one node")
        array = (_capi.bp_node * len(nodes))(*(n.id for n in nodes))
        return self._new(lib.bp_graph_concat, array, len(nodes), operator.index(axis))

    def cat(self, nodes: Sequence[Operand], axis: int = 0) -> Node:
        """The same as :meth:`concat` (torch's name)."""
        return self.concat(nodes, axis)

    def stack(self, nodes: Sequence[Operand], axis: int = 0) -> Node:
        """The nodes, all of one shape, joined along a new axis (torch.stack)."""
        nodes = self._operands(*nodes)
        if not nodes:
            raise ValueError("stack needs at least one node")
        rank = nodes[0].ndim
        position = _axis(axis, rank + 1, "stack")
        return self.concat([self.unsqueeze(n, position) for n in nodes], position)

    def slice(self, x: Operand, axis: int, start: Optional[int] = None,
              end: Optional[int] = None) -> Node:
        """Elements start..end-1 along `axis`, with Python's rules for negative or missing
        bounds (``x[..., start:end]``). An empty range is an error."""
        (x,) = self._operands(x)
        shape = x.shape
        a = _axis(axis, len(shape), "slice")
        begin, stop, _ = slice(start, end).indices(shape[a])
        if stop <= begin:
            raise ValueError(f"slice: {start}:{end} along axis {axis} of shape {shape} is empty")
        return self._new(lib.bp_graph_slice, x.id, a, begin, stop)

    def gather(self, table: Operand, indices: Operand) -> Node:
        """Rows of `table` [rows, ...] picked by `indices` (whole numbers in [0, rows), any
        shape), giving [*indices.shape, ...]: an embedding lookup. Repeated indices add their
        gradients into the same row; the indices get none. An index out of range fails the
        forward pass."""
        return self._binary(lib.bp_graph_gather, table, indices)

    def getitem(self, x: Node, key: Any) -> Node:
        """``x[key]``: slices with step 1 and ints along any axes, ``None`` (a new axis) and
        ``...``; or a node or an integer array of indices, which gathers rows (axis 0)."""
        x = self._own(x)
        if isinstance(key, (Node, np.ndarray, list)):
            if isinstance(key, Node):
                return self.gather(x, key)
            indices = np.asarray(key)
            if indices.dtype.kind not in "iu":
                raise TypeError(f"index arrays must hold integers, got {indices.dtype}")
            rows = x.shape[0] if x.shape else 0
            return self.gather(x, np.where(indices < 0, indices + rows, indices))
        items = key if isinstance(key, tuple) else (key,)
        if sum(item is Ellipsis for item in items) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        shape = x.shape
        used = sum(1 for item in items if item is not None and item is not Ellipsis)
        if used > len(shape):
            raise IndexError(f"too many indices for a node of shape {shape}")
        expanded: List[Any] = []
        for item in items:
            if item is Ellipsis:
                expanded.extend([slice(None)] * (len(shape) - used))
            else:
                expanded.append(item)
        expanded.extend([slice(None)] * (len(shape) - sum(1 for i in expanded if i is not None)))
        out, final, axis = x, [], 0
        for item in expanded:
            if item is None:
                final.append(1)
                continue
            size = shape[axis]
            if isinstance(item, slice):
                if item.step not in (None, 1):
                    raise IndexError(f"only slices with step 1 are supported, got {item}")
                begin, stop, _ = item.indices(size)
                if stop <= begin:
                    raise IndexError(f"slice {item} of axis {axis} (size {size}) is empty")
                if (begin, stop) != (0, size):
                    out = self._new(lib.bp_graph_slice, out.id, axis, begin, stop)
                final.append(stop - begin)
            elif isinstance(item, (numbers.Integral, np.integer)) and not isinstance(item, bool):
                index = operator.index(item)
                if not -size <= index < size:
                    raise IndexError(f"index {index} is out of range for axis {axis} of size "
                                     f"{size}")
                index %= size
                if size != 1:
                    out = self._new(lib.bp_graph_slice, out.id, axis, index, index + 1)
            else:
                raise IndexError(f"unsupported index {item!r}: use ints, slices with step 1, "
                                 f"None, ..., or one node or integer array")
            axis += 1
        return out if tuple(final) == out.shape else self.reshape(out, tuple(final))

    # Normalization, softmax, dropout
    def softmax(self, x: Operand, axis: int = -1) -> Node:
        """Softmax along `axis`, stable for any finite input."""
        return self._unary(lib.bp_graph_softmax, x, operator.index(axis))

    def log_softmax(self, x: Operand, axis: int = -1) -> Node:
        """Log-softmax along `axis`, stable for any finite input."""
        return self._unary(lib.bp_graph_log_softmax, x, operator.index(axis))

    def layer_norm(self, x: Operand, normalized_shape: ShapeLike,
                   weight: Optional[Operand] = None, bias: Optional[Operand] = None,
                   eps: float = 1e-5) -> Node:
        """Layer normalization over the trailing axes `normalized_shape` of x, as
        torch.nn.functional.layer_norm: (x - mean) / sqrt(var + eps) with the biased variance,
        then * weight + bias when given (each shaped `normalized_shape`; one of them alone is
        fine)."""
        (x,) = self._operands(x)
        dims = _shape_tuple(normalized_shape)
        if not dims or x.shape[len(x.shape) - len(dims):] != dims or len(dims) > x.ndim:
            raise ValueError(f"layer_norm: normalized_shape {dims} must be the trailing axes "
                             f"of x, whose shape is {x.shape}")
        if weight is None and bias is None:
            w = b = NO_NODE
        else:
            weight = self.constant(dims, 1.0) if weight is None else weight
            bias = self.constant(dims, 0.0) if bias is None else bias
            w, b = (n.id for n in self._operands(weight, bias))
        return self._new(lib.bp_graph_layer_norm, x.id, len(dims), w, b, float(eps))

    def dropout(self, x: Operand, p: float = 0.5) -> Node:
        """Dropout: in training mode (:meth:`train`, the default) each element is zeroed with
        probability p and the rest scaled by 1/(1-p), from the graph's seeded generator
        (:meth:`seed`); in evaluation mode (:meth:`eval`) x passes through."""
        return self._unary(lib.bp_graph_dropout, x, float(p))

    # Losses
    def _loss(self, function: Any, prediction: Operand, target: Operand,
              reduction: Union[str, Reduction], *extra: Any) -> Node:
        code = _reduction_code(reduction)
        self._h()
        prediction, target = self._operands(prediction, target)
        return self._new(function, prediction.id, target.id, *extra, code)

    def mse_loss(self, prediction: Operand, target: Operand,
                 reduction: Union[str, Reduction] = "mean") -> Node:
        """(prediction - target)**2 reduced by "mean" (PyTorch's MSELoss), "sum" or "none"."""
        return self._loss(lib.bp_graph_mse_loss, prediction, target, reduction)

    def l1_loss(self, prediction: Operand, target: Operand,
                reduction: Union[str, Reduction] = "mean") -> Node:
        """|prediction - target| reduced by "mean", "sum" or "none" (gradient 0 where equal)."""
        return self._loss(lib.bp_graph_l1_loss, prediction, target, reduction)

    def huber_loss(self, prediction: Operand, target: Operand,
                   reduction: Union[str, Reduction] = "mean", delta: float = 1.0) -> Node:
        """PyTorch's HuberLoss: 0.5 d**2 where |d| < delta, else delta * (|d| - 0.5 delta), for
        d = prediction - target; delta > 0."""
        return self._loss(lib.bp_graph_huber_loss, prediction, target, reduction, float(delta))

    def binary_cross_entropy(self, probabilities: Operand, target: Operand,
                             reduction: Union[str, Reduction] = "mean") -> Node:
        """-(t ln p + (1 - t) ln(1 - p)) for probabilities p in [0, 1], each log clamped at -100
        as PyTorch's BCELoss."""
        return self._loss(lib.bp_graph_bce_loss, probabilities, target, reduction)

    def bce_loss(self, probabilities: Operand, target: Operand,
                 reduction: Union[str, Reduction] = "mean") -> Node:
        """The same as :meth:`binary_cross_entropy` (the C name)."""
        return self.binary_cross_entropy(probabilities, target, reduction)

    def binary_cross_entropy_with_logits(self, logits: Operand, target: Operand,
                                         reduction: Union[str, Reduction] = "mean") -> Node:
        """Binary cross-entropy from logits, fused and stable for any logit: max(x, 0) - x t +
        ln(1 + e**-|x|), gradient sigmoid(x) - t."""
        return self._loss(lib.bp_graph_bce_with_logits_loss, logits, target, reduction)

    def bce_with_logits_loss(self, logits: Operand, target: Operand,
                             reduction: Union[str, Reduction] = "mean") -> Node:
        """The same as :meth:`binary_cross_entropy_with_logits` (the C name)."""
        return self.binary_cross_entropy_with_logits(logits, target, reduction)

    def cross_entropy(self, logits: Operand, labels: Operand,
                      reduction: Union[str, Reduction] = "mean") -> Node:
        """Softmax cross-entropy of logits [batch, classes] against class indices [batch] or
        class probabilities [batch, classes] (PyTorch's cross_entropy), reduced by "mean" over
        the batch, "sum" or "none" (one loss per sample). Class indices get no gradient;
        probability targets do."""
        return self._loss(lib.bp_graph_cross_entropy, logits, labels, reduction)

    def nll_loss(self, log_probabilities: Operand, labels: Operand,
                 reduction: Union[str, Reduction] = "mean") -> Node:
        """Negative log-likelihood -logp[label] of log-probabilities [batch, classes] (from
        :meth:`log_softmax`) against class indices [batch], as PyTorch's nll_loss."""
        return self._loss(lib.bp_graph_nll_loss, log_probabilities, labels, reduction)

    # Custom ops
    def custom(self, forward: Callable[..., npt.ArrayLike],
               backward: Callable[..., Any], *inputs: Operand,
               shape: Optional[Union[ShapeLike, Callable[..., ShapeLike]]] = None,
               name: Optional[str] = None) -> Node:
        """Adds a gate written in Python, computed from `inputs` (nodes of this graph, or
        numbers and arrays that become constants).

        - ``forward(*xs)`` gets each input's values as a read-only numpy array (of the graph's
          dtype and the input's shape) and returns the output's values.
        - ``backward(grad, *xs)`` gets the upstream gradient (the output's shape) and the input
          values, and returns one gradient per input (a single array when there is one input;
          None for an input it has no gradient for). The binding adds them into the inputs'
          gradients, so a node used twice gets both contributions.
        - `shape` is the output's shape: a tuple, a function of the input shapes, or None for
          the first input's shape (a scalar when there are no inputs).

        The arrays are views of the library's buffers, valid only during the call: copy what
        you keep. An exception raised in a callback fails the :meth:`forward` or
        :meth:`backward` that ran it with :class:`~backprop.BackpropError`, whose ``__cause__``
        is the original exception. The callbacks are kept alive as long as the graph. For a
        class with a context object (like torch.autograd.Function), see
        :class:`backprop.Function`.
        """
        if not callable(forward) or not callable(backward):
            raise TypeError("custom: forward and backward must be callables")
        nodes = self._operands(*inputs)
        op_name = name or getattr(forward, "__name__", "")
        if not op_name or op_name.startswith("<"):
            op_name = "custom"  # a lambda's name says nothing
        gate = _custom.SimpleGate(forward, backward, len(nodes))
        return self._add_custom(gate, nodes, shape, op_name)

    def _add_custom(self, gate: Any, nodes: Sequence[Node], shape: Any, name: str) -> Node:
        handle = self._h()
        op, keep = _custom.make_op(gate, shape, name, self.dtype)
        ids = (_capi.bp_node * len(nodes))(*(n.id for n in nodes)) if nodes else None
        out = _capi.bp_node()
        _custom.check_call(lib.bp_graph_custom(handle, ctypes.byref(op), ids, len(nodes),
                                               ctypes.byref(out)))
        self._keepalive.append(keep)
        return Node(self, out.value)

    # Modes and randomness
    def train(self, mode: bool = True) -> Graph:
        """Training mode (the default): dropout drops. ``train(False)`` is :meth:`eval`.
        Returns the graph."""
        check(lib.bp_graph_set_training(self._h(), int(bool(mode))))
        self._training = bool(mode)
        return self

    def eval(self) -> Graph:
        """Evaluation mode: dropout passes values through. Returns the graph."""
        return self.train(False)

    @property
    def training(self) -> bool:
        """Whether the graph is in training mode (see :meth:`train`)."""
        return self._training

    def seed(self, seed: int) -> None:
        """Restarts the graph's random generator (dropout's) from `seed`, in [0, 2**64)."""
        seed = operator.index(seed)
        if not 0 <= seed < 2 ** 64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        check(lib.bp_graph_seed(self._h(), seed))

    # Running
    def set_value(self, node: Node, values: npt.ArrayLike) -> None:
        """Sets the values of a leaf from an array of exactly the node's shape.

        A C-contiguous float32 or float64 array is read where it is, without a copy, whatever
        the graph's dtype (the library converts as it reads). Anything else that holds real
        numbers is converted once to the graph's dtype. Raises TypeError for values that are
        not real numbers and ValueError for a shape other than the node's; both messages name
        the node's shape."""
        self._h()  # a closed graph fails first
        node = self._own(node)
        shape = self.shape(node)
        try:
            array = real_array(values, _BOTH_FLOATS, self.dtype, "values")
        except TypeError as error:
            raise TypeError(f"set_value: node {node.id} takes real numbers of shape {shape}; "
                            f"{error}") from None
        if array.shape != shape:
            raise ValueError(
                f"set_value: node {node.id} has shape {shape}, got an array of shape "
                f"{array.shape}")
        self._write(node, array)

    def _write(self, node: Node, array: np.ndarray) -> None:
        function = lib.bp_graph_set_value if array.dtype == np.float32 else \
            lib.bp_graph_set_value_f64
        check(function(self._h(), node.id, float_pointer(array), array.size))

    def forward(self) -> None:
        """Computes every op node from the leaves. The GIL is released meanwhile (and taken
        back while a custom op's Python callbacks run)."""
        handle = self._h()
        _custom.check_call(lib.bp_graph_forward(handle))

    def backward(self, root: Node) -> None:
        """Adds the gradient of the scalar `root` into the gradients of the nodes it depends on
        (leaves accumulate until :meth:`zero_grad`). The GIL is released meanwhile."""
        handle = self._h()
        root = self._own(root)
        _custom.check_call(lib.bp_graph_backward(handle, root.id))

    def zero_grad(self) -> None:
        """Sets every gradient to zero."""
        check(lib.bp_graph_zero_grad(self._h()))

    def _read(self, function32: Any, function64: Any, node: Node) -> npt.NDArray[Any]:
        handle = self._h()
        node = self._own(node)
        out = np.empty(self.shape(node), dtype=self.dtype)
        function = function32 if self._code == DType.FLOAT32 else function64
        check(function(handle, node.id, float_pointer(out), out.size))
        return out

    def value(self, node: Node) -> npt.NDArray[Any]:
        """A new array of the graph's dtype holding the node's values; it owns its memory."""
        return self._read(lib.bp_graph_value, lib.bp_graph_value_f64, node)

    def grad(self, node: Node) -> npt.NDArray[Any]:
        """A new array of the graph's dtype holding the node's gradient; it owns its memory."""
        return self._read(lib.bp_graph_grad, lib.bp_graph_grad_f64, node)

    def shape(self, node: Node) -> Tuple[int, ...]:
        """The node's shape as a tuple of ints."""
        handle = self._h()
        node = self._own(node)
        shape = self._shapes.get(node.id)
        if shape is None:
            dims = (ctypes.c_size_t * MAX_RANK)()
            rank = ctypes.c_size_t()
            check(lib.bp_graph_shape(handle, node.id, dims, MAX_RANK, ctypes.byref(rank)))
            shape = self._shapes[node.id] = tuple(dims[:rank.value])
        return shape

    def size(self, node: Node) -> int:
        """The node's number of elements."""
        handle = self._h()
        node = self._own(node)
        out = ctypes.c_size_t()
        check(lib.bp_graph_size(handle, node.id, ctypes.byref(out)))
        return out.value

    @property
    def node_count(self) -> int:
        """The number of nodes in the graph."""
        out = ctypes.c_size_t()
        check(lib.bp_graph_node_count(self._h(), ctypes.byref(out)))
        return out.value

    def check_gradients(self, root: Node, eps: float = 1e-6, atol: float = 1e-5,
                        rtol: float = 1e-3) -> Tuple[bool, float]:
        """Checks the gradient of the scalar `root` against central finite differences, computed
        by the library for every element of every input and parameter root depends on.

        Returns (passed, max_abs_error): passed when every |analytic - numeric| <= atol + rtol *
        |numeric| (PyTorch's gradcheck rule). Leaf values are unchanged afterwards and leaf
        gradients hold the gradient of root alone. Meant for small float64 graphs. One long
        library call: the GIL is released meanwhile.
        """
        handle = self._h()
        root = self._own(root)
        passed, error = ctypes.c_int(), ctypes.c_double()
        _custom.check_call(lib.bp_graph_check_gradients(
            handle, root.id, float(eps), float(atol), float(rtol), ctypes.byref(passed),
            ctypes.byref(error)))
        return bool(passed.value), error.value
