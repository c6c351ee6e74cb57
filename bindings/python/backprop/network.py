"""Network: a feed-forward network of dense layers, trained by backpropagation (a bp_net).

    net = Network(input_width=2, seed=1)
    net.add_dense(8, "tanh").add_dense(1, "sigmoid")
    for _ in range(1000):
        loss = net.train_step(x, y, lr=0.5)      # zero_grad, forward, backward, update
    net.predict(x)

Inputs are [batch, input_width] arrays and outputs [batch, output_width] arrays of float32. With
the "mse" loss the targets are float arrays of the output's shape; with "cross_entropy" they are
integer class labels [batch]. Shapes are checked here first (a ValueError naming the expected
shape); everything else the library checks, and its errors arrive as BackpropError subclasses.
"""

import ctypes
import operator
import weakref

import numpy as np

from . import _capi
from ._capi import Activation, Loss, NetHandle, lib
from .errors import InvalidHandleError, check
from .graph import Graph, Node, _pointer, real_array

__all__ = ["Network"]

_ACTIVATIONS = {None: Activation.NONE, "none": Activation.NONE, "relu": Activation.RELU,
                "sigmoid": Activation.SIGMOID, "tanh": Activation.TANH}
_LOSSES = {"mse": Loss.MSE, "cross_entropy": Loss.CROSS_ENTROPY}
_INT32 = np.iinfo(np.int32)


def _activation_code(activation):
    if isinstance(activation, Activation):
        return activation
    try:
        return _ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be 'relu', 'sigmoid', 'tanh' or None, "
                         f"got {activation!r}") from None


def _loss_code(loss):
    if isinstance(loss, Loss):
        return loss
    try:
        return _LOSSES[loss]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}") from None


def _count(value, what):
    """A non-negative int for a size_t argument (a negative one would wrap around in C)."""
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def _free_net(handle):
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
    like it. The network is freed by :meth:`close`, a ``with`` block or garbage collection.
    """

    def __init__(self, input_width, seed=0, loss="mse"):
        input_width = _count(input_width, "input_width")
        seed = operator.index(seed)
        if not 0 <= seed < 2 ** 64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        loss_code = _loss_code(loss)
        handle = NetHandle()
        check(lib.bp_net_create(input_width, seed, ctypes.byref(handle)))
        self._handle = handle
        self._finalizer = weakref.finalize(self, _free_net, handle)
        self._graph_ref = None
        self._batch = None  # batch size of the latest forward or predict
        self._loss = Loss.MSE
        self.set_loss(loss_code)

    # Lifetime
    def close(self):
        """Frees the network and its graph. Closing twice is harmless."""
        if self._handle is None:
            return
        status = _free_net(self._handle)
        if status == _capi.Status.BUSY:
            check(status)  # in use by another thread: stays open
        self._finalizer.detach()
        self._handle = None
        check(status)

    @property
    def closed(self):
        """Whether the network has been freed."""
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<Network closed>"
        return (f"<Network {self.input_width} -> {self.output_width}, {self.layer_count} layers, "
                f"{self.parameter_count} parameters, loss {self.loss}>")

    def _h(self):
        if self._handle is None:
            raise InvalidHandleError("the Network is closed")
        return self._handle

    # Building
    def add_dense(self, units, activation="relu"):
        """Appends a dense layer y = activation(x W^T + b) of `units` outputs. Returns self."""
        code = _activation_code(activation)
        check(lib.bp_net_add_dense(self._h(), _count(units, "units"), code))
        return self

    def set_loss(self, loss):
        """Chooses the loss: "mse" or "cross_entropy". Returns self."""
        code = _loss_code(loss)
        check(lib.bp_net_set_loss(self._h(), code))
        self._loss = code
        return self

    @property
    def loss(self):
        """The loss's name: "mse" or "cross_entropy"."""
        return {Loss.MSE: "mse", Loss.CROSS_ENTROPY: "cross_entropy"}[self._loss]

    def _size(self, function):
        out = ctypes.c_size_t()
        check(function(self._h(), ctypes.byref(out)))
        return out.value

    @property
    def input_width(self):
        """Features per sample."""
        return self._size(lib.bp_net_input_width)

    @property
    def output_width(self):
        """Outputs per sample: the last layer's units (the input width while there are none)."""
        return self._size(lib.bp_net_output_width)

    @property
    def layer_count(self):
        """The number of dense layers."""
        return self._size(lib.bp_net_layer_count)

    @property
    def parameter_count(self):
        """The number of weights and biases."""
        return self._size(lib.bp_net_parameter_count)

    # Checking arrays
    def _inputs(self, x):
        width = self.input_width
        x = real_array(x, np.float32, "inputs")
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"expected inputs of shape (batch, {width}), got shape {x.shape}")
        return x

    def _targets(self, y, batch):
        width = self.output_width
        y = real_array(y, np.float32, "targets")
        if y.ndim != 2 or y.shape[1] != width or (batch is not None and y.shape[0] != batch):
            expected = "batch" if batch is None else batch
            raise ValueError(f"expected targets of shape ({expected}, {width}), "
                             f"got shape {y.shape}")
        return y

    def _labels(self, labels, batch):
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
        if labels.ndim != 1 or (batch is not None and labels.shape[0] != batch):
            expected = "batch" if batch is None else batch
            raise ValueError(f"expected labels of shape ({expected},), got shape {labels.shape}")
        if labels.size and (labels.min() < _INT32.min or labels.max() > _INT32.max):
            raise ValueError("labels must fit in int32")
        return np.ascontiguousarray(labels, dtype=np.int32)

    # Training
    def _run(self, function, x):
        handle = self._h()
        x = self._inputs(x)
        out = np.empty((x.shape[0], self.output_width), dtype=np.float32)
        check(function(handle, x.shape[0], _pointer(x), x.size, _pointer(out), out.size))
        self._batch = x.shape[0]
        return out

    def forward(self, x):
        """Runs a minibatch [batch, input_width] forward, keeping what backward needs; returns the
        outputs [batch, output_width] (logits for cross-entropy)."""
        return self._run(lib.bp_net_forward, x)

    def predict(self, x):
        """Like forward, for inference: the next backward needs a new forward."""
        return self._run(lib.bp_net_predict, x)

    def backward(self, targets):
        """Backpropagates the loss of the latest forward against `targets` (float targets
        [batch, output_width] for "mse", integer labels [batch] for "cross_entropy"), adding into
        the parameter gradients. Returns the loss."""
        handle = self._h()
        loss = ctypes.c_float()
        if self._loss == Loss.CROSS_ENTROPY:
            labels = self._labels(targets, self._batch)
            check(lib.bp_net_backward_labels(
                handle, labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), labels.size,
                ctypes.byref(loss)))
        else:
            y = self._targets(targets, self._batch)
            check(lib.bp_net_backward(handle, _pointer(y), y.size, ctypes.byref(loss)))
        return loss.value

    def update(self, lr):
        """Gradient descent: w -= lr * grad(w) for every parameter. Gradients are kept."""
        check(lib.bp_net_update(self._h(), float(lr)))

    def zero_grad(self):
        """Sets every parameter gradient to zero."""
        check(lib.bp_net_zero_grad(self._h()))

    def train_step(self, x, y, lr):
        """zero_grad, forward, backward and update in one call; returns the loss before the
        update. On failure the weights are unchanged."""
        handle = self._h()
        x = self._inputs(x)
        batch = x.shape[0]
        loss = ctypes.c_float()
        if self._loss == Loss.CROSS_ENTROPY:
            labels = self._labels(y, batch)
            check(lib.bp_net_train_step_labels(
                handle, batch, _pointer(x), x.size,
                labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), labels.size, float(lr),
                ctypes.byref(loss)))
        else:
            targets = self._targets(y, batch)
            check(lib.bp_net_train_step(handle, batch, _pointer(x), x.size, _pointer(targets),
                                        targets.size, float(lr), ctypes.byref(loss)))
        self._batch = batch
        return loss.value

    # Parameters
    @property
    def graph(self):
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

    def layer_nodes(self, layer):
        """The weight [units, in] and bias [units] nodes of dense layer `layer` in :attr:`graph`."""
        handle = self._h()
        weight, bias = _capi.bp_node(), _capi.bp_node()
        check(lib.bp_net_layer_nodes(handle, _count(layer, "layer"), ctypes.byref(weight),
                                     ctypes.byref(bias)))
        graph = self.graph
        return Node(graph, weight.value), Node(graph, bias.value)

    def layer_parameters(self, layer):
        """Copies of the weight [units, in] and bias [units] of dense layer `layer` (0-based)."""
        weight, bias = self.layer_nodes(layer)
        return weight.value, bias.value

    def layer_gradients(self, layer):
        """Copies of the gradients of the weight and bias of dense layer `layer`."""
        weight, bias = self.layer_nodes(layer)
        return weight.grad, bias.grad
