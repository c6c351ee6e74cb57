"""Custom gates as classes, in the manner of torch.autograd.Function.

    class Cube(backprop.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * grad

    y = Cube.apply(node)          # a new node of node's graph

``forward`` and ``backward`` receive and return numpy arrays; under the hood this is
:meth:`backprop.Graph.custom` (bp_graph_custom). Each node made by ``apply`` has its own context
object, kept between its forward and backward passes:

- ``ctx.inputs``: the input values, read-only views valid during the callback (backward too).
- ``ctx.output``: the output's values, during backward.
- ``ctx.needs_input_grad``: one bool per input, during backward.
- ``ctx.save_for_backward(*arrays)`` / ``ctx.saved_tensors``: copies kept for backward.
- any attribute you set.

The output's shape is that of the first input unless the class defines a static method
``shape(*input_shapes)`` returning it. An exception in a callback fails the graph's forward or
backward call with :class:`~backprop.BackpropError`, whose ``__cause__`` is the exception.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from . import _custom
from .graph import Node, Operand

__all__ = ["Function", "FunctionContext"]


class FunctionContext:
    """What a :class:`Function`'s forward and backward share for one node (``ctx``)."""

    inputs: Tuple[np.ndarray, ...]
    """The input values: read-only views, valid during the current callback."""
    output: Optional[np.ndarray]
    """The output values during backward (None during forward)."""
    needs_input_grad: Tuple[bool, ...]
    """During backward: whether each input wants a gradient."""

    def __init__(self) -> None:
        self.inputs = ()
        self.output = None
        self.needs_input_grad = ()
        self._saved: Tuple[np.ndarray, ...] = ()

    def save_for_backward(self, *arrays: Any) -> None:
        """Keeps copies of `arrays` (numpy arrays or numbers) for backward."""
        self._saved = tuple(np.array(a, copy=True) for a in arrays)

    @property
    def saved_tensors(self) -> Tuple[np.ndarray, ...]:
        """What :meth:`save_for_backward` kept."""
        return self._saved


class _FunctionGate:
    def __init__(self, function: type, ctx: FunctionContext) -> None:
        self.function = function
        self.ctx = ctx

    def forward(self, inputs: List[np.ndarray], output: np.ndarray) -> None:
        ctx = self.ctx
        ctx.inputs, ctx.output, ctx.needs_input_grad = tuple(inputs), None, ()
        try:
            _custom._store(output, self.function.forward(ctx, *inputs),
                           f"{self.function.__name__}.forward")
        finally:
            ctx.inputs = ()

    def backward(self, inputs: List[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 grads: List[Optional[np.ndarray]]) -> None:
        if all(view is None for view in grads):
            return
        ctx = self.ctx
        ctx.inputs, ctx.output = tuple(inputs), output
        ctx.needs_input_grad = tuple(view is not None for view in grads)
        try:
            result = self.function.backward(ctx, grad)
            _custom.add_gradients(result, grads, [x.shape for x in inputs],
                                  f"{self.function.__name__}.backward")
        finally:
            ctx.inputs, ctx.output = (), None


class Function:
    """Base class of custom gates: define static ``forward(ctx, *inputs)`` and
    ``backward(ctx, grad_output)`` (and optionally ``shape(*input_shapes)``), then call
    :meth:`apply` with nodes. See the module's documentation."""

    @staticmethod
    def forward(ctx: FunctionContext, *inputs: np.ndarray) -> Any:
        """Returns the output's values from the input values (numpy arrays)."""
        raise NotImplementedError("a Function subclass defines forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: FunctionContext, grad_output: np.ndarray) -> Any:
        """Returns one gradient per input (a single array for one input; None for none), from
        the upstream gradient."""
        raise NotImplementedError("a Function subclass defines backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *inputs: Operand, name: Optional[str] = None) -> Node:
        """Adds the gate to the graph of its node inputs (numbers and arrays among the inputs
        become constants of that graph); returns the new node."""
        nodes = [x for x in inputs if isinstance(x, Node)]
        if not nodes:
            raise TypeError(f"{cls.__name__}.apply needs at least one Node input")
        graph = nodes[0].graph
        operands = graph._operands(*inputs)
        shape = getattr(cls, "shape", None)
        gate = _FunctionGate(cls, FunctionContext())
        return graph._add_custom(gate, operands, shape, name or cls.__name__)
