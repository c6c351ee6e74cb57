"""Misuse of every C function, straight through the declarations: NULL pointers, NULL, freed and
foreign handles, unknown enum values, wrong counts, out-of-range node ids, overflowing sizes.

The header promises that none of this crashes, that each gets its documented status and a
message, and that a failing call changes nothing and writes no out-pointer. Each function is
checked in a process of its own (``isolated``), so a crash names the function it happened in.
"""

import ctypes
import mmap
import shutil
import tempfile
from ctypes import byref, c_double, c_float, c_int, c_int32, c_size_t
from pathlib import Path

import numpy as np
import pytest

from backprop import Activation, DType, Loss, Reduction, Status, _capi
from backprop._capi import (NO_NODE, Comparison, GeluApproximation, Initializer, OptimizerKind,
                            ReduceOp, ScheduleRule)
from support import last_error, leaf, lib, new_graph, new_net, node_count, sizes

pytestmark = pytest.mark.isolated

OK, ARG, HANDLE, SHAPE, STATE = (Status.OK, Status.INVALID_ARGUMENT, Status.INVALID_HANDLE,
                                 Status.SHAPE, Status.STATE)
OOM, NONFINITE = Status.OUT_OF_MEMORY, Status.NONFINITE
# An axis, permutation or range that does not fit the input's shape: the header names both
# "a parameter out of range" (INVALID_ARGUMENT) and "input shapes the op cannot take" (SHAPE).
AXIS = (ARG, SHAPE)


def wrong_count(count):
    """The status for a count that does not match. A count beyond SIZE_MAX / 2 is also a size
    too large to represent, which the library reports as OUT_OF_MEMORY; the header's per-function
    notes say INVALID_ARGUMENT for a wrong count. Either is a clean refusal."""
    return (ARG, OOM) if count > 2 ** 63 - 1 else ARG
SENTINEL = 12345
NULL_GRAPH = _capi.GraphHandle()
NULL_NET = _capi.NetHandle()
GRAPH_ID_BAD = (999, -1, 2 ** 31 - 1)


def status_name(status):
    try:
        return Status(status).name
    except ValueError:
        return str(status)


class Checker:
    """Collects every deviation from the header, so one test reports all of a function's."""

    def __init__(self):
        self.problems = []

    def __call__(self, label, expected, status, *untouched):
        """Checks one call's status; `untouched` are out-variables that held SENTINEL before
        the call and must still hold it if the call failed. They are reset afterwards."""
        expected_set = expected if isinstance(expected, tuple) else (expected,)
        if status not in expected_set:
            got = status_name(status) + ("" if status == OK else f" ({last_error()!r})")
            self.problems.append(
                f"{label}: expected {' or '.join(status_name(e) for e in expected_set)}, "
                f"got {got}")
        elif status != OK:
            if not last_error():
                self.problems.append(f"{label}: failed with {status_name(status)} but "
                                     f"bp_last_error() is empty")
            for out in untouched:
                if out.value != SENTINEL:
                    self.problems.append(f"{label}: failed but wrote {out.value} through an "
                                         f"out-pointer")
        for out in untouched:
            out.value = SENTINEL

    def same(self, label, got, want):
        if not np.array_equal(got, want):
            self.problems.append(f"{label}: {got!r} != {want!r}")


class Fixture:
    """A graph and networks to misuse.

    g: x input [2, 3], p parameter [2, 3], c constant [2, 3], labels constant [2] (all valid
    class indices for 3 classes), s = sum(x) (scalar op), e = exp(x) ([2, 3] op); forward ran.
    net: MSE 2 -> 3 tanh -> 2; ce: cross-entropy 2 -> 3 tanh -> 2; empty: no layers.
    """

    def __init__(self):
        g = self.g = new_graph()
        self.x, self.p, self.c = (leaf(g, kind, 2, 3) for kind in ("input", "parameter",
                                                                     "constant"))
        self.labels = leaf(g, "constant", 2)
        out = c_int32()
        assert lib.bp_graph_sum(g, self.x, byref(out)) == OK
        self.s = out.value
        assert lib.bp_graph_exp(g, self.x, byref(out)) == OK
        self.e = out.value
        assert lib.bp_graph_forward(g) == OK
        self.net = new_net()
        self.ce = new_net(loss=Loss.CROSS_ENTROPY)
        self.empty = new_net(layers=())
        self.inputs = (c_float * 8)(*range(8))      # batch 4 x 2
        self.outputs = (c_float * 8)()               # batch 4 x 2
        self.targets = (c_float * 8)()
        self.int_labels = (c_int32 * 4)(0, 1, 1, 0)

    def nodes(self):
        return node_count(self.g)


def node_out():
    return c_int32(SENTINEL)


def size_out():
    return c_size_t(SENTINEL)


def net_weights(net):
    """Every parameter of a network, read through its graph."""
    graph = _capi.GraphHandle()
    assert lib.bp_net_graph(net, byref(graph)) == OK
    count = c_size_t()
    assert lib.bp_net_layer_count(net, byref(count)) == OK
    values = []
    for layer in range(count.value):
        weight, bias = c_int32(), c_int32()
        assert lib.bp_net_layer_nodes(net, layer, byref(weight), byref(bias)) == OK
        for node in (weight.value, bias.value):
            size = c_size_t()
            assert lib.bp_graph_size(graph, node, byref(size)) == OK
            buffer = (c_float * size.value)()
            assert lib.bp_graph_value(graph, node, buffer, size.value) == OK
            values.append(np.array(buffer))
    return values


def net_gradients(net):
    graph = _capi.GraphHandle()
    assert lib.bp_net_graph(net, byref(graph)) == OK
    weight, bias = c_int32(), c_int32()
    assert lib.bp_net_layer_nodes(net, 0, byref(weight), byref(bias)) == OK
    buffer = (c_float * 6)()
    assert lib.bp_graph_grad(graph, weight.value, buffer, 6) == OK
    return np.array(buffer)


class GuardedFloats:
    """Floats placed at the very end of a readable page, followed by a page that cannot be read
    or written: a call that reads past the end of the buffer crashes at once (SIGSEGV) instead of
    silently reading whatever follows."""

    def __init__(self, values):
        values = list(values)
        page = mmap.PAGESIZE
        self._map = mmap.mmap(-1, 2 * page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, c_size_t, c_int)
        if libc.mprotect(base + page, page, 0) != 0:  # PROT_NONE
            raise OSError(ctypes.get_errno(), "mprotect failed")
        address = base + page - len(values) * ctypes.sizeof(c_float)
        self.array = (c_float * len(values)).from_address(address)
        self.array[:] = values
        self.pointer = ctypes.cast(self.array, ctypes.POINTER(c_float))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # The mapping stays until the child exits: ctypes objects still point into it.
        pass


# ------------------------------------------------------------------------------------------------
# One checker per function
# ------------------------------------------------------------------------------------------------

CASES = {}


def cases(*names):
    def register(function):
        for name in names:
            CASES[name] = (function, name)
        return function
    return register


@cases("bp_version")
def _(fx, check, name):
    check.same(name, lib.bp_version(), b"0.1.0")


@cases("bp_version_number")
def _(fx, check, name):
    check.same(name, lib.bp_version_number(), 100)


@cases("bp_status_string")
def _(fx, check, name):
    for value in (-1, 11, 2 ** 31 - 1, -2 ** 31):
        check.same(f"{name}({value})", lib.bp_status_string(value), b"unknown status")


@cases("bp_last_error")
def _(fx, check, name):
    lib.bp_graph_create(7, None)
    message = lib.bp_last_error()
    if not isinstance(message, bytes) or not message:
        check.problems.append(f"{name}: no message after a failure: {message!r}")


@cases("bp_graph_create")
def _(fx, check, name):
    check(f"{name}(out NULL)", ARG, lib.bp_graph_create(DType.FLOAT32, None))
    for dtype in (2, -1, 2 ** 31 - 1):
        handle = _capi.GraphHandle()
        check(f"{name}(dtype {dtype})", ARG, lib.bp_graph_create(dtype, byref(handle)))
        if handle:
            check.problems.append(f"{name}(dtype {dtype}): wrote a handle on failure")
    for dtype in DType:
        handle = _capi.GraphHandle()
        check(f"{name}({dtype.name})", OK, lib.bp_graph_create(dtype, byref(handle)))
        check(f"bp_graph_free({dtype.name} graph)", OK, lib.bp_graph_free(handle))


@cases("bp_graph_free")
def _(fx, check, name):
    check(f"{name}(NULL)", OK, lib.bp_graph_free(NULL_GRAPH))
    handle = new_graph()
    check(f"{name}(graph)", OK, lib.bp_graph_free(handle))
    check(f"{name}(freed graph)", HANDLE, lib.bp_graph_free(handle))
    owned = _capi.GraphHandle()
    assert lib.bp_net_graph(fx.net, byref(owned)) == OK
    check(f"{name}(graph owned by a network)", HANDLE, lib.bp_graph_free(owned))
    check(f"{name}(a bp_net as a graph)", HANDLE,
          lib.bp_graph_free(ctypes.cast(fx.net, _capi.GraphHandle)))
    junk = ctypes.create_string_buffer(b"\xa5" * 256)
    check(f"{name}(pointer to other memory)", HANDLE,
          lib.bp_graph_free(ctypes.cast(junk, _capi.GraphHandle)))
    # The network still works after the refused free of its graph.
    check("bp_net_forward after the refused free", OK,
          lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8))


@cases("bp_graph_dtype")
def _(fx, check, name):
    out = c_int(SENTINEL)
    check(f"{name}(NULL graph)", HANDLE, lib.bp_graph_dtype(NULL_GRAPH, byref(out)), out)
    check(f"{name}(out NULL)", ARG, lib.bp_graph_dtype(fx.g, None))
    check(f"{name}(float32 graph)", OK, lib.bp_graph_dtype(fx.g, byref(out)))
    check.same(f"{name} value", out.value, DType.FLOAT32)


@cases("bp_graph_input", "bp_graph_parameter", "bp_graph_constant")
def _(fx, check, name):
    function = getattr(lib, name)
    before = fx.nodes()
    out = node_out()
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, sizes(2), 1, byref(out)), out)
    check(f"{name}(out NULL)", ARG, function(fx.g, sizes(2), 1, None))
    check(f"{name}(shape NULL, rank 2)", ARG, function(fx.g, None, 2, byref(out)), out)
    check(f"{name}(rank 9)", ARG, function(fx.g, sizes(*[1] * 9), 9, byref(out)), out)
    check(f"{name}(rank 2**64 - 1)", ARG, function(fx.g, sizes(1, 1), 2 ** 64 - 1, byref(out)),
          out)
    check(f"{name}(zero dimension)", ARG, function(fx.g, sizes(3, 0), 2, byref(out)), out)
    for dims in ((2 ** 40, 2 ** 40), (2 ** 63, 2), (2 ** 64 - 1, 2 ** 64 - 1), (2 ** 62, 2)):
        check(f"{name}{dims}", OOM, function(fx.g, sizes(*dims), 2, byref(out)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(scalar, shape NULL)", OK, function(fx.g, None, 0, byref(out)))
    check(f"{name}(rank 8)", OK, function(fx.g, sizes(*[1] * 8), 8, byref(out)))


@cases("bp_graph_add", "bp_graph_sub", "bp_graph_mul", "bp_graph_div", "bp_graph_pow",
       "bp_graph_maximum", "bp_graph_minimum")
def _(fx, check, name):
    function = getattr(lib, name)
    before = fx.nodes()
    out = node_out()
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, fx.x, fx.p, byref(out)), out)
    check(f"{name}(out NULL)", ARG, function(fx.g, fx.x, fx.p, None))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(a = {bad})", HANDLE, function(fx.g, bad, fx.p, byref(out)), out)
        check(f"{name}(b = {bad})", HANDLE, function(fx.g, fx.x, bad, byref(out)), out)
    check(f"{name}([2, 3], [2])", SHAPE, function(fx.g, fx.x, fx.labels, byref(out)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(x, p)", OK, function(fx.g, fx.x, fx.p, byref(out)))


@cases("bp_graph_neg", "bp_graph_abs", "bp_graph_exp", "bp_graph_log", "bp_graph_sqrt",
       "bp_graph_square", "bp_graph_reciprocal", "bp_graph_relu", "bp_graph_silu",
       "bp_graph_softplus", "bp_graph_sigmoid", "bp_graph_tanh", "bp_graph_detach", "bp_graph_sum",
       "bp_graph_mean")
def _(fx, check, name):
    function = getattr(lib, name)
    before = fx.nodes()
    out = node_out()
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, fx.x, byref(out)), out)
    check(f"{name}(out NULL)", ARG, function(fx.g, fx.x, None))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(x = {bad})", HANDLE, function(fx.g, bad, byref(out)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(x)", OK, function(fx.g, fx.x, byref(out)))


@cases("bp_graph_matmul")
def _(fx, check, name):
    before = fx.nodes()
    out = node_out()
    matmul = lib.bp_graph_matmul
    check(f"{name}(NULL graph)", HANDLE, matmul(NULL_GRAPH, fx.x, fx.x, byref(out)), out)
    check(f"{name}(out NULL)", ARG, matmul(fx.g, fx.x, fx.x, None))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(a = {bad})", HANDLE, matmul(fx.g, bad, fx.x, byref(out)), out)
    check(f"{name}([2, 3] @ [2, 3])", SHAPE, matmul(fx.g, fx.x, fx.p, byref(out)), out)
    check(f"{name}([2, 3] @ [2])", SHAPE, matmul(fx.g, fx.x, fx.labels, byref(out)), out)
    check(f"{name}(scalar @ scalar)", SHAPE, matmul(fx.g, fx.s, fx.s, byref(out)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    t = leaf(fx.g, "input", 3, 2)
    check(f"{name}([2, 3] @ [3, 2])", OK, matmul(fx.g, fx.x, t, byref(out)))


ELEMENTWISE_LOSSES = ("bp_graph_mse_loss", "bp_graph_l1_loss", "bp_graph_bce_loss",
                      "bp_graph_bce_with_logits_loss")


@cases(*ELEMENTWISE_LOSSES, "bp_graph_cross_entropy", "bp_graph_nll_loss")
def _(fx, check, name):
    function = getattr(lib, name)
    # Targets that are neither [batch] nor [batch, classes] for logits [2, 3].
    other_batch, other_classes = leaf(fx.g, "constant", 3), leaf(fx.g, "constant", 2, 2)
    before = fx.nodes()
    out = node_out()
    a, b = (fx.x, fx.p) if name in ELEMENTWISE_LOSSES else (fx.x, fx.labels)
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, a, b, Reduction.MEAN, byref(out)),
          out)
    check(f"{name}(out NULL)", ARG, function(fx.g, a, b, Reduction.MEAN, None))
    for reduction in (3, -1, 2 ** 31 - 1):
        check(f"{name}(reduction {reduction})", ARG,
              function(fx.g, a, b, reduction, byref(out)), out)
    for bad in GRAPH_ID_BAD:
        check(f"{name}(first = {bad})", HANDLE, function(fx.g, bad, b, 0, byref(out)), out)
        check(f"{name}(second = {bad})", HANDLE, function(fx.g, a, bad, 0, byref(out)), out)
    if name in ELEMENTWISE_LOSSES:
        check(f"{name}([2, 3], [2])", SHAPE, function(fx.g, fx.x, fx.labels, 0, byref(out)), out)
        check(f"{name}([2, 3], scalar)", SHAPE, function(fx.g, fx.x, fx.s, 0, byref(out)), out)
    else:
        check(f"{name}(logits [2], labels [2])", SHAPE,
              function(fx.g, fx.labels, fx.labels, 0, byref(out)), out)
        check(f"{name}(labels [3])", SHAPE,
              function(fx.g, fx.x, other_batch, 0, byref(out)), out)
        check(f"{name}(probabilities [2, 2])", SHAPE,
              function(fx.g, fx.x, other_classes, 0, byref(out)), out)
        check(f"{name}(scalar labels)", SHAPE, function(fx.g, fx.x, fx.s, 0, byref(out)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for reduction in Reduction:
        check(f"{name}({reduction.name})", OK, function(fx.g, a, b, reduction, byref(out)))
    if name == "bp_graph_cross_entropy":
        check(f"{name}(probabilities [2, 3])", OK, function(fx.g, fx.x, fx.c, 0, byref(out)))
    if name == "bp_graph_nll_loss":
        out = node_out()
        check(f"{name}(targets [2, 3]: indices only)", SHAPE,
              function(fx.g, fx.x, fx.c, 0, byref(out)), out)


@cases("bp_graph_set_value", "bp_graph_set_value_f64")
def _(fx, check, name):
    function = getattr(lib, name)
    ctype = c_float if name == "bp_graph_set_value" else c_double
    values = (ctype * 6)(1, 2, 3, 4, 5, 6)
    check(f"{name}(x)", OK, function(fx.g, fx.x, values, 6))
    other = (ctype * 7)(*[9] * 7)
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, fx.x, values, 6))
    check(f"{name}(values NULL)", ARG, function(fx.g, fx.x, None, 6))
    for count in (0, 5, 7, 2 ** 64 - 1):
        check(f"{name}(count {count})", wrong_count(count), function(fx.g, fx.x, other, count))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(node {bad})", HANDLE, function(fx.g, bad, other, 6))
    check(f"{name}(op node)", ARG, function(fx.g, fx.e, other, 6))
    out = (c_float * 6)()
    assert lib.bp_graph_value(fx.g, fx.x, out, 6) == OK
    check.same(f"{name}: value after failures", list(out), [1, 2, 3, 4, 5, 6])


@cases("bp_graph_forward", "bp_graph_zero_grad")
def _(fx, check, name):
    function = getattr(lib, name)
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH))
    check(f"{name}(graph)", OK, function(fx.g))


@cases("bp_graph_backward")
def _(fx, check, name):
    check(f"{name}(NULL graph)", HANDLE, lib.bp_graph_backward(NULL_GRAPH, fx.s))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(root {bad})", HANDLE, lib.bp_graph_backward(fx.g, bad))
    check(f"{name}(root [2, 3])", SHAPE, lib.bp_graph_backward(fx.g, fx.e))
    check(f"{name}(root [2, 3] leaf)", SHAPE, lib.bp_graph_backward(fx.g, fx.x))
    check(f"{name}(scalar root)", OK, lib.bp_graph_backward(fx.g, fx.s))
    out = node_out()
    assert lib.bp_graph_neg(fx.g, fx.s, byref(out)) == OK
    check(f"{name}(after the graph grew)", STATE, lib.bp_graph_backward(fx.g, fx.s))


@cases("bp_graph_value", "bp_graph_value_f64", "bp_graph_grad", "bp_graph_grad_f64")
def _(fx, check, name):
    function = getattr(lib, name)
    ctype = c_double if name.endswith("_f64") else c_float
    buffer = (ctype * 8)(*[SENTINEL] * 8)
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, fx.x, buffer, 6))
    check(f"{name}(out NULL)", ARG, function(fx.g, fx.x, None, 6))
    for count in (0, 5, 7, 2 ** 64 - 1):
        check(f"{name}(count {count})", wrong_count(count), function(fx.g, fx.x, buffer, count))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(node {bad})", HANDLE, function(fx.g, bad, buffer, 6))
    if "grad" in name:
        check(f"{name}(constant)", ARG, function(fx.g, fx.c, buffer, 6))
    else:
        out = node_out()
        assert lib.bp_graph_tanh(fx.g, fx.x, byref(out)) == OK
        check(f"{name}(op node before forward)", STATE, function(fx.g, out.value, buffer, 6))
    check.same(f"{name}: buffer after failures", list(buffer), [SENTINEL] * 8)
    if "grad" not in name:
        check(f"{name}(leaf before forward)", OK, function(fx.g, fx.x, buffer, 6))
    check(f"{name}(x)", OK, function(fx.g, fx.x, buffer, 6))


@cases("bp_graph_shape")
def _(fx, check, name):
    dims = (c_size_t * 8)(*[SENTINEL] * 8)
    rank = size_out()
    check(f"{name}(NULL graph)", HANDLE, lib.bp_graph_shape(NULL_GRAPH, fx.x, dims, 8,
                                                            byref(rank)), rank)
    check(f"{name}(rank NULL)", ARG, lib.bp_graph_shape(fx.g, fx.x, dims, 8, None))
    check(f"{name}(capacity 1 < rank 2)", ARG, lib.bp_graph_shape(fx.g, fx.x, dims, 1,
                                                                  byref(rank)), rank)
    check(f"{name}(shape NULL, capacity 2)", ARG, lib.bp_graph_shape(fx.g, fx.x, None, 2,
                                                                     byref(rank)), rank)
    for bad in GRAPH_ID_BAD:
        check(f"{name}(node {bad})", HANDLE, lib.bp_graph_shape(fx.g, bad, dims, 8, byref(rank)),
              rank)
    check.same(f"{name}: dims after failures", dims[0], SENTINEL)
    check(f"{name}(shape NULL, capacity 0)", OK, lib.bp_graph_shape(fx.g, fx.x, None, 0,
                                                                    byref(rank)))
    check.same(f"{name}: rank only", rank.value, 2)
    check(f"{name}(scalar, shape NULL, capacity 0)", OK,
          lib.bp_graph_shape(fx.g, fx.s, None, 0, byref(rank)))
    check.same(f"{name}: scalar rank", rank.value, 0)
    check(f"{name}(x)", OK, lib.bp_graph_shape(fx.g, fx.x, dims, 2, byref(rank)))
    check.same(f"{name}: dims", list(dims[:2]), [2, 3])


@cases("bp_graph_size")
def _(fx, check, name):
    out = size_out()
    check(f"{name}(NULL graph)", HANDLE, lib.bp_graph_size(NULL_GRAPH, fx.x, byref(out)), out)
    check(f"{name}(out NULL)", ARG, lib.bp_graph_size(fx.g, fx.x, None))
    for bad in GRAPH_ID_BAD:
        check(f"{name}(node {bad})", HANDLE, lib.bp_graph_size(fx.g, bad, byref(out)), out)
    check(f"{name}(x)", OK, lib.bp_graph_size(fx.g, fx.x, byref(out)))
    check.same(f"{name}: value", out.value, 6)


@cases("bp_graph_node_count")
def _(fx, check, name):
    out = size_out()
    check(f"{name}(NULL graph)", HANDLE, lib.bp_graph_node_count(NULL_GRAPH, byref(out)), out)
    check(f"{name}(out NULL)", ARG, lib.bp_graph_node_count(fx.g, None))
    check(f"{name}(graph)", OK, lib.bp_graph_node_count(fx.g, byref(out)))
    check.same(f"{name}: value", out.value, 6)


@cases("bp_graph_check_gradients")
def _(fx, check, name):
    gradcheck = lib.bp_graph_check_gradients
    g = new_graph(DType.FLOAT64)
    x = leaf(g, "input", 3)
    c = leaf(g, "constant", 3)
    out = c_int32()
    assert lib.bp_graph_mul(g, x, c, byref(out)) == OK
    product = out.value
    assert lib.bp_graph_sum(g, product, byref(out)) == OK
    root = out.value
    values = (c_double * 3)(0.5, -1.5, 2.0)
    assert lib.bp_graph_set_value_f64(g, x, values, 3) == OK
    assert lib.bp_graph_set_value_f64(g, c, (c_double * 3)(1, 2, 3), 3) == OK
    passed, error = c_int(SENTINEL), c_double(SENTINEL)
    args = (1e-6, 1e-5, 1e-3, byref(passed), byref(error))
    check(f"{name}(NULL graph)", HANDLE, gradcheck(NULL_GRAPH, root, *args), passed, error)
    for bad in GRAPH_ID_BAD:
        check(f"{name}(root {bad})", HANDLE, gradcheck(g, bad, *args), passed, error)
    check(f"{name}(root [3])", SHAPE, gradcheck(g, product, *args), passed, error)
    for eps, atol, rtol in ((0.0, 1e-5, 1e-3), (-1e-6, 1e-5, 1e-3), (float("nan"), 1e-5, 1e-3),
                            (1e-6, -1e-5, 1e-3), (1e-6, 1e-5, -1e-3)):
        check(f"{name}(eps {eps}, atol {atol}, rtol {rtol})", ARG,
              gradcheck(g, root, eps, atol, rtol, byref(passed), byref(error)), passed, error)
    check(f"{name}(both outs NULL)", OK, gradcheck(g, root, 1e-6, 1e-5, 1e-3, None, None))
    check(f"{name}(graph)", OK, gradcheck(g, root, *args))
    check.same(f"{name}: passed", passed.value, 1)
    after = (c_double * 3)()
    assert lib.bp_graph_value_f64(g, x, after, 3) == OK
    check.same(f"{name}: leaf values afterwards", list(after), [0.5, -1.5, 2.0])
    assert lib.bp_graph_grad_f64(g, x, after, 3) == OK
    check.same(f"{name}: leaf gradient afterwards", list(after), [1.0, 2.0, 3.0])
    lib.bp_graph_free(g)


@cases("bp_net_create")
def _(fx, check, name):
    check(f"{name}(out NULL)", ARG, lib.bp_net_create(2, 1, None))
    handle = _capi.NetHandle()
    check(f"{name}(input_width 0)", ARG, lib.bp_net_create(0, 1, byref(handle)))
    if handle:
        check.problems.append(f"{name}(input_width 0): wrote a handle on failure")
    check(f"{name}(seed 2**64 - 1)", OK, lib.bp_net_create(2, 2 ** 64 - 1, byref(handle)))
    check("bp_net_free(new network)", OK, lib.bp_net_free(handle))


@cases("bp_net_free")
def _(fx, check, name):
    check(f"{name}(NULL)", OK, lib.bp_net_free(NULL_NET))
    handle = new_net()
    check(f"{name}(network)", OK, lib.bp_net_free(handle))
    check(f"{name}(freed network)", HANDLE, lib.bp_net_free(handle))
    check(f"{name}(a bp_graph as a network)", HANDLE,
          lib.bp_net_free(ctypes.cast(fx.g, _capi.NetHandle)))
    junk = ctypes.create_string_buffer(b"\x5a" * 256)
    check(f"{name}(pointer to other memory)", HANDLE,
          lib.bp_net_free(ctypes.cast(junk, _capi.NetHandle)))
    check("bp_graph_forward after the refused free", OK, lib.bp_graph_forward(fx.g))


@cases("bp_net_add_dense")
def _(fx, check, name):
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_add_dense(NULL_NET, 2, Activation.RELU))
    check(f"{name}(units 0)", ARG, lib.bp_net_add_dense(fx.empty, 0, Activation.RELU))
    for activation in (4, -1, 2 ** 31 - 1):
        check(f"{name}(activation {activation})", ARG,
              lib.bp_net_add_dense(fx.empty, 2, activation))
    for units in (2 ** 62, 2 ** 63, 2 ** 64 - 1):
        check(f"{name}(units {units})", OOM, lib.bp_net_add_dense(fx.empty, units, 0))
    count = size_out()
    assert lib.bp_net_layer_count(fx.empty, byref(count)) == OK
    check.same(f"{name}: layers after failures", count.value, 0)
    for activation in Activation:
        check(f"{name}({activation.name})", OK, lib.bp_net_add_dense(fx.empty, 2, activation))


@cases("bp_net_set_loss")
def _(fx, check, name):
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_set_loss(NULL_NET, Loss.MSE))
    for loss in (2, -1, 2 ** 31 - 1):
        check(f"{name}(loss {loss})", ARG, lib.bp_net_set_loss(fx.net, loss))
    # The loss is unchanged: MSE backward still works, labels are still refused.
    assert lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8) == OK
    check(f"{name}: backward_labels after failures", ARG,
          lib.bp_net_backward_labels(fx.net, fx.int_labels, 4, None))
    check(f"{name}: backward after failures", OK,
          lib.bp_net_backward(fx.net, fx.targets, 8, None))


@cases("bp_net_input_width", "bp_net_output_width", "bp_net_layer_count",
       "bp_net_parameter_count")
def _(fx, check, name):
    function = getattr(lib, name)
    out = size_out()
    check(f"{name}(NULL net)", HANDLE, function(NULL_NET, byref(out)), out)
    check(f"{name}(out NULL)", ARG, function(fx.net, None))
    check(f"{name}(net)", OK, function(fx.net, byref(out)))
    want = {"bp_net_input_width": 2, "bp_net_output_width": 2, "bp_net_layer_count": 2,
            "bp_net_parameter_count": 2 * 3 + 3 + 3 * 2 + 2}[name]
    check.same(f"{name}: value", out.value, want)


@cases("bp_net_forward", "bp_net_predict")
def _(fx, check, name):
    function = getattr(lib, name)
    outputs = (c_float * 8)(*[SENTINEL] * 8)
    check(f"{name}(NULL net)", HANDLE, function(NULL_NET, 4, fx.inputs, 8, outputs, 8))
    check(f"{name}(inputs NULL)", ARG, function(fx.net, 4, None, 8, outputs, 8))
    check(f"{name}(outputs NULL)", ARG, function(fx.net, 4, fx.inputs, 8, None, 8))
    check(f"{name}(batch 0)", ARG, function(fx.net, 0, fx.inputs, 0, outputs, 0))
    check(f"{name}(batch 0, counts 8)", ARG, function(fx.net, 0, fx.inputs, 8, outputs, 8))
    for count in (0, 6, 7, 9, 16, 2 ** 64 - 1):
        check(f"{name}(input_count {count})", wrong_count(count),
              function(fx.net, 4, fx.inputs, count, outputs, 8))
    for count in (0, 7, 9, 2 ** 64 - 1):
        check(f"{name}(output_count {count})", wrong_count(count),
              function(fx.net, 4, fx.inputs, 8, outputs, count))
    # Counts that agree with each other but not with the batch.
    check(f"{name}(batch 3, counts of batch 4)", ARG, function(fx.net, 3, fx.inputs, 8, outputs, 8))
    check(f"{name}(batch 4, input_count of batch 3)", ARG,
          function(fx.net, 4, fx.inputs, 6, outputs, 8))
    # A short buffer with its true count, ending right before an unreadable page: reading
    # batch * input_width floats would crash this child instead of failing with a status.
    with GuardedFloats(range(6)) as short:
        check(f"{name}(6 inputs for batch 4)", ARG, function(fx.net, 4, short.pointer, 6,
                                                            outputs, 8))
    check(f"{name}(no layers)", STATE, function(fx.empty, 4, fx.inputs, 8, outputs, 8))
    for batch in (2 ** 62, 2 ** 63, 2 ** 64 - 1):
        # batch * width overflows: the library must say so before touching the buffers. (The
        # header names OUT_OF_MEMORY for "batch too large"; the counts cannot match either.)
        check(f"{name}(batch {batch})", (OOM, ARG), function(fx.net, batch, fx.inputs, 8,
                                                             outputs, 8))
    for bad in (float("nan"), float("inf"), float("-inf")):
        inputs = (c_float * 8)(*range(8))
        inputs[5] = bad
        check(f"{name}(input {bad})", NONFINITE, function(fx.net, 4, inputs, 8, outputs, 8))
    check.same(f"{name}: outputs after failures", list(outputs), [SENTINEL] * 8)
    with GuardedFloats(range(8)) as exact:
        check(f"{name}(inputs ending at an unreadable page)", OK,
              function(fx.net, 4, exact.pointer, 8, outputs, 8))
    check(f"{name}(batch 2 of a larger buffer)", OK, function(fx.net, 2, fx.inputs, 4, outputs, 4))
    check(f"{name}(net)", OK, function(fx.net, 4, fx.inputs, 8, outputs, 8))


@cases("bp_net_backward")
def _(fx, check, name):
    loss = c_float(SENTINEL)
    check(f"{name}(before forward)", STATE, lib.bp_net_backward(fx.net, fx.targets, 8,
                                                                byref(loss)), loss)
    assert lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8) == OK
    assert lib.bp_net_zero_grad(fx.net) == OK
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_backward(NULL_NET, fx.targets, 8, byref(loss)),
          loss)
    check(f"{name}(targets NULL)", ARG, lib.bp_net_backward(fx.net, None, 8, byref(loss)), loss)
    for count in (0, 7, 9, 2 ** 64 - 1):
        check(f"{name}(target_count {count})", wrong_count(count),
              lib.bp_net_backward(fx.net, fx.targets, count, byref(loss)), loss)
    for bad in (float("nan"), float("inf")):
        targets = (c_float * 8)()
        targets[3] = bad
        check(f"{name}(target {bad})", NONFINITE,
              lib.bp_net_backward(fx.net, targets, 8, byref(loss)), loss)
    assert lib.bp_net_forward(fx.ce, 4, fx.inputs, 8, fx.outputs, 8) == OK
    check(f"{name}(cross-entropy net)", ARG, lib.bp_net_backward(fx.ce, fx.targets, 8,
                                                                 byref(loss)), loss)
    check.same(f"{name}: gradients after failures", net_gradients(fx.net), np.zeros(6))
    check(f"{name}(loss NULL)", OK, lib.bp_net_backward(fx.net, fx.targets, 8, None))
    check(f"{name}(net)", OK, lib.bp_net_backward(fx.net, fx.targets, 8, byref(loss)))


@cases("bp_net_backward_labels")
def _(fx, check, name):
    loss = c_float(SENTINEL)
    check(f"{name}(before forward)", STATE,
          lib.bp_net_backward_labels(fx.ce, fx.int_labels, 4, byref(loss)), loss)
    assert lib.bp_net_forward(fx.ce, 4, fx.inputs, 8, fx.outputs, 8) == OK
    assert lib.bp_net_zero_grad(fx.ce) == OK
    check(f"{name}(NULL net)", HANDLE,
          lib.bp_net_backward_labels(NULL_NET, fx.int_labels, 4, byref(loss)), loss)
    check(f"{name}(labels NULL)", ARG, lib.bp_net_backward_labels(fx.ce, None, 4, byref(loss)),
          loss)
    for count in (0, 3, 5, 2 ** 64 - 1):
        check(f"{name}(count {count})", wrong_count(count),
              lib.bp_net_backward_labels(fx.ce, fx.int_labels, count, byref(loss)), loss)
    for bad in (2, -1, 2 ** 31 - 1, -2 ** 31):
        labels = (c_int32 * 4)(0, 1, bad, 0)
        check(f"{name}(label {bad})", ARG,
              lib.bp_net_backward_labels(fx.ce, labels, 4, byref(loss)), loss)
    assert lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8) == OK
    check(f"{name}(MSE net)", ARG, lib.bp_net_backward_labels(fx.net, fx.int_labels, 4,
                                                              byref(loss)), loss)
    check.same(f"{name}: gradients after failures", net_gradients(fx.ce), np.zeros(6))
    check(f"{name}(loss NULL)", OK, lib.bp_net_backward_labels(fx.ce, fx.int_labels, 4, None))
    check(f"{name}(net)", OK, lib.bp_net_backward_labels(fx.ce, fx.int_labels, 4, byref(loss)))


@cases("bp_net_update")
def _(fx, check, name):
    assert lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8) == OK
    assert lib.bp_net_backward(fx.net, fx.targets, 8, None) == OK
    before = net_weights(fx.net)
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_update(NULL_NET, 0.1))
    for lr in (-0.1, float("nan"), float("inf"), float("-inf")):
        check(f"{name}(learning rate {lr})", ARG, lib.bp_net_update(fx.net, lr))
    for got, want in zip(net_weights(fx.net), before):
        check.same(f"{name}: weights after failures", got, want)
    check(f"{name}(0.1)", OK, lib.bp_net_update(fx.net, 0.1))


@cases("bp_net_zero_grad")
def _(fx, check, name):
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_zero_grad(NULL_NET))
    check(f"{name}(net)", OK, lib.bp_net_zero_grad(fx.net))
    check(f"{name}(net without layers)", OK, lib.bp_net_zero_grad(fx.empty))


@cases("bp_net_train_step")
def _(fx, check, name):
    step = lib.bp_net_train_step
    loss = c_float(SENTINEL)
    before = net_weights(fx.net)
    inputs, targets = fx.inputs, fx.targets

    def call(net, batch, inputs, input_count, targets, target_count, lr=0.1):
        return step(net, batch, inputs, input_count, targets, target_count, lr, byref(loss))

    check(f"{name}(NULL net)", HANDLE, call(NULL_NET, 4, inputs, 8, targets, 8), loss)
    check(f"{name}(inputs NULL)", ARG, call(fx.net, 4, None, 8, targets, 8), loss)
    check(f"{name}(targets NULL)", ARG, call(fx.net, 4, inputs, 8, None, 8), loss)
    check(f"{name}(batch 0)", ARG, call(fx.net, 0, inputs, 0, targets, 0), loss)
    check(f"{name}(batch 0, counts 8)", ARG, call(fx.net, 0, inputs, 8, targets, 8), loss)
    for count in (0, 6, 7, 9, 2 ** 64 - 1):
        check(f"{name}(input_count {count})", wrong_count(count),
              call(fx.net, 4, inputs, count, targets, 8), loss)
    check(f"{name}(target_count 7)", ARG, call(fx.net, 4, inputs, 8, targets, 7), loss)
    check(f"{name}(batch 3, counts of batch 4)", ARG, call(fx.net, 3, inputs, 8, targets, 8),
          loss)
    with GuardedFloats(range(6)) as short:
        check(f"{name}(6 inputs for batch 4)", ARG, call(fx.net, 4, short.pointer, 6, targets, 8),
              loss)
    for batch in (2 ** 62, 2 ** 64 - 1):
        check(f"{name}(batch {batch})", (OOM, ARG), call(fx.net, batch, inputs, 8, targets, 8),
              loss)
    check(f"{name}(learning rate -1)", ARG, call(fx.net, 4, inputs, 8, targets, 8, -1.0), loss)
    check(f"{name}(learning rate NaN)", ARG, call(fx.net, 4, inputs, 8, targets, 8,
                                                  float("nan")), loss)
    bad_inputs = (c_float * 8)(*range(8))
    bad_inputs[0] = float("nan")
    check(f"{name}(input NaN)", NONFINITE, call(fx.net, 4, bad_inputs, 8, targets, 8), loss)
    bad_targets = (c_float * 8)()
    bad_targets[7] = float("inf")
    check(f"{name}(target inf)", NONFINITE, call(fx.net, 4, inputs, 8, bad_targets, 8), loss)
    check(f"{name}(cross-entropy net)", ARG, call(fx.ce, 4, inputs, 8, targets, 8), loss)
    check(f"{name}(no layers)", STATE, call(fx.empty, 4, inputs, 8, targets, 8), loss)
    for got, want in zip(net_weights(fx.net), before):
        check.same(f"{name}: weights after failures", got, want)
    check(f"{name}(loss NULL)", OK, step(fx.net, 4, inputs, 8, targets, 8, 0.1, None))
    check(f"{name}(net)", OK, call(fx.net, 4, inputs, 8, targets, 8))


@cases("bp_net_train_step_labels")
def _(fx, check, name):
    step = lib.bp_net_train_step_labels
    loss = c_float(SENTINEL)
    before = net_weights(fx.ce)
    inputs, labels = fx.inputs, fx.int_labels

    def call(net, batch, inputs, input_count, labels, label_count, lr=0.1):
        return step(net, batch, inputs, input_count, labels, label_count, lr, byref(loss))

    check(f"{name}(NULL net)", HANDLE, call(NULL_NET, 4, inputs, 8, labels, 4), loss)
    check(f"{name}(inputs NULL)", ARG, call(fx.ce, 4, None, 8, labels, 4), loss)
    check(f"{name}(labels NULL)", ARG, call(fx.ce, 4, inputs, 8, None, 4), loss)
    check(f"{name}(batch 0)", ARG, call(fx.ce, 0, inputs, 0, labels, 0), loss)
    for count in (0, 6, 7, 9, 2 ** 64 - 1):
        check(f"{name}(input_count {count})", wrong_count(count),
              call(fx.ce, 4, inputs, count, labels, 4), loss)
    check(f"{name}(label_count 3)", ARG, call(fx.ce, 4, inputs, 8, labels, 3), loss)
    check(f"{name}(batch 3, counts of batch 4)", ARG, call(fx.ce, 3, inputs, 8, labels, 4), loss)
    with GuardedFloats(range(6)) as short:
        check(f"{name}(6 inputs for batch 4)", ARG, call(fx.ce, 4, short.pointer, 6, labels, 4),
              loss)
    check(f"{name}(learning rate inf)", ARG, call(fx.ce, 4, inputs, 8, labels, 4, float("inf")),
          loss)
    bad = (c_int32 * 4)(0, 2, 1, 0)
    check(f"{name}(label 2 of 2 classes)", ARG, call(fx.ce, 4, inputs, 8, bad, 4), loss)
    bad_inputs = (c_float * 8)(*range(8))
    bad_inputs[4] = float("-inf")
    check(f"{name}(input -inf)", NONFINITE, call(fx.ce, 4, bad_inputs, 8, labels, 4), loss)
    check(f"{name}(MSE net)", ARG, call(fx.net, 4, inputs, 8, labels, 4), loss)
    for got, want in zip(net_weights(fx.ce), before):
        check.same(f"{name}: weights after failures", got, want)
    check(f"{name}(loss NULL)", OK, step(fx.ce, 4, inputs, 8, labels, 4, 0.1, None))
    check(f"{name}(net)", OK, call(fx.ce, 4, inputs, 8, labels, 4))


@cases("bp_net_graph")
def _(fx, check, name):
    out = _capi.GraphHandle()
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_graph(NULL_NET, byref(out)))
    if out:
        check.problems.append(f"{name}(NULL net): wrote a handle on failure")
    check(f"{name}(out NULL)", ARG, lib.bp_net_graph(fx.net, None))
    check(f"{name}(net)", OK, lib.bp_net_graph(fx.net, byref(out)))
    count = size_out()
    check("bp_graph_node_count(network graph)", OK, lib.bp_graph_node_count(out, byref(count)))


@cases("bp_net_layer_nodes")
def _(fx, check, name):
    weight, bias = node_out(), node_out()
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_layer_nodes(NULL_NET, 0, byref(weight),
                                                              byref(bias)), weight, bias)
    for layer in (2, 2 ** 64 - 1):
        check(f"{name}(layer {layer})", ARG, lib.bp_net_layer_nodes(fx.net, layer, byref(weight),
                                                                    byref(bias)), weight, bias)
    check(f"{name}(no layers)", ARG, lib.bp_net_layer_nodes(fx.empty, 0, byref(weight),
                                                            byref(bias)), weight, bias)
    check(f"{name}(both outs NULL)", OK, lib.bp_net_layer_nodes(fx.net, 1, None, None))
    check(f"{name}(bias NULL)", OK, lib.bp_net_layer_nodes(fx.net, 1, byref(weight), None))
    check(f"{name}(net)", OK, lib.bp_net_layer_nodes(fx.net, 1, byref(weight), byref(bias)))


@cases("bp_net_nodes")
def _(fx, check, name):
    input_, output, loss = node_out(), node_out(), node_out()
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_nodes(NULL_NET, byref(input_), byref(output),
                                                        byref(loss)), input_, output, loss)
    check(f"{name}(all outs NULL)", OK, lib.bp_net_nodes(fx.net, None, None, None))
    check(f"{name}(net)", OK, lib.bp_net_nodes(fx.net, byref(input_), byref(output), byref(loss)))


# ---- Functions added with the full op set -----------------------------------------------

@cases("bp_set_num_threads", "bp_get_num_threads")
def _(fx, check, name):
    original = lib.bp_get_num_threads()
    check.same("bp_get_num_threads() >= 1", original >= 1, True)
    for threads in (0, -1, -2 ** 31):
        check(f"bp_set_num_threads({threads})", ARG, lib.bp_set_num_threads(threads))
    check.same("bp_get_num_threads after failures", lib.bp_get_num_threads(), original)
    check("bp_set_num_threads(1)", OK, lib.bp_set_num_threads(1))
    check.same("bp_get_num_threads after setting 1", lib.bp_get_num_threads(), 1)
    check("bp_set_num_threads(original)", OK, lib.bp_set_num_threads(original))


def node_checks(fx, check, name, call, out, ids=None):
    """The checks every op shares: NULL graph, out NULL, and each node argument out of range.
    call(graph, out_pointer, **node_overrides) makes the call."""
    check(f"{name}(NULL graph)", HANDLE, call(NULL_GRAPH, byref(out)), out)
    check(f"{name}(out NULL)", ARG, call(fx.g, None))
    for argument in ids or ():
        for bad in GRAPH_ID_BAD:
            check(f"{name}({argument} = {bad})", HANDLE, call(fx.g, byref(out), **{argument: bad}),
                  out)


@cases("bp_graph_compare")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, a=fx.x, b=fx.p, comparison=Comparison.LT):
        return lib.bp_graph_compare(g, a, b, comparison, o)

    node_checks(fx, check, name, call, out, ids=("a", "b"))
    for comparison in (6, -1, 2 ** 31 - 1):
        check(f"{name}(comparison {comparison})", ARG,
              call(fx.g, byref(out), comparison=comparison), out)
    check(f"{name}([2, 3], [2])", SHAPE, call(fx.g, byref(out), b=fx.labels), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for comparison in Comparison:
        check(f"{name}({comparison.name})", OK, call(fx.g, byref(out), comparison=comparison))


@cases("bp_graph_where")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, condition=fx.c, a=fx.x, b=fx.p):
        return lib.bp_graph_where(g, condition, a, b, o)

    node_checks(fx, check, name, call, out, ids=("condition", "a", "b"))
    check(f"{name}(b [2] against [2, 3])", SHAPE, call(fx.g, byref(out), b=fx.labels), out)
    check(f"{name}(condition [2] against [2, 3])", SHAPE,
          call(fx.g, byref(out), condition=fx.labels), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(c, x, p)", OK, call(fx.g, byref(out)))
    check(f"{name}(scalar condition)", OK, call(fx.g, byref(out), condition=fx.s))


@cases("bp_graph_pow_scalar", "bp_graph_leaky_relu", "bp_graph_elu")
def _(fx, check, name):
    function = getattr(lib, name)
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, value=2.0):
        return function(g, x, value, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for bad in (float("nan"), float("inf"), float("-inf")):
        check(f"{name}({bad})", ARG, call(fx.g, byref(out), value=bad), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for value in (2.0, 0.0, -0.5):
        check(f"{name}({value})", OK, call(fx.g, byref(out), value=value))


@cases("bp_graph_gelu")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, approximation=GeluApproximation.EXACT):
        return lib.bp_graph_gelu(g, x, approximation, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for approximation in (2, -1, 2 ** 31 - 1):
        check(f"{name}(approximation {approximation})", ARG,
              call(fx.g, byref(out), approximation=approximation), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for approximation in GeluApproximation:
        check(f"{name}({approximation.name})", OK,
              call(fx.g, byref(out), approximation=approximation))


@cases("bp_graph_transpose")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x):
        return lib.bp_graph_transpose(g, x, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    check(f"{name}([2])", SHAPE, call(fx.g, byref(out), x=fx.labels), out)
    check(f"{name}(scalar)", SHAPE, call(fx.g, byref(out), x=fx.s), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}([2, 3])", OK, call(fx.g, byref(out)))
    shape = (c_size_t * 8)()
    rank = c_size_t()
    assert lib.bp_graph_shape(fx.g, out.value, shape, 8, byref(rank)) == OK
    check.same(f"{name}: shape", list(shape[:rank.value]), [3, 2])


@cases("bp_graph_matmul_transposed")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, a=fx.x, b=fx.p, ta=0, tb=1):
        return lib.bp_graph_matmul_transposed(g, a, b, ta, tb, o)

    node_checks(fx, check, name, call, out, ids=("a", "b"))
    check(f"{name}([2, 3] @ [2, 3])", SHAPE, call(fx.g, byref(out), tb=0), out)
    check(f"{name}([2, 3]^T @ [2, 3]^T)", SHAPE, call(fx.g, byref(out), ta=1, tb=1), out)
    check(f"{name}([2] @ [2, 3]^T)", SHAPE, call(fx.g, byref(out), a=fx.labels), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}([2, 3] @ [2, 3]^T)", OK, call(fx.g, byref(out)))
    check(f"{name}([2, 3]^T @ [2, 3])", OK, call(fx.g, byref(out), ta=1, tb=0))
    check(f"{name}(flags 7 and -1 mean true)", OK, call(fx.g, byref(out), ta=0, tb=7))


@cases("bp_graph_reduce")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, op=ReduceOp.SUM, axes=(1,), count=None, keep=0):
        array = (c_int32 * len(axes))(*axes) if axes is not None else None
        return lib.bp_graph_reduce(g, x, op, array, len(axes or ()) if count is None else count,
                                   keep, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for op in (5, -1):
        check(f"{name}(op {op})", ARG, call(fx.g, byref(out), op=op), out)
    check(f"{name}(axes NULL, count 1)", ARG, call(fx.g, byref(out), axes=None, count=1), out)
    for axes in ((2,), (-3,), (0, 0), (1, -1), (2 ** 31 - 1,)):
        check(f"{name}(axes {axes} of rank 2)", AXIS, call(fx.g, byref(out), axes=axes), out)
    check(f"{name}(axis 0 of a scalar)", AXIS, call(fx.g, byref(out), x=fx.s, axes=(0,)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for op in ReduceOp:
        check(f"{name}({op.name}, axis 1)", OK, call(fx.g, byref(out), op=op))
    check(f"{name}(every axis, axes NULL)", OK, call(fx.g, byref(out), axes=None, count=0))
    check(f"{name}(axes (-1, 0), keep_dims)", OK, call(fx.g, byref(out), axes=(-1, 0), keep=1))


@cases("bp_graph_reshape", "bp_graph_permute")
def _(fx, check, name):
    function = getattr(lib, name)
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, dims=(3, 2), rank=None):
        array = sizes(*dims) if dims is not None else None
        return function(g, x, array, len(dims or ()) if rank is None else rank, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    check(f"{name}(NULL, rank 2)", ARG, call(fx.g, byref(out), dims=None, rank=2), out)
    check(f"{name}(rank 9)", ARG, call(fx.g, byref(out), dims=(1,) * 9), out)
    check(f"{name}(rank 2**64 - 1)", ARG, call(fx.g, byref(out), rank=2 ** 64 - 1), out)
    if name == "bp_graph_reshape":
        check(f"{name}(4 elements for 6)", SHAPE, call(fx.g, byref(out), dims=(2, 2)), out)
        check(f"{name}(a zero dimension)", (ARG, SHAPE), call(fx.g, byref(out), dims=(0, 6)),
              out)
        check(f"{name}(overflowing dims)", (ARG, SHAPE, OOM),
              call(fx.g, byref(out), dims=(2 ** 63, 2 ** 63, 6)), out)
        good = [(3, 2), (6,), (1, 6, 1)]
    else:
        for dims in ((0, 0), (0, 2), (2, 1), (2 ** 64 - 1, 0)):
            check(f"{name}({dims}: not a permutation)", AXIS,
                  call(fx.g, byref(out), dims=dims), out)
        check(f"{name}(rank 1 for a rank-2 node)", (ARG, SHAPE), call(fx.g, byref(out),
                                                                       dims=(0,)), out)
        good = [(1, 0), (0, 1)]
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for dims in good:
        check(f"{name}{dims}", OK, call(fx.g, byref(out), dims=dims))


@cases("bp_graph_concat")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, nodes=None, axis=0, count=None):
        nodes = (fx.x, fx.p) if nodes is None else nodes
        array = (c_int32 * len(nodes))(*nodes) if nodes != () else None
        return lib.bp_graph_concat(g, array, len(nodes) if count is None else count, axis, o)

    node_checks(fx, check, name, call, out)
    check(f"{name}(inputs NULL, count 2)", ARG, call(fx.g, byref(out), nodes=(), count=2), out)
    check(f"{name}(no inputs)", ARG, call(fx.g, byref(out), nodes=(fx.x,), count=0), out)
    for bad in GRAPH_ID_BAD:
        check(f"{name}(input {bad})", HANDLE, call(fx.g, byref(out), nodes=(fx.x, bad)), out)
    for axis in (2, -3, 2 ** 31 - 1):
        check(f"{name}(axis {axis})", AXIS, call(fx.g, byref(out), axis=axis), out)
    check(f"{name}([2, 3] with [2])", SHAPE, call(fx.g, byref(out), nodes=(fx.x, fx.labels)), out)
    check(f"{name}(scalars)", (ARG, SHAPE), call(fx.g, byref(out), nodes=(fx.s, fx.s)), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(axis 0)", OK, call(fx.g, byref(out)))
    check(f"{name}(axis -1, one input)", OK, call(fx.g, byref(out), nodes=(fx.x,), axis=-1))


@cases("bp_graph_slice")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, axis=1, start=0, end=2):
        return lib.bp_graph_slice(g, x, axis, start, end, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for axis in (2, -3):
        check(f"{name}(axis {axis})", AXIS, call(fx.g, byref(out), axis=axis), out)
    for start, end in ((2, 2), (2, 1), (0, 4), (3, 3), (2 ** 64 - 1, 2), (0, 2 ** 64 - 1)):
        check(f"{name}({start}..{end} of 3)", AXIS, call(fx.g, byref(out), start=start, end=end),
              out)
    check(f"{name}(scalar)", (ARG, SHAPE), call(fx.g, byref(out), x=fx.s, axis=0, end=1), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(axis 1, 0..2)", OK, call(fx.g, byref(out)))
    check(f"{name}(axis -2, 1..2)", OK, call(fx.g, byref(out), axis=-2, start=1, end=2))


@cases("bp_graph_gather")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, table=fx.x, indices=fx.labels):
        return lib.bp_graph_gather(g, table, indices, o)

    node_checks(fx, check, name, call, out, ids=("table", "indices"))
    check(f"{name}(scalar table)", SHAPE, call(fx.g, byref(out), table=fx.s), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(x, labels)", OK, call(fx.g, byref(out)))
    # An index out of range is found by the forward pass, which then fails cleanly.
    indices = leaf(fx.g, "constant", 2)
    assert lib.bp_graph_set_value(fx.g, indices, (c_float * 2)(0, 2), 2) == OK
    assert lib.bp_graph_gather(fx.g, fx.x, indices, byref(out)) == OK
    check(f"{name}: forward with index 2 of 2 rows", ARG, lib.bp_graph_forward(fx.g))


@cases("bp_graph_softmax", "bp_graph_log_softmax")
def _(fx, check, name):
    function = getattr(lib, name)
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, axis=-1):
        return function(g, x, axis, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for axis in (2, -3, 2 ** 31 - 1, -2 ** 31):
        check(f"{name}(axis {axis})", AXIS, call(fx.g, byref(out), axis=axis), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(axis -1)", OK, call(fx.g, byref(out)))
    check(f"{name}(axis 0)", OK, call(fx.g, byref(out), axis=0))


@cases("bp_graph_layer_norm")
def _(fx, check, name):
    weight, bias, wrong = (leaf(fx.g, "parameter", 3), leaf(fx.g, "parameter", 3),
                           leaf(fx.g, "parameter", 2))
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, rank=1, w=NO_NODE, b=NO_NODE, eps=1e-5):
        return lib.bp_graph_layer_norm(g, x, rank, w, b, eps, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for eps in (0.0, -1e-5, float("nan"), float("inf")):
        check(f"{name}(eps {eps})", ARG, call(fx.g, byref(out), eps=eps), out)
    check(f"{name}(normalized_rank 0)", (ARG, SHAPE), call(fx.g, byref(out), rank=0), out)
    check(f"{name}(normalized_rank 3 of rank 2)", (ARG, SHAPE), call(fx.g, byref(out), rank=3),
          out)
    check(f"{name}(weight without bias)", ARG, call(fx.g, byref(out), w=weight), out)
    check(f"{name}(bias without weight)", ARG, call(fx.g, byref(out), b=bias), out)
    check(f"{name}(weight 999)", HANDLE, call(fx.g, byref(out), w=999, b=bias), out)
    check(f"{name}(weight [2] for [3])", SHAPE, call(fx.g, byref(out), w=wrong, b=bias), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(no weight, no bias)", OK, call(fx.g, byref(out)))
    check(f"{name}(weight and bias)", OK, call(fx.g, byref(out), w=weight, b=bias))
    check(f"{name}(normalized_rank 2)", OK, call(fx.g, byref(out), rank=2))


@cases("bp_graph_dropout")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, x=fx.x, p=0.5):
        return lib.bp_graph_dropout(g, x, p, o)

    node_checks(fx, check, name, call, out, ids=("x",))
    for p in (-0.1, 1.5, float("nan"), float("inf")):
        check(f"{name}(p {p})", ARG, call(fx.g, byref(out), p=p), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for p in (0.0, 0.5, 1.0):
        check(f"{name}(p {p})", OK, call(fx.g, byref(out), p=p))


@cases("bp_graph_huber_loss")
def _(fx, check, name):
    before, out = fx.nodes(), node_out()

    def call(g, o, a=fx.x, b=fx.p, delta=1.0, reduction=Reduction.MEAN):
        return lib.bp_graph_huber_loss(g, a, b, delta, reduction, o)

    node_checks(fx, check, name, call, out, ids=("a", "b"))
    for delta in (0.0, -1.0, float("nan"), float("inf")):
        check(f"{name}(delta {delta})", ARG, call(fx.g, byref(out), delta=delta), out)
    for reduction in (3, -1):
        check(f"{name}(reduction {reduction})", ARG, call(fx.g, byref(out), reduction=reduction),
              out)
    check(f"{name}([2, 3], [2])", SHAPE, call(fx.g, byref(out), b=fx.labels), out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    for reduction in Reduction:
        check(f"{name}({reduction.name})", OK, call(fx.g, byref(out), reduction=reduction))


@cases("bp_graph_set_training", "bp_graph_seed")
def _(fx, check, name):
    function = getattr(lib, name)
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, 0))
    values = (0, 1, -1, 7) if name == "bp_graph_set_training" else (0, 1, 2 ** 64 - 1)
    for value in values:
        check(f"{name}({value})", OK, function(fx.g, value))
    check(f"bp_graph_forward after {name}", OK, lib.bp_graph_forward(fx.g))


# Custom ops: a doubling op written in Python, run through the library's forward and backward.

class DoublingOp:
    """out = 2 * input; backward adds 2 * output_grad into the input's gradient."""

    def __init__(self, reject=False, fail_forward=False):
        self.calls = []

        def shape(userdata, inputs, count, out_shape, out_rank):
            self.calls.append("shape")
            if reject or count != 1:
                return 1
            out_rank[0] = inputs[0].rank
            for i in range(inputs[0].rank):
                out_shape[i] = inputs[0].shape[i]
            return 0

        def forward(userdata, inputs, count, output):
            self.calls.append("forward")
            if fail_forward:
                return 1
            source = ctypes.cast(inputs[0].data, ctypes.POINTER(c_float))
            target = ctypes.cast(output[0].data, ctypes.POINTER(c_float))
            for i in range(output[0].count):
                target[i] = 2 * source[i]
            return 0

        def backward(userdata, inputs, count, output, output_grad, input_grads):
            self.calls.append("backward")
            if input_grads[0].data:
                upstream = ctypes.cast(output_grad[0].data, ctypes.POINTER(c_float))
                grad = ctypes.cast(input_grads[0].data, ctypes.POINTER(c_float))
                for i in range(input_grads[0].count):
                    grad[i] += 2 * upstream[i]
            return 0

        self.op = _capi.bp_custom_op(
            ctypes.sizeof(_capi.bp_custom_op), b"double", _capi.bp_custom_shape_fn(shape),
            _capi.bp_custom_forward_fn(forward), _capi.bp_custom_backward_fn(backward), None)


@cases("bp_graph_custom")
def _(fx, check, name):
    double = DoublingOp()
    fx.keep = [double]  # the callbacks must outlive the graph
    before, out = fx.nodes(), node_out()

    def call(g, o, op=None, nodes=None, count=None):
        op = byref(double.op) if op is None else op
        nodes = (fx.x,) if nodes is None else nodes
        array = (c_int32 * len(nodes))(*nodes) if nodes != () else None
        return lib.bp_graph_custom(g, op, array, len(nodes) if count is None else count, o)

    node_checks(fx, check, name, call, out)
    check(f"{name}(op NULL)", ARG, lib.bp_graph_custom(fx.g, None, (c_int32 * 1)(fx.x), 1,
                                                       byref(out)), out)
    small = _capi.bp_custom_op.from_buffer_copy(double.op)
    small.size = ctypes.sizeof(_capi.bp_custom_op) - 1
    check(f"{name}(size one byte short)", ARG, call(fx.g, byref(out), op=byref(small)), out)
    check(f"{name}(size 0)", ARG, call(fx.g, byref(out), op=byref(
        _capi.bp_custom_op(0, b"x", double.op.shape, double.op.forward, double.op.backward))),
        out)
    for field in ("shape", "forward", "backward"):
        missing = _capi.bp_custom_op.from_buffer_copy(double.op)
        setattr(missing, field, type(getattr(double.op, field))())
        check(f"{name}({field} NULL)", ARG, call(fx.g, byref(out), op=byref(missing)), out)
    check(f"{name}(inputs NULL, count 1)", ARG, call(fx.g, byref(out), nodes=(), count=1), out)
    check(f"{name}(65 inputs)", ARG, call(fx.g, byref(out), nodes=(fx.x,) * 65), out)
    for bad in GRAPH_ID_BAD:
        check(f"{name}(input {bad})", HANDLE, call(fx.g, byref(out), nodes=(bad,)), out)
    check(f"{name}(shape callback rejects)", SHAPE, call(fx.g, byref(out), nodes=(fx.x, fx.p)),
          out)
    check.same(f"{name}: node count after failures", fx.nodes(), before)
    check(f"{name}(x)", OK, call(fx.g, byref(out)))
    doubled = out.value
    total = c_int32()
    assert lib.bp_graph_sum(fx.g, doubled, byref(total)) == OK
    values = (c_float * 6)(1, 2, 3, 4, 5, 6)
    assert lib.bp_graph_set_value(fx.g, fx.x, values, 6) == OK
    check(f"{name}: forward", OK, lib.bp_graph_forward(fx.g))
    result = (c_float * 6)()
    assert lib.bp_graph_value(fx.g, doubled, result, 6) == OK
    check.same(f"{name}: forward values", list(result), [2, 4, 6, 8, 10, 12])
    check(f"{name}: backward", OK, lib.bp_graph_backward(fx.g, total.value))
    assert lib.bp_graph_grad(fx.g, fx.x, result, 6) == OK
    check.same(f"{name}: gradient through the op", list(result), [2] * 6)
    # Callbacks that fail make forward fail, not crash.
    failing = DoublingOp(fail_forward=True)
    fx.keep.append(failing)
    check(f"{name}(op whose forward fails)", OK, call(fx.g, byref(out), op=byref(failing.op)))
    check(f"{name}: forward with a failing callback", ARG, lib.bp_graph_forward(fx.g))


# ---- Network layers, parameters, optimizers, schedules, clipping, fit and evaluate -------------

def flat(net, function=None):
    """Every parameter (or, with bp_net_gradients, gradient) of a network as a list."""
    count = c_size_t()
    assert lib.bp_net_parameter_count(net, byref(count)) == OK
    buffer = (c_float * count.value)()
    assert (function or lib.bp_net_parameters)(net, buffer, count.value) == OK
    return list(buffer)


@cases("bp_net_create_dtype")
def _(fx, check, name):
    handle = _capi.NetHandle()
    check(f"{name}(out NULL)", ARG, lib.bp_net_create_dtype(DType.FLOAT64, 2, 1, None))
    for dtype in (2, -1):
        check(f"{name}(dtype {dtype})", ARG, lib.bp_net_create_dtype(dtype, 2, 1, byref(handle)))
    check(f"{name}(input_width 0)", ARG, lib.bp_net_create_dtype(DType.FLOAT64, 0, 1,
                                                                 byref(handle)))
    if handle:
        check.problems.append(f"{name}: wrote a handle on failure")
    for dtype in DType:
        check(f"{name}({dtype.name})", OK, lib.bp_net_create_dtype(dtype, 2, 1, byref(handle)))
        assert lib.bp_net_add_dense(handle, 2, 0) == OK
        outputs = (c_float * 8)()
        check(f"{name}({dtype.name}): forward", OK,
              lib.bp_net_forward(handle, 4, fx.inputs, 8, outputs, 8))
        check(f"{name}({dtype.name}): free", OK, lib.bp_net_free(handle))


@cases("bp_net_add_dense_init")
def _(fx, check, name):
    add = lib.bp_net_add_dense_init
    check(f"{name}(NULL net)", HANDLE, add(NULL_NET, 2, 0, Initializer.ZEROS, 0.0))
    check(f"{name}(units 0)", ARG, add(fx.empty, 0, 0, Initializer.ZEROS, 0.0))
    check(f"{name}(activation 4)", ARG, add(fx.empty, 2, 4, Initializer.ZEROS, 0.0))
    for initializer in (7, -1, 2 ** 31 - 1):
        check(f"{name}(initializer {initializer})", ARG, add(fx.empty, 2, 0, initializer, 0.0))
    for value in (float("nan"), float("inf")):
        check(f"{name}(CONSTANT {value})", ARG, add(fx.empty, 2, 0, Initializer.CONSTANT, value))
    check(f"{name}(units 2**63)", OOM, add(fx.empty, 2 ** 63, 0, Initializer.ZEROS, 0.0))
    count = size_out()
    assert lib.bp_net_layer_count(fx.empty, byref(count)) == OK
    check.same(f"{name}: layers after failures", count.value, 0)
    for initializer in Initializer:
        check(f"{name}({initializer.name})", OK, add(fx.empty, 2, 0, initializer, 0.5))
    weights = flat(fx.empty)
    check.same(f"{name}: CONSTANT 0.5 fills the last layer", weights[-6:], [0.5] * 6)
    check.same(f"{name}: ZEROS fills the layer before", weights[-12:-6], [0.0] * 6)


@cases("bp_net_add_dropout", "bp_net_add_layer_norm")
def _(fx, check, name):
    function = getattr(lib, name)
    check(f"{name}(NULL net)", HANDLE, function(NULL_NET, 0.5))
    bad = (-0.1, 1.5, float("nan"), float("inf")) if name == "bp_net_add_dropout" else \
        (0.0, -1e-5, float("nan"), float("inf"))
    for value in bad:
        check(f"{name}({value})", ARG, function(fx.net, value))
    count = size_out()
    assert lib.bp_net_layer_count(fx.net, byref(count)) == OK
    check.same(f"{name}: layers after failures", count.value, 2)
    check(f"{name}(0.5)", OK, function(fx.net, 0.5))
    outputs = (c_float * 8)()
    check(f"{name}: forward", OK, lib.bp_net_forward(fx.net, 4, fx.inputs, 8, outputs, 8))
    check(f"{name}: predict", OK, lib.bp_net_predict(fx.net, 4, fx.inputs, 8, outputs, 8))


@cases("bp_net_layer_parameters", "bp_net_set_layer_parameters")
def _(fx, check, name):
    function = getattr(lib, name)
    weight, bias = (c_float * 6)(*range(6)), (c_float * 3)(1, 2, 3)
    before = flat(fx.net)
    assert lib.bp_net_add_dropout(fx.net, 0.5) == OK  # layer 2 has no parameters
    check(f"{name}(NULL net)", HANDLE, function(NULL_NET, 0, weight, 6, bias, 3))
    for layer in (2, 3, 2 ** 64 - 1):
        check(f"{name}(layer {layer})", ARG, function(fx.net, layer, weight, 6, bias, 3))
    check(f"{name}(weight NULL)", ARG, function(fx.net, 0, None, 6, bias, 3))
    check(f"{name}(bias NULL)", ARG, function(fx.net, 0, weight, 6, None, 3))
    for counts in ((5, 3), (7, 3), (6, 2), (6, 4), (0, 0), (2 ** 64 - 1, 3)):
        check(f"{name}(counts {counts})", wrong_count(max(counts)),
              function(fx.net, 0, weight, counts[0], bias, counts[1]))
    if name == "bp_net_set_layer_parameters":
        for index in (0, 5):
            poisoned = (c_float * 6)(*range(6))
            poisoned[index] = float("nan")
            check(f"{name}(NaN weight)", NONFINITE, function(fx.net, 0, poisoned, 6, bias, 3))
        check(f"{name}(inf bias)", NONFINITE, function(fx.net, 0, weight, 6,
                                                        (c_float * 3)(0, float("inf"), 0), 3))
        check.same(f"{name}: weights after failures", flat(fx.net), before)
        check(f"{name}(layer 0)", OK, function(fx.net, 0, weight, 6, bias, 3))
        check.same(f"{name}: layer 0 set", flat(fx.net)[:9], list(range(6)) + [1, 2, 3])
    else:
        out_w, out_b = (c_float * 6)(*[SENTINEL] * 6), (c_float * 3)(*[SENTINEL] * 3)
        check(f"{name}(layer 1, wrong counts)", ARG, function(fx.net, 1, out_w, 6, out_b, 3))
        check.same(f"{name}: buffers after failures", list(out_w) + list(out_b),
                   [SENTINEL] * 9)
        check(f"{name}(layer 0)", OK, function(fx.net, 0, out_w, 6, out_b, 3))
        check.same(f"{name}: layer 0", list(out_w) + list(out_b), before[:9])


@cases("bp_net_parameters", "bp_net_set_parameters", "bp_net_gradients")
def _(fx, check, name):
    function = getattr(lib, name)
    count = 2 * 3 + 3 + 3 * 2 + 2
    buffer = (c_float * count)(*[SENTINEL] * count)
    before = flat(fx.net)
    check(f"{name}(NULL net)", HANDLE, function(NULL_NET, buffer, count))
    check(f"{name}(NULL buffer)", ARG, function(fx.net, None, count))
    for wrong in (0, count - 1, count + 1, 2 ** 64 - 1):
        check(f"{name}(count {wrong})", wrong_count(wrong), function(fx.net, buffer, wrong))
    if name == "bp_net_set_parameters":
        values = (c_float * count)(*[0.25] * count)
        values[count - 1] = float("nan")
        check(f"{name}(a NaN)", NONFINITE, function(fx.net, values, count))
        check.same(f"{name}: weights after failures", flat(fx.net), before)
        values[count - 1] = 0.25
        check(f"{name}(all 0.25)", OK, function(fx.net, values, count))
        check.same(f"{name}: weights set", flat(fx.net), [0.25] * count)
    else:
        check.same(f"{name}: buffer after failures", list(buffer), [SENTINEL] * count)
        check(f"{name}(net)", OK, function(fx.net, buffer, count))
        want = before if name == "bp_net_parameters" else [0.0] * count
        check.same(f"{name}: values", list(buffer), want)
    check(f"{name}(no layers, count 0)", (OK, ARG), function(fx.empty, buffer, 0))


def new_optimizer(kind=OptimizerKind.SGD, options=None):
    handle = _capi.OptimizerHandle()
    assert lib.bp_optimizer_create(kind, options, byref(handle)) == OK, last_error()
    return handle


def default_options(kind):
    options = _capi.bp_optimizer_options()
    assert lib.bp_optimizer_options_default(kind, byref(options)) == OK
    return options


@cases("bp_optimizer_options_default")
def _(fx, check, name):
    options = _capi.bp_optimizer_options(size=SENTINEL)
    check(f"{name}(out NULL)", ARG, lib.bp_optimizer_options_default(OptimizerKind.SGD, None))
    for kind in (5, -1):
        check(f"{name}(kind {kind})", ARG, lib.bp_optimizer_options_default(kind, byref(options)))
    check.same(f"{name}: untouched after failures", options.size, SENTINEL)
    for kind in OptimizerKind:
        check(f"{name}({kind.name})", OK, lib.bp_optimizer_options_default(kind, byref(options)))
        check.same(f"{name}({kind.name}): size", options.size,
                   ctypes.sizeof(_capi.bp_optimizer_options))
    options = default_options(OptimizerKind.ADAM)
    check.same(f"{name}(ADAM): torch's defaults",
               (options.learning_rate, options.beta1, options.beta2, options.eps),
               (0.001, 0.9, 0.999, 1e-8))
    check.same(f"{name}(SGD): learning rate", default_options(OptimizerKind.SGD).learning_rate,
               0.01)


@cases("bp_optimizer_create")
def _(fx, check, name):
    create = lib.bp_optimizer_create
    handle = _capi.OptimizerHandle()
    check(f"{name}(out NULL)", ARG, create(OptimizerKind.SGD, None, None))
    for kind in (5, -1):
        check(f"{name}(kind {kind})", ARG, create(kind, None, byref(handle)))
    small = default_options(OptimizerKind.SGD)
    small.size = ctypes.sizeof(small) - 8
    check(f"{name}(size too small)", ARG, create(OptimizerKind.SGD, byref(small), byref(handle)))
    bad = [(OptimizerKind.SGD, "learning_rate", -0.1), (OptimizerKind.SGD, "learning_rate",
                                                         float("nan")),
           (OptimizerKind.SGD, "momentum", -0.5), (OptimizerKind.SGD, "weight_decay", -1.0),
           (OptimizerKind.SGD, "nesterov", 1), (OptimizerKind.ADAM, "beta1", 1.0),
           (OptimizerKind.ADAM, "beta2", -0.1), (OptimizerKind.ADAM, "eps", float("inf")),
           (OptimizerKind.RMSPROP, "alpha", -0.5), (OptimizerKind.ADAGRAD, "lr_decay", -1.0)]
    for kind, field, value in bad:
        options = default_options(kind)
        setattr(options, field, value)
        check(f"{name}({kind.name}, {field} {value})", ARG,
              create(kind, byref(options), byref(handle)))
    nesterov = default_options(OptimizerKind.SGD)
    nesterov.nesterov, nesterov.momentum, nesterov.dampening = 1, 0.9, 0.5
    check(f"{name}(nesterov with dampening)", ARG,
          create(OptimizerKind.SGD, byref(nesterov), byref(handle)))
    if handle:
        check.problems.append(f"{name}: wrote a handle on failure")
    for kind in OptimizerKind:
        check(f"{name}({kind.name}, defaults)", OK, create(kind, None, byref(handle)))
        check(f"bp_optimizer_free({kind.name})", OK, lib.bp_optimizer_free(handle))
        options = default_options(kind)
        check(f"{name}({kind.name}, options)", OK, create(kind, byref(options), byref(handle)))
        check(f"bp_optimizer_free({kind.name})", OK, lib.bp_optimizer_free(handle))


@cases("bp_optimizer_free")
def _(fx, check, name):
    check(f"{name}(NULL)", OK, lib.bp_optimizer_free(_capi.OptimizerHandle()))
    handle = new_optimizer()
    check(f"{name}(optimizer)", OK, lib.bp_optimizer_free(handle))
    check(f"{name}(freed)", HANDLE, lib.bp_optimizer_free(handle))
    check(f"{name}(a bp_net)", HANDLE,
          lib.bp_optimizer_free(ctypes.cast(fx.net, _capi.OptimizerHandle)))
    junk = ctypes.create_string_buffer(b"\x5a" * 256)
    check(f"{name}(other memory)", HANDLE,
          lib.bp_optimizer_free(ctypes.cast(junk, _capi.OptimizerHandle)))


@cases("bp_optimizer_step", "bp_optimizer_step_graph")
def _(fx, check, name):
    function = getattr(lib, name)
    optimizer = new_optimizer()
    target = fx.net if name == "bp_optimizer_step" else fx.g
    null_target = NULL_NET if name == "bp_optimizer_step" else NULL_GRAPH
    check(f"{name}(NULL optimizer)", HANDLE, function(_capi.OptimizerHandle(), target))
    check(f"{name}(NULL target)", HANDLE, function(optimizer, null_target))
    foreign = ctypes.cast(fx.g if name == "bp_optimizer_step" else fx.net, type(null_target))
    check(f"{name}(foreign target)", HANDLE, function(optimizer, foreign))
    check(f"{name}(a net as the optimizer)", HANDLE,
          function(ctypes.cast(fx.net, _capi.OptimizerHandle), target))
    if name == "bp_optimizer_step":
        before = flat(fx.net)
        assert lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8) == OK
        assert lib.bp_net_backward(fx.net, fx.targets, 8, None) == OK
        check(f"{name}(net)", OK, function(optimizer, fx.net))
        after = flat(fx.net)
        grads = flat(fx.net, lib.bp_net_gradients)
        check.same(f"{name}: SGD's update", np.allclose(
            after, np.array(before) - 0.01 * np.array(grads), atol=1e-7), True)
        # An optimizer with state (momentum buffers) on a network of another size: the state
        # does not fit. (Plain SGD keeps no state, so it has nothing to refuse.)
        options = default_options(OptimizerKind.SGD)
        options.momentum = 0.9
        stateful = new_optimizer(options=byref(options))
        check(f"{name}(momentum, net)", OK, function(stateful, fx.net))
        other = new_net(layers=((5, 0),))
        check(f"{name}(momentum, a network of another size)", ARG, function(stateful, other))
        lib.bp_optimizer_free(stateful)
    else:
        check(f"{name}(graph)", OK, function(optimizer, fx.g))
    lib.bp_optimizer_free(optimizer)


@cases("bp_optimizer_train_step", "bp_optimizer_train_step_labels")
def _(fx, check, name):
    labels = name.endswith("_labels")
    step = getattr(lib, name)
    net, wrong_loss_net = (fx.ce, fx.net) if labels else (fx.net, fx.ce)
    answers, count = (fx.int_labels, 4) if labels else (fx.targets, 8)
    loss = c_float(SENTINEL)
    options = default_options(OptimizerKind.SGD)
    options.momentum = 0.9
    optimizer = new_optimizer(options=byref(options))

    def call(optimizer=optimizer, net=net, batch=4, inputs=fx.inputs, input_count=8,
             answers=answers, answer_count=count):
        return step(optimizer, net, batch, inputs, input_count, answers, answer_count,
                    byref(loss))

    before = flat(net)
    check(f"{name}(NULL optimizer)", HANDLE, call(optimizer=_capi.OptimizerHandle()), loss)
    check(f"{name}(a net as the optimizer)", HANDLE,
          call(optimizer=ctypes.cast(net, _capi.OptimizerHandle)), loss)
    check(f"{name}(NULL net)", HANDLE, call(net=NULL_NET), loss)
    check(f"{name}(a graph as the net)", HANDLE, call(net=ctypes.cast(fx.g, type(NULL_NET))),
          loss)
    check(f"{name}(inputs NULL)", ARG, call(inputs=None), loss)
    check(f"{name}(targets NULL)", ARG, call(answers=None), loss)
    check(f"{name}(batch 0)", ARG, call(batch=0, input_count=0, answer_count=0), loss)
    for bad_count in (0, 7, 9, 2 ** 64 - 1):
        check(f"{name}(input_count {bad_count})", wrong_count(bad_count),
              call(input_count=bad_count), loss)
    check(f"{name}(target count {count - 1})", ARG, call(answer_count=count - 1), loss)
    check(f"{name}(the other loss's targets)", ARG, call(net=wrong_loss_net), loss)
    # The empty network's loss is MSE: labels are refused for that before its missing layers.
    check(f"{name}(no layers)", ARG if labels else STATE, call(net=fx.empty), loss)
    bad_inputs = (c_float * 8)(*range(8))
    bad_inputs[3] = float("nan")
    check(f"{name}(input NaN)", NONFINITE, call(inputs=bad_inputs), loss)
    if labels:
        check(f"{name}(label 2 of 2 classes)", ARG, call(answers=(c_int32 * 4)(0, 2, 1, 0)),
              loss)
    else:
        check(f"{name}(target inf)", NONFINITE, call(answers=(c_float * 8)(0, 0, 0, 0, 0, 0,
                                                                          0, float("inf"))), loss)
    check.same(f"{name}: weights after failures", flat(net), before)

    # The one call does what the four calls do: same loss, same weights, same momentum.
    twin = new_net(loss=Loss.CROSS_ENTROPY if labels else Loss.MSE)
    twin_optimizer = new_optimizer(options=byref(options))
    for _ in range(3):
        check(f"{name}(net)", OK, call())
        twin_loss = c_float()
        assert lib.bp_net_zero_grad(twin) == OK
        assert lib.bp_net_forward(twin, 4, fx.inputs, 8, fx.outputs, 8) == OK
        backward = lib.bp_net_backward_labels if labels else lib.bp_net_backward
        assert backward(twin, answers, count, byref(twin_loss)) == OK
        assert lib.bp_optimizer_step(twin_optimizer, twin) == OK
        check.same(f"{name}: loss as four calls", loss.value, twin_loss.value)
        check.same(f"{name}: weights as four calls", flat(net), flat(twin))
    check(f"{name}(loss NULL)", OK, step(optimizer, net, 4, fx.inputs, 8, answers, count, None))

    # The optimizer's momentum is sized for `net` now: another network is refused untouched.
    other = new_net(input_width=2, layers=((5, 0), (2, 0)),
                    loss=Loss.CROSS_ENTROPY if labels else Loss.MSE)
    other_before = flat(other)
    loss.value = SENTINEL
    check(f"{name}(momentum sized for another network)", ARG, call(net=other), loss)
    check.same(f"{name}: that network's weights", flat(other), other_before)
    check.same(f"{name}: that network's gradients", flat(other, lib.bp_net_gradients),
               [0.0] * len(other_before))
    for handle in (twin, other):
        lib.bp_net_free(handle)
    for handle in (optimizer, twin_optimizer):
        lib.bp_optimizer_free(handle)


@cases("bp_optimizer_learning_rate", "bp_optimizer_set_learning_rate", "bp_optimizer_reset")
def _(fx, check, name):
    optimizer = new_optimizer()
    rate = c_double(SENTINEL)
    null = _capi.OptimizerHandle()
    if name == "bp_optimizer_learning_rate":
        check(f"{name}(NULL)", HANDLE, lib.bp_optimizer_learning_rate(null, byref(rate)), rate)
        check(f"{name}(out NULL)", ARG, lib.bp_optimizer_learning_rate(optimizer, None))
        check(f"{name}(optimizer)", OK, lib.bp_optimizer_learning_rate(optimizer, byref(rate)))
        check.same(f"{name}: SGD's default", rate.value, 0.01)
    elif name == "bp_optimizer_set_learning_rate":
        check(f"{name}(NULL)", HANDLE, lib.bp_optimizer_set_learning_rate(null, 0.1))
        for bad in (-0.1, float("nan"), float("inf")):
            check(f"{name}({bad})", ARG, lib.bp_optimizer_set_learning_rate(optimizer, bad))
        check(f"{name}(0.5)", OK, lib.bp_optimizer_set_learning_rate(optimizer, 0.5))
        assert lib.bp_optimizer_learning_rate(optimizer, byref(rate)) == OK
        check.same(f"{name}: read back", rate.value, 0.5)
        check(f"{name}(0)", OK, lib.bp_optimizer_set_learning_rate(optimizer, 0.0))
    else:
        check(f"{name}(NULL)", HANDLE, lib.bp_optimizer_reset(null))
        check(f"{name}(optimizer)", OK, lib.bp_optimizer_reset(optimizer))
    lib.bp_optimizer_free(optimizer)


@cases("bp_schedule_options_default")
def _(fx, check, name):
    options = _capi.bp_schedule_options(size=SENTINEL)
    check(f"{name}(out NULL)", ARG, lib.bp_schedule_options_default(ScheduleRule.STEP, None))
    for rule in (5, -1):
        check(f"{name}(rule {rule})", ARG, lib.bp_schedule_options_default(rule, byref(options)))
    check.same(f"{name}: untouched after failures", options.size, SENTINEL)
    for rule in ScheduleRule:
        check(f"{name}({rule.name})", OK, lib.bp_schedule_options_default(rule, byref(options)))
        check.same(f"{name}({rule.name}): size and rule", (options.size, options.rule),
                   (ctypes.sizeof(_capi.bp_schedule_options), rule))


@cases("bp_optimizer_set_schedule", "bp_optimizer_schedule_step")
def _(fx, check, name):
    optimizer = new_optimizer()
    options = _capi.bp_schedule_options()
    assert lib.bp_schedule_options_default(ScheduleRule.STEP, byref(options)) == OK
    options.gamma = 0.5
    rate = c_double(SENTINEL)
    null = _capi.OptimizerHandle()
    if name == "bp_optimizer_set_schedule":
        check(f"{name}(NULL optimizer)", HANDLE, lib.bp_optimizer_set_schedule(null,
                                                                              byref(options)))
        check(f"{name}(options NULL)", ARG, lib.bp_optimizer_set_schedule(optimizer, None))
        small = _capi.bp_schedule_options.from_buffer_copy(options)
        small.size = 8
        check(f"{name}(size 8)", ARG, lib.bp_optimizer_set_schedule(optimizer, byref(small)))
        for field, value in (("rule", 5), ("gamma", float("nan")), ("step_size", 0),
                             ("gamma", -0.5)):
            bad = _capi.bp_schedule_options.from_buffer_copy(options)
            setattr(bad, field, value)
            check(f"{name}({field} {value})", ARG,
                  lib.bp_optimizer_set_schedule(optimizer, byref(bad)))
        check(f"{name}(STEP, gamma 0.5)", OK, lib.bp_optimizer_set_schedule(optimizer,
                                                                          byref(options)))
    else:
        step = lib.bp_optimizer_schedule_step
        check(f"{name}(NULL optimizer)", HANDLE, step(null, float("nan"), byref(rate)), rate)
        check(f"{name}(no schedule)", STATE, step(optimizer, float("nan"), byref(rate)), rate)
        assert lib.bp_optimizer_set_schedule(optimizer, byref(options)) == OK
        check(f"{name}(rate NULL)", OK, step(optimizer, float("nan"), None))
        check(f"{name}(optimizer)", OK, step(optimizer, 1.0, byref(rate)))
        check.same(f"{name}: two epochs of x0.5 from 0.01", rate.value, 0.0025)
    lib.bp_optimizer_free(optimizer)


@cases("bp_net_clip_grad_norm", "bp_net_clip_grad_value")
def _(fx, check, name):
    assert lib.bp_net_forward(fx.net, 4, fx.inputs, 8, fx.outputs, 8) == OK
    targets = (c_float * 8)(*[5.0] * 8)
    assert lib.bp_net_backward(fx.net, targets, 8, None) == OK
    before = flat(fx.net, lib.bp_net_gradients)
    norm = c_double(SENTINEL)
    if name == "bp_net_clip_grad_norm":
        clip = lib.bp_net_clip_grad_norm
        check(f"{name}(NULL net)", HANDLE, clip(NULL_NET, 1.0, byref(norm)), norm)
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            check(f"{name}(max_norm {bad})", ARG, clip(fx.net, bad, byref(norm)), norm)
        check.same(f"{name}: gradients after failures", flat(fx.net, lib.bp_net_gradients),
                   before)
        check(f"{name}(total_norm NULL)", OK, clip(fx.net, 1e9, None))
        check(f"{name}(0.01)", OK, clip(fx.net, 0.01, byref(norm)))
        check.same(f"{name}: the norm before clipping",
                   np.isclose(norm.value, np.linalg.norm(before), rtol=1e-5), True)
        after = np.linalg.norm(flat(fx.net, lib.bp_net_gradients))
        check.same(f"{name}: the norm after clipping", np.isclose(after, 0.01, rtol=1e-3), True)
    else:
        clip = lib.bp_net_clip_grad_value
        check(f"{name}(NULL net)", HANDLE, clip(NULL_NET, 1.0))
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            check(f"{name}({bad})", ARG, clip(fx.net, bad))
        check.same(f"{name}: gradients after failures", flat(fx.net, lib.bp_net_gradients),
                   before)
        check(f"{name}(0.001)", OK, clip(fx.net, 0.001))
        after = flat(fx.net, lib.bp_net_gradients)
        check.same(f"{name}: clamped", list(np.clip(before, -0.001, 0.001).astype(np.float32)),
                   after)


@cases("bp_fit_options_default")
def _(fx, check, name):
    check(f"{name}(NULL)", ARG, lib.bp_fit_options_default(None))
    options = _capi.bp_fit_options()
    check(f"{name}(options)", OK, lib.bp_fit_options_default(byref(options)))
    check.same(f"{name}: size, batch_size, epochs, shuffle",
               (options.size, options.batch_size, options.epochs, options.shuffle),
               (ctypes.sizeof(_capi.bp_fit_options), 32, 10, 1))


def fit_options(epochs=2):
    options = _capi.bp_fit_options()
    assert lib.bp_fit_options_default(byref(options)) == OK
    options.epochs, options.batch_size = epochs, 2
    return options


@cases("bp_net_fit", "bp_net_fit_labels", "bp_net_evaluate", "bp_net_evaluate_labels")
def _(fx, check, name):
    labels = name.endswith("_labels")
    net, other = (fx.ce, fx.net) if labels else (fx.net, fx.ce)
    targets, count = (fx.int_labels, 4) if labels else (fx.targets, 8)
    optimizer = new_optimizer()
    options = fit_options()
    result = _capi.bp_fit_result(size=ctypes.sizeof(_capi.bp_fit_result))
    loss, accuracy = c_double(SENTINEL), c_double(SENTINEL)
    fitting = name.startswith("bp_net_fit")
    function = getattr(lib, name)

    def call(n=None, samples=4, inputs=None, input_count=8, y=None, y_count=None, opts=None,
             opt=None):
        n = net if n is None else n
        inputs = fx.inputs if inputs is None else inputs
        y = targets if y is None else y
        y_count = count if y_count is None else y_count
        if fitting:
            return function(n, optimizer if opt is None else opt, samples, inputs, input_count,
                            y, y_count, byref(options) if opts is None else opts, byref(result))
        return function(n, samples, inputs, input_count, y, y_count, byref(loss), byref(accuracy))

    before = flat(net)
    check(f"{name}(NULL net)", HANDLE, call(n=NULL_NET), loss, accuracy)
    if fitting:
        check(f"{name}(NULL optimizer)", HANDLE, call(opt=_capi.OptimizerHandle()))
    check(f"{name}(inputs NULL)", ARG, call(inputs=ctypes.POINTER(c_float)()), loss, accuracy)
    check(f"{name}(targets NULL)", ARG, call(y=ctypes.POINTER(type(targets)._type_)()), loss,
          accuracy)
    check(f"{name}(samples 0)", ARG, call(samples=0, input_count=0, y_count=0), loss, accuracy)
    for input_count in (6, 9, 2 ** 64 - 1):
        check(f"{name}(input_count {input_count})", wrong_count(input_count),
              call(input_count=input_count), loss, accuracy)
    check(f"{name}(target count {count - 1})", ARG, call(y_count=count - 1), loss, accuracy)
    check(f"{name}(samples 3, counts of 4)", ARG, call(samples=3), loss, accuracy)
    check(f"{name}(samples 2**63)", (ARG, OOM), call(samples=2 ** 63), loss, accuracy)
    check(f"{name}(the other loss's network)", ARG, call(n=other), loss, accuracy)
    check(f"{name}(no layers)", (STATE, ARG), call(n=fx.empty), loss, accuracy)
    poisoned = (c_float * 8)(*range(8))
    poisoned[3] = float("nan")
    check(f"{name}(a NaN input)", NONFINITE, call(inputs=poisoned), loss, accuracy)
    if labels:
        check(f"{name}(label 2 of 2 classes)", ARG, call(y=(c_int32 * 4)(0, 1, 2, 0)), loss,
              accuracy)
    if fitting:
        small = _capi.bp_fit_options.from_buffer_copy(options)
        small.size = 16
        check(f"{name}(options size 16)", ARG, call(opts=byref(small)))
        for field, value in (("batch_size", 0), ("validation_split", 1.0),
                             ("validation_split", -0.1), ("clip_norm", -1.0),
                             ("min_delta", float("nan"))):
            bad = _capi.bp_fit_options.from_buffer_copy(options)
            setattr(bad, field, value)
            check(f"{name}({field} {value})", ARG, call(opts=byref(bad)))
        check.same(f"{name}: weights after failures", flat(net), before)
        check(f"{name}(options NULL, result NULL)", OK,
              function(net, optimizer, 4, fx.inputs, 8, targets, count, None, None))
        check(f"{name}(2 epochs)", OK, call())
        check.same(f"{name}: epochs run", result.epochs_run, 2)
    else:
        check.same(f"{name}: weights after failures", flat(net), before)
        check(f"{name}(outs NULL)", OK, function(net, 4, fx.inputs, 8, targets, count, None,
                                                 None))
        check(f"{name}(net)", OK, call())
        check.same(f"{name}: accuracy in [0, 1]", 0 <= accuracy.value <= 1, True)
    lib.bp_optimizer_free(optimizer)


# ---- Checkpoints and data files -----------------------------------------------------------------

class GuardedBytes:
    """Bytes placed at the very end of a readable page, followed by a page that cannot be read:
    reading past the end crashes at once instead of passing unnoticed."""

    def __init__(self, data):
        page = mmap.PAGESIZE
        assert len(data) <= page
        self._map = mmap.mmap(-1, 2 * page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, c_size_t, c_int)
        if libc.mprotect(base + page, page, 0) != 0:  # PROT_NONE
            raise OSError(ctypes.get_errno(), "mprotect failed")
        self.address = base + page - len(data)
        ctypes.memmove(self.address, data, len(data))


def checkpoint_bytes(net, optimizer=None):
    size = c_size_t()
    optimizer = optimizer or _capi.OptimizerHandle()
    assert lib.bp_net_save_buffer(net, optimizer, None, 0, byref(size)) == OK, last_error()
    buffer = ctypes.create_string_buffer(size.value)
    assert lib.bp_net_save_buffer(net, optimizer, buffer, size.value, byref(size)) == OK
    return buffer.raw[:size.value]


def outputs_of(net):
    outputs = (c_float * 8)()
    assert lib.bp_net_predict(net, 4, (c_float * 8)(*range(8)), 8, outputs, 8) == OK, last_error()
    return list(outputs)


def poison_a_weight(net):
    """Puts a NaN into the first weight through the network's graph (the graph takes any value)."""
    graph, weight = _capi.GraphHandle(), c_int32()
    assert lib.bp_net_graph(net, byref(graph)) == OK
    assert lib.bp_net_layer_nodes(net, 0, byref(weight), None) == OK
    values = (c_float * 6)(*flat(net)[:6])
    values[0] = float("nan")
    assert lib.bp_graph_set_value(graph, weight.value, values, 6) == OK


@cases("bp_net_save")
def _(fx, check, name):
    folder = Path(tempfile.mkdtemp(prefix="backprop-misuse-"))
    path = folder / "net.safetensors"
    optimizer = new_optimizer()
    check(f"{name}(NULL net)", HANDLE, lib.bp_net_save(NULL_NET, None, bytes(path)))
    check(f"{name}(a bp_graph as the network)", HANDLE,
          lib.bp_net_save(ctypes.cast(fx.g, _capi.NetHandle), None, bytes(path)))
    check(f"{name}(a bp_net as the optimizer)", HANDLE,
          lib.bp_net_save(fx.net, ctypes.cast(fx.ce, _capi.OptimizerHandle), bytes(path)))
    check(f"{name}(path NULL)", ARG, lib.bp_net_save(fx.net, None, None))
    check(f"{name}(path not UTF-8)", ARG, lib.bp_net_save(fx.net, None, bytes(folder) + b"/\xff"))
    check(f"{name}(missing folder)", Status.IO,
          lib.bp_net_save(fx.net, None, bytes(folder / "missing" / "net.bin")))
    check(f"{name}(path is a folder)", Status.IO, lib.bp_net_save(fx.net, None, bytes(folder)))
    check(f"{name}(/dev/null)", Status.IO, lib.bp_net_save(fx.net, None, b"/dev/null"))
    check.same(f"{name}: nothing written after failures", list(folder.iterdir()), [])
    check(f"{name}(net)", OK, lib.bp_net_save(fx.net, None, bytes(path)))
    saved = path.read_bytes()
    check(f"{name}(net and optimizer)", OK, lib.bp_net_save(fx.net, optimizer, bytes(path)))
    with_optimizer = path.read_bytes()
    check.same(f"{name}: the file is what save_buffer gives", with_optimizer,
               checkpoint_bytes(fx.net, optimizer))
    check.same(f"{name}: without the optimizer too", saved, checkpoint_bytes(fx.net))
    poison_a_weight(fx.net)
    check(f"{name}(a NaN weight)", NONFINITE, lib.bp_net_save(fx.net, None, bytes(path)))
    check.same(f"{name}: the previous file is intact", path.read_bytes(), with_optimizer)
    check.same(f"{name}: no temporary file is left", sorted(p.name for p in folder.iterdir()),
               [path.name])
    lib.bp_optimizer_free(optimizer)
    shutil.rmtree(folder)


@cases("bp_net_load", "bp_net_load_buffer")
def _(fx, check, name):
    folder = Path(tempfile.mkdtemp(prefix="backprop-misuse-"))
    optimizer = new_optimizer(OptimizerKind.ADAM)
    data = checkpoint_bytes(fx.net, optimizer)
    plain = checkpoint_bytes(fx.net)
    net, opt = _capi.NetHandle(), _capi.OptimizerHandle()

    def load(content, out=True, opt_out=True):
        outs = (byref(net) if out else None, byref(opt) if opt_out else None)
        if name == "bp_net_load":
            if content is None:
                return lib.bp_net_load(None, *outs)
            if isinstance(content, Path):
                return lib.bp_net_load(bytes(content), *outs)
            (folder / "file").write_bytes(content)
            return lib.bp_net_load(bytes(folder / "file"), *outs)
        if content is None:
            return lib.bp_net_load_buffer(None, 16, *outs)
        guarded = GuardedBytes(content)
        return lib.bp_net_load_buffer(guarded.address, len(content), *outs)

    check(f"{name}(NULL)", ARG, load(None))
    check(f"{name}(out NULL)", ARG, load(data, out=False))
    if name == "bp_net_load":
        check(f"{name}(missing file)", Status.IO, load(folder / "missing"))
        check(f"{name}(a folder)", Status.IO, load(folder))
        check(f"{name}(path not UTF-8)", ARG, lib.bp_net_load(bytes(folder) + b"/\xff",
                                                              byref(net), None))
    FORMAT = Status.FORMAT
    check(f"{name}(empty)", (FORMAT, ARG) if name == "bp_net_load_buffer" else FORMAT,
          load(b""))
    check(f"{name}(not a checkpoint)", FORMAT, load(b"hello, world" * 4))
    # Every truncation of a real checkpoint is refused, and never read past its end (the last
    # byte sits right before an unreadable page when loading from memory).
    truncated = [length for length in range(1, len(data))
                 if load(data[:length]) != FORMAT]
    check.same(f"{name}: truncations not refused as FORMAT", truncated, [])
    header_length = int.from_bytes(data[:8], "little")
    for label, content in (
            ("header length past the end", (len(data)).to_bytes(8, "little") + data[8:]),
            ("header length 2**63", (2 ** 63).to_bytes(8, "little") + data[8:]),
            ("a byte of JSON changed", data[:9] + b"\x00" + data[10:]),
            ("trailing bytes", data + b"\x00" * 4),
            ("no metadata", plain.replace(b"libbackprop", b"libbackprof"))):
        check(f"{name}({label})", FORMAT, load(content))
    assert header_length < len(data)
    check.same(f"{name}: no handle written on failure", (bool(net), bool(opt)), (False, False))
    check(f"{name}(checkpoint with optimizer)", OK, load(data))
    check.same(f"{name}: predicts as the saved network", outputs_of(net), outputs_of(fx.net))
    check.same(f"{name}: an optimizer came back", bool(opt), True)
    lib.bp_net_free(net)
    lib.bp_optimizer_free(opt)
    check(f"{name}(without optimizer_out)", OK, load(data, opt_out=False))
    lib.bp_net_free(net)
    opt = ctypes.cast(ctypes.c_void_p(SENTINEL), _capi.OptimizerHandle)  # must become NULL
    check(f"{name}(checkpoint without optimizer)", OK, load(plain))
    check.same(f"{name}: optimizer_out is NULL", bool(opt), False)
    lib.bp_net_free(net)
    lib.bp_optimizer_free(optimizer)
    shutil.rmtree(folder)


@cases("bp_net_save_buffer")
def _(fx, check, name):
    save = lib.bp_net_save_buffer
    size = size_out()
    buffer = ctypes.create_string_buffer(4096)
    check(f"{name}(NULL net)", HANDLE, save(NULL_NET, None, buffer, 4096, byref(size)), size)
    check(f"{name}(size NULL)", ARG, save(fx.net, None, buffer, 4096, None))
    check(f"{name}(buffer NULL, capacity 10)", ARG, save(fx.net, None, None, 10, byref(size)),
          size)
    check(f"{name}(ask for the size)", OK, save(fx.net, None, None, 0, byref(size)))
    needed = size.value
    small = ctypes.create_string_buffer(b"\x5a" * 64, 64)
    status = save(fx.net, None, small, 10, byref(size))
    check(f"{name}(capacity 10)", ARG, status)
    check.same(f"{name}: the needed size is reported anyway", size.value, needed)
    check.same(f"{name}: nothing written into a small buffer", small.raw, b"\x5a" * 64)
    check(f"{name}(exact capacity)", OK, save(fx.net, None, buffer, needed, byref(size)))
    check.same(f"{name}: length", size.value, needed)
    check.same(f"{name}: safetensors header length", int.from_bytes(buffer.raw[:8], "little") + 8
               < needed, True)
    poison_a_weight(fx.net)
    check(f"{name}(a NaN weight)", NONFINITE, save(fx.net, None, buffer, 4096, byref(size)))


@cases("bp_csv_options_default")
def _(fx, check, name):
    check(f"{name}(NULL)", ARG, lib.bp_csv_options_default(None))
    options = _capi.bp_csv_options()
    check(f"{name}(options)", OK, lib.bp_csv_options_default(byref(options)))
    check.same(f"{name}: defaults", (options.size, options.delimiter, options.has_header,
                                     options.has_label, options.label_column, options.max_bytes),
               (ctypes.sizeof(_capi.bp_csv_options), b",", 1, 1, -1, 2 ** 30))


CSV = b"a,b,label\n1,2,0\n3.5,-4,1\n\n.5,5.,1\n"


def load_csv(folder, text, options=None, name="data.csv"):
    path = folder / name
    path.write_bytes(text)
    dataset = _capi.DatasetHandle()
    status = lib.bp_dataset_load_csv(bytes(path), byref(options) if options else None,
                                     byref(dataset))
    return status, dataset


def csv_options(**fields):
    options = _capi.bp_csv_options()
    assert lib.bp_csv_options_default(byref(options)) == OK
    for key, value in fields.items():
        setattr(options, key, value)
    return options


@cases("bp_dataset_load_csv")
def _(fx, check, name):
    folder = Path(tempfile.mkdtemp(prefix="backprop-misuse-"))
    dataset = _capi.DatasetHandle()
    (folder / "data.csv").write_bytes(CSV)
    path = bytes(folder / "data.csv")
    check(f"{name}(path NULL)", ARG, lib.bp_dataset_load_csv(None, None, byref(dataset)))
    check(f"{name}(out NULL)", ARG, lib.bp_dataset_load_csv(path, None, None))
    check(f"{name}(path not UTF-8)", ARG, lib.bp_dataset_load_csv(bytes(folder) + b"/\xff", None,
                                                                  byref(dataset)))
    small = csv_options(size=8)
    check(f"{name}(options size 8)", ARG, lib.bp_dataset_load_csv(path, byref(small),
                                                                  byref(dataset)))
    for delimiter in (b".", b"5", b"-", b"e", b'"', b"\n", b"\x00"):
        check(f"{name}(delimiter {delimiter!r})", ARG, load_csv(folder, CSV, csv_options(
            delimiter=delimiter))[0])
    for column in (3, -4, 2 ** 62):
        check(f"{name}(label column {column} of 3)", ARG,
              load_csv(folder, CSV, csv_options(label_column=column))[0])
    check(f"{name}(missing file)", Status.IO,
          lib.bp_dataset_load_csv(bytes(folder / "missing.csv"), None, byref(dataset)))
    check(f"{name}(a folder)", Status.IO, lib.bp_dataset_load_csv(bytes(folder), None,
                                                                  byref(dataset)))
    FORMAT = Status.FORMAT
    for label, text, where in (
            ("a word", b"a,b,label\n1,2,0\n3,abc,1\n", "line 3, column 2"),
            ("an empty field", b"a,b,label\n1,,0\n", "line 2, column 2"),
            ("NaN", b"a,b,label\n1,nan,0\n", "line 2, column 2"),
            ("a short line", b"a,b,label\n1,2,0\n1,2\n", "line 3"),
            ("no data rows", b"a,b,label\n", ""),
            ("only a label column", b"label\n1\n", "")):
        status, _ = load_csv(folder, text)
        check(f"{name}({label})", FORMAT, status)
        if status == FORMAT and where and where not in last_error():
            check.problems.append(f"{name}({label}): {last_error()!r} does not name {where!r}")
    check(f"{name}(larger than max_bytes)", FORMAT,
          load_csv(folder, CSV, csv_options(max_bytes=10))[0])
    check.same(f"{name}: no handle written on failure", bool(dataset), False)
    status, dataset = load_csv(folder, CSV)
    check(f"{name}(file)", OK, status)
    lib.bp_dataset_free(dataset)
    status, dataset = load_csv(folder, b"\xef\xbb\xbf" + CSV.replace(b"\n", b"\r\n")
                               .replace(b",", b";"), csv_options(delimiter=b";"))
    check(f"{name}(BOM, CRLF and ';')", OK, status)
    lib.bp_dataset_free(dataset)
    shutil.rmtree(folder)


def dataset_fixture(fx, text=CSV, **options):
    folder = Path(tempfile.mkdtemp(prefix="backprop-misuse-"))
    status, dataset = load_csv(folder, text, csv_options(**options) if options else None)
    shutil.rmtree(folder)
    assert status == OK, last_error()
    fx.datasets = getattr(fx, "datasets", []) + [dataset]
    return dataset


NULL_DATASET = _capi.DatasetHandle()


@cases("bp_dataset_free")
def _(fx, check, name):
    check(f"{name}(NULL)", OK, lib.bp_dataset_free(NULL_DATASET))
    dataset = dataset_fixture(fx)
    check(f"{name}(dataset)", OK, lib.bp_dataset_free(dataset))
    check(f"{name}(freed)", HANDLE, lib.bp_dataset_free(dataset))
    rows = size_out()
    check("bp_dataset_size(freed)", HANDLE, lib.bp_dataset_size(dataset, byref(rows), None), rows)
    check(f"{name}(a bp_net)", HANDLE, lib.bp_dataset_free(ctypes.cast(fx.net,
                                                                       _capi.DatasetHandle)))
    junk = ctypes.create_string_buffer(b"\x5a" * 256)
    check(f"{name}(other memory)", HANDLE, lib.bp_dataset_free(ctypes.cast(junk,
                                                                           _capi.DatasetHandle)))


@cases("bp_dataset_size")
def _(fx, check, name):
    dataset = dataset_fixture(fx)
    rows, features = size_out(), size_out()
    check(f"{name}(NULL)", HANDLE, lib.bp_dataset_size(NULL_DATASET, byref(rows),
                                                        byref(features)), rows, features)
    check(f"{name}(a bp_graph)", HANDLE, lib.bp_dataset_size(
        ctypes.cast(fx.g, _capi.DatasetHandle), byref(rows), byref(features)), rows, features)
    check(f"{name}(both outs NULL)", OK, lib.bp_dataset_size(dataset, None, None))
    check(f"{name}(dataset)", OK, lib.bp_dataset_size(dataset, byref(rows), byref(features)))
    check.same(f"{name}: rows and features", (rows.value, features.value), (3, 2))
    unlabelled = dataset_fixture(fx, has_label=0)
    check(f"{name}(no label column)", OK, lib.bp_dataset_size(unlabelled, byref(rows),
                                                               byref(features)))
    check.same(f"{name}: every column a feature", (rows.value, features.value), (3, 3))


@cases("bp_dataset_features", "bp_dataset_labels", "bp_dataset_targets")
def _(fx, check, name):
    function = getattr(lib, name)
    dataset = dataset_fixture(fx)
    ctype = c_int32 if name == "bp_dataset_labels" else c_float
    count = 6 if name == "bp_dataset_features" else 3
    out = (ctype * 8)(*[SENTINEL] * 8)
    check(f"{name}(NULL)", HANDLE, function(NULL_DATASET, out, count))
    check(f"{name}(out NULL)", ARG, function(dataset, None, count))
    for wrong in (0, count - 1, count + 1, 2 ** 64 - 1):
        check(f"{name}(count {wrong})", wrong_count(wrong), function(dataset, out, wrong))
    if name != "bp_dataset_features":
        unlabelled = dataset_fixture(fx, has_label=0)
        check(f"{name}(no label column)", ARG, function(unlabelled, out, 3))
        bad = b"a,label\n1,0\n2,1.5\n" if name == "bp_dataset_labels" else \
            b"a,label\n1,0\n2,1e39\n"
        check(f"{name}(a bad label on line 3)", Status.FORMAT,
              function(dataset_fixture(fx, bad), out, 2))
        if "line 3" not in last_error():
            check.problems.append(f"{name}: {last_error()!r} does not name line 3")
        halves = dataset_fixture(fx, b"a,y\n1,0.5\n2,1\n")
        check(f"{name}(label 0.5)", Status.FORMAT if name == "bp_dataset_labels" else OK,
              function(halves, out, 2))
        if name == "bp_dataset_targets":
            check.same(f"{name}: 0.5 as a target", list(out)[:2], [0.5, 1.0])
        out[:] = [SENTINEL] * 8
    check.same(f"{name}: untouched after failures", list(out), [SENTINEL] * 8)
    check(f"{name}(dataset)", OK, function(dataset, out, count))
    want = {"bp_dataset_features": [1, 2, 3.5, -4, 0.5, 5], "bp_dataset_labels": [0, 1, 1],
            "bp_dataset_targets": [0, 1, 1]}[name]
    check.same(f"{name}: values", list(out)[:count], want)


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------

def test_every_function_of_the_header_has_a_misuse_check():
    assert set(CASES) == {name for name, _, _ in _capi.DECLARATIONS}


@pytest.mark.parametrize("name", [name for name, _, _ in _capi.DECLARATIONS])
def test_misuse(name):
    function, registered_name = CASES[name]
    check = Checker()
    function(Fixture(), check, registered_name)
    assert not check.problems, "\n".join(check.problems)


# Freed and foreign handles, given to every function that takes one

GRAPH_CALLS = {
    "bp_graph_dtype": lambda g: lib.bp_graph_dtype(g, byref(c_int())),
    "bp_graph_input": lambda g: lib.bp_graph_input(g, sizes(2), 1, byref(c_int32())),
    "bp_graph_add": lambda g: lib.bp_graph_add(g, 0, 0, byref(c_int32())),
    "bp_graph_exp": lambda g: lib.bp_graph_exp(g, 0, byref(c_int32())),
    "bp_graph_matmul": lambda g: lib.bp_graph_matmul(g, 0, 0, byref(c_int32())),
    "bp_graph_mse_loss": lambda g: lib.bp_graph_mse_loss(g, 0, 0, 0, byref(c_int32())),
    "bp_graph_set_value": lambda g: lib.bp_graph_set_value(g, 0, (c_float * 2)(), 2),
    "bp_graph_forward": lambda g: lib.bp_graph_forward(g),
    "bp_graph_backward": lambda g: lib.bp_graph_backward(g, 1),
    "bp_graph_zero_grad": lambda g: lib.bp_graph_zero_grad(g),
    "bp_graph_value": lambda g: lib.bp_graph_value(g, 0, (c_float * 2)(), 2),
    "bp_graph_grad_f64": lambda g: lib.bp_graph_grad_f64(g, 0, (c_double * 2)(), 2),
    "bp_graph_shape": lambda g: lib.bp_graph_shape(g, 0, (c_size_t * 8)(), 8, byref(c_size_t())),
    "bp_graph_size": lambda g: lib.bp_graph_size(g, 0, byref(c_size_t())),
    "bp_graph_node_count": lambda g: lib.bp_graph_node_count(g, byref(c_size_t())),
    "bp_graph_check_gradients": lambda g: lib.bp_graph_check_gradients(g, 1, 1e-6, 1e-5, 1e-3,
                                                                       None, None),
    "bp_graph_pow": lambda g: lib.bp_graph_pow(g, 0, 0, byref(c_int32())),
    "bp_graph_reduce": lambda g: lib.bp_graph_reduce(g, 0, 0, None, 0, 0, byref(c_int32())),
    "bp_graph_concat": lambda g: lib.bp_graph_concat(g, (c_int32 * 1)(0), 1, 0,
                                                     byref(c_int32())),
    "bp_graph_layer_norm": lambda g: lib.bp_graph_layer_norm(g, 0, 1, NO_NODE, NO_NODE, 1e-5,
                                                             byref(c_int32())),
    "bp_graph_set_training": lambda g: lib.bp_graph_set_training(g, 0),
    "bp_graph_seed": lambda g: lib.bp_graph_seed(g, 1),
    "bp_graph_free": lambda g: lib.bp_graph_free(g),
}
NET_CALLS = {
    "bp_net_add_dense": lambda n: lib.bp_net_add_dense(n, 2, 0),
    "bp_net_set_loss": lambda n: lib.bp_net_set_loss(n, 0),
    "bp_net_output_width": lambda n: lib.bp_net_output_width(n, byref(c_size_t())),
    "bp_net_parameter_count": lambda n: lib.bp_net_parameter_count(n, byref(c_size_t())),
    "bp_net_forward": lambda n: lib.bp_net_forward(n, 2, (c_float * 4)(), 4, (c_float * 4)(), 4),
    "bp_net_backward": lambda n: lib.bp_net_backward(n, (c_float * 4)(), 4, None),
    "bp_net_backward_labels": lambda n: lib.bp_net_backward_labels(n, (c_int32 * 2)(), 2, None),
    "bp_net_update": lambda n: lib.bp_net_update(n, 0.1),
    "bp_net_zero_grad": lambda n: lib.bp_net_zero_grad(n),
    "bp_net_train_step": lambda n: lib.bp_net_train_step(n, 2, (c_float * 4)(), 4,
                                                         (c_float * 4)(), 4, 0.1, None),
    "bp_net_train_step_labels": lambda n: lib.bp_net_train_step_labels(
        n, 2, (c_float * 4)(), 4, (c_int32 * 2)(), 2, 0.1, None),
    "bp_net_predict": lambda n: lib.bp_net_predict(n, 2, (c_float * 4)(), 4, (c_float * 4)(), 4),
    "bp_net_graph": lambda n: lib.bp_net_graph(n, byref(_capi.GraphHandle())),
    "bp_net_layer_nodes": lambda n: lib.bp_net_layer_nodes(n, 0, None, None),
    "bp_net_add_dropout": lambda n: lib.bp_net_add_dropout(n, 0.5),
    "bp_net_add_layer_norm": lambda n: lib.bp_net_add_layer_norm(n, 1e-5),
    "bp_net_parameters": lambda n: lib.bp_net_parameters(n, (c_float * 6)(), 6),
    "bp_net_set_parameters": lambda n: lib.bp_net_set_parameters(n, (c_float * 6)(), 6),
    "bp_net_clip_grad_norm": lambda n: lib.bp_net_clip_grad_norm(n, 1.0, None),
    "bp_net_evaluate": lambda n: lib.bp_net_evaluate(n, 2, (c_float * 4)(), 4, (c_float * 4)(),
                                                     4, None, None),
    "bp_net_free": lambda n: lib.bp_net_free(n),
}
OPTIMIZER_CALLS = {
    "bp_optimizer_step_graph": lambda o, g: lib.bp_optimizer_step_graph(o, g),
    "bp_optimizer_learning_rate": lambda o, g: lib.bp_optimizer_learning_rate(o, byref(
        c_double())),
    "bp_optimizer_set_learning_rate": lambda o, g: lib.bp_optimizer_set_learning_rate(o, 0.1),
    "bp_optimizer_reset": lambda o, g: lib.bp_optimizer_reset(o),
    "bp_optimizer_schedule_step": lambda o, g: lib.bp_optimizer_schedule_step(o, 0.0, None),
    "bp_optimizer_free": lambda o, g: lib.bp_optimizer_free(o),
}


def graph_with_two_scalars():
    g = new_graph()
    leaf(g, "input", 2)
    leaf(g, "input")
    return g


def net_with_a_layer():
    return new_net(input_width=2, layers=((2, 0),))


@pytest.mark.parametrize("kind", ["freed", "a bp_net", "other memory"])
def test_stale_and_foreign_graph_handles_are_invalid_handles(kind):
    check = Checker()
    keep = []
    for name, call in GRAPH_CALLS.items():
        if kind == "freed":
            handle = graph_with_two_scalars()
            assert lib.bp_graph_free(handle) == OK
        elif kind == "a bp_net":
            net = net_with_a_layer()
            keep.append(net)
            handle = ctypes.cast(net, _capi.GraphHandle)
        else:
            junk = ctypes.create_string_buffer(bytes(range(256)))
            keep.append(junk)
            handle = ctypes.cast(junk, _capi.GraphHandle)
        check(f"{name}({kind} handle)", HANDLE, call(handle))
    assert not check.problems, "\n".join(check.problems)


@pytest.mark.parametrize("kind", ["freed", "a bp_graph", "other memory"])
def test_stale_and_foreign_network_handles_are_invalid_handles(kind):
    check = Checker()
    keep = []
    for name, call in NET_CALLS.items():
        if kind == "freed":
            handle = net_with_a_layer()
            assert lib.bp_net_free(handle) == OK
        elif kind == "a bp_graph":
            graph = graph_with_two_scalars()
            keep.append(graph)
            handle = ctypes.cast(graph, _capi.NetHandle)
        else:
            junk = ctypes.create_string_buffer(bytes(range(256)))
            keep.append(junk)
            handle = ctypes.cast(junk, _capi.NetHandle)
        check(f"{name}({kind} handle)", HANDLE, call(handle))
    assert not check.problems, "\n".join(check.problems)


def test_the_graph_of_a_freed_network_is_an_invalid_handle():
    net = net_with_a_layer()
    graph = _capi.GraphHandle()
    assert lib.bp_net_graph(net, byref(graph)) == OK
    assert lib.bp_net_free(net) == OK
    check = Checker()
    for name, call in GRAPH_CALLS.items():
        check(f"{name}(graph of a freed network)", HANDLE, call(graph))
    assert not check.problems, "\n".join(check.problems)


@pytest.mark.parametrize("kind", ["freed", "a bp_graph", "other memory"])
def test_stale_and_foreign_optimizer_handles_are_invalid_handles(kind):
    check = Checker()
    keep = []
    graph = graph_with_two_scalars()
    for name, call in OPTIMIZER_CALLS.items():
        if kind == "freed":
            handle = new_optimizer()
            assert lib.bp_optimizer_free(handle) == OK
        elif kind == "a bp_graph":
            other = graph_with_two_scalars()
            keep.append(other)
            handle = ctypes.cast(other, _capi.OptimizerHandle)
        else:
            junk = ctypes.create_string_buffer(bytes(range(256)))
            keep.append(junk)
            handle = ctypes.cast(junk, _capi.OptimizerHandle)
        check(f"{name}({kind} handle)", HANDLE, call(handle, graph))
    assert not check.problems, "\n".join(check.problems)
