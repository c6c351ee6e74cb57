"""Network: a feed-forward network of dense layers, trained by backpropagation (a bp_net).

    net = Network(input_width=2, seed=1)
    net.add_dense(8, "tanh").add_dense(1, "sigmoid")
    for _ in range(1000):
        loss = net.train_step(x, y, lr=0.5)      # zero_grad, forward, backward, update
    net.predict(x)

Inputs are [batch, input_width] arrays and outputs [batch, output_width] arrays of float32. With
the "mse" loss the targets are float arrays of the output's shape; with "cross_entropy" they are
integer class labels [batch]. A C-contiguous float32 array (int32 for labels) is read by the
library where it is, without a copy; anything else holding real numbers (integers for labels) is
converted once (see :mod:`backprop._arrays`). Outputs are new arrays that own their memory.

Shapes and element types are checked here first (ValueError or TypeError naming the expected
shape); everything else the library checks, and its errors arrive as BackpropError subclasses.
ctypes releases the GIL during every library call, so a long forward or training step lets other
Python threads run meanwhile.
"""

from __future__ import annotations

import ctypes
import operator
import weakref
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _capi
from ._arrays import float_pointer, int32_pointer, label_array, real_array
from ._capi import Activation, Loss, NetHandle, lib
from ._lifetime import Owned
from .errors import InvalidHandleError, check
from .graph import Graph, Node

__all__ = ["Network", "ActivationLike", "LossLike"]

#: An activation: "relu", "sigmoid", "tanh", "none" or None, or an Activation.
ActivationLike = Optional[Union[str, Activation]]
#: A loss: "mse" or "cross_entropy", or a Loss.
LossLike = Union[str, Loss]

_ACTIVATIONS = {None: Activation.NONE, "none": Activation.NONE, "relu": Activation.RELU,
                "sigmoid": Activation.SIGMOID, "tanh": Activation.TANH}
_LOSSES = {"mse": Loss.MSE, "cross_entropy": Loss.CROSS_ENTROPY}
_FLOAT32 = (np.dtype(np.float32),)


def _activation_code(activation: ActivationLike) -> Activation:
    if isinstance(activation, Activation):
        return activation
    try:
        return _ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be 'relu', 'sigmoid', 'tanh' or None, "
                         f"got {activation!r}") from None


def _loss_code(loss: LossLike) -> Loss:
    if isinstance(loss, Loss):
        return loss
    try:
        return _LOSSES[loss]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}") from None


def _count(value: int, what: str) -> int:
    """A non-negative int for a size_t argument (a negative one would wrap around in C)."""
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def _free_net(handle: Any) -> Optional[int]:
    """Frees a network handle; returns the status. See graph._free_graph."""
    try:
        return lib.bp_net_free(handle)
    except Exception:  # pragma: no cover - interpreter shutdown
        return None


class Network:
    """A feed-forward network (a bp_net).

    Args:
        input_width: features per sample.
        seed: seeds every random choice (weight initialization): same seed, same network.
        loss: "mse" (the default) or "cross_entropy".

    Weights are stored as PyTorch's nn.Linear does ([out, in] and a bias [out]) and initialized
    like it. The network is freed by :meth:`close`, a ``with`` block, garbage collection or
    interpreter exit, whichever comes first, and exactly once.

    One network may be used from one thread at a time; a call made while another thread is
    inside the library with it raises :class:`~backprop.BusyError`. The GIL is released during
    library calls, so distinct networks train in parallel from Python threads.
    """

    def __init__(self, input_width: int, seed: int = 0, loss: LossLike = "mse") -> None:
        input_width = _count(input_width, "input_width")
        seed = operator.index(seed)
        if not 0 <= seed < 2 ** 64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        loss_code = _loss_code(loss)
        handle = NetHandle()
        check(lib.bp_net_create(input_width, seed, ctypes.byref(handle)))
        self._box = Owned(handle, _free_net)
        self._finalizer = weakref.finalize(self, self._box.release)
        self._graph_ref: Optional[weakref.ref[Graph]] = None
        self._batch: Optional[int] = None  # batch size of the latest forward or predict
        self._loss = Loss.MSE
        self.set_loss(loss_code)

    # Lifetime
    def close(self) -> None:
        """Frees the network and its graph. Closing twice is harmless. Raises
        :class:`~backprop.BusyError` (and stays open) while another thread is using it."""
        status = self._box.release()
        if status is None:
            return  # closed already (or freed at exit)
        if status == _capi.Status.BUSY:
            check(status)  # in use by another thread: stays open
        self._finalizer.detach()
        check(status)

    @property
    def closed(self) -> bool:
        """Whether the network has been freed."""
        return self._box.handle is None

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<Network closed>"
        return (f"<Network {self.input_width} -> {self.output_width}, {self.layer_count} layers, "
                f"{self.parameter_count} parameters, loss {self.loss}>")

    def _h(self) -> Any:
        handle = self._box.handle
        if handle is None:
            raise InvalidHandleError("the Network is closed")
        return handle

    # Building
    def add_dense(self, units: int, activation: ActivationLike = "relu") -> Network:
        """Appends a dense layer y = activation(x W^T + b) of `units` outputs. Returns self."""
        code = _activation_code(activation)
        check(lib.bp_net_add_dense(self._h(), _count(units, "units"), code))
        return self

    def set_loss(self, loss: LossLike) -> Network:
        """Chooses the loss: "mse" or "cross_entropy". Returns self."""
        code = _loss_code(loss)
        check(lib.bp_net_set_loss(self._h(), code))
        self._loss = code
        return self

    @property
    def loss(self) -> str:
        """The loss's name: "mse" or "cross_entropy"."""
        return {Loss.MSE: "mse", Loss.CROSS_ENTROPY: "cross_entropy"}[self._loss]

    def _size(self, function: Any) -> int:
        out = ctypes.c_size_t()
        check(function(self._h(), ctypes.byref(out)))
        return out.value

    @property
    def input_width(self) -> int:
        """Features per sample."""
        return self._size(lib.bp_net_input_width)

    @property
    def output_width(self) -> int:
        """Outputs per sample: the last layer's units (the input width while there are none)."""
        return self._size(lib.bp_net_output_width)

    @property
    def layer_count(self) -> int:
        """The number of dense layers."""
        return self._size(lib.bp_net_layer_count)

    @property
    def parameter_count(self) -> int:
        """The number of weights and biases."""
        return self._size(lib.bp_net_parameter_count)

    # Checking arrays
    def _inputs(self, x: npt.ArrayLike) -> np.ndarray:
        width = self.input_width
        expected = f"expected inputs of shape (batch, {width})"
        try:
            x = real_array(x, _FLOAT32, np.dtype(np.float32), "inputs")
        except TypeError as error:
            raise TypeError(f"{expected}; {error}") from None
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{expected}, got shape {x.shape}")
        return x

    def _targets(self, y: npt.ArrayLike, batch: Optional[int]) -> np.ndarray:
        width = self.output_width
        expected = f"expected targets of shape ({'batch' if batch is None else batch}, {width})"
        try:
            y = real_array(y, _FLOAT32, np.dtype(np.float32), "targets")
        except TypeError as error:
            raise TypeError(f"{expected}; {error}") from None
        if y.ndim != 2 or y.shape[1] != width or (batch is not None and y.shape[0] != batch):
            raise ValueError(f"{expected}, got shape {y.shape}")
        return y

    def _labels(self, labels: npt.ArrayLike, batch: Optional[int]) -> np.ndarray:
        expected = f"expected labels of shape ({'batch' if batch is None else batch},)"
        try:
            labels = label_array(labels, "labels")
        except TypeError as error:
            raise TypeError(f"{expected}; {error}") from None
        if labels.ndim != 1 or (batch is not None and labels.shape[0] != batch):
            raise ValueError(f"{expected}, got shape {labels.shape}")
        return labels

    # Training
    def _run(self, function: Callable[..., int], x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        handle = self._h()
        x = self._inputs(x)
        out = np.empty((x.shape[0], self.output_width), dtype=np.float32)
        check(function(handle, x.shape[0], float_pointer(x), x.size, float_pointer(out),
                       out.size))
        self._batch = x.shape[0]
        return out

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Runs a minibatch [batch, input_width] forward, keeping what backward needs; returns a
        new array of the outputs [batch, output_width] (logits for cross-entropy)."""
        return self._run(lib.bp_net_forward, x)

    def predict(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Like forward, for inference: the next backward needs a new forward."""
        return self._run(lib.bp_net_predict, x)

    def backward(self, targets: npt.ArrayLike) -> float:
        """Backpropagates the loss of the latest forward against `targets` (float targets
        [batch, output_width] for "mse", integer labels [batch] for "cross_entropy"), adding into
        the parameter gradients. Returns the loss."""
        handle = self._h()
        loss = ctypes.c_float()
        if self._loss == Loss.CROSS_ENTROPY:
            labels = self._labels(targets, self._batch)
            check(lib.bp_net_backward_labels(handle, int32_pointer(labels), labels.size,
                                             ctypes.byref(loss)))
        else:
            y = self._targets(targets, self._batch)
            check(lib.bp_net_backward(handle, float_pointer(y), y.size, ctypes.byref(loss)))
        return loss.value

    def update(self, lr: float) -> None:
        """Gradient descent: w -= lr * grad(w) for every parameter. Gradients are kept."""
        check(lib.bp_net_update(self._h(), float(lr)))

    def zero_grad(self) -> None:
        """Sets every parameter gradient to zero."""
        check(lib.bp_net_zero_grad(self._h()))

    def train_step(self, x: npt.ArrayLike, y: npt.ArrayLike, lr: float) -> float:
        """zero_grad, forward, backward and update in one library call; returns the loss before
        the update. `y` is as for :meth:`backward`. On failure the weights are unchanged."""
        handle = self._h()
        x = self._inputs(x)
        batch = x.shape[0]
        loss = ctypes.c_float()
        if self._loss == Loss.CROSS_ENTROPY:
            labels = self._labels(y, batch)
            check(lib.bp_net_train_step_labels(
                handle, batch, float_pointer(x), x.size, int32_pointer(labels), labels.size,
                float(lr), ctypes.byref(loss)))
        else:
            targets = self._targets(y, batch)
            check(lib.bp_net_train_step(handle, batch, float_pointer(x), x.size,
                                        float_pointer(targets), targets.size, float(lr),
                                        ctypes.byref(loss)))
        self._batch = batch
        return loss.value

    # Parameters
    @property
    def graph(self) -> Graph:
        """The graph the network is built on: a borrowed :class:`Graph` (it keeps the network
        alive and never frees it) for reading parameters and gradients, or for nodes of your own
        on top of the network's (a regularizer, say); the network's own calls compute only its
        nodes."""
        graph = self._graph_ref() if self._graph_ref is not None else None
        if graph is None or graph.closed:
            handle = _capi.GraphHandle()
            check(lib.bp_net_graph(self._h(), ctypes.byref(handle)))
            graph = Graph._borrow(handle, owner=self)
            self._graph_ref = weakref.ref(graph)
        return graph

    def layer_nodes(self, layer: int) -> Tuple[Node, Node]:
        """The weight [units, in] and bias [units] nodes of dense layer `layer` in :attr:`graph`."""
        handle = self._h()
        weight, bias = _capi.bp_node(), _capi.bp_node()
        check(lib.bp_net_layer_nodes(handle, _count(layer, "layer"), ctypes.byref(weight),
                                     ctypes.byref(bias)))
        graph = self.graph
        return Node(graph, weight.value), Node(graph, bias.value)

    def layer_parameters(self, layer: int) -> Tuple[npt.NDArray[np.float32],
                                                     npt.NDArray[np.float32]]:
        """Copies of the weight [units, in] and bias [units] of dense layer `layer` (0-based)."""
        weight, bias = self.layer_nodes(layer)
        return weight.value, bias.value

    def layer_gradients(self, layer: int) -> Tuple[npt.NDArray[np.float32],
                                                    npt.NDArray[np.float32]]:
        """Copies of the gradients of the weight and bias of dense layer `layer`."""
        weight, bias = self.layer_nodes(layer)
        return weight.grad, bias.grad
