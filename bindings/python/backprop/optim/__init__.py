"""Optimizers named and parametrized as in torch.optim (over bp_optimizer).

    model = backprop.nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = backprop.optim.SGD(model, lr=0.1, momentum=0.9)   # or model.parameters()
    for x, y in batches:
        optimizer.zero_grad()
        model.forward(x)
        loss = model.backward(y)
        optimizer.step()

or hand the optimizer to ``model.fit(..., optimizer=optimizer)``. An optimizer updates one
network (or one :class:`~backprop.Graph`'s parameters) with torch.optim's formulas and defaults;
its state (momentum buffers, moment estimates) is sized on the first step and saved with the
network in checkpoints. A step whose gradients hold NaN or infinity raises
:class:`~backprop.NonFiniteError` and changes nothing. Learning-rate schedules are in
:mod:`backprop.optim.lr_scheduler`.

Each optimizer frees its library handle exactly once: on ``close()``, at the end of a ``with``
block, when garbage collected, or at interpreter exit.
"""

from __future__ import annotations

import ctypes
import math
import weakref
from typing import Any, Dict, Optional, Tuple, Type, Union

from .. import _capi
from .._capi import OptimizerHandle, OptimizerKind, lib
from .._lifetime import Owned
from ..errors import InvalidHandleError, check
from ..graph import Graph
from ..network import Network, ParameterList

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "make_optimizer",
           "ParamsLike", "lr_scheduler"]

#: What an optimizer updates: a Network (a Sequential), the list its parameters() returns, or a
#: Graph (its parameter nodes); None to bind it later (fit binds it to the network it trains).
ParamsLike = Optional[Union[Network, ParameterList, Graph]]


def _free_optimizer(handle: Any) -> Optional[int]:
    """Frees an optimizer handle; returns the status (see graph._free_graph)."""
    try:
        return lib.bp_optimizer_free(handle)
    except Exception:  # pragma: no cover - interpreter shutdown
        return None


def _target(params: ParamsLike) -> Optional[Union[Network, Graph]]:
    if params is None or isinstance(params, (Network, Graph)):
        return params
    network = getattr(params, "network", None)
    if isinstance(network, Network):
        return network
    raise TypeError(f"an optimizer updates a Network (or its parameters()) or a Graph, got "
                    f"{type(params).__name__}")


# The options struct's fields under torch.optim's names, per algorithm.
_TORCH_NAMES = {
    OptimizerKind.SGD: ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    OptimizerKind.ADAM: ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    OptimizerKind.ADAMW: ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    OptimizerKind.RMSPROP: ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"),
    OptimizerKind.ADAGRAD: ("lr", "lr_decay", "weight_decay", "initial_accumulator_value",
                            "eps"),
}


def _defaults_of(kind: OptimizerKind, options: Any) -> Dict[str, Any]:
    values = {"lr": options.learning_rate, "momentum": options.momentum,
              "dampening": options.dampening, "weight_decay": options.weight_decay,
              "nesterov": bool(options.nesterov), "betas": (options.beta1, options.beta2),
              "eps": options.eps, "amsgrad": bool(options.amsgrad), "alpha": options.alpha,
              "centered": bool(options.centered), "lr_decay": options.lr_decay,
              "initial_accumulator_value": options.initial_accumulator_value}
    return {name: values[name] for name in _TORCH_NAMES[kind]}


class Optimizer:
    """Base of the optimizers: a bp_optimizer bound to what it updates.

    Attributes:
        defaults: the hyperparameters under torch.optim's names.
    """

    kind: OptimizerKind = OptimizerKind.SGD

    def __init__(self, params: ParamsLike = None, **options: Any) -> None:
        raise TypeError("use one of SGD, Adam, AdamW, RMSprop, Adagrad")

    def _create(self, params: ParamsLike, fields: Dict[str, Any]) -> None:
        options = _capi.bp_optimizer_options()
        check(lib.bp_optimizer_options_default(self.kind, ctypes.byref(options)))
        for name, value in fields.items():
            setattr(options, name, value)
        handle = OptimizerHandle()
        check(lib.bp_optimizer_create(self.kind, ctypes.byref(options), ctypes.byref(handle)))
        self._setup(handle, _target(params), _defaults_of(self.kind, options))

    def _setup(self, handle: Any, model: Optional[Union[Network, Graph]],
               defaults: Dict[str, Any]) -> None:
        self._box = Owned(handle, _free_optimizer)
        self._finalizer = weakref.finalize(self, self._box.release)
        self._model = model
        self.defaults = defaults
        self._base_lr = float(defaults["lr"])
        self._scheduled = False

    @classmethod
    def _adopt(cls, handle: Any, description: Optional[Dict[str, Any]],
               model: Network) -> Optimizer:
        """Wraps an optimizer handle the library made (a loaded checkpoint's)."""
        algorithm = (description or {}).get("algorithm", "")
        kind_class = _BY_NAME.get(str(algorithm).lower(), None)
        optimizer = (kind_class or Adam).__new__(kind_class or Adam)
        options = dict((description or {}).get("options", {}))
        if "betas" in options:
            options["betas"] = tuple(options["betas"])
        names = _TORCH_NAMES[optimizer.kind]
        optimizer._setup(handle, model, {k: options[k] for k in names if k in options})
        optimizer._base_lr = optimizer.lr
        return optimizer

    # Lifetime
    def close(self) -> None:
        """Frees the optimizer. Closing twice is harmless."""
        status = self._box.release()
        if status is None:
            return
        if status == _capi.Status.BUSY:
            check(status)
        self._finalizer.detach()
        check(status)

    @property
    def closed(self) -> bool:
        """Whether the optimizer has been freed."""
        return self._box.handle is None

    def __enter__(self) -> Optimizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _h(self) -> Any:
        handle = self._box.handle
        if handle is None:
            raise InvalidHandleError(f"the {type(self).__name__} optimizer is closed")
        return handle

    def __repr__(self) -> str:
        if self.closed:
            return f"<{type(self).__name__} closed>"
        options = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items() if k != "lr")
        return f"{type(self).__name__}(lr={self.lr!r}, {options})"

    # What it updates
    @property
    def model(self) -> Optional[Union[Network, Graph]]:
        """The Network or Graph this optimizer updates (None until bound)."""
        return self._model

    def _bind(self, model: Union[Network, Graph]) -> None:
        if self._model is None:
            self._model = model
        elif self._model is not model:
            raise ValueError(f"this {type(self).__name__} already updates another network: its "
                             f"state is sized for that one; make a new optimizer")

    def _target(self) -> Union[Network, Graph]:
        if self._model is None:
            raise ValueError(f"this {type(self).__name__} has nothing to update: give it a "
                             f"network (or its parameters()) or a graph")
        return self._model

    def step(self) -> None:
        """One update of every parameter from its current gradient. Gradients are kept (call
        :meth:`zero_grad` before the next backward). NaN or infinite gradients raise
        NonFiniteError and change nothing."""
        handle = self._h()
        target = self._target()
        if isinstance(target, Graph):
            check(lib.bp_optimizer_step_graph(handle, target._h()))
        else:
            check(lib.bp_optimizer_step(handle, target._h()))

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Sets every gradient of what the optimizer updates to zero (`set_to_none` is accepted
        for torch compatibility; gradients are buffers that are zeroed)."""
        self._target().zero_grad()

    def reset(self) -> None:
        """Forgets the state and the step count, as a new optimizer would."""
        check(lib.bp_optimizer_reset(self._h()))

    @property
    def lr(self) -> float:
        """The current learning rate. Setting it also makes it the base rate of schedules
        attached afterwards."""
        out = ctypes.c_double()
        check(lib.bp_optimizer_learning_rate(self._h(), ctypes.byref(out)))
        return out.value

    @lr.setter
    def lr(self, value: float) -> None:
        check(lib.bp_optimizer_set_learning_rate(self._h(), float(value)))
        self._base_lr = float(value)

    @property
    def param_groups(self) -> Tuple[Dict[str, Any], ...]:
        """One group, as torch shows them: a snapshot of the hyperparameters with the current
        "lr" (set the rate through :attr:`lr`)."""
        return (dict(self.defaults, lr=self.lr),)

    # Schedules (backprop.optim.lr_scheduler)
    def _attach_schedule(self, options: Any) -> float:
        handle = self._h()
        check(lib.bp_optimizer_set_learning_rate(handle, self._base_lr))
        check(lib.bp_optimizer_set_schedule(handle, ctypes.byref(options)))
        self._scheduled = True
        return self.lr

    def _schedule_step(self, metric: float) -> float:
        out = ctypes.c_double()
        check(lib.bp_optimizer_schedule_step(self._h(), float(metric), ctypes.byref(out)))
        return out.value


def _nonneg(value: Any, name: str) -> float:
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"Invalid {name}: {value}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as
    torch.optim.SGD."""

    kind = OptimizerKind.SGD

    def __init__(self, params: ParamsLike = None, lr: float = 0.01, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        self._create(params, {"learning_rate": _nonneg(lr, "learning rate"),
                              "momentum": _nonneg(momentum, "momentum"),
                              "dampening": _nonneg(dampening, "dampening"),
                              "weight_decay": _nonneg(weight_decay, "weight_decay"),
                              "nesterov": int(bool(nesterov))})


class Adam(Optimizer):
    """Adam, as torch.optim.Adam (weight decay added to the gradient; amsgrad)."""

    kind = OptimizerKind.ADAM

    def __init__(self, params: ParamsLike = None, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        beta1, beta2 = betas
        self._create(params, {"learning_rate": _nonneg(lr, "learning rate"),
                              "beta1": _nonneg(beta1, "beta1"), "beta2": _nonneg(beta2, "beta2"),
                              "eps": _nonneg(eps, "epsilon"),
                              "weight_decay": _nonneg(weight_decay, "weight_decay"),
                              "amsgrad": int(bool(amsgrad))})


class AdamW(Optimizer):
    """AdamW: Adam with decoupled weight decay (default 0.01), as torch.optim.AdamW."""

    kind = OptimizerKind.ADAMW

    def __init__(self, params: ParamsLike = None, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        beta1, beta2 = betas
        self._create(params, {"learning_rate": _nonneg(lr, "learning rate"),
                              "beta1": _nonneg(beta1, "beta1"), "beta2": _nonneg(beta2, "beta2"),
                              "eps": _nonneg(eps, "epsilon"),
                              "weight_decay": _nonneg(weight_decay, "weight_decay"),
                              "amsgrad": int(bool(amsgrad))})


class RMSprop(Optimizer):
    """RMSprop with momentum and the centered variant, as torch.optim.RMSprop."""

    kind = OptimizerKind.RMSPROP

    def __init__(self, params: ParamsLike = None, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        self._create(params, {"learning_rate": _nonneg(lr, "learning rate"),
                              "alpha": _nonneg(alpha, "alpha"), "eps": _nonneg(eps, "epsilon"),
                              "weight_decay": _nonneg(weight_decay, "weight_decay"),
                              "momentum": _nonneg(momentum, "momentum"),
                              "centered": int(bool(centered))})


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad."""

    kind = OptimizerKind.ADAGRAD

    def __init__(self, params: ParamsLike = None, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        self._create(params, {"learning_rate": _nonneg(lr, "learning rate"),
                              "lr_decay": _nonneg(lr_decay, "lr_decay"),
                              "weight_decay": _nonneg(weight_decay, "weight_decay"),
                              "initial_accumulator_value": _nonneg(
                                  initial_accumulator_value, "initial_accumulator_value"),
                              "eps": _nonneg(eps, "epsilon")})


_BY_NAME: Dict[str, Type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW,
                                        "rmsprop": RMSprop, "adagrad": Adagrad}


def make_optimizer(spec: Optional[Union[Optimizer, str]], network: Network) -> Optimizer:
    """The optimizer fit() uses: `spec` bound to `network`, a new one of that name with default
    options, or Adam by default."""
    if spec is None:
        return Adam(network)
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec.lower()](network)
        except KeyError:
            names = ", ".join(repr(k) for k in _BY_NAME)
            raise ValueError(f"optimizer must be an Optimizer or one of {names}, got "
                             f"{spec!r}") from None
    if not isinstance(spec, Optimizer):
        raise TypeError(f"optimizer must be an Optimizer or a name, got {type(spec).__name__}")
    spec._h()
    spec._bind(network)
    return spec


from . import lr_scheduler  # noqa: E402  (the submodule, as torch.optim.lr_scheduler)
