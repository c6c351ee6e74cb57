"""Network: a feed-forward network trained by backpropagation (a bp_net).

    net = Network(input_width=2, seed=1)
    net.add_dense(8, "tanh").add_dense(1, "sigmoid")
    for _ in range(1000):
        loss = net.train_step(x, y, lr=0.5)      # zero_grad, forward, backward, update
    net.predict(x)

    history = net.fit(x, y, epochs=50, batch_size=32, validation_split=0.2)  # the library's loop
    net.evaluate(x, y)                                                       # (loss, accuracy)
    net.save("model.safetensors")

Layers are dense (with an activation and an initializer), dropout and layer normalization; the
network keeps them as torch.nn-style modules (:attr:`Network.modules`), so parameters are named
as in torch (``state_dict()`` gives "0.weight", "0.bias", ...). :class:`backprop.nn.Sequential`
builds a Network from such modules.

Inputs are [batch, input_width] arrays and outputs [batch, output_width] arrays of float32. With
the "mse" loss the targets are float arrays of the output's shape; with "cross_entropy" they are
integer class labels [batch]. A C-contiguous float32 array (int32 for labels) is read by the
library where it is, without a copy; anything else holding real numbers (integers for labels) is
converted once (see :mod:`backprop._arrays`). Outputs are new arrays that own their memory.

Shapes and element types are checked here first (ValueError or TypeError naming the expected
shape); everything else the library checks, and its errors arrive as BackpropError subclasses.
ctypes releases the GIL during every library call, so a long forward, training step or fit lets
other Python threads run meanwhile (fit takes it back for its epoch callback).
"""

from __future__ import annotations

import collections
import ctypes
import operator
import os
import weakref
from pathlib import Path
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import numpy.typing as npt

from . import _capi, _checkpoint
from ._arrays import float_pointer, int32_pointer, label_array, real_array
from ._capi import Activation, DType, Loss, NetHandle, OptimizerHandle, lib
from ._lifetime import Owned
from ._modules import (ACTIVATION_MODULES, Dropout, InitLike, LayerNorm, Linear, Module,
                       initializer_code)
from ._training import Callback, History, ProgressBar, epoch_logs, run_callbacks
from .errors import InvalidHandleError, check
from .graph import DTypeLike, Graph, Node, _dtype_code

__all__ = ["Network", "ActivationLike", "LossLike", "IncompatibleKeys", "ParameterList"]

#: An activation: "relu", "sigmoid", "tanh", "none" or None, or an Activation.
ActivationLike = Optional[Union[str, Activation]]
#: A loss: "mse" or "cross_entropy", a Loss, or backprop.nn.MSELoss() / CrossEntropyLoss().
LossLike = Union[str, Loss, Any]
#: A path to a checkpoint file.
PathLike = Union[str, "os.PathLike[str]"]

_ACTIVATIONS = {None: Activation.NONE, "none": Activation.NONE, "relu": Activation.RELU,
                "sigmoid": Activation.SIGMOID, "tanh": Activation.TANH}
_ACTIVATION_NAMES = {code: name for name, code in _ACTIVATIONS.items() if name}
_LOSSES = {"mse": Loss.MSE, "cross_entropy": Loss.CROSS_ENTROPY}
_LOSS_NAMES = {Loss.MSE: "mse", Loss.CROSS_ENTROPY: "cross_entropy"}
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
    code = getattr(loss, "loss", None)
    if isinstance(code, Loss):
        return code
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


def _seed(seed: int) -> int:
    seed = operator.index(seed)
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def _free_net(handle: Any) -> Optional[int]:
    """Frees a network handle; returns the status. See graph._free_graph."""
    try:
        return lib.bp_net_free(handle)
    except Exception:  # pragma: no cover - interpreter shutdown
        return None


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` left out, as torch reports it."""

    missing_keys: List[str]
    unexpected_keys: List[str]


class ParameterList(List[npt.NDArray[Any]]):
    """The list ``Network.parameters()`` returns: copies of the parameters, in order. It also
    names its network, so that ``SGD(model.parameters(), lr=0.1)`` and
    ``clip_grad_norm_(model.parameters(), 1.0)`` work as in torch."""

    network: Any = None


class Network:
    """A feed-forward network (a bp_net).

    Args:
        input_width: features per sample.
        seed: seeds every random choice (weight initialization, dropout, the order of fit's
            minibatches): same seed, same network, same training.
        loss: "mse" (the default) or "cross_entropy".
        dtype: "float32" (the default) or "float64" (for gradient checks through
            :attr:`graph`; data still crosses as float32).

    Weights are stored as PyTorch's nn.Linear does ([out, in] and a bias [out]) and initialized
    like it. The network is freed by :meth:`close`, a ``with`` block, garbage collection or
    interpreter exit, whichever comes first, and exactly once. Networks pickle (and
    ``copy.deepcopy``) through the checkpoint format, with their optimizer.

    One network may be used from one thread at a time; a call made while another thread is
    inside the library with it raises :class:`~backprop.BusyError`. The GIL is released during
    library calls, so distinct networks train in parallel from Python threads.
    """

    optimizer: Optional["Optimizer"]
    """The optimizer of the latest :meth:`fit`, or the one loaded with a checkpoint; :meth:`save`
    and pickling store it with the network."""
    history: Optional[History]
    """The :class:`~backprop.nn.History` of the latest :meth:`fit`."""
    stop_training: bool
    """Set it to True in a fit() callback to end training after the current epoch (Keras)."""

    def __init__(self, input_width: int, seed: int = 0, loss: LossLike = "mse",
                 dtype: DTypeLike = "float32") -> None:
        input_width = _count(input_width, "input_width")
        seed = _seed(seed)
        loss_code = _loss_code(loss)
        code = _dtype_code(dtype)
        handle = NetHandle()
        if code == DType.FLOAT32:
            check(lib.bp_net_create(input_width, seed, ctypes.byref(handle)))
        else:
            check(lib.bp_net_create_dtype(code, input_width, seed, ctypes.byref(handle)))
        self._adopt_handle(handle, seed=seed, dtype=code, width=input_width)
        self._loss = Loss.MSE
        self.set_loss(loss_code)

    def _adopt_handle(self, handle: Any, seed: int, dtype: DType, width: int) -> None:
        """Sets up the Python side around a new network handle, which this object now owns."""
        self._box = Owned(handle, _free_net)
        self._finalizer = weakref.finalize(self, self._box.release)
        self._graph_ref: Optional[weakref.ref[Graph]] = None
        self._keepalive: List[Any] = []
        self._batch: Optional[int] = None  # batch size of the latest forward or predict
        self._modules: List[Module] = []
        self._layer_modules: List[Module] = []  # the module of each library layer
        self._width = width
        self._loss = Loss.MSE
        self._loss_chosen = True
        self._training = True
        self.seed = seed
        self.dtype = np.dtype(np.float32) if dtype == DType.FLOAT32 else np.dtype(np.float64)
        self.optimizer = None
        self.history = None
        self.stop_training = False

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
            return f"<{type(self).__name__} closed>"
        return (f"<Network {self.input_width} -> {self.output_width}, {self.layer_count} layers, "
                f"{self.parameter_count} parameters, loss {self.loss}>")

    def _h(self) -> Any:
        handle = self._box.handle
        if handle is None:
            raise InvalidHandleError(f"the {type(self).__name__} is closed")
        return handle

    # Building
    def add_dense(self, units: int, activation: ActivationLike = "relu",
                  init: InitLike = "default") -> Network:
        """Appends a dense layer y = activation(x W^T + b) of `units` outputs, initialized by
        `init` (see :class:`backprop.nn.Linear`). Returns self."""
        code = _activation_code(activation)
        units = _count(units, "units")
        handle = self._h()
        linear = Linear(self._width, units, init=init) if units >= 1 else None
        self._append_dense(handle, units, code, linear, init)
        return self

    def _append_dense(self, handle: Any, units: int, code: Activation, linear: Optional[Linear],
                      init: InitLike, activation_module: Optional[Module] = None) -> None:
        kind, value = initializer_code(init)
        if kind == _capi.Initializer.LINEAR_DEFAULT:
            check(lib.bp_net_add_dense(handle, units, code))
        else:
            check(lib.bp_net_add_dense_init(handle, units, code, kind, value))
        assert linear is not None
        linear._bind(self, len(self._layer_modules))
        self._layer_modules.append(linear)
        self._modules.append(linear)
        if code != Activation.NONE:
            module = activation_module or ACTIVATION_MODULES[code]()
            module._bind(self, None)
            self._modules.append(module)
        self._width = units

    def add_dropout(self, p: float = 0.5) -> Network:
        """Appends dropout with probability p in [0, 1]: active in forward, train_step and fit,
        the identity in predict and evaluate. Returns self."""
        self._append_dropout(self._h(), Dropout(p))
        return self

    def _append_dropout(self, handle: Any, module: Dropout) -> None:
        check(lib.bp_net_add_dropout(handle, float(module.p)))
        module._bind(self, len(self._layer_modules))
        self._layer_modules.append(module)
        self._modules.append(module)

    def add_layer_norm(self, eps: float = 1e-5) -> Network:
        """Appends layer normalization over the features (torch.nn.LayerNorm(width, eps)), its
        weight starting at 1 and its bias at 0. Returns self."""
        handle = self._h()
        self._append_layer_norm(handle, LayerNorm(max(self._width, 1), eps))
        return self

    def _append_layer_norm(self, handle: Any, module: LayerNorm) -> None:
        check(lib.bp_net_add_layer_norm(handle, float(module.eps)))
        module._bind(self, len(self._layer_modules))
        self._layer_modules.append(module)
        self._modules.append(module)

    def set_loss(self, loss: LossLike) -> Network:
        """Chooses the loss: "mse" or "cross_entropy" (or nn.MSELoss() / nn.CrossEntropyLoss()).
        Returns self."""
        code = _loss_code(loss)
        check(lib.bp_net_set_loss(self._h(), code))
        self._loss = code
        self._loss_chosen = True
        return self

    def _choose_loss(self, y: Any) -> None:
        """A network made without a loss takes cross-entropy for integer labels [batch] and the
        mean squared error otherwise, the first time it sees targets."""
        if self._loss_chosen:
            return
        array = np.asarray(y)
        self.set_loss(Loss.CROSS_ENTROPY if array.ndim == 1 and array.dtype.kind in "iu"
                      else Loss.MSE)

    @property
    def loss(self) -> str:
        """The loss's name: "mse" or "cross_entropy"."""
        return _LOSS_NAMES[self._loss]

    @property
    def modules(self) -> Tuple[Module, ...]:
        """The layers as the modules of the equivalent torch nn.Sequential (an activation is a
        module of its own), in order: module i owns the parameters named "i.weight" and
        "i.bias"."""
        return tuple(self._modules)

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
        """The number of layers of the library: dense, dropout and layer norm layers."""
        return self._size(lib.bp_net_layer_count)

    @property
    def parameter_count(self) -> int:
        """The number of weights and biases."""
        return self._size(lib.bp_net_parameter_count)

    # Modes
    def train(self, mode: bool = True) -> Network:
        """Training mode (the default): calling the network runs :meth:`forward`, with dropout.
        ``train(False)`` is :meth:`eval`. Returns self."""
        self._training = bool(mode)
        return self

    def eval(self) -> Network:
        """Evaluation mode: calling the network runs :meth:`predict` (no dropout). Returns
        self."""
        return self.train(False)

    @property
    def training(self) -> bool:
        """Whether calling the network runs forward (True) or predict (False)."""
        return self._training

    def __call__(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """:meth:`forward` in training mode, :meth:`predict` in evaluation mode."""
        return self.forward(x) if self._training else self.predict(x)

    # Checking arrays
    def _inputs(self, x: npt.ArrayLike, what: str = "inputs") -> np.ndarray:
        width = self.input_width
        expected = f"expected {what} of shape (batch, {width})"
        try:
            x = real_array(x, _FLOAT32, np.dtype(np.float32), what)
        except TypeError as error:
            raise TypeError(f"{expected}; {error}") from None
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{expected}, got shape {x.shape}")
        return x

    def _targets(self, y: npt.ArrayLike, batch: Optional[int], what: str = "targets",
                 allow_vector: bool = False) -> np.ndarray:
        width = self.output_width
        expected = f"expected {what} of shape ({'batch' if batch is None else batch}, {width})"
        try:
            y = real_array(y, _FLOAT32, np.dtype(np.float32), what)
        except TypeError as error:
            raise TypeError(f"{expected}; {error}") from None
        if allow_vector and y.ndim == 1 and width == 1 and batch is not None \
                and y.shape[0] == batch:
            y = y.reshape(batch, 1)  # fit and evaluate take a vector for one output
        if y.ndim != 2 or y.shape[1] != width or (batch is not None and y.shape[0] != batch):
            raise ValueError(f"{expected}, got shape {y.shape}")
        return y

    def _labels(self, labels: npt.ArrayLike, batch: Optional[int],
                what: str = "labels") -> np.ndarray:
        expected = f"expected {what} of shape ({'batch' if batch is None else batch},)"
        try:
            labels = label_array(labels, what)
        except TypeError as error:
            raise TypeError(f"{expected}; {error}") from None
        if labels.ndim != 1 or (batch is not None and labels.shape[0] != batch):
            raise ValueError(f"{expected}, got shape {labels.shape}")
        return labels

    def _answers(self, y: npt.ArrayLike, batch: int, what: str) -> np.ndarray:
        """Labels or targets for `batch` samples, as the loss wants them."""
        if self._loss == Loss.CROSS_ENTROPY:
            return self._labels(y, batch, what)
        return self._targets(y, batch, what, allow_vector=True)

    # Training step by step
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
        """Like forward, for inference (dropout off): the next backward needs a new forward."""
        return self._run(lib.bp_net_predict, x)

    def backward(self, targets: npt.ArrayLike) -> float:
        """Backpropagates the loss of the latest forward against `targets` (float targets
        [batch, output_width] for "mse", integer labels [batch] for "cross_entropy"), adding into
        the parameter gradients. Returns the loss."""
        handle = self._h()
        self._choose_loss(targets)
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

    def train_step(self, x: npt.ArrayLike, y: npt.ArrayLike, lr: Optional[float] = None, *,
                   optimizer: Optional["Optimizer"] = None) -> float:
        """zero_grad, forward, backward and update in one library call; returns the loss before
        the update. `y` is as for :meth:`backward`. The update is gradient descent with `lr`, or
        `optimizer`'s step (give one of them). On failure the weights are unchanged."""
        if (lr is None) == (optimizer is None):
            raise TypeError("train_step takes a learning rate lr or an optimizer, and not both")
        handle = self._h()
        x = self._inputs(x)
        self._choose_loss(y)
        batch = x.shape[0]
        loss = ctypes.c_float()
        labels = self._loss == Loss.CROSS_ENTROPY
        answers = self._labels(y, batch) if labels else self._targets(y, batch)
        pointer = int32_pointer(answers) if labels else float_pointer(answers)
        if optimizer is not None:
            optimizer._bind(self)
            function = lib.bp_optimizer_train_step_labels if labels else lib.bp_optimizer_train_step
            check(function(optimizer._h(), handle, batch, float_pointer(x), x.size, pointer,
                           answers.size, ctypes.byref(loss)))
        else:
            function = lib.bp_net_train_step_labels if labels else lib.bp_net_train_step
            check(function(handle, batch, float_pointer(x), x.size, pointer, answers.size,
                           float(lr), ctypes.byref(loss)))
        self._batch = batch
        return loss.value

    # The training loop
    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, *, epochs: int = 10,
            batch_size: int = 32, validation_split: float = 0.0,
            validation_data: Optional[Tuple[npt.ArrayLike, npt.ArrayLike]] = None,
            shuffle: bool = True, patience: int = 0, min_delta: float = 0.0,
            restore_best_weights: bool = True,
            optimizer: Optional[Union["Optimizer", str]] = None,
            clip_grad_norm: Optional[float] = None, clip_grad_value: Optional[float] = None,
            vanishing_threshold: float = 1e-7, exploding_threshold: float = 1e3,
            callbacks: Sequence[Callback] = (), progress: bool = True) -> History:
        """Trains with the library's loop (bp_net_fit): `epochs` passes over minibatches of
        `batch_size`, reshuffled every epoch from the network's seed.

        Args:
            x: inputs [samples, input_width]. y: float targets [samples, output_width] ("mse";
                a vector for one output) or integer labels [samples] ("cross_entropy").
            validation_data: (x_val, y_val), evaluated after every epoch; or else
            validation_split: the fraction of the samples held out from the end (before
                shuffling) for validation.
            patience: stop after this many epochs without an improvement of at least
                `min_delta` in the monitored loss (the validation loss, or the training loss
                without validation); 0 never stops early. restore_best_weights: then put the
                best epoch's weights back.
            optimizer: an :mod:`backprop.optim` optimizer (its learning-rate scheduler, if
                any, is stepped every epoch with the monitored loss), or a name ("adam", "sgd",
                ...) for one with default options. By default the network's previous optimizer,
                or Adam(lr=1e-3).
            clip_grad_norm / clip_grad_value: clip gradients before each step (as
                torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
            vanishing_threshold / exploding_threshold: gradient norms below / above these
                flag an epoch as "vanishing" / "exploding".
            callbacks: called after every epoch with the epoch's log dict (or, for objects with
                ``on_epoch_end``, with (epoch, logs)). Raise :class:`~backprop.nn.StopTraining`
                or set ``network.stop_training = True`` to end training; any other exception
                ends it too, and fit() re-raises it once the library has returned. Callbacks
                must not use the network or its optimizer (they are busy).
            progress: show a progress bar when tqdm is installed (silent otherwise).

        Returns a :class:`~backprop.nn.History`, also kept as :attr:`history`; the optimizer is
        kept as :attr:`optimizer`. A NaN or infinite loss stops training with
        :class:`~backprop.NonFiniteError` (whose ``history`` attribute holds the epochs done),
        keeping the weights of the last good step.
        """
        from .optim import make_optimizer

        handle = self._h()
        self._choose_loss(y)
        inputs = self._inputs(x)
        samples = inputs.shape[0]
        answers = self._answers(y, samples, "targets" if self._loss == Loss.MSE else "labels")
        opt = make_optimizer(optimizer if optimizer is not None else self.optimizer, self)

        options = _capi.bp_fit_options()
        check(lib.bp_fit_options_default(ctypes.byref(options)))
        options.epochs = _count(epochs, "epochs")
        options.batch_size = _count(batch_size, "batch_size")
        options.shuffle = int(bool(shuffle))
        options.validation_split = float(validation_split)
        options.patience = _count(patience, "patience")
        options.min_delta = float(min_delta)
        options.restore_best_weights = int(bool(restore_best_weights))
        options.clip_norm = 0.0 if clip_grad_norm is None else float(clip_grad_norm)
        options.clip_value = 0.0 if clip_grad_value is None else float(clip_grad_value)
        options.vanishing_threshold = float(vanishing_threshold)
        options.exploding_threshold = float(exploding_threshold)
        keep: List[Any] = []
        if validation_data is not None:
            try:
                x_val, y_val = validation_data
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (x_val, y_val)") from None
            x_val = self._inputs(x_val, "validation inputs")
            y_val = self._answers(y_val, x_val.shape[0], "validation targets"
                                  if self._loss == Loss.MSE else "validation labels")
            keep += [x_val, y_val]
            options.validation_samples = x_val.shape[0]
            options.validation_inputs = float_pointer(x_val)
            options.validation_input_count = x_val.size
            if self._loss == Loss.CROSS_ENTROPY:
                options.validation_labels = int32_pointer(y_val)
                options.validation_label_count = y_val.size
            else:
                options.validation_targets = float_pointer(y_val)
                options.validation_target_count = y_val.size
        validating = validation_data is not None or float(validation_split) > 0

        history = History()
        failures: List[BaseException] = []
        bar = ProgressBar(options.epochs, progress)
        callbacks = list(callbacks) if callbacks is not None else []
        self.stop_training = False

        def on_epoch(report: Any, userdata: Any) -> int:
            try:
                logs = epoch_logs(report.contents, validating)
                history.epochs.append(logs)
                bar.update(logs)
                stop = run_callbacks(callbacks, logs)
                return 1 if stop or self.stop_training else 0
            except BaseException as error:  # noqa: B902 - stop training, re-raise afterwards
                failures.append(error)
                return 1

        callback = _capi.bp_epoch_callback(on_epoch)
        options.callback = callback
        result = _capi.bp_fit_result()
        result.size = ctypes.sizeof(result)
        try:
            if self._loss == Loss.CROSS_ENTROPY:
                status = lib.bp_net_fit_labels(
                    handle, opt._h(), samples, float_pointer(inputs), inputs.size,
                    int32_pointer(answers), answers.size, ctypes.byref(options),
                    ctypes.byref(result))
            else:
                status = lib.bp_net_fit(
                    handle, opt._h(), samples, float_pointer(inputs), inputs.size,
                    float_pointer(answers), answers.size, ctypes.byref(options),
                    ctypes.byref(result))
        finally:
            bar.close()
        if status == _capi.Status.OK:
            history._finish(result)
        if history.epochs or status == _capi.Status.OK:
            self.optimizer = opt
            self.history = history
        if failures:
            raise failures[0]
        try:
            check(status)
        except Exception as error:
            error.history = history  # type: ignore[attr-defined]
            raise
        return history

    def evaluate(self, x: npt.ArrayLike, y: npt.ArrayLike) -> Tuple[float, float]:
        """(mean loss, accuracy) over the samples, in inference mode (dropout off); gradients
        are untouched. Accuracy counts the argmax of the outputs against the labels
        (cross-entropy), the argmax of the targets (MSE, several outputs), or output > 0.5
        against target > 0.5 (MSE, one output)."""
        handle = self._h()
        self._choose_loss(y)
        inputs = self._inputs(x)
        samples = inputs.shape[0]
        answers = self._answers(y, samples, "targets" if self._loss == Loss.MSE else "labels")
        loss, accuracy = ctypes.c_double(), ctypes.c_double()
        if self._loss == Loss.CROSS_ENTROPY:
            check(lib.bp_net_evaluate_labels(handle, samples, float_pointer(inputs), inputs.size,
                                             int32_pointer(answers), answers.size,
                                             ctypes.byref(loss), ctypes.byref(accuracy)))
        else:
            check(lib.bp_net_evaluate(handle, samples, float_pointer(inputs), inputs.size,
                                      float_pointer(answers), answers.size, ctypes.byref(loss),
                                      ctypes.byref(accuracy)))
        return loss.value, accuracy.value

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
        """The weight and bias nodes of layer `layer` in :attr:`graph`: [units, in] and [units]
        for a dense layer, [width] each for layer norm. Dropout has none: ValueError."""
        handle = self._h()
        weight, bias = _capi.bp_node(), _capi.bp_node()
        check(lib.bp_net_layer_nodes(handle, _count(layer, "layer"), ctypes.byref(weight),
                                     ctypes.byref(bias)))
        if weight.value == _capi.NO_NODE:
            raise ValueError(f"layer {layer} (dropout) has no parameters")
        graph = self.graph
        return Node(graph, weight.value), Node(graph, bias.value)

    def layer_parameters(self, layer: int) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Copies of the weight and bias of layer `layer` (0-based, counting every layer)."""
        weight, bias = self.layer_nodes(layer)
        return weight.value, bias.value

    def layer_gradients(self, layer: int) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Copies of the gradients of the weight and bias of layer `layer`."""
        weight, bias = self.layer_nodes(layer)
        return weight.grad, bias.grad

    def _named_layers(self) -> List[Tuple[str, int]]:
        """(module index, layer index) of every module with parameters."""
        return [(str(i), m._layer) for i, m in enumerate(self._modules)
                if isinstance(m, (Linear, LayerNorm)) and m._layer is not None]

    def named_parameters(self) -> List[Tuple[str, npt.NDArray[Any]]]:
        """(name, copy) of every parameter, named as torch names them ("0.weight", ...)."""
        out = []
        for name, layer in self._named_layers():
            weight, bias = self.layer_parameters(layer)
            out += [(f"{name}.weight", weight), (f"{name}.bias", bias)]
        return out

    def parameters(self) -> ParameterList:
        """Copies of every parameter, in order (weights before biases, layer by layer); the
        list also names the network (see :class:`ParameterList`)."""
        out = ParameterList(array for _, array in self.named_parameters())
        out.network = self
        return out

    def state_dict(self) -> Dict[str, npt.NDArray[Any]]:
        """An ordered dict of copies of every parameter, named as in the state_dict of the
        equivalent torch nn.Sequential ("0.weight", "0.bias", "2.weight", ...), in the network's
        dtype."""
        return collections.OrderedDict(self.named_parameters())

    def load_state_dict(self, state_dict: Dict[str, npt.ArrayLike],
                        strict: bool = True) -> IncompatibleKeys:
        """Sets parameters from a dict named as :meth:`state_dict` names them (from this
        library, or torch's state_dict of the same nn.Sequential converted with .numpy()).

        With strict (the default) the keys must match exactly. Shapes must match and values must
        be finite; everything is checked before anything is written. Returns the missing and
        unexpected keys (empty with strict)."""
        self._h()
        expected = collections.OrderedDict(
            (f"{name}.{part}", (layer, part)) for name, layer in self._named_layers()
            for part in ("weight", "bias"))
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        if strict and (missing or unexpected):
            raise KeyError(f"Error(s) in loading state_dict for {type(self).__name__}: missing "
                           f"keys {missing}, unexpected keys {unexpected}")
        updates: Dict[int, Dict[str, np.ndarray]] = {}
        for key, (layer, part) in expected.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
                value = value.detach().cpu().numpy()
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"{key} must hold real numbers, got dtype {array.dtype}")
            updates.setdefault(layer, {})[part] = np.array(array, dtype=self.dtype)
        for layer, parts in updates.items():
            weight_node, bias_node = self.layer_nodes(layer)
            for part, node in (("weight", weight_node), ("bias", bias_node)):
                if part in parts:
                    if parts[part].shape != node.shape:
                        raise ValueError(f"size mismatch for {self._name_of(layer)}.{part}: the "
                                         f"network's shape is {node.shape}, the state_dict's "
                                         f"{parts[part].shape}")
                    if not np.all(np.isfinite(parts[part])):
                        from .errors import NonFiniteError
                        raise NonFiniteError(f"{self._name_of(layer)}.{part} holds NaN or "
                                             f"infinity")
        for layer, parts in updates.items():
            weight_node, bias_node = self.layer_nodes(layer)
            self._set_layer(layer, parts.get("weight", weight_node.value),
                            parts.get("bias", bias_node.value))
        return IncompatibleKeys(missing, unexpected)

    def _name_of(self, layer: int) -> str:
        for name, index in self._named_layers():
            if index == layer:
                return name
        return str(layer)

    def _set_layer(self, layer: int, weight: npt.ArrayLike, bias: npt.ArrayLike) -> None:
        """Replaces a layer's weight and bias (checked by the library: counts, finiteness)."""
        handle = self._h()
        weight_node, bias_node = self.layer_nodes(layer)
        w = np.asarray(weight)
        b = np.asarray(bias)
        if w.shape != weight_node.shape or b.shape != bias_node.shape:
            raise ValueError(f"layer {layer} takes a weight of shape {weight_node.shape} and a "
                             f"bias of shape {bias_node.shape}, got {w.shape} and {b.shape}")
        if self.dtype == np.float32:
            w32 = real_array(w, _FLOAT32, np.dtype(np.float32), "weight")
            b32 = real_array(b, _FLOAT32, np.dtype(np.float32), "bias")
            check(lib.bp_net_set_layer_parameters(handle, layer, float_pointer(w32), w32.size,
                                                  float_pointer(b32), b32.size))
        else:
            for array in (w, b):
                if not np.all(np.isfinite(array)):
                    from .errors import NonFiniteError
                    raise NonFiniteError(f"layer {layer}: parameters must be finite")
            self.graph.set_value(weight_node, w)
            self.graph.set_value(bias_node, b)

    def _flat(self, function: Any) -> npt.NDArray[np.float32]:
        out = np.empty(self.parameter_count, dtype=np.float32)
        check(function(self._h(), float_pointer(out), out.size))
        return out

    def parameters_vector(self) -> npt.NDArray[np.float32]:
        """Every parameter end to end, one float32 vector (layer by layer, weight before bias):
        the optimizers' layout, and a buffer for an allreduce in data-parallel training."""
        return self._flat(lib.bp_net_parameters)

    def gradients_vector(self) -> npt.NDArray[np.float32]:
        """Every parameter's gradient in the layout of :meth:`parameters_vector`."""
        return self._flat(lib.bp_net_gradients)

    def set_parameters_vector(self, values: npt.ArrayLike) -> None:
        """Sets every parameter from a vector laid out as :meth:`parameters_vector`."""
        handle = self._h()
        array = real_array(values, _FLOAT32, np.dtype(np.float32), "parameters")
        count = self.parameter_count
        if array.shape != (count,):
            raise ValueError(f"expected a vector of {count} parameters, got shape {array.shape}")
        check(lib.bp_net_set_parameters(handle, float_pointer(array), array.size))

    # Checkpoints
    def _optimizer_handle(self, optimizer: Optional["Optimizer"]) -> Any:
        if optimizer is None:
            optimizer = self.optimizer
            if optimizer is not None and (optimizer.closed or optimizer.model not in (None, self)):
                optimizer = None
        return OptimizerHandle() if optimizer is None else optimizer._h()

    def save(self, path: PathLike, optimizer: Optional["Optimizer"] = None) -> None:
        """Writes a checkpoint (safetensors; atomically) with the network and an optimizer: the
        one given, else :attr:`optimizer` (from the latest fit or load). Parameters are named as
        in torch's state_dict, so ``safetensors.numpy.load_file`` or torch can read them."""
        handle = self._h()
        check(lib.bp_net_save(handle, self._optimizer_handle(optimizer),
                              os.fsencode(os.fspath(path))))

    def to_bytes(self, optimizer: Optional["Optimizer"] = None) -> bytes:
        """The checkpoint :meth:`save` would write, as bytes."""
        handle = self._h()
        opt = self._optimizer_handle(optimizer)
        size = ctypes.c_size_t()
        check(lib.bp_net_save_buffer(handle, opt, None, 0, ctypes.byref(size)))
        buffer = ctypes.create_string_buffer(size.value)
        check(lib.bp_net_save_buffer(handle, opt, buffer, size.value, ctypes.byref(size)))
        return buffer.raw[:size.value]

    @classmethod
    def load(cls, path: PathLike) -> Network:
        """A new network from a checkpoint file, with its optimizer (if it holds one) as
        :attr:`optimizer`. A learning-rate schedule is not saved: set it again."""
        net, opt = NetHandle(), OptimizerHandle()
        encoded = os.fsencode(os.fspath(path))
        check(lib.bp_net_load(encoded, ctypes.byref(net), ctypes.byref(opt)))
        try:
            metadata = _checkpoint.metadata_from_file(Path(os.fsdecode(encoded)))
        except BaseException:
            lib.bp_net_free(net)
            lib.bp_optimizer_free(opt)
            raise
        return cls._from_handles(net, opt, metadata)

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview]) -> Network:
        """A new network from a checkpoint in memory (what :meth:`to_bytes` gives)."""
        view = memoryview(data).cast("B")
        buffer = (ctypes.c_char * len(view)).from_buffer_copy(view) if len(view) else None
        net, opt = NetHandle(), OptimizerHandle()
        check(lib.bp_net_load_buffer(buffer, len(view), ctypes.byref(net), ctypes.byref(opt)))
        return cls._from_handles(net, opt, _checkpoint.metadata_from_bytes(view))

    @classmethod
    def _from_handles(cls, net: Any, opt: Any, metadata: Dict[str, str]) -> Network:
        self = cls.__new__(cls)
        self._restore(net, opt, metadata)
        return self

    def _restore(self, net: Any, opt: Any, metadata: Dict[str, str]) -> None:
        """Sets up this object around a network (and optimizer) the library has just loaded."""
        from .optim import Optimizer

        try:
            arch = _checkpoint.architecture(metadata)
            optimizer_description = _checkpoint.optimizer(metadata)
        except BaseException:
            lib.bp_net_free(net)
            lib.bp_optimizer_free(opt)
            raise
        dtype = DType.FLOAT64 if arch.get("dtype") in ("float64", "F64") else DType.FLOAT32
        self._adopt_handle(net, seed=int(arch["seed"]), dtype=dtype,
                           width=int(arch["input_width"]))
        self._loss = _LOSSES[arch["loss"]]
        self._rebuild_modules(arch["layers"])
        if opt:
            self.optimizer = Optimizer._adopt(opt, optimizer_description, self)

    def _rebuild_modules(self, layers: Sequence[Dict[str, Any]]) -> None:
        width = self._width
        for layer in layers:
            kind = layer["kind"]
            if kind == "dense":
                units = int(layer["units"])
                linear = Linear(width, units)
                linear._bind(self, len(self._layer_modules))
                self._layer_modules.append(linear)
                self._modules.append(linear)
                code = _ACTIVATIONS[layer["activation"]]
                if code != Activation.NONE:
                    activation = ACTIVATION_MODULES[code]()
                    activation._bind(self, None)
                    self._modules.append(activation)
                width = units
            elif kind == "dropout":
                module: Module = Dropout(float(layer["p"]))
                module._bind(self, len(self._layer_modules))
                self._layer_modules.append(module)
                self._modules.append(module)
            else:
                module = LayerNorm(width, float(layer["eps"]))
                module._bind(self, len(self._layer_modules))
                self._layer_modules.append(module)
                self._modules.append(module)
        self._width = width

    # Pickling: through the checkpoint format
    def __getstate__(self) -> Dict[str, Any]:
        return {"checkpoint": self.to_bytes(), "training": self._training,
                "loss_chosen": self._loss_chosen, "history": self.history}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        data = state["checkpoint"]
        buffer = (ctypes.c_char * len(data)).from_buffer_copy(data)
        net, opt = NetHandle(), OptimizerHandle()
        check(lib.bp_net_load_buffer(buffer, len(data), ctypes.byref(net), ctypes.byref(opt)))
        self._restore(net, opt, _checkpoint.metadata_from_bytes(data))
        self._training = state.get("training", True)
        self._loss_chosen = state.get("loss_chosen", True)
        self.history = state.get("history")


# Last, as the optimizers build on the classes above: the name is for fit's and save's types.
from .optim import Optimizer  # noqa: E402
