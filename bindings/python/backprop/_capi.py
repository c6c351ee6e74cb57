"""The C interface of libbackprop, declared for ctypes.

This module mirrors ``include/backprop.h`` one to one and in the same order: the version the
declarations were written for, the enumerations (as IntEnums), the opaque handle types, and every
function with its argument types and result type. It holds no logic beyond finding and loading
the library; the Pythonic classes (:mod:`backprop.graph`, :mod:`backprop.network`) are built on it.

The library is looked for, in this order:

1. the path in the ``BACKPROP_LIBRARY`` environment variable; when it is set, it is the only
   place tried, so that asking for a particular build never silently loads another one;
2. ``libbackprop.so`` next to this file (where an installed wheel carries it);
3. ``build/lib/libbackprop.so`` in the source tree this package sits in (``make lib`` puts it
   there).

If no candidate loads, :class:`LibraryNotFoundError` names every place tried and why each failed.
A library whose ``bp_version()`` differs from :data:`HEADER_VERSION` is refused with
:class:`LibraryVersionError`.
"""

from __future__ import annotations

import ctypes
import enum
import os
from ctypes import (CFUNCTYPE, POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint, c_uint64, c_void_p)
from pathlib import Path
from typing import List, Tuple

__all__ = [
    "HEADER_VERSION", "HEADER_VERSION_NUMBER", "MAX_RANK",
    "Status", "DType", "Reduction", "Comparison", "GeluApproximation", "ReduceOp", "Activation",
    "Loss", "Initializer", "OptimizerKind", "ScheduleRule", "NO_NODE",
    "GraphHandle", "NetHandle", "OptimizerHandle", "DatasetHandle", "STRUCTS", "DECLARATIONS",
    "LibraryNotFoundError", "LibraryVersionError", "lib", "library_path",
]

# ------------------------------------------------------------------------------------------------
# Version
# ------------------------------------------------------------------------------------------------

#: The version of include/backprop.h these declarations were written for (BP_VERSION_STRING).
HEADER_VERSION = "0.1.0"
#: BP_VERSION_NUMBER of that header: MAJOR * 10000 + MINOR * 100 + PATCH.
HEADER_VERSION_NUMBER = 100

# ------------------------------------------------------------------------------------------------
# Status codes and element types, enumerations
# ------------------------------------------------------------------------------------------------


class Status(enum.IntEnum):
    """bp_status: what a fallible call returns. OK is 0."""

    OK = 0
    INVALID_ARGUMENT = 1
    INVALID_HANDLE = 2
    SHAPE = 3
    STATE = 4
    BUSY = 5
    OUT_OF_MEMORY = 6
    NONFINITE = 7
    IO = 8
    FORMAT = 9
    INTERNAL = 10


#: BP_MAX_RANK: the largest rank of a node.
MAX_RANK = 8


class DType(enum.IntEnum):
    """bp_dtype: the element type of a graph."""

    FLOAT32 = 0
    FLOAT64 = 1


class Reduction(enum.IntEnum):
    """bp_reduction: how a loss reduces its terms (as in PyTorch)."""

    MEAN = 0
    SUM = 1
    NONE = 2


class Activation(enum.IntEnum):
    """bp_activation: the activation of a dense layer."""

    NONE = 0
    RELU = 1
    SIGMOID = 2
    TANH = 3


class Loss(enum.IntEnum):
    """bp_loss: the loss of a network."""

    MSE = 0
    CROSS_ENTROPY = 1


class Comparison(enum.IntEnum):
    """bp_comparison: how bp_graph_compare compares a with b."""

    EQ = 0
    NE = 1
    LT = 2
    LE = 3
    GT = 4
    GE = 5


class GeluApproximation(enum.IntEnum):
    """bp_gelu_approximation: exact GELU (with erf) or PyTorch's tanh form."""

    EXACT = 0
    TANH = 1


class ReduceOp(enum.IntEnum):
    """bp_reduce_op: what bp_graph_reduce computes over its axes."""

    SUM = 0
    MEAN = 1
    MAX = 2
    MIN = 3
    LOGSUMEXP = 4


class Initializer(enum.IntEnum):
    """bp_initializer: how bp_net_add_dense_init initializes a dense layer (torch.nn.init)."""

    LINEAR_DEFAULT = 0
    XAVIER_UNIFORM = 1
    XAVIER_NORMAL = 2
    KAIMING_UNIFORM = 3
    KAIMING_NORMAL = 4
    ZEROS = 5
    CONSTANT = 6


class OptimizerKind(enum.IntEnum):
    """bp_optimizer_kind: the optimizers of torch.optim the library implements."""

    SGD = 0
    ADAM = 1
    ADAMW = 2
    RMSPROP = 3
    ADAGRAD = 4


class ScheduleRule(enum.IntEnum):
    """bp_schedule_rule: how a learning-rate schedule changes the rate per epoch."""

    CONSTANT = 0
    STEP = 1
    EXPONENTIAL = 2
    COSINE = 3
    REDUCE_ON_PLATEAU = 4


#: BP_NO_NODE: no node, where a node is optional (layer norm's weight and bias).
NO_NODE = -1

# ------------------------------------------------------------------------------------------------
# C types
# ------------------------------------------------------------------------------------------------

# Enumerations cross the C ABI as int.
bp_status = c_int
bp_dtype = c_int
bp_reduction = c_int
bp_comparison = c_int
bp_gelu_approximation = c_int
bp_reduce_op = c_int
bp_activation = c_int
bp_loss = c_int
bp_initializer = c_int
bp_optimizer_kind = c_int
bp_schedule_rule = c_int
bp_node = c_int32


class _BpGraph(ctypes.Structure):
    """struct bp_graph: opaque."""


class _BpNet(ctypes.Structure):
    """struct bp_net: opaque."""


class _BpOptimizer(ctypes.Structure):
    """struct bp_optimizer: opaque."""


class _BpDataset(ctypes.Structure):
    """struct bp_dataset: opaque."""


#: bp_graph *: a graph handle. ``GraphHandle()`` is NULL.
GraphHandle = POINTER(_BpGraph)
#: bp_net *: a network handle. ``NetHandle()`` is NULL.
NetHandle = POINTER(_BpNet)
#: bp_optimizer *: an optimizer handle. ``OptimizerHandle()`` is NULL.
OptimizerHandle = POINTER(_BpOptimizer)
#: bp_dataset *: a dataset handle. ``DatasetHandle()`` is NULL.
DatasetHandle = POINTER(_BpDataset)

_size_p = POINTER(c_size_t)
_node_p = POINTER(bp_node)
_float_p = POINTER(c_float)
_double_p = POINTER(c_double)
_int32_p = POINTER(c_int32)


class bp_tensor(ctypes.Structure):
    """struct bp_tensor: a tensor as custom-op callbacks see it (data owned by the graph)."""

    _fields_ = [("data", c_void_p), ("shape", _size_p), ("rank", c_size_t), ("count", c_size_t)]


#: int (*shape)(void *userdata, const bp_tensor *inputs, size_t input_count, size_t *out_shape,
#: size_t *out_rank)
bp_custom_shape_fn = CFUNCTYPE(c_int, c_void_p, POINTER(bp_tensor), c_size_t, _size_p, _size_p)
#: int (*forward)(void *userdata, const bp_tensor *inputs, size_t input_count,
#: const bp_tensor *output)
bp_custom_forward_fn = CFUNCTYPE(c_int, c_void_p, POINTER(bp_tensor), c_size_t,
                                 POINTER(bp_tensor))
#: int (*backward)(void *userdata, const bp_tensor *inputs, size_t input_count,
#: const bp_tensor *output, const bp_tensor *output_grad, const bp_tensor *input_grads)
bp_custom_backward_fn = CFUNCTYPE(c_int, c_void_p, POINTER(bp_tensor), c_size_t,
                                  POINTER(bp_tensor), POINTER(bp_tensor), POINTER(bp_tensor))


class bp_custom_op(ctypes.Structure):
    """struct bp_custom_op: a caller's op as callbacks and userdata; `size` first."""

    _fields_ = [("size", c_size_t), ("name", c_char_p), ("shape", bp_custom_shape_fn),
                ("forward", bp_custom_forward_fn), ("backward", bp_custom_backward_fn),
                ("userdata", c_void_p)]


class bp_csv_options(ctypes.Structure):
    """struct bp_csv_options: how a CSV data file is laid out; `size` first."""

    _fields_ = [("size", c_size_t), ("delimiter", c_char), ("has_header", c_int),
                ("has_label", c_int), ("label_column", c_int64), ("max_bytes", c_size_t)]


class bp_optimizer_options(ctypes.Structure):
    """struct bp_optimizer_options: hyperparameters named as in torch.optim; `size` first."""

    _fields_ = [("size", c_size_t), ("learning_rate", c_double), ("weight_decay", c_double),
                ("momentum", c_double), ("dampening", c_double), ("nesterov", c_int),
                ("beta1", c_double), ("beta2", c_double), ("amsgrad", c_int), ("eps", c_double),
                ("alpha", c_double), ("centered", c_int), ("lr_decay", c_double),
                ("initial_accumulator_value", c_double)]


class bp_schedule_options(ctypes.Structure):
    """struct bp_schedule_options: a learning-rate schedule; `size` first."""

    _fields_ = [("size", c_size_t), ("rule", bp_schedule_rule), ("step_size", c_size_t),
                ("gamma", c_double), ("period", c_size_t), ("min_lr", c_double),
                ("warmup_epochs", c_size_t), ("warmup_start_factor", c_double),
                ("factor", c_double), ("patience", c_size_t), ("threshold", c_double),
                ("cooldown", c_size_t)]


class bp_epoch_report(ctypes.Structure):
    """struct bp_epoch_report: what the fit callback sees after each epoch."""

    _fields_ = [("size", c_size_t), ("epoch", c_size_t), ("train_loss", c_double),
                ("train_accuracy", c_double), ("validation_loss", c_double),
                ("validation_accuracy", c_double), ("learning_rate", c_double),
                ("layer_count", c_size_t), ("gradient_norms", _double_p),
                ("update_ratios", _double_p), ("vanishing", c_int), ("exploding", c_int)]


#: bp_epoch_callback: int (*)(const bp_epoch_report *report, void *userdata)
bp_epoch_callback = CFUNCTYPE(c_int, POINTER(bp_epoch_report), c_void_p)


class bp_fit_options(ctypes.Structure):
    """struct bp_fit_options: the options of bp_net_fit; `size` first."""

    _fields_ = [("size", c_size_t), ("batch_size", c_size_t), ("epochs", c_size_t),
                ("shuffle", c_int), ("validation_split", c_double), ("patience", c_size_t),
                ("min_delta", c_double), ("restore_best_weights", c_int),
                ("clip_norm", c_double), ("clip_value", c_double),
                ("vanishing_threshold", c_double), ("exploding_threshold", c_double),
                ("validation_samples", c_size_t), ("validation_inputs", _float_p),
                ("validation_input_count", c_size_t), ("validation_targets", _float_p),
                ("validation_target_count", c_size_t), ("validation_labels", _int32_p),
                ("validation_label_count", c_size_t), ("callback", bp_epoch_callback),
                ("userdata", c_void_p)]


class bp_fit_result(ctypes.Structure):
    """struct bp_fit_result: the outcome of bp_net_fit; set `size` before the call."""

    _fields_ = [("size", c_size_t), ("epochs_run", c_size_t), ("best_epoch", c_size_t),
                ("best_loss", c_double), ("stopped_early", c_int),
                ("stopped_by_callback", c_int), ("final_train_loss", c_double),
                ("final_validation_loss", c_double)]


#: The structs of the header, by their C names (a test compares their layout with a C compiler's).
STRUCTS = {cls.__name__: cls for cls in (
    bp_tensor, bp_custom_op, bp_csv_options, bp_optimizer_options, bp_schedule_options,
    bp_epoch_report, bp_fit_options, bp_fit_result)}

# ------------------------------------------------------------------------------------------------
# Functions: (name, result type, argument types), in the order of the header
# ------------------------------------------------------------------------------------------------

DECLARATIONS = (
    # Version
    ("bp_version", c_char_p, ()),
    ("bp_version_number", c_uint, ()),
    # Status codes, errors and threads
    ("bp_status_string", c_char_p, (bp_status,)),
    ("bp_last_error", c_char_p, ()),
    ("bp_set_num_threads", bp_status, (c_int,)),
    ("bp_get_num_threads", c_int, ()),
    # Graph
    ("bp_graph_create", bp_status, (bp_dtype, POINTER(GraphHandle))),
    ("bp_graph_free", bp_status, (GraphHandle,)),
    ("bp_graph_dtype", bp_status, (GraphHandle, POINTER(bp_dtype))),
    ("bp_graph_input", bp_status, (GraphHandle, _size_p, c_size_t, _node_p)),
    ("bp_graph_parameter", bp_status, (GraphHandle, _size_p, c_size_t, _node_p)),
    ("bp_graph_constant", bp_status, (GraphHandle, _size_p, c_size_t, _node_p)),
    # Graph: ops
    ("bp_graph_add", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_sub", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_mul", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_div", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_pow", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_maximum", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_minimum", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_compare", bp_status, (GraphHandle, bp_node, bp_node, bp_comparison, _node_p)),
    ("bp_graph_where", bp_status, (GraphHandle, bp_node, bp_node, bp_node, _node_p)),
    ("bp_graph_neg", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_abs", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_exp", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_log", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_sqrt", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_square", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_reciprocal", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_relu", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_silu", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_softplus", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_sigmoid", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_tanh", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_detach", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_pow_scalar", bp_status, (GraphHandle, bp_node, c_double, _node_p)),
    ("bp_graph_leaky_relu", bp_status, (GraphHandle, bp_node, c_double, _node_p)),
    ("bp_graph_elu", bp_status, (GraphHandle, bp_node, c_double, _node_p)),
    ("bp_graph_gelu", bp_status, (GraphHandle, bp_node, bp_gelu_approximation, _node_p)),
    ("bp_graph_matmul", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_matmul_transposed", bp_status,
     (GraphHandle, bp_node, bp_node, c_int, c_int, _node_p)),
    ("bp_graph_sum", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_mean", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_reduce", bp_status,
     (GraphHandle, bp_node, bp_reduce_op, _int32_p, c_size_t, c_int, _node_p)),
    ("bp_graph_reshape", bp_status, (GraphHandle, bp_node, _size_p, c_size_t, _node_p)),
    ("bp_graph_permute", bp_status, (GraphHandle, bp_node, _size_p, c_size_t, _node_p)),
    ("bp_graph_transpose", bp_status, (GraphHandle, bp_node, _node_p)),
    ("bp_graph_concat", bp_status, (GraphHandle, _node_p, c_size_t, c_int32, _node_p)),
    ("bp_graph_slice", bp_status, (GraphHandle, bp_node, c_int32, c_size_t, c_size_t, _node_p)),
    ("bp_graph_gather", bp_status, (GraphHandle, bp_node, bp_node, _node_p)),
    ("bp_graph_softmax", bp_status, (GraphHandle, bp_node, c_int32, _node_p)),
    ("bp_graph_log_softmax", bp_status, (GraphHandle, bp_node, c_int32, _node_p)),
    ("bp_graph_layer_norm", bp_status,
     (GraphHandle, bp_node, c_size_t, bp_node, bp_node, c_double, _node_p)),
    ("bp_graph_dropout", bp_status, (GraphHandle, bp_node, c_double, _node_p)),
    # Graph: losses
    ("bp_graph_mse_loss", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_l1_loss", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_huber_loss", bp_status,
     (GraphHandle, bp_node, bp_node, c_double, bp_reduction, _node_p)),
    ("bp_graph_bce_loss", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_bce_with_logits_loss", bp_status,
     (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_cross_entropy", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    ("bp_graph_nll_loss", bp_status, (GraphHandle, bp_node, bp_node, bp_reduction, _node_p)),
    # Graph: custom ops
    ("bp_graph_custom", bp_status,
     (GraphHandle, POINTER(bp_custom_op), _node_p, c_size_t, _node_p)),
    # Graph: running
    ("bp_graph_set_value", bp_status, (GraphHandle, bp_node, _float_p, c_size_t)),
    ("bp_graph_set_value_f64", bp_status, (GraphHandle, bp_node, _double_p, c_size_t)),
    ("bp_graph_forward", bp_status, (GraphHandle,)),
    ("bp_graph_backward", bp_status, (GraphHandle, bp_node)),
    ("bp_graph_zero_grad", bp_status, (GraphHandle,)),
    ("bp_graph_value", bp_status, (GraphHandle, bp_node, _float_p, c_size_t)),
    ("bp_graph_value_f64", bp_status, (GraphHandle, bp_node, _double_p, c_size_t)),
    ("bp_graph_grad", bp_status, (GraphHandle, bp_node, _float_p, c_size_t)),
    ("bp_graph_grad_f64", bp_status, (GraphHandle, bp_node, _double_p, c_size_t)),
    ("bp_graph_shape", bp_status, (GraphHandle, bp_node, _size_p, c_size_t, _size_p)),
    ("bp_graph_size", bp_status, (GraphHandle, bp_node, _size_p)),
    ("bp_graph_node_count", bp_status, (GraphHandle, _size_p)),
    ("bp_graph_check_gradients", bp_status,
     (GraphHandle, bp_node, c_double, c_double, c_double, POINTER(c_int), _double_p)),
    ("bp_graph_set_training", bp_status, (GraphHandle, c_int)),
    ("bp_graph_seed", bp_status, (GraphHandle, c_uint64)),
    # Network
    ("bp_net_create", bp_status, (c_size_t, c_uint64, POINTER(NetHandle))),
    ("bp_net_free", bp_status, (NetHandle,)),
    ("bp_net_add_dense", bp_status, (NetHandle, c_size_t, bp_activation)),
    ("bp_net_set_loss", bp_status, (NetHandle, bp_loss)),
    ("bp_net_input_width", bp_status, (NetHandle, _size_p)),
    ("bp_net_output_width", bp_status, (NetHandle, _size_p)),
    ("bp_net_layer_count", bp_status, (NetHandle, _size_p)),
    ("bp_net_parameter_count", bp_status, (NetHandle, _size_p)),
    ("bp_net_forward", bp_status, (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t)),
    ("bp_net_backward", bp_status, (NetHandle, _float_p, c_size_t, _float_p)),
    ("bp_net_backward_labels", bp_status, (NetHandle, _int32_p, c_size_t, _float_p)),
    ("bp_net_update", bp_status, (NetHandle, c_float)),
    ("bp_net_zero_grad", bp_status, (NetHandle,)),
    ("bp_net_train_step", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t, c_float, _float_p)),
    ("bp_net_train_step_labels", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _int32_p, c_size_t, c_float, _float_p)),
    ("bp_net_predict", bp_status, (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t)),
    ("bp_net_graph", bp_status, (NetHandle, POINTER(GraphHandle))),
    ("bp_net_layer_nodes", bp_status, (NetHandle, c_size_t, _node_p, _node_p)),
    ("bp_net_nodes", bp_status, (NetHandle, _node_p, _node_p, _node_p)),
    ("bp_net_create_dtype", bp_status, (bp_dtype, c_size_t, c_uint64, POINTER(NetHandle))),
    ("bp_net_add_dense_init", bp_status,
     (NetHandle, c_size_t, bp_activation, bp_initializer, c_double)),
    ("bp_net_add_dropout", bp_status, (NetHandle, c_double)),
    ("bp_net_add_layer_norm", bp_status, (NetHandle, c_double)),
    ("bp_net_layer_parameters", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t)),
    ("bp_net_set_layer_parameters", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t)),
    ("bp_net_parameters", bp_status, (NetHandle, _float_p, c_size_t)),
    ("bp_net_set_parameters", bp_status, (NetHandle, _float_p, c_size_t)),
    ("bp_net_gradients", bp_status, (NetHandle, _float_p, c_size_t)),
    # Checkpoints and data files
    ("bp_net_save", bp_status, (NetHandle, OptimizerHandle, c_char_p)),
    ("bp_net_load", bp_status, (c_char_p, POINTER(NetHandle), POINTER(OptimizerHandle))),
    ("bp_net_save_buffer", bp_status, (NetHandle, OptimizerHandle, c_void_p, c_size_t, _size_p)),
    ("bp_net_load_buffer", bp_status,
     (c_void_p, c_size_t, POINTER(NetHandle), POINTER(OptimizerHandle))),
    ("bp_csv_options_default", bp_status, (POINTER(bp_csv_options),)),
    ("bp_dataset_load_csv", bp_status,
     (c_char_p, POINTER(bp_csv_options), POINTER(DatasetHandle))),
    ("bp_dataset_free", bp_status, (DatasetHandle,)),
    ("bp_dataset_size", bp_status, (DatasetHandle, _size_p, _size_p)),
    ("bp_dataset_features", bp_status, (DatasetHandle, _float_p, c_size_t)),
    ("bp_dataset_labels", bp_status, (DatasetHandle, _int32_p, c_size_t)),
    ("bp_dataset_targets", bp_status, (DatasetHandle, _float_p, c_size_t)),
    # Optimizers, schedules and gradient clipping
    ("bp_optimizer_options_default", bp_status, (bp_optimizer_kind, POINTER(bp_optimizer_options))),
    ("bp_optimizer_create", bp_status,
     (bp_optimizer_kind, POINTER(bp_optimizer_options), POINTER(OptimizerHandle))),
    ("bp_optimizer_free", bp_status, (OptimizerHandle,)),
    ("bp_optimizer_step", bp_status, (OptimizerHandle, NetHandle)),
    ("bp_optimizer_step_graph", bp_status, (OptimizerHandle, GraphHandle)),
    ("bp_optimizer_train_step", bp_status,
     (OptimizerHandle, NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t, _float_p)),
    ("bp_optimizer_train_step_labels", bp_status,
     (OptimizerHandle, NetHandle, c_size_t, _float_p, c_size_t, _int32_p, c_size_t, _float_p)),
    ("bp_optimizer_learning_rate", bp_status, (OptimizerHandle, _double_p)),
    ("bp_optimizer_set_learning_rate", bp_status, (OptimizerHandle, c_double)),
    ("bp_optimizer_reset", bp_status, (OptimizerHandle,)),
    ("bp_schedule_options_default", bp_status, (bp_schedule_rule, POINTER(bp_schedule_options))),
    ("bp_optimizer_set_schedule", bp_status, (OptimizerHandle, POINTER(bp_schedule_options))),
    ("bp_optimizer_schedule_step", bp_status, (OptimizerHandle, c_double, _double_p)),
    ("bp_net_clip_grad_norm", bp_status, (NetHandle, c_double, _double_p)),
    ("bp_net_clip_grad_value", bp_status, (NetHandle, c_double)),
    # Training loop
    ("bp_fit_options_default", bp_status, (POINTER(bp_fit_options),)),
    ("bp_net_fit", bp_status,
     (NetHandle, OptimizerHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t,
      POINTER(bp_fit_options), POINTER(bp_fit_result))),
    ("bp_net_fit_labels", bp_status,
     (NetHandle, OptimizerHandle, c_size_t, _float_p, c_size_t, _int32_p, c_size_t,
      POINTER(bp_fit_options), POINTER(bp_fit_result))),
    ("bp_net_evaluate", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _float_p, c_size_t, _double_p, _double_p)),
    ("bp_net_evaluate_labels", bp_status,
     (NetHandle, c_size_t, _float_p, c_size_t, _int32_p, c_size_t, _double_p, _double_p)),
)

# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------

LIBRARY_NAME = "libbackprop.so"
ENVIRONMENT_VARIABLE = "BACKPROP_LIBRARY"


class LibraryNotFoundError(ImportError):
    """No libbackprop.so could be loaded. The message lists every place tried and why it failed."""


class LibraryVersionError(ImportError):
    """The loaded libbackprop.so is not the version these declarations were written for, or it
    lacks some of the functions of the header."""


def candidates() -> List[Tuple[Path, str]]:
    """The places to look for the library, in order, as (path, description) pairs."""
    explicit = os.environ.get(ENVIRONMENT_VARIABLE)
    if explicit:
        return [(Path(explicit), f"${ENVIRONMENT_VARIABLE}")]
    package_dir = Path(__file__).resolve().parent
    repository_dir = package_dir.parent.parent.parent
    return [
        (package_dir / LIBRARY_NAME, "the package folder"),
        (repository_dir / "build" / "lib" / LIBRARY_NAME, "the source tree's build folder"),
    ]


def check_version(found: str, path: object) -> None:
    """Refuses a library whose version string is not HEADER_VERSION."""
    if found != HEADER_VERSION:
        raise LibraryVersionError(
            f"{path} is libbackprop {found}, but this Python package was written for "
            f"libbackprop {HEADER_VERSION}; install the matching library or point "
            f"${ENVIRONMENT_VARIABLE} at it")


def _declare(library: ctypes.CDLL, path: Path) -> None:
    missing = []
    for name, restype, argtypes in DECLARATIONS:
        try:
            function = getattr(library, name)
        except AttributeError:
            missing.append(name)
            continue
        function.restype = restype
        function.argtypes = argtypes
    if missing:
        raise LibraryVersionError(
            f"{path} does not export {', '.join(missing)}: it is not a libbackprop "
            f"{HEADER_VERSION} build")


def load() -> Tuple[ctypes.CDLL, Path]:
    """Finds, loads and declares the library; returns (CDLL, path)."""
    tried = []
    places = candidates()
    for path, where in places:
        if not path.is_file():
            tried.append(f"  {path} ({where}): no such file")
            continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError as error:
            tried.append(f"  {path} ({where}): {error}")
            continue
        _declare(library, path)
        check_version(library.bp_version().decode("ascii", "replace"), path)
        return library, path
    note = ""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        note = (f"\n(${ENVIRONMENT_VARIABLE} is set, so it is the only place tried; unset it to "
                f"search the package folder and the source tree's build folder)")
    raise LibraryNotFoundError(
        "could not load libbackprop; tried:\n" + "\n".join(tried) + note +
        f"\nBuild it with `make lib` in the source tree, or set ${ENVIRONMENT_VARIABLE} to the "
        f"path of {LIBRARY_NAME}.")


#: The loaded library, with every function of the header declared.
lib, library_path = load()
