"""Misuse of every C function, straight through the declarations: NULL pointers, NULL, freed and
foreign handles, unknown enum values, wrong counts, out-of-range node ids, overflowing sizes.

The header promises that none of this crashes, that each gets its documented status and a
message, and that a failing call changes nothing and writes no out-pointer. Each function is
checked in a process of its own (``isolated``), so a crash names the function it happened in.
"""

import ctypes
import mmap
from ctypes import byref, c_double, c_float, c_int, c_int32, c_size_t

import numpy as np
import pytest

from backprop import Activation, DType, Loss, Reduction, Status, _capi
from support import last_error, leaf, lib, new_graph, new_net, node_count, sizes

pytestmark = pytest.mark.isolated

OK, ARG, HANDLE, SHAPE, STATE = (Status.OK, Status.INVALID_ARGUMENT, Status.INVALID_HANDLE,
                                 Status.SHAPE, Status.STATE)
OOM, NONFINITE = Status.OUT_OF_MEMORY, Status.NONFINITE
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


@cases("bp_graph_add", "bp_graph_sub", "bp_graph_mul", "bp_graph_div", "bp_graph_maximum",
       "bp_graph_minimum")
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


@cases("bp_graph_neg", "bp_graph_exp", "bp_graph_log", "bp_graph_relu", "bp_graph_sigmoid",
       "bp_graph_tanh", "bp_graph_sum", "bp_graph_mean")
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


@cases("bp_graph_mse_loss", "bp_graph_cross_entropy")
def _(fx, check, name):
    function = getattr(lib, name)
    # Targets that are neither [batch] nor [batch, classes] for logits [2, 3].
    other_batch, other_classes = leaf(fx.g, "constant", 3), leaf(fx.g, "constant", 2, 2)
    before = fx.nodes()
    out = node_out()
    a, b = (fx.x, fx.p) if name == "bp_graph_mse_loss" else (fx.x, fx.labels)
    check(f"{name}(NULL graph)", HANDLE, function(NULL_GRAPH, a, b, Reduction.MEAN, byref(out)),
          out)
    check(f"{name}(out NULL)", ARG, function(fx.g, a, b, Reduction.MEAN, None))
    for reduction in (3, -1, 2 ** 31 - 1):
        check(f"{name}(reduction {reduction})", ARG,
              function(fx.g, a, b, reduction, byref(out)), out)
    for bad in GRAPH_ID_BAD:
        check(f"{name}(first = {bad})", HANDLE, function(fx.g, bad, b, 0, byref(out)), out)
        check(f"{name}(second = {bad})", HANDLE, function(fx.g, a, bad, 0, byref(out)), out)
    if name == "bp_graph_mse_loss":
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
        check(f"{name}(count {count})", ARG, function(fx.g, fx.x, other, count))
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
        check(f"{name}(count {count})", ARG, function(fx.g, fx.x, buffer, count))
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
        check(f"{name}(input_count {count})", ARG,
              function(fx.net, 4, fx.inputs, count, outputs, 8))
    for count in (0, 7, 9, 2 ** 64 - 1):
        check(f"{name}(output_count {count})", ARG,
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
        check(f"{name}(target_count {count})", ARG,
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
        check(f"{name}(count {count})", ARG,
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
        check(f"{name}(input_count {count})", ARG, call(fx.net, 4, inputs, count, targets, 8),
              loss)
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
        check(f"{name}(input_count {count})", ARG, call(fx.ce, 4, inputs, count, labels, 4),
              loss)
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
    "bp_net_free": lambda n: lib.bp_net_free(n),
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
