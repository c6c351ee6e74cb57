"""The Graph and Node classes: building, running, reading, operators, lifetime."""

import gc

import numpy as np
import pytest

import backprop
from backprop import Graph, Node
from support import run_python

DTYPES = ["float32", "float64"]


@pytest.fixture(params=DTYPES)
def graph(request):
    with Graph(request.param) as g:
        yield g


# Construction and dtypes

@pytest.mark.parametrize("spelling, expected", [
    ("float32", np.float32), ("float64", np.float64), (np.float32, np.float32),
    (np.dtype("float64"), np.float64), (backprop.DType.FLOAT64, np.float64),
])
def test_dtype_spellings(spelling, expected):
    with Graph(spelling) as g:
        assert g.dtype == np.dtype(expected)
        x = g.input(2)
        assert g.value(x).dtype == np.dtype(expected)


def test_default_dtype_is_float32():
    with Graph() as g:
        assert g.dtype == np.float32


# Leaves

def test_leaves_have_their_shapes_and_start_at_zero(graph):
    for make in (graph.input, graph.parameter, graph.constant):
        for shape in [(), (3,), (2, 3), (1, 2, 1, 2)]:
            node = make(shape)
            assert isinstance(node, Node) and node.graph is graph
            assert node.shape == graph.shape(node) == shape
            assert node.size == graph.size(node) == int(np.prod(shape))
            value = node.value
            assert value.shape == shape and value.dtype == graph.dtype
            assert not value.any()


def test_an_int_shape_means_a_vector(graph):
    assert graph.input(4).shape == (4,)


def test_node_count_counts_every_node(graph):
    assert graph.node_count == 0
    x = graph.input(3)
    y = graph.exp(x)
    graph.sum(y)
    assert graph.node_count == 3


def test_set_value_round_trips_and_converts(graph):
    x = graph.input((2, 3))
    graph.set_value(x, [[1, 2, 3], [4, 5, 6]])  # a list of ints
    np.testing.assert_array_equal(graph.value(x), [[1, 2, 3], [4, 5, 6]])
    graph.set_value(x, np.arange(6, dtype=np.float64).reshape(2, 3) / 4)
    np.testing.assert_array_equal(x.value, np.arange(6).reshape(2, 3) / 4)
    x.value = np.ones((2, 3), dtype=np.int64)
    np.testing.assert_array_equal(x.value, 1)


def test_set_value_accepts_non_contiguous_arrays(graph):
    x = graph.input((2, 3))
    big = np.arange(24, dtype=np.float64).reshape(4, 6)
    view = big[::2, ::2]
    assert not view.flags.c_contiguous
    graph.set_value(x, view)
    np.testing.assert_array_equal(x.value, view)


def test_values_returned_are_fresh_copies(graph):
    x = graph.input(3)
    graph.set_value(x, [1, 2, 3])
    first = x.value
    first[:] = 99
    np.testing.assert_array_equal(x.value, [1, 2, 3])


def test_constants_hold_values_but_no_gradient(graph):
    c = graph.constant(2)
    graph.set_value(c, [5, 6])
    np.testing.assert_array_equal(c.value, [5, 6])


# Forward and backward

def test_forward_computes_ops_in_order(graph):
    x = graph.input(3)
    y = graph.mul(graph.exp(x), 2.0)
    graph.set_value(x, [0.0, 1.0, -1.0])
    graph.forward()
    np.testing.assert_allclose(y.value, 2 * np.exp([0.0, 1.0, -1.0]), rtol=1e-6)


def test_backward_of_a_sum_of_squares(graph):
    x = graph.input(3)
    loss = (x * x).sum()
    graph.set_value(x, [1.0, -2.0, 3.0])
    graph.forward()
    loss.backward()
    assert float(loss.value) == 14.0
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_gradients_accumulate_across_backward_calls(graph):
    x = graph.input(3)
    p = graph.parameter(3)
    loss = (x * p).sum()
    graph.set_value(x, [1.0, 2.0, 3.0])
    graph.set_value(p, [4.0, 5.0, 6.0])
    graph.forward()
    graph.backward(loss)
    graph.backward(loss)
    np.testing.assert_array_equal(x.grad, [8.0, 10.0, 12.0])
    np.testing.assert_array_equal(p.grad, [2.0, 4.0, 6.0])
    graph.zero_grad()
    assert not x.grad.any() and not p.grad.any()
    graph.backward(loss)
    np.testing.assert_array_equal(p.grad, [1.0, 2.0, 3.0])


def test_op_node_gradients_hold_the_latest_backward_only(graph):
    x = graph.input(2)
    y = x * 3.0
    loss = y.sum()
    graph.set_value(x, [1.0, 2.0])
    graph.forward()
    graph.backward(loss)
    graph.backward(loss)
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_a_node_used_twice_gets_both_contributions(graph):
    x = graph.input(3)
    square = x * x
    double = x + x
    both = (square + double).sum()
    graph.set_value(x, [1.0, 2.0, -3.0])
    graph.forward()
    both.backward()
    np.testing.assert_array_equal(x.grad, 2 * np.array([1.0, 2.0, -3.0]) + 2)


def test_a_shared_subexpression_is_counted_once_per_use(graph):
    # f = (a * b) + (a * b) * c: the product node has two consumers.
    a, b, c = graph.input(()), graph.input(()), graph.input(())
    ab = a * b
    f = ab + ab * c
    for node, value in ((a, 2.0), (b, 3.0), (c, 4.0)):
        graph.set_value(node, value)
    graph.forward()
    f.backward()
    assert float(f.value) == 6.0 + 24.0
    assert float(a.grad) == 3.0 * (1 + 4.0)
    assert float(b.grad) == 2.0 * (1 + 4.0)
    assert float(c.grad) == 6.0


def test_backward_needs_no_fresh_forward_when_nothing_changed(graph):
    x = graph.input(())
    y = x * x
    graph.set_value(x, 3.0)
    graph.forward()
    y.backward()
    y.backward()
    assert float(x.grad) == 12.0


# Broadcasting

@pytest.mark.parametrize("left, right", [
    ((2, 3), ()), ((), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 3), (2, 1)),
    ((2, 1), (1, 3)), ((2, 3, 4), (3, 1)), ((1,), (2, 3)),
])
@pytest.mark.parametrize("op, reference", [
    ("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide),
    ("maximum", np.maximum), ("minimum", np.minimum),
])
def test_binary_ops_broadcast_like_numpy(graph, left, right, op, reference):
    rng = np.random.default_rng(0)
    # Values exactly representable in the graph's dtype, so numpy computes the same thing.
    a_value = (rng.uniform(0.5, 2.0, left) * rng.choice([-1, 1], left)).astype(graph.dtype)
    b_value = (rng.uniform(0.5, 2.0, right) * rng.choice([-1, 1], right)).astype(graph.dtype)
    a, b = graph.input(left), graph.input(right)
    out = getattr(graph, op)(a, b)
    total = out.sum()
    expected = reference(a_value, b_value)
    assert out.shape == expected.shape
    graph.set_value(a, a_value)
    graph.set_value(b, b_value)
    graph.forward()
    tolerance = 1e-6 if graph.dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out.value, expected, rtol=tolerance)
    # The gradient of a broadcast operand is summed over the broadcast dimensions.
    total.backward()
    assert a.grad.shape == left and b.grad.shape == right


def test_broadcast_gradients_are_summed(graph):
    x = graph.input((2, 3))
    row = graph.input(3)
    scalar = graph.input(())
    loss = ((x + row) * scalar).sum()
    graph.set_value(x, np.ones((2, 3)))
    graph.set_value(row, [1.0, 2.0, 3.0])
    graph.set_value(scalar, 2.0)
    graph.forward()
    loss.backward()
    np.testing.assert_array_equal(row.grad, [4.0, 4.0, 4.0])  # 2 rows, times 2
    assert float(scalar.grad) == float(np.sum(np.ones((2, 3)) + [1, 2, 3]))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


# Values of every op against numpy

UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "relu": lambda v: np.maximum(v, 0),
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh,
    "sum": np.sum, "mean": np.mean,
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_op_values(graph, op):
    rng = np.random.default_rng(1)
    value = rng.uniform(0.1, 3.0, (2, 3)) if op == "log" else rng.normal(size=(2, 3))
    value = value.astype(graph.dtype)  # exactly representable: numpy computes the same thing
    x = graph.input((2, 3))
    y = getattr(graph, op)(x)
    graph.set_value(x, value)
    graph.forward()
    expected = UNARY[op](value)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.value, expected, rtol=1e-6 if graph.dtype == np.float32 else 1e-13)


def test_sigmoid_does_not_overflow(graph):
    x = graph.input(4)
    y = graph.sigmoid(x)
    graph.set_value(x, [-1000.0, -80.0, 80.0, 1000.0])
    graph.forward()
    value = y.value
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, [0.0, 0.0, 1.0, 1.0], atol=1e-30)


def test_log_of_non_positive_values_follows_c(graph):
    x = graph.input(2)
    y = graph.log(x)
    graph.set_value(x, [0.0, -1.0])
    graph.forward()
    value = y.value
    assert value[0] == -np.inf and np.isnan(value[1])


def test_matmul_values(graph):
    rng = np.random.default_rng(2)
    a_value, b_value = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    a, b = graph.input((3, 4)), graph.input((4, 5))
    c = a @ b
    assert c.shape == (3, 5)
    graph.set_value(a, a_value)
    graph.set_value(b, b_value)
    graph.forward()
    np.testing.assert_allclose(c.value, a_value @ b_value,
                               rtol=1e-5 if graph.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("left, right", [((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                                         ((2, 1, 3, 4), (3, 4, 2))], ids=str)
def test_batched_matmul_values_follow_numpy(graph, left, right):
    rng = np.random.default_rng(2)
    a_value, b_value = rng.normal(size=left), rng.normal(size=right)
    a, b = graph.input(left), graph.input(right)
    c = a @ b
    want = a_value @ b_value
    assert c.shape == want.shape
    graph.set_value(a, a_value)
    graph.set_value(b, b_value)
    graph.forward()
    np.testing.assert_allclose(c.value, want, rtol=1e-5 if graph.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_values(graph, reduction):
    rng = np.random.default_rng(3)
    p_value, t_value = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    p, t = graph.input((4, 3)), graph.input((4, 3))
    loss = graph.mse_loss(p, t, reduction=reduction)
    graph.set_value(p, p_value)
    graph.set_value(t, t_value)
    graph.forward()
    squares = (p_value - t_value) ** 2
    expected = {"mean": squares.mean(), "sum": squares.sum(), "none": squares}[reduction]
    assert loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.value, expected, rtol=1e-5)


def reference_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(labels)), labels]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_values(graph, reduction):
    rng = np.random.default_rng(4)
    logits_value = rng.normal(size=(5, 3)) * 3
    labels_value = np.array([0, 2, 1, 1, 0])
    logits, labels = graph.input((5, 3)), graph.constant(5)
    loss = graph.cross_entropy(logits, labels, reduction=reduction)
    graph.set_value(logits, logits_value)
    graph.set_value(labels, labels_value)
    graph.forward()
    per_sample = reference_cross_entropy(logits_value, labels_value)
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    assert loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.value, expected, rtol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_against_probabilities(graph, reduction):
    rng = np.random.default_rng(5)
    logits_value = rng.normal(size=(4, 3)) * 2
    targets_value = rng.dirichlet(np.ones(3), size=4)
    logits, targets = graph.input((4, 3)), graph.input((4, 3))
    loss = graph.cross_entropy(logits, targets, reduction=reduction)
    graph.set_value(logits, logits_value)
    graph.set_value(targets, targets_value)
    graph.forward()
    shifted = logits_value - logits_value.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    per_sample = -(targets_value * log_softmax).sum(axis=1)
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    assert loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.value, expected, rtol=1e-5)


def test_cross_entropy_is_stable_for_huge_logits(graph):
    logits, labels = graph.input((2, 3)), graph.constant(2)
    loss = graph.cross_entropy(logits, labels, reduction="none")
    graph.set_value(logits, [[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    graph.set_value(labels, [2, 1])
    graph.forward()
    np.testing.assert_allclose(loss.value, [2000.0, 0.0], atol=1e-3)
    assert np.all(np.isfinite(loss.value))


def test_maximum_and_minimum_split_the_gradient_on_ties(graph):
    a, b = graph.input(3), graph.input(3)
    high, low = graph.maximum(a, b), graph.minimum(a, b)
    loss = (high + low * 10.0).sum()
    graph.set_value(a, [1.0, 2.0, 3.0])
    graph.set_value(b, [1.0, 5.0, 0.0])
    graph.forward()
    loss.backward()
    np.testing.assert_array_equal(a.grad, [0.5 + 5.0, 10.0, 1.0])
    np.testing.assert_array_equal(b.grad, [0.5 + 5.0, 1.0, 10.0])


def test_relu_has_zero_gradient_at_zero(graph):
    x = graph.input(3)
    loss = graph.relu(x).sum()
    graph.set_value(x, [-1.0, 0.0, 2.0])
    graph.forward()
    loss.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


# Operators

def test_operators_build_the_same_nodes_as_methods(graph):
    a, b = graph.input(3), graph.input(3)
    graph.set_value(a, [1.0, 2.0, 4.0])
    graph.set_value(b, [2.0, 4.0, 8.0])
    expressions = {
        "a + b": (a + b, [3, 6, 12]), "a - b": (a - b, [-1, -2, -4]),
        "a * b": (a * b, [2, 8, 32]), "a / b": (a / b, [0.5, 0.5, 0.5]), "-a": (-a, [-1, -2, -4]),
        "a + 1": (a + 1, [2, 3, 5]), "1 + a": (1 + a, [2, 3, 5]), "a - 1": (a - 1, [0, 1, 3]),
        "1 - a": (1 - a, [0, -1, -3]), "a * 2": (a * 2, [2, 4, 8]), "2 * a": (2 * a, [2, 4, 8]),
        "a / 2": (a / 2, [0.5, 1, 2]), "8 / a": (8 / a, [8, 4, 2]),
        "a + array": (a + np.array([1.0, 1.0, 1.0]), [2, 3, 5]),
        "array - a": (np.array([4.0, 4.0, 4.0]) - a, [3, 2, 0]),
        "array * a": (np.float64(3.0) * a, [3, 6, 12]),
    }
    graph.forward()
    for text, (node, expected) in expressions.items():
        assert isinstance(node, Node), text
        np.testing.assert_array_equal(node.value, expected, err_msg=text)


def test_matmul_operator_and_reflected_matmul(graph):
    a = graph.input((2, 2))
    graph.set_value(a, [[1.0, 2.0], [3.0, 4.0]])
    left = a @ np.eye(2) * 2
    right = np.array([[0.0, 1.0], [1.0, 0.0]]) @ a
    graph.forward()
    np.testing.assert_array_equal(left.value, [[2, 4], [6, 8]])
    np.testing.assert_array_equal(right.value, [[3, 4], [1, 2]])


def test_scalar_operands_become_constants_without_gradients(graph):
    x = graph.input(())
    before = graph.node_count
    y = x * 3.0
    assert graph.node_count == before + 2  # the constant and the product
    graph.set_value(x, 2.0)
    graph.forward()
    y.backward()
    assert float(x.grad) == 3.0


def test_node_methods(graph):
    x = graph.input(3)
    graph.set_value(x, [0.5, 1.0, 2.0])
    nodes = {"exp": x.exp(), "log": x.log(), "relu": x.relu(), "sigmoid": x.sigmoid(),
             "tanh": x.tanh(), "sum": x.sum(), "mean": x.mean()}
    graph.forward()
    for name, node in nodes.items():
        np.testing.assert_allclose(node.value, UNARY[name](np.array([0.5, 1.0, 2.0])),
                                   rtol=1e-6, err_msg=name)


def test_nodes_compare_by_graph_and_id(graph):
    x = graph.input(2)
    assert Node(graph, x.id) == x and hash(Node(graph, x.id)) == hash(x)
    with Graph(graph.dtype) as other:
        assert Node(other, x.id) != x
    assert "Node(id=" in repr(x) and "(2,)" in repr(x)


# Lifetime

def counting_frees(monkeypatch, module, name):
    freed = []
    original = getattr(module, name)

    def counting(handle):
        freed.append(handle)
        return original(handle)

    monkeypatch.setattr(module, name, counting)
    return freed


def test_close_frees_exactly_once(monkeypatch):
    freed = counting_frees(monkeypatch, backprop.graph, "_free_graph")
    graph = Graph()
    graph.input(3)
    graph.close()
    graph.close()
    assert graph.closed
    del graph
    gc.collect()
    assert len(freed) == 1


def test_garbage_collection_frees_exactly_once(monkeypatch):
    freed = counting_frees(monkeypatch, backprop.graph, "_free_graph")
    graph = Graph()
    x = graph.input(3)
    del graph
    gc.collect()
    assert freed == []  # the node keeps its graph alive
    del x
    gc.collect()
    assert len(freed) == 1


def test_a_with_block_closes_the_graph():
    with Graph() as graph:
        x = graph.input(2)
    assert graph.closed
    with pytest.raises(backprop.InvalidHandleError):
        x.value
    assert repr(graph) == "<Graph closed>"


def test_graphs_left_open_at_exit_are_freed_quietly():
    child = run_python(
        "import backprop, numpy as np\n"
        "g = backprop.Graph(); x = g.input(3); y = (x * 2).sum()\n"
        "cycle = [g]; cycle.append(cycle)\n"
        "net = backprop.Network(2).add_dense(2, 'tanh'); borrowed = net.graph\n"
        "w, b = net.layer_nodes(0)\n"
        "print('done')\n")
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "done"
    assert child.stderr == ""
