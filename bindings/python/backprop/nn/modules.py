"""torch.nn-style modules, and Sequential: a network built from them."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple, Union, overload

from .._modules import (CrossEntropyLoss, Dropout, LayerNorm, Linear, Module, MSELoss, ReLU,
                        Sigmoid, Tanh, _Activation)
from .._capi import Activation
from ..graph import DTypeLike
from ..network import LossLike, Network

__all__ = ["Module", "Linear", "ReLU", "Sigmoid", "Tanh", "Dropout", "LayerNorm", "MSELoss",
           "CrossEntropyLoss", "Sequential"]

_SUPPORTED = "Linear, ReLU, Sigmoid, Tanh, Dropout and LayerNorm"


def _plan(modules: Tuple[Any, ...]) -> Tuple[int, List[Tuple[Any, ...]]]:
    """Checks the modules and folds each activation into the Linear before it; returns the input
    width and the library layers to add."""
    if not modules:
        raise ValueError("a Sequential needs at least one module, starting with a Linear or a "
                         "LayerNorm (which fixes the input width)")
    width: Optional[int] = None
    input_width: Optional[int] = None
    steps: List[Tuple[Any, ...]] = []
    index = 0
    while index < len(modules):
        module = modules[index]
        name = f"module {index} ({type(module).__name__})"
        if not isinstance(module, Module):
            raise TypeError(f"{name} is not supported: a Sequential is made of {_SUPPORTED} "
                            f"(torch.nn-style modules from backprop.nn)")
        if module._network is not None:
            raise ValueError(f"{name} is already part of a network; make a new one")
        if isinstance(module, Linear):
            if width is not None and module.in_features != width:
                raise ValueError(f"{name} takes {module.in_features} features, but the module "
                                 f"before it gives {width}")
            if input_width is None:
                input_width = module.in_features
            activation = None
            if index + 1 < len(modules) and isinstance(modules[index + 1], _Activation):
                activation = modules[index + 1]
                if activation._network is not None:
                    raise ValueError(f"module {index + 1} is already part of a network")
                index += 1
            steps.append(("dense", module, activation))
            width = module.out_features
        elif isinstance(module, _Activation):
            after = "the start" if index == 0 else f"a {type(modules[index - 1]).__name__}"
            raise ValueError(f"{name} must come right after a Linear, not after {after}: the "
                             f"library applies an activation inside the dense layer before it")
        elif isinstance(module, LayerNorm):
            features = module.normalized_shape[0]
            if width is not None and features != width:
                raise ValueError(f"{name} normalizes {features} features, but the module before "
                                 f"it gives {width}")
            if input_width is None:
                input_width = features
            width = features
            steps.append(("layer_norm", module))
        elif isinstance(module, Dropout):
            if width is None:
                raise ValueError(f"{name} cannot come first: start with a Linear or a LayerNorm, "
                                 f"which fixes the input width")
            steps.append(("dropout", module))
        else:
            raise TypeError(f"{name} is not supported in a Sequential; use {_SUPPORTED}")
        index += 1
    assert input_width is not None
    return input_width, steps


class Sequential(Network):
    """A network built from torch.nn-style modules, as torch.nn.Sequential::

        model = Sequential(Linear(64, 128, init="kaiming_uniform"), ReLU(), Dropout(0.2),
                           LayerNorm(128), Linear(128, 10), seed=0)

    Each activation (ReLU, Sigmoid, Tanh) must come right after a Linear and becomes that dense
    layer's activation; one anywhere else raises ValueError. Modules keep their positions, so
    ``model[0].weight`` and ``state_dict()`` keys ("0.weight", "3.bias", ...) are those of the
    same torch nn.Sequential, and so are the names in checkpoints.

    Args:
        modules: Linear, ReLU, Sigmoid, Tanh, Dropout, LayerNorm; the first Linear or LayerNorm
            fixes the input width.
        seed: seeds initialization, dropout and fit's shuffling.
        loss: "mse", "cross_entropy", nn.MSELoss() or nn.CrossEntropyLoss(); None (the default)
            picks cross-entropy the first time the network sees integer labels [batch] and MSE
            for float targets.
        dtype: "float32" (default) or "float64".

    Everything else is :class:`backprop.Network`: fit, evaluate, predict, save, load, pickling.
    """

    def __init__(self, *modules: Module, seed: int = 0, loss: Optional[LossLike] = None,
                 dtype: DTypeLike = "float32") -> None:
        input_width, steps = _plan(modules)
        super().__init__(input_width, seed=seed, loss="mse" if loss is None else loss,
                         dtype=dtype)
        self._loss_chosen = loss is not None
        try:
            handle = self._h()
            for step in steps:
                if step[0] == "dense":
                    _, linear, activation = step
                    code = activation.activation if activation is not None else Activation.NONE
                    self._append_dense(handle, linear.out_features, code, linear, linear.init,
                                       activation)
                elif step[0] == "dropout":
                    self._append_dropout(handle, step[1])
                else:
                    self._append_layer_norm(handle, step[1])
        except BaseException:
            for module in modules:
                module._network, module._layer = None, None
            self.close()
            raise

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> Tuple[Module, ...]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Module, Tuple[Module, ...]]:
        if isinstance(index, slice):
            return tuple(self._modules[index])
        return self._modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)

    def __repr__(self) -> str:
        if self.closed:
            return "<Sequential closed>"
        lines = [f"  ({i}): {module!r}" for i, module in enumerate(self._modules)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
