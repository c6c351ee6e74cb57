"""Gradient clipping and flat parameter vectors, as torch.nn.utils."""

from __future__ import annotations

import ctypes
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from .._capi import lib
from ..errors import check
from ..network import Network, ParameterList

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]

#: A network, or the list its parameters() returns.
ParametersLike = Union[Network, ParameterList]


def _network(parameters: Any) -> Network:
    if isinstance(parameters, Network):
        return parameters
    network = getattr(parameters, "network", None)
    if isinstance(network, Network):
        return network
    raise TypeError(f"expected a Network or its parameters(), got {type(parameters).__name__}")


def clip_grad_norm_(parameters: ParametersLike, max_norm: float,
                    norm_type: float = 2.0) -> float:
    """Scales the network's gradients by max_norm / (norm + 1e-6) when their global L2 norm
    exceeds max_norm; returns the norm before clipping. Call it between backward and the
    optimizer's step. Only norm_type 2 is supported. A NaN or infinite norm raises
    NonFiniteError and clips nothing."""
    if float(norm_type) != 2.0:
        raise ValueError("clip_grad_norm_: only norm_type=2 is supported")
    network = _network(parameters)
    total = ctypes.c_double()
    check(lib.bp_net_clip_grad_norm(network._h(), float(max_norm), ctypes.byref(total)))
    return total.value


def clip_grad_value_(parameters: ParametersLike, clip_value: float) -> None:
    """Clamps every gradient of the network to [-clip_value, clip_value]."""
    network = _network(parameters)
    check(lib.bp_net_clip_grad_value(network._h(), float(clip_value)))


def parameters_to_vector(parameters: ParametersLike) -> npt.NDArray[np.float32]:
    """Every parameter of the network end to end (Network.parameters_vector)."""
    return _network(parameters).parameters_vector()


def vector_to_parameters(vec: npt.ArrayLike, parameters: ParametersLike) -> None:
    """Sets every parameter of the network from a vector (Network.set_parameters_vector)."""
    _network(parameters).set_parameters_vector(vec)
