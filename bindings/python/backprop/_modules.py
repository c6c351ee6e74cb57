"""The layers of a network as torch.nn-style modules (internal; public as backprop.nn).

A module here describes one entry of a torch ``nn.Sequential``: Linear, an activation (ReLU,
Sigmoid, Tanh), Dropout or LayerNorm. A network keeps one module per entry, in order, so the
module at index i is what torch would call module i, and its parameters are named "i.weight" and
"i.bias" in ``state_dict()`` and in checkpoints. Once part of a network, a Linear or LayerNorm
reads and writes its parameters there (``.weight``, ``.bias``).
"""

from __future__ import annotations

import numbers
import operator
from typing import Any, Optional, Tuple, Union

import numpy.typing as npt

from ._capi import Activation, Initializer, Loss

__all__ = ["Module", "Linear", "ReLU", "Sigmoid", "Tanh", "Dropout", "LayerNorm", "MSELoss",
           "CrossEntropyLoss", "InitLike", "initializer_code"]

#: How a Linear layer starts: "default" (torch's nn.Linear), "xavier_uniform", "xavier_normal",
#: "kaiming_uniform", "kaiming_normal", "zeros", or a number (every weight and bias that value).
InitLike = Union[str, float, Initializer]

_INITIALIZERS = {"default": Initializer.LINEAR_DEFAULT,
                 "xavier_uniform": Initializer.XAVIER_UNIFORM,
                 "xavier_normal": Initializer.XAVIER_NORMAL,
                 "kaiming_uniform": Initializer.KAIMING_UNIFORM,
                 "kaiming_normal": Initializer.KAIMING_NORMAL, "zeros": Initializer.ZEROS}


def initializer_code(init: InitLike) -> Tuple[Initializer, float]:
    """The Initializer and the constant for an `init` argument."""
    if isinstance(init, Initializer):
        return init, 0.0
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        return Initializer.CONSTANT, float(init)
    try:
        return _INITIALIZERS[init], 0.0
    except (KeyError, TypeError):
        names = ", ".join(repr(k) for k in _INITIALIZERS)
        raise ValueError(f"init must be one of {names} or a number, got {init!r}") from None


def _count(value: Any, what: str) -> int:
    value = operator.index(value)
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")
    return value


class Module:
    """Base of the layers a :class:`backprop.nn.Sequential` is made of."""

    _network: Any = None
    _layer: Optional[int] = None

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._extra_repr()})"

    def _bind(self, network: Any, layer: Optional[int]) -> None:
        if self._network is not None and self._network is not network:
            raise ValueError(f"this {type(self).__name__} is already part of another network; "
                             f"make a new one")
        self._network = network
        self._layer = layer

    def parameters(self) -> Tuple[npt.NDArray[Any], ...]:
        """Copies of the module's parameters (weight, bias), or () for a module without."""
        return ()


class _Parametrized(Module):
    """A module with a weight and a bias in its network."""

    def _nodes(self) -> Any:
        if self._network is None or self._layer is None:
            raise ValueError(f"this {type(self).__name__} is not part of a network yet, so it has "
                             f"no parameters")
        return self._network.layer_nodes(self._layer)

    @property
    def weight(self) -> npt.NDArray[Any]:
        """A copy of the weight (set it with an array of the same shape)."""
        return self._nodes()[0].value

    @weight.setter
    def weight(self, values: npt.ArrayLike) -> None:
        self._set(values, None)

    @property
    def bias(self) -> npt.NDArray[Any]:
        """A copy of the bias (set it with an array of the same shape)."""
        return self._nodes()[1].value

    @bias.setter
    def bias(self, values: npt.ArrayLike) -> None:
        self._set(None, values)

    def _set(self, weight: Optional[npt.ArrayLike], bias: Optional[npt.ArrayLike]) -> None:
        current_weight, current_bias = self.weight, self.bias
        self._network._set_layer(self._layer, current_weight if weight is None else weight,
                                 current_bias if bias is None else bias)

    def parameters(self) -> Tuple[npt.NDArray[Any], ...]:
        """Copies of the weight and the bias."""
        weight, bias = self._nodes()
        return weight.value, bias.value


class Linear(_Parametrized):
    """A dense layer y = x W^T + b with W [out_features, in_features], as torch.nn.Linear.

    Args:
        in_features, out_features: widths in and out.
        bias: must be True: the library's dense layers always have a bias.
        init: how W and b start: "default" (torch's nn.Linear: U(-1/sqrt(in), 1/sqrt(in))),
            "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal" (bias 0),
            "zeros", or a number for every weight and bias. Draws come from the network's seed.

    An activation module right after it in a Sequential (ReLU, Sigmoid, Tanh) is applied inside
    the same library layer.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: InitLike = "default") -> None:
        self.in_features = _count(in_features, "in_features")
        self.out_features = _count(out_features, "out_features")
        if not bias:
            raise ValueError("Linear(bias=False) is not supported: the library's dense layers "
                             "always have a bias (set it to zeros with init or load_state_dict)")
        self.init = init
        self._init_code = initializer_code(init)

    def _extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias=True"


class _Activation(Module):
    activation: Activation = Activation.NONE


class ReLU(_Activation):
    """max(x, 0), as torch.nn.ReLU; in a Sequential it must follow a Linear (it becomes that
    layer's activation). `inplace` is accepted for compatibility and has no effect."""

    activation = Activation.RELU

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace


class Sigmoid(_Activation):
    """1 / (1 + e**-x), as torch.nn.Sigmoid; in a Sequential it must follow a Linear."""

    activation = Activation.SIGMOID


class Tanh(_Activation):
    """tanh x, as torch.nn.Tanh; in a Sequential it must follow a Linear."""

    activation = Activation.TANH


ACTIVATION_MODULES = {Activation.RELU: ReLU, Activation.SIGMOID: Sigmoid, Activation.TANH: Tanh}


class Dropout(Module):
    """Dropout with probability p in [0, 1], as torch.nn.Dropout: active while training, the
    identity in evaluation (``model.eval()``, ``predict``, ``evaluate``)."""

    def __init__(self, p: float = 0.5) -> None:
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def _extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm(_Parametrized):
    """Layer normalization over the features, as torch.nn.LayerNorm(normalized_shape, eps):
    `normalized_shape` must be the width of its input; the weight starts at 1, the bias at 0."""

    def __init__(self, normalized_shape: Union[int, Tuple[int]], eps: float = 1e-5,
                 elementwise_affine: bool = True) -> None:
        if not isinstance(normalized_shape, numbers.Integral):
            shape = tuple(normalized_shape)
            if len(shape) != 1:
                raise ValueError(f"a network's LayerNorm normalizes the features: give one width, "
                                 f"got {shape}")
            normalized_shape = shape[0]
        self.normalized_shape = (_count(normalized_shape, "normalized_shape"),)
        if not elementwise_affine:
            raise ValueError("LayerNorm(elementwise_affine=False) is not supported: the "
                             "library's layer norm always has a weight and a bias")
        self.eps = float(eps)

    def _extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine=True"


class _LossModule:
    loss: Loss = Loss.MSE

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(_LossModule):
    """The mean squared error, as torch.nn.MSELoss: pass it as a network's `loss`."""

    loss = Loss.MSE


class CrossEntropyLoss(_LossModule):
    """Softmax cross-entropy against class labels, as torch.nn.CrossEntropyLoss: pass it as a
    network's `loss` (the last Linear then gives logits: put no activation after it)."""

    loss = Loss.CROSS_ENTROPY

