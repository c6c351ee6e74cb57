"""Custom gates written in Python: Graph.custom with plain callables and backprop.Function
classes, over bp_graph_custom. Values and gradients (finite differences, and the library's own
check), shapes, accumulation, lifetime of the callbacks, and errors raised inside callbacks."""

import gc

import numpy as np
import pytest

import backprop
from backprop import Function, Graph
from test_gradients import check_gradients

isolated = pytest.mark.isolated  # bad input for the library: a crash fails one test


def cube(g, x):
    return g.custom(lambda a: a ** 3, lambda grad, a: 3 * a ** 2 * grad, x, name="cube")


def test_a_custom_op_computes_its_value_and_gradient():
    values = np.array([[-1.5, 0.5, 2.0], [1.0, -0.3, 0.7]])
    with Graph("float64") as g:
        x = g.input(values.shape, value=values)
        y = cube(g, x)
        root = y.sum()
        g.forward()
        root.backward()
        np.testing.assert_allclose(y.value, values ** 3)
        np.testing.assert_allclose(x.grad, 3 * values ** 2)
    check_gradients(cube, [values])


def test_the_library_gradient_check_passes_through_a_custom_op():
    with Graph("float64") as g:
        x = g.input(4, value=[0.3, -1.2, 2.0, 0.9])
        w = g.parameter(4, value=[1.0, 2.0, -1.0, 0.5])
        root = (cube(g, x * w).tanh()).sum()
        passed, error = g.check_gradients(root)
        assert passed, error


def test_several_inputs_and_a_none_gradient():
    def forward(a, b, c):
        return a * b + c

    def backward(grad, a, b, c):
        return grad * b, grad * a, None  # c gets no gradient from this op

    with Graph("float64") as g:
        a, b, c = g.input(3, value=[1, 2, 3]), g.input(3, value=[4, 5, 6]), g.input(3)
        y = g.custom(forward, backward, a, b, c)
        root = y.sum()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(y.value, [4, 10, 18])
        np.testing.assert_array_equal(a.grad, [4, 5, 6])
        np.testing.assert_array_equal(b.grad, [1, 2, 3])
        np.testing.assert_array_equal(c.grad, [0, 0, 0])
    check_gradients(lambda g, a, b: g.custom(forward, lambda gr, a, b, c: (gr * b, gr * a, None),
                                             a, b, 2.0, shape=(3,)),
                    [np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.7, -1.1])])


def test_numbers_and_arrays_become_constant_inputs():
    with Graph("float64") as g:
        x = g.input(2, value=[1.0, 2.0])
        y = g.custom(lambda a, b: a * b, lambda grad, a, b: (grad * b, grad * a), x, [3.0, 4.0])
        root = y.sum()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(y.value, [3, 8])
        np.testing.assert_array_equal(x.grad, [3, 4])


def test_the_output_shape_may_be_fixed_or_computed():
    def row_sums(a):
        return a.sum(axis=-1)

    def row_sums_grad(grad, a):
        return np.broadcast_to(grad[..., None], a.shape)

    with Graph("float64") as g:
        x = g.input((2, 3), value=np.arange(6.0).reshape(2, 3))
        computed = g.custom(row_sums, row_sums_grad, x, shape=lambda s: s[:-1])
        fixed = g.custom(row_sums, row_sums_grad, x, shape=(2,))
        scalar = g.custom(lambda a: a.sum(), lambda grad, a: np.full(a.shape, grad), x,
                          shape=())
        assert computed.shape == fixed.shape == (2,) and scalar.shape == ()
        g.forward()
        np.testing.assert_array_equal(computed.value, [3, 12])
        assert scalar.value == 15
    check_gradients(lambda g, a: g.custom(row_sums, row_sums_grad, a, shape=lambda s: s[:-1]),
                    [np.random.default_rng(1).normal(size=(2, 3))])


def test_an_op_with_no_inputs_is_a_source():
    with Graph() as g:
        y = g.custom(lambda: np.array([1.0, 2.0]), lambda grad: (), shape=2)
        g.forward()
        np.testing.assert_array_equal(y.value, [1, 2])


def test_a_custom_op_used_twice_adds_both_contributions():
    with Graph("float64") as g:
        x = g.input(2, value=[1.0, 2.0])
        y = g.custom(lambda a: 2 * a, lambda grad, a: 2 * grad, x)
        root = (y * y + x * y).sum()  # d/dx = 8x + 4x = 12x... through y and through x
        g.forward()
        root.backward()
        np.testing.assert_allclose(x.grad, [12.0, 24.0])


def test_float32_graphs_hand_float32_arrays():
    seen = []

    def forward(a):
        seen.append((a.dtype, a.flags.writeable))
        return a + 1

    with Graph("float32") as g:
        x = g.input(3, value=[1, 2, 3])
        y = g.custom(forward, lambda grad, a: grad, x)
        g.forward()
        assert seen == [(np.float32, False)]
        assert y.value.dtype == np.float32


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.calls = getattr(ctx, "calls", 0) + 1
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True,)
        np.testing.assert_array_equal(ctx.output, x * x)
        return 2 * x * grad


class MatMul(Function):
    @staticmethod
    def shape(a, b):
        return (a[0], b[1])

    @staticmethod
    def forward(ctx, a, b):
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs
        return (grad @ b.T if ctx.needs_input_grad[0] else None,
                a.T @ grad if ctx.needs_input_grad[1] else None)


def test_a_function_class_works_like_torch_autograd_function():
    values = np.array([0.5, -1.5, 2.0])
    with Graph("float64") as g:
        x = g.input(3, value=values)
        y = Square.apply(x)
        root = y.sum()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(y.value, values ** 2)
        np.testing.assert_array_equal(x.grad, 2 * values)
    check_gradients(lambda g, x: Square.apply(x), [values])


def test_a_function_with_a_shape_and_two_inputs():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    with Graph("float64") as g:
        y = MatMul.apply(g.input(a.shape, value=a), g.input(b.shape, value=b))
        assert y.shape == (2, 4)
        g.forward()
        np.testing.assert_allclose(y.value, a @ b)
    check_gradients(lambda g, x, w: MatMul.apply(x, w), [a, b])
    # A constant operand needs no gradient: backward sees needs_input_grad == (True, False).
    check_gradients(lambda g, x: MatMul.apply(x, b), [a])


def test_function_apply_needs_a_node():
    with pytest.raises(TypeError, match="Node"):
        Square.apply(np.ones(3))


@isolated
def test_a_function_without_forward_fails_the_forward():
    class Incomplete(Function):
        pass

    with Graph() as g:
        Incomplete.apply(g.input(2))
        with pytest.raises(backprop.InvalidArgumentError) as caught:
            g.forward()
        assert isinstance(caught.value.__cause__, NotImplementedError)


def test_callbacks_outlive_the_python_functions_that_made_them():
    def build(g, x):
        scale = 3.0
        return g.custom(lambda a: a * scale, lambda grad, a: grad * scale, x)

    with Graph() as g:
        x = g.input(2, value=[1, 2])
        y = build(g, x)
        root = y.sum()
        gc.collect()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(y.value, [3, 6])
        np.testing.assert_array_equal(x.grad, [3, 3])


def test_a_custom_op_on_a_network_graph_lives_as_long_as_the_network():
    net = backprop.Network(2, seed=1).add_dense(3, "tanh")
    weight, _ = net.layer_nodes(0)
    graph = net.graph
    penalty = graph.custom(lambda w: (w ** 2).sum(), lambda grad, w: 2 * w * grad, weight,
                           shape=())
    del graph
    gc.collect()
    graph = net.graph  # a new wrapper: the callbacks must still be alive
    graph.forward()
    np.testing.assert_allclose(penalty.value, (net.layer_parameters(0)[0] ** 2).sum(),
                               rtol=1e-6)


# Errors raised in callbacks

@isolated
def test_an_exception_in_forward_fails_the_forward_with_the_cause():
    fail = [True]

    def forward(a):
        if fail[0]:
            raise ZeroDivisionError("no luck")
        return a

    with Graph() as g:
        x = g.input(2, value=[1, 2])
        y = g.custom(forward, lambda grad, a: grad, x, name="flaky")
        with pytest.raises(backprop.InvalidArgumentError, match="flaky.*no luck") as caught:
            g.forward()
        assert isinstance(caught.value.__cause__, ZeroDivisionError)
        assert str(caught.value.__cause__) == "no luck"
        with pytest.raises(backprop.StateError):
            y.value  # op values are undefined after a failed forward
        fail[0] = False
        g.forward()  # the graph works again
        np.testing.assert_array_equal(y.value, [1, 2])


@isolated
def test_an_exception_in_backward_fails_the_backward_with_the_cause():
    def backward(grad, a):
        raise KeyError("missing")

    with Graph() as g:
        x = g.input(2)
        root = g.custom(lambda a: a, backward, x, name="broken").sum()
        g.forward()
        with pytest.raises(backprop.InvalidArgumentError, match="broken") as caught:
            root.backward()
        assert isinstance(caught.value.__cause__, KeyError)


@isolated
def test_an_exception_in_the_shape_function_refuses_the_op():
    def shape(s):
        raise ValueError("bad shape")

    with Graph() as g:
        x = g.input(2)
        before = g.node_count
        with pytest.raises(backprop.ShapeError) as caught:
            g.custom(lambda a: a, lambda grad, a: grad, x, shape=shape)
        assert isinstance(caught.value.__cause__, ValueError)
        assert g.node_count == before


@isolated
@pytest.mark.parametrize("shape", [(0,), (2, -1), "abc", tuple(range(1, 11))])
def test_bad_output_shapes_refuse_the_op(shape):
    with Graph() as g:
        x = g.input(2)
        with pytest.raises(backprop.ShapeError):
            g.custom(lambda a: a, lambda grad, a: grad, x, shape=shape)


@isolated
@pytest.mark.parametrize("forward, backward, where", [
    (lambda a: np.ones(5), lambda grad, a: grad, "forward"),
    (lambda a: a, lambda grad, a: np.ones(7), "backward"),
    (lambda a: a, lambda grad, a: (grad, grad), "backward"),
])
def test_results_of_the_wrong_shape_are_errors(forward, backward, where):
    with Graph() as g:
        x = g.input(3)
        root = g.custom(forward, backward, x).sum()
        if where == "forward":
            with pytest.raises(backprop.InvalidArgumentError) as caught:
                g.forward()
        else:
            g.forward()
            with pytest.raises(backprop.InvalidArgumentError) as caught:
                root.backward()
        assert isinstance(caught.value.__cause__, ValueError)


@isolated
def test_input_arrays_are_read_only():
    def forward(a):
        a[0] = 99.0
        return a

    with Graph() as g:
        x = g.input(2, value=[1, 2])
        g.custom(forward, lambda grad, a: grad, x)
        with pytest.raises(backprop.InvalidArgumentError) as caught:
            g.forward()
        assert isinstance(caught.value.__cause__, ValueError)
        np.testing.assert_array_equal(x.value, [1, 2])


def test_custom_takes_callables_only():
    with Graph() as g:
        with pytest.raises(TypeError, match="callables"):
            g.custom("forward", lambda grad: grad, g.input(2))
