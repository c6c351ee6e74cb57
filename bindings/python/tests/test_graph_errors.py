"""Bad input to every Graph method: caught in Python where it can be, else reported by the library
as the exception of its status, with the graph left as it was.

Tests that hand bad input to the library are marked ``isolated`` (see conftest.py): a crash in
the library fails that test only.
"""

import re

import numpy as np
import pytest

import backprop
from backprop import Graph, Node

isolated = pytest.mark.isolated

# Every method that takes nodes, called with the given nodes (x is a [2, 3] input, s a scalar
# op node, c a [2] constant holding labels).
NODE_METHODS = {
    "add": lambda g, x, s: g.add(x, x), "sub": lambda g, x, s: g.sub(x, x),
    "mul": lambda g, x, s: g.mul(x, x), "div": lambda g, x, s: g.div(x, x),
    "maximum": lambda g, x, s: g.maximum(x, x), "minimum": lambda g, x, s: g.minimum(x, x),
    "neg": lambda g, x, s: g.neg(x), "exp": lambda g, x, s: g.exp(x),
    "log": lambda g, x, s: g.log(x), "relu": lambda g, x, s: g.relu(x),
    "sigmoid": lambda g, x, s: g.sigmoid(x), "tanh": lambda g, x, s: g.tanh(x),
    "matmul": lambda g, x, s: g.matmul(x, g.input((3, 2)) if g is x.graph else x),
    "sum": lambda g, x, s: g.sum(x), "mean": lambda g, x, s: g.mean(x),
    "mse_loss": lambda g, x, s: g.mse_loss(x, x),
    "cross_entropy": lambda g, x, s: g.cross_entropy(x, x),
    "set_value": lambda g, x, s: g.set_value(x, np.zeros((2, 3))),
    "backward": lambda g, x, s: g.backward(s),
    "value": lambda g, x, s: g.value(x), "grad": lambda g, x, s: g.grad(x),
    "shape": lambda g, x, s: g.shape(x), "size": lambda g, x, s: g.size(x),
    "check_gradients": lambda g, x, s: g.check_gradients(s),
}
GRAPH_METHODS = dict(NODE_METHODS, **{
    "input": lambda g, x, s: g.input(3), "parameter": lambda g, x, s: g.parameter(3),
    "constant": lambda g, x, s: g.constant(3), "forward": lambda g, x, s: g.forward(),
    "zero_grad": lambda g, x, s: g.zero_grad(), "node_count": lambda g, x, s: g.node_count,
})


def small_graph(dtype="float32"):
    g = Graph(dtype)
    x = g.input((2, 3))
    s = g.sum(x)
    return g, x, s


# Caught in Python

@pytest.mark.parametrize("dtype", ["float16", "int32", np.int64, "complex64", "bool"])
def test_unsupported_dtypes_are_refused(dtype):
    with pytest.raises(ValueError, match="float32 or float64"):
        Graph(dtype)


@pytest.mark.parametrize("dtype", ["no such type", 3.5, object(), None])
def test_unknown_dtypes_are_refused(dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        Graph(dtype)


@pytest.mark.parametrize("method", sorted(GRAPH_METHODS))
def test_every_method_of_a_closed_graph_raises_invalid_handle(method):
    g, x, s = small_graph()
    g.close()
    with pytest.raises(backprop.InvalidHandleError, match="closed"):
        GRAPH_METHODS[method](g, x, s)


@pytest.mark.parametrize("method", sorted(NODE_METHODS))
def test_a_node_of_another_graph_is_refused(method):
    g, x, s = small_graph()
    other, y, t = small_graph()
    count, other_count = g.node_count, other.node_count
    with pytest.raises(backprop.InvalidHandleError, match="another Graph"):
        NODE_METHODS[method](g, y, t)
    assert (g.node_count, other.node_count) == (count, other_count)


def test_a_node_of_another_graph_is_refused_before_scalars_become_constants():
    g, x, s = small_graph()
    other, y, t = small_graph()
    count = g.node_count
    with pytest.raises(backprop.InvalidHandleError):
        g.add(2.0, y)
    with pytest.raises(backprop.InvalidHandleError):
        g.mse_loss(1.0, y)
    assert g.node_count == count


@pytest.mark.parametrize("values, shape_text", [
    (np.zeros(6), "(6,)"), (np.zeros((3, 2)), "(3, 2)"), (np.zeros((2, 3, 1)), "(2, 3, 1)"),
    (1.0, "()"), ([[1, 2], [3, 4]], "(2, 2)"),
])
def test_set_value_with_the_wrong_shape_names_both_shapes(values, shape_text):
    g, x, s = small_graph()
    g.set_value(x, np.ones((2, 3)))
    with pytest.raises(ValueError) as caught:
        g.set_value(x, values)
    assert "(2, 3)" in str(caught.value) and shape_text in str(caught.value)
    np.testing.assert_array_equal(x.value, np.ones((2, 3)))  # unchanged


@pytest.mark.parametrize("values", [
    np.zeros((2, 3), dtype=np.complex128), np.full((2, 3), "a"), np.empty((2, 3), dtype=object),
    [["a", "b", "c"], ["d", "e", "f"]], np.zeros((2, 3), dtype="datetime64[s]"),
])
def test_set_value_with_non_real_values_is_a_type_error(values):
    g, x, s = small_graph()
    with pytest.raises(TypeError, match="real numbers"):
        g.set_value(x, values)


@pytest.mark.parametrize("shape, error", [
    ((-1,), ValueError), ((2, -3), ValueError), ((2.5,), TypeError), ("ab", TypeError),
    (None, TypeError), (-4, ValueError),
])
def test_bad_shapes_are_refused_in_python(shape, error):
    g = Graph()
    with pytest.raises(error):
        g.input(shape)
    assert g.node_count == 0


@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, 7])
def test_unknown_reductions_are_refused(reduction):
    g, x, s = small_graph()
    with pytest.raises(ValueError, match="reduction"):
        g.mse_loss(x, x, reduction=reduction)
    with pytest.raises(ValueError, match="reduction"):
        g.cross_entropy(x, x, reduction=reduction)


@pytest.mark.parametrize("operand", ["2", {"a": 1}, None, object()])
def test_operands_that_are_not_numbers_are_type_errors(operand):
    g, x, s = small_graph()
    with pytest.raises(TypeError):
        x + operand
    with pytest.raises(TypeError):
        g.mul(operand, x)


@pytest.mark.parametrize("method", ["value", "grad", "shape", "size", "backward"])
def test_methods_taking_a_node_refuse_other_things(method):
    g, x, s = small_graph()
    with pytest.raises(TypeError, match="Node"):
        getattr(g, method)(x.id)


# Reported by the library

def same_graph_after(g, action, error):
    """Runs action, expecting error, and checks that no node was added."""
    count = g.node_count
    with pytest.raises(error) as caught:
        action()
    assert g.node_count == count
    return caught.value


@isolated
@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 0, 3)])
def test_a_zero_dimension_is_an_invalid_argument(shape):
    g = Graph()
    for make in (g.input, g.parameter, g.constant):
        same_graph_after(g, lambda: make(shape), backprop.InvalidArgumentError)


@isolated
def test_a_rank_above_the_maximum_is_an_invalid_argument():
    g = Graph()
    g.input((1,) * 8)
    same_graph_after(g, lambda: g.input((1,) * 9), backprop.InvalidArgumentError)


@isolated
@pytest.mark.parametrize("shape", [(2 ** 40, 2 ** 40), (2 ** 63, 2), (2 ** 64 - 1, 2),
                                   (2 ** 32,) * 3])
def test_an_element_count_that_overflows_is_out_of_memory(shape):
    g = Graph()
    same_graph_after(g, lambda: g.parameter(shape), backprop.OutOfMemoryError)


@isolated
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
@pytest.mark.parametrize("left, right", [((2, 3), (4,)), ((2, 3), (3, 2)), ((2, 3), (2,)),
                                         ((4, 2, 3), (3, 3))], ids=str)
def test_shapes_that_do_not_broadcast_are_shape_errors(op, left, right):
    g = Graph()
    a, b = g.input(left), g.input(right)
    error = same_graph_after(g, lambda: getattr(g, op)(a, b), backprop.ShapeError)
    numbers = set(int(n) for n in re.findall(r"\d+", error.message))
    assert set(left) | set(right) <= numbers, f"the message should name both shapes: {error}"


@isolated
@pytest.mark.parametrize("left, right", [((2, 3), (2, 3)), ((3,), (3, 2)), ((2, 3), (3,)),
                                         ((2, 3, 4), (3, 4, 2)), ((2, 3, 4), (2, 3, 2)),
                                         ((), (1, 1))], ids=str)
def test_matmul_of_wrong_shapes_is_a_shape_error(left, right):
    g = Graph()
    a, b = g.input(left), g.input(right)
    same_graph_after(g, lambda: a @ b, backprop.ShapeError)


@isolated
@pytest.mark.parametrize("left, right", [((2, 3), (3,)), ((2, 3), (3, 2)), ((), (1,))], ids=str)
def test_mse_loss_of_different_shapes_is_a_shape_error(left, right):
    g = Graph()
    a, b = g.input(left), g.input(right)
    same_graph_after(g, lambda: g.mse_loss(a, b), backprop.ShapeError)


@isolated
@pytest.mark.parametrize("logits, labels", [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (2, 1)),
                                            ((2, 3, 1), (2,)), ((2, 3), ())], ids=str)
def test_cross_entropy_of_wrong_shapes_is_a_shape_error(logits, labels):
    g = Graph()
    a, b = g.input(logits), g.constant(labels)
    same_graph_after(g, lambda: g.cross_entropy(a, b), backprop.ShapeError)


@isolated
@pytest.mark.parametrize("bad_label", [3, -1, 0.5, 1e9, np.nan])
def test_labels_that_are_not_class_indices_fail_forward(bad_label):
    g = Graph("float64")
    logits, labels = g.input((2, 3)), g.constant(2)
    loss = g.cross_entropy(logits, labels)
    g.set_value(labels, [0, 1])
    g.forward()
    good = float(loss.value)
    g.set_value(labels, [1, bad_label])
    with pytest.raises(backprop.InvalidArgumentError):
        g.forward()
    # After a failed forward, op values must not be read until the next successful forward.
    with pytest.raises(backprop.StateError):
        loss.value
    with pytest.raises(backprop.StateError):
        g.backward(loss)
    g.set_value(labels, [0, 1])
    g.forward()
    assert float(loss.value) == good


@isolated
@pytest.mark.parametrize("shape", [(2,), (2, 3), (1, 2)])
def test_backward_from_a_non_scalar_is_a_shape_error(shape):
    g = Graph()
    x = g.input(shape)
    y = g.exp(x)
    g.forward()
    with pytest.raises(backprop.ShapeError):
        g.backward(y)
    assert not x.grad.any()


@isolated
def test_backward_from_a_one_element_node_of_any_rank_works():
    g = Graph()
    x = g.input((1, 1))
    y = x * 3.0
    g.set_value(x, [[2.0]])
    g.forward()
    g.backward(y)
    assert x.grad.tolist() == [[3.0]]


@isolated
def test_backward_before_forward_is_a_state_error():
    g = Graph()
    x = g.input(3)
    loss = x.sum()
    with pytest.raises(backprop.StateError):
        g.backward(loss)
    assert not x.grad.any()


@isolated
def test_backward_after_a_leaf_changed_is_a_state_error():
    g = Graph()
    x = g.input(3)
    loss = (x * x).sum()
    g.forward()
    g.set_value(x, [1.0, 2.0, 3.0])
    with pytest.raises(backprop.StateError):
        g.backward(loss)
    g.forward()
    g.backward(loss)
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


@isolated
def test_backward_after_the_graph_grew_is_a_state_error():
    g = Graph()
    x = g.input(3)
    loss = x.sum()
    g.forward()
    g.exp(x)
    with pytest.raises(backprop.StateError):
        g.backward(loss)


@isolated
def test_op_values_before_forward_are_a_state_error_but_leaves_can_be_read():
    g = Graph()
    x = g.input(3)
    g.set_value(x, [1.0, 2.0, 3.0])
    y = x * 2.0
    with pytest.raises(backprop.StateError):
        y.value
    assert x.value.tolist() == [1.0, 2.0, 3.0]


@isolated
def test_the_gradient_of_a_constant_is_an_invalid_argument():
    g = Graph()
    c = g.constant(3)
    with pytest.raises(backprop.InvalidArgumentError):
        c.grad


@isolated
def test_setting_the_value_of_an_op_node_is_an_invalid_argument():
    g = Graph()
    x = g.input(3)
    y = g.exp(x)
    with pytest.raises(backprop.InvalidArgumentError):
        g.set_value(y, [1.0, 2.0, 3.0])


@isolated
@pytest.mark.parametrize("node_id", [999, -1, "next", 2 ** 31 - 1, -2 ** 31])
@pytest.mark.parametrize("method", ["value", "grad", "shape", "size", "backward", "set_value",
                                    "exp", "add", "sum", "mse_loss"])
def test_a_node_id_not_in_the_graph_is_an_invalid_handle(method, node_id):
    g = Graph()
    x = g.input(())
    y = g.input(())
    ghost = Node(g, max(x.id, y.id) + 1 if node_id == "next" else node_id)
    actions = {
        "value": lambda: g.value(ghost), "grad": lambda: g.grad(ghost),
        "shape": lambda: g.shape(ghost), "size": lambda: g.size(ghost),
        "backward": lambda: g.backward(ghost), "exp": lambda: g.exp(ghost),
        "set_value": lambda: g.set_value(ghost, 0.0),
        "add": lambda: g.add(x, ghost), "sum": lambda: g.sum(ghost),
        "mse_loss": lambda: g.mse_loss(ghost, x),
    }
    g.forward()
    same_graph_after(g, actions[method], backprop.InvalidHandleError)


@isolated
def test_nan_values_flow_through_a_graph_without_error():
    g = Graph()
    x = g.input(2)
    y = (x * 2.0).sum()
    g.set_value(x, [np.nan, 1.0])
    g.forward()
    assert np.isnan(float(y.value))
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]
