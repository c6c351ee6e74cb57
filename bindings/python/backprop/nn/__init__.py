"""Networks named as in torch.nn: modules, Sequential, training history, gradient utilities.

    from backprop import nn, optim

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
    history = model.fit(x, labels, epochs=30, batch_size=64, validation_split=0.2,
                        optimizer=optim.Adam(model, lr=1e-3), patience=5)
    loss, accuracy = model.evaluate(x_test, labels_test)
    model.state_dict()             # {"0.weight": ..., "0.bias": ..., "3.weight": ..., ...}

A Sequential is a :class:`backprop.Network` (a bp_net) built from the modules: each activation
folds into the Linear before it. See :class:`Sequential`.
"""

from __future__ import annotations

from .._training import Callback, History, StopTraining
from ..network import IncompatibleKeys, ParameterList
from . import utils
from .modules import (CrossEntropyLoss, Dropout, LayerNorm, Linear, Module, MSELoss, ReLU,
                      Sequential, Sigmoid, Tanh)
from .utils import clip_grad_norm_, clip_grad_value_

__all__ = ["Module", "Linear", "ReLU", "Sigmoid", "Tanh", "Dropout", "LayerNorm", "MSELoss",
           "CrossEntropyLoss", "Sequential", "History", "StopTraining", "Callback",
           "IncompatibleKeys", "ParameterList", "clip_grad_norm_", "clip_grad_value_", "utils"]
