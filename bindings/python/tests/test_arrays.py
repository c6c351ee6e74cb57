"""numpy arrays at the boundary: which pass without a copy, how the rest is converted, what a
wrong dtype or shape raises, and that results own their memory.

Whether a copy was made is observed where it matters: the pointer the library receives. A spy
wraps the declared C function, records the address and element type of each buffer argument,
and calls the real function.
"""

import ctypes

import numpy as np
import pytest

import backprop
from backprop import Graph, Network, _arrays
from backprop._capi import lib

FLOATS = [np.float32, np.float64]


class Spy:
    """Records (address, ctypes element type) of the float, double and int32 buffer arguments
    of one C function (out-variables passed with byref are not recorded)."""

    def __init__(self, monkeypatch, name):
        self.calls = []
        original = getattr(lib, name)

        def spy(*args):
            pointers = [(ctypes.cast(a, ctypes.c_void_p).value, a._type_) for a in args
                        if isinstance(a, ctypes._Pointer) and a._type_ in
                        (ctypes.c_float, ctypes.c_double, ctypes.c_int32)]
            self.calls.append(pointers)
            return original(*args)

        monkeypatch.setattr(lib, name, spy)

    def only_call(self):
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


def address(array):
    return array.__array_interface__["data"][0]


# Graph values: float32 and float64 pass as they are, into either kind of graph

@pytest.mark.parametrize("graph_dtype", FLOATS)
@pytest.mark.parametrize("array_dtype", FLOATS)
def test_contiguous_float_arrays_reach_the_library_without_a_copy(monkeypatch, graph_dtype,
                                                                   array_dtype):
    with Graph(graph_dtype) as g:
        x = g.input((3, 4))
        values = np.arange(12, dtype=array_dtype).reshape(3, 4) / 8
        name = "bp_graph_set_value" if array_dtype == np.float32 else "bp_graph_set_value_f64"
        spy = Spy(monkeypatch, name)
        g.set_value(x, values)
        (pointer, ctype), = spy.only_call()
        assert pointer == address(values)
        assert ctype is (ctypes.c_float if array_dtype == np.float32 else ctypes.c_double)
        np.testing.assert_array_equal(x.value, values.astype(graph_dtype))


@pytest.mark.parametrize("graph_dtype", FLOATS)
def test_a_contiguous_slice_passes_without_a_copy(monkeypatch, graph_dtype):
    with Graph(graph_dtype) as g:
        x = g.input(4)
        big = np.arange(10, dtype=np.float64)
        view = big[3:7]
        spy = Spy(monkeypatch, "bp_graph_set_value_f64")
        g.set_value(x, view)
        (pointer, _), = spy.only_call()
        assert pointer == address(big) + 3 * 8
        np.testing.assert_array_equal(x.value, [3, 4, 5, 6])


@pytest.mark.parametrize("graph_dtype", FLOATS)
@pytest.mark.parametrize("values", [
    pytest.param(lambda: np.arange(24, dtype=np.float64).reshape(4, 6)[::2, ::2], id="strided"),
    pytest.param(lambda: np.asfortranarray(np.arange(6.0).reshape(2, 3)), id="fortran"),
    pytest.param(lambda: np.arange(6, dtype=">f8").reshape(2, 3), id="big-endian"),
    pytest.param(lambda: np.arange(6, dtype=np.int64).reshape(2, 3), id="int64"),
    pytest.param(lambda: np.arange(6, dtype=np.float16).reshape(2, 3), id="float16"),
    pytest.param(lambda: np.array([[True, False, True], [False, True, False]]), id="bool"),
    pytest.param(lambda: [[0, 1, 2], [3, 4, 5]], id="list"),
])
def test_other_values_are_converted_once_to_the_graph_dtype(monkeypatch, graph_dtype, values):
    values = values()
    expected = np.asarray(values).astype(graph_dtype)
    with Graph(graph_dtype) as g:
        x = g.input((2, 3))
        names = ("bp_graph_set_value", "bp_graph_set_value_f64")
        spies = {name: Spy(monkeypatch, name) for name in names}
        g.set_value(x, values)
        used = names[0] if graph_dtype == np.float32 else names[1]
        assert spies[names[1] if used == names[0] else names[0]].calls == []
        (pointer, _), = spies[used].only_call()
        if isinstance(values, np.ndarray):
            assert pointer != address(values)
        np.testing.assert_array_equal(x.value, expected)


def test_the_conversion_rule_returns_the_same_array_only_when_it_may():
    both = (np.dtype(np.float32), np.dtype(np.float64))
    for dtype in FLOATS:
        array = np.ones((2, 3), dtype=dtype)
        assert _arrays.real_array(array, both, np.dtype(np.float32), "x") is array
    scalar = np.float64(2.5)
    assert _arrays.real_array(scalar, both, np.dtype(np.float32), "x").shape == ()
    strided = np.ones((4, 6))[::2]
    converted = _arrays.real_array(strided, both, np.dtype(np.float32), "x")
    assert converted.dtype == np.float32 and converted.flags.c_contiguous
    assert not np.shares_memory(converted, strided)
    unaligned = np.frombuffer(bytes(8 * 4 + 1), dtype=np.uint8)[1:].view(np.float64)
    assert not unaligned.flags.aligned
    assert _arrays.real_array(unaligned, both, np.dtype(np.float64), "x").flags.aligned


@pytest.mark.parametrize("bad, dtype_name", [
    (np.array([[1 + 2j, 0, 0], [0, 0, 0]]), "complex128"),
    (np.array([["a", "b", "c"], ["d", "e", "f"]]), "<U1"),
    (np.array([[object(), 1, 2], [3, 4, 5]], dtype=object), "object"),
    ([["1.5", "2", "3"], ["4", "5", "6"]], "<U3"),
])
def test_values_that_are_not_real_numbers_are_a_type_error_naming_the_shape(bad, dtype_name):
    with Graph() as g:
        x = g.input((2, 3))
        with pytest.raises(TypeError) as caught:
            g.set_value(x, bad)
        message = str(caught.value)
        assert "(2, 3)" in message and dtype_name in message
        np.testing.assert_array_equal(x.value, np.zeros((2, 3)))


@pytest.mark.parametrize("shape", [(3, 2), (6,), (2, 3, 1), ()])
def test_a_wrong_shape_is_a_value_error_naming_both_shapes(shape):
    with Graph() as g:
        x = g.input((2, 3))
        with pytest.raises(ValueError) as caught:
            g.set_value(x, np.ones(shape, dtype=np.float32))
        assert "(2, 3)" in str(caught.value) and str(shape) in str(caught.value)


def test_operands_that_become_constants_pass_without_a_copy(monkeypatch):
    with Graph("float32") as g:
        x = g.input(3)
        weights = np.array([1.0, 2.0, 3.0])  # float64 into a float32 graph
        spy = Spy(monkeypatch, "bp_graph_set_value_f64")
        y = x * weights
        (pointer, _), = spy.only_call()
        assert pointer == address(weights)
        g.set_value(x, [1, 1, 1])
        g.forward()
        np.testing.assert_array_equal(y.value, [1, 2, 3])


# Results own their memory

def owns_its_memory(array):
    return (isinstance(array, np.ndarray) and type(array) is np.ndarray and array.base is None
            and array.flags.owndata and array.flags.writeable and array.flags.c_contiguous)


@pytest.mark.parametrize("graph_dtype", FLOATS)
def test_graph_values_and_gradients_are_arrays_that_own_their_memory(graph_dtype):
    with Graph(graph_dtype) as g:
        x = g.input((2, 3))
        s = (x * x).sum()
        g.set_value(x, np.ones((2, 3)))
        g.forward()
        s.backward()
        for result in (x.value, x.grad, s.value, g.value(x), g.grad(x)):
            assert owns_its_memory(result)
            assert result.dtype == graph_dtype
        assert s.value.shape == ()


def test_network_results_are_arrays_that_own_their_memory():
    with Network(3, seed=1) as net:
        net.add_dense(2, None)
        x = np.ones((4, 3), dtype=np.float32)
        results = [net.forward(x), net.predict(x), *net.layer_parameters(0)]
        net.forward(x)
        net.backward(np.zeros((4, 2), dtype=np.float32))
        results += net.layer_gradients(0)
        for result in results:
            assert owns_its_memory(result) and result.dtype == np.float32
            assert not np.shares_memory(result, x)


# Networks: float32 (and int32 labels) pass as they are

def mse_net():
    return Network(3, seed=2).add_dense(4, "tanh").add_dense(2, None)


def ce_net():
    return Network(3, seed=2, loss="cross_entropy").add_dense(4, "tanh").add_dense(2, None)


@pytest.mark.parametrize("name", ["forward", "predict"])
def test_float32_inputs_reach_the_network_without_a_copy(monkeypatch, name):
    net = mse_net()
    x = np.arange(12, dtype=np.float32).reshape(4, 3) / 12
    spy = Spy(monkeypatch, f"bp_net_{name}")
    out = getattr(net, name)(x)
    (inputs, float_type), (outputs, _) = spy.only_call()
    assert inputs == address(x) and float_type is ctypes.c_float
    assert outputs == address(out)


def test_train_step_passes_float32_inputs_and_targets_without_a_copy(monkeypatch):
    net = mse_net()
    x, y = np.ones((4, 3), dtype=np.float32), np.zeros((4, 2), dtype=np.float32)
    spy = Spy(monkeypatch, "bp_net_train_step")
    net.train_step(x, y, 0.1)
    (inputs, _), (targets, _) = spy.only_call()
    assert (inputs, targets) == (address(x), address(y))


def test_backward_passes_float32_targets_without_a_copy(monkeypatch):
    net = mse_net()
    net.forward(np.ones((4, 3), dtype=np.float32))
    y = np.zeros((4, 2), dtype=np.float32)
    spy = Spy(monkeypatch, "bp_net_backward")
    net.backward(y)
    (targets, _), = spy.only_call()
    assert targets == address(y)


def test_int32_labels_pass_without_a_copy_and_other_integers_are_converted(monkeypatch):
    net = ce_net()
    x = np.ones((4, 3), dtype=np.float32)
    labels = np.array([0, 1, 1, 0], dtype=np.int32)
    spy = Spy(monkeypatch, "bp_net_train_step_labels")
    net.train_step(x, labels, 0.1)
    (inputs, _), (passed, ctype) = spy.only_call()
    assert inputs == address(x) and passed == address(labels) and ctype is ctypes.c_int32
    for other in (labels.astype(np.int64), labels.astype(np.uint8), [0, 1, 1, 0]):
        net.forward(x)
        spy = Spy(monkeypatch, "bp_net_backward_labels")
        net.backward(other)
        (passed, ctype), = spy.only_call()
        if isinstance(other, np.ndarray):
            assert passed != address(other)


def test_float64_inputs_are_converted_once_to_float32(monkeypatch):
    net = mse_net()
    x = np.arange(12, dtype=np.float64).reshape(4, 3) / 12
    want = net.forward(x.astype(np.float32))
    spy = Spy(monkeypatch, "bp_net_forward")
    got = net.forward(x)
    (inputs, ctype), _ = spy.only_call()
    assert inputs != address(x) and ctype is ctypes.c_float
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [np.ones((4, 2)), np.ones(3), np.ones((4, 3, 1)), 1.0])
def test_network_inputs_of_a_wrong_shape_name_the_expected_shape(bad):
    net = mse_net()
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        net.forward(bad)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        net.train_step(bad, np.zeros((4, 2)), 0.1)


def test_network_inputs_that_are_not_numbers_are_a_type_error_naming_the_shape():
    net = mse_net()
    with pytest.raises(TypeError, match=r"\(batch, 3\).*complex128"):
        net.forward(np.ones((4, 3), dtype=complex))


def test_targets_and_labels_of_a_wrong_shape_or_dtype_name_the_expected_shape():
    net = mse_net()
    net.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        net.backward(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"\(4, 2\)"):
        net.backward(np.array([["a", "b"]] * 4))
    ce = ce_net()
    ce.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        ce.backward(np.zeros(3, dtype=np.int32))
    with pytest.raises(TypeError, match=r"\(4,\).*float64"):
        ce.backward(np.zeros(4))
    with pytest.raises(ValueError, match="int32"):
        ce.backward(np.array([0, 1, 2 ** 40, 0]))


def test_the_numpy_rule_is_documented_where_users_look():
    for documented in (backprop.Graph.set_value, backprop.graph, backprop.network, _arrays):
        text = documented.__doc__
        assert "without a copy" in text and "converted once" in text
