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

Values go in as numpy arrays or anything numpy can turn into an array of real numbers. A float32
or float64 array that is C-contiguous is read by the library where it is, without a copy (the
library converts to the graph's dtype as it reads); anything else is converted once into a new
array of the graph's dtype (see :mod:`backprop._arrays` for the exact rule). Values and
gradients come out as new numpy arrays of the node's shape that own their memory.

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
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _capi
from ._arrays import float_pointer, real_array
from ._lifetime import Owned
from ._capi import MAX_RANK, DType, GraphHandle, Reduction, lib
from .errors import InvalidHandleError, check

__all__ = ["Graph", "Node", "DTypeLike", "ShapeLike", "Operand"]

#: What names an element type: "float32", "float64", a numpy dtype or type, or a DType.
DTypeLike = Union[str, np.dtype, type, DType]
#: A shape: a sequence of non-negative ints, or one int n for a vector (n,).
ShapeLike = Union[int, Sequence[int]]
#: An operand of an op: a Node of the same graph, or values that become a new constant.
Operand = Union["Node", float, npt.ArrayLike]

_BOTH_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_NUMPY_DTYPES = {DType.FLOAT32: np.dtype(np.float32), DType.FLOAT64: np.dtype(np.float64)}
_REDUCTIONS = {"mean": Reduction.MEAN, "sum": Reduction.SUM, "none": Reduction.NONE}


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


def _free_graph(handle: Any) -> Optional[int]:
    """Frees a graph handle; returns the status. Runs from close(), from garbage collection or at
    interpreter exit, when the library may already be going away: then it does nothing."""
    try:
        return lib.bp_graph_free(handle)
    except Exception:  # pragma: no cover - interpreter shutdown
        return None


class Node:
    """A node of a :class:`Graph`: the graph and the node's id, nothing more.

    Nodes support ``+ - * / @`` and unary ``-`` with other nodes of the same graph, Python
    numbers and numpy arrays (which become constants), and offer the graph's unary ops and
    reductions as methods. ``.value``, ``.grad`` and ``.shape`` read from the graph.
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

    def __hash__(self) -> int:
        return hash((id(self.graph), self.id))

    # Reading
    @property
    def shape(self) -> Tuple[int, ...]:
        """The node's shape, a tuple of ints (``()`` for a scalar)."""
        return self.graph.shape(self)

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

    # Operators
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

    def __matmul__(self, other: Operand) -> Node:
        return self.graph.matmul(self, other)

    def __rmatmul__(self, other: Operand) -> Node:
        return self.graph.matmul(other, self)

    def __neg__(self) -> Node:
        return self.graph.neg(self)

    # Unary ops and reductions as methods
    def exp(self) -> Node:
        """e**self, as :meth:`Graph.exp`."""
        return self.graph.exp(self)

    def log(self) -> Node:
        """The natural logarithm, as :meth:`Graph.log`."""
        return self.graph.log(self)

    def relu(self) -> Node:
        """max(self, 0), as :meth:`Graph.relu`."""
        return self.graph.relu(self)

    def sigmoid(self) -> Node:
        """1 / (1 + e**-self), as :meth:`Graph.sigmoid`."""
        return self.graph.sigmoid(self)

    def tanh(self) -> Node:
        """tanh(self), as :meth:`Graph.tanh`."""
        return self.graph.tanh(self)

    def sum(self) -> Node:
        """The sum of all elements (a scalar), as :meth:`Graph.sum`."""
        return self.graph.sum(self)

    def mean(self) -> Node:
        """The mean of all elements (a scalar), as :meth:`Graph.mean`."""
        return self.graph.mean(self)


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

    def _operands(self, *operands: Operand) -> Sequence[Node]:
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
    def _leaf(self, function: Any, shape: ShapeLike) -> Node:
        handle = self._h()
        dims = _shape_tuple(shape)
        out = _capi.bp_node()
        array = (ctypes.c_size_t * len(dims))(*dims) if dims else None
        check(function(handle, array, len(dims), ctypes.byref(out)))
        self._shapes[out.value] = dims
        return Node(self, out.value)

    def input(self, shape: ShapeLike) -> Node:
        """Adds an input of the given shape: a leaf whose value you set and whose gradient is
        computed. Starts at zero."""
        return self._leaf(lib.bp_graph_input, shape)

    def parameter(self, shape: ShapeLike) -> Node:
        """Adds a parameter: like an input, and what an optimizer updates. Starts at zero."""
        return self._leaf(lib.bp_graph_parameter, shape)

    def constant(self, shape: ShapeLike) -> Node:
        """Adds a constant: a leaf whose value you set, with no gradient. Starts at zero."""
        return self._leaf(lib.bp_graph_constant, shape)

    # Ops
    def _binary(self, function: Any, a: Operand, b: Operand) -> Node:
        handle = self._h()
        a, b = self._operands(a, b)
        out = _capi.bp_node()
        check(function(handle, a.id, b.id, ctypes.byref(out)))
        return Node(self, out.value)

    def _unary(self, function: Any, x: Node) -> Node:
        handle = self._h()
        x = self._own(x)
        out = _capi.bp_node()
        check(function(handle, x.id, ctypes.byref(out)))
        return Node(self, out.value)

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

    def maximum(self, a: Operand, b: Operand) -> Node:
        """The larger of a and b elementwise; on a tie the gradient is split evenly."""
        return self._binary(lib.bp_graph_maximum, a, b)

    def minimum(self, a: Operand, b: Operand) -> Node:
        """The smaller of a and b elementwise; on a tie the gradient is split evenly."""
        return self._binary(lib.bp_graph_minimum, a, b)

    def neg(self, x: Node) -> Node:
        """-x."""
        return self._unary(lib.bp_graph_neg, x)

    def exp(self, x: Node) -> Node:
        """e**x."""
        return self._unary(lib.bp_graph_exp, x)

    def log(self, x: Node) -> Node:
        """The natural logarithm (-inf or NaN for x <= 0)."""
        return self._unary(lib.bp_graph_log, x)

    def relu(self, x: Node) -> Node:
        """max(x, 0), with gradient 0 at 0."""
        return self._unary(lib.bp_graph_relu, x)

    def sigmoid(self, x: Node) -> Node:
        """1 / (1 + e**-x)."""
        return self._unary(lib.bp_graph_sigmoid, x)

    def tanh(self, x: Node) -> Node:
        """tanh(x)."""
        return self._unary(lib.bp_graph_tanh, x)

    def matmul(self, a: Operand, b: Operand) -> Node:
        """The matrix product of a [..., m, k] and b [..., k, n], giving [..., m, n]: leading
        axes are a batch that broadcasts as in numpy's matmul. Both need rank 2 or more."""
        return self._binary(lib.bp_graph_matmul, a, b)

    def sum(self, x: Node) -> Node:
        """The sum of all elements: a scalar."""
        return self._unary(lib.bp_graph_sum, x)

    def mean(self, x: Node) -> Node:
        """The mean of all elements: a scalar."""
        return self._unary(lib.bp_graph_mean, x)

    def mse_loss(self, prediction: Operand, target: Operand,
                 reduction: Union[str, Reduction] = "mean") -> Node:
        """(prediction - target)**2 reduced by "mean" (PyTorch's MSELoss), "sum" or "none"."""
        code = _reduction_code(reduction)
        handle = self._h()
        prediction, target = self._operands(prediction, target)
        out = _capi.bp_node()
        check(lib.bp_graph_mse_loss(handle, prediction.id, target.id, code, ctypes.byref(out)))
        return Node(self, out.value)

    def cross_entropy(self, logits: Operand, labels: Operand,
                      reduction: Union[str, Reduction] = "mean") -> Node:
        """Softmax cross-entropy of logits [batch, classes] against class indices [batch] or
        class probabilities [batch, classes] (PyTorch's cross_entropy), reduced by "mean" over
        the batch, "sum" or "none" (one loss per sample). Class indices get no gradient;
        probability targets do."""
        code = _reduction_code(reduction)
        handle = self._h()
        logits, labels = self._operands(logits, labels)
        out = _capi.bp_node()
        check(lib.bp_graph_cross_entropy(handle, logits.id, labels.id, code, ctypes.byref(out)))
        return Node(self, out.value)

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
        """Computes every op node from the leaves. The GIL is released meanwhile."""
        check(lib.bp_graph_forward(self._h()))

    def backward(self, root: Node) -> None:
        """Adds the gradient of the scalar `root` into the gradients of the nodes it depends on
        (leaves accumulate until :meth:`zero_grad`). The GIL is released meanwhile."""
        handle = self._h()
        root = self._own(root)
        check(lib.bp_graph_backward(handle, root.id))

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
        check(lib.bp_graph_check_gradients(handle, root.id, float(eps), float(atol), float(rtol),
                                           ctypes.byref(passed), ctypes.byref(error)))
        return bool(passed.value), error.value
