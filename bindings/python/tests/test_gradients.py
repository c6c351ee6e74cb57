"""Every op's gradient against central finite differences, computed here in Python.

Each check builds a float64 graph  root = sum(op(inputs...) * weights)  with a random constant
`weights` (so that every output element gets a different upstream gradient), takes the analytic
gradient of root from backward, and compares it with (root(v + eps) - root(v - eps)) / (2 eps)
for every element of every input, evaluated by the library's own forward pass.
"""

import numpy as np
import pytest

from backprop import Graph

EPS = 1e-6
ATOL = 1e-5
RTOL = 1e-3


def check_gradients(build, values, seed=0):
    """build(graph, *leaves) -> output node; values: one array per input leaf."""
    rng = np.random.default_rng(seed)
    with Graph("float64") as graph:
        leaves = [graph.input(np.shape(v)) for v in values]
        out = build(graph, *leaves)
        weights = graph.constant(out.shape)
        root = graph.sum(graph.mul(out, weights))
        graph.set_value(weights, rng.uniform(0.5, 1.5, out.shape) * rng.choice([-1, 1], out.shape))
        for leaf, value in zip(leaves, values):
            graph.set_value(leaf, value)

        graph.forward()
        graph.zero_grad()
        graph.backward(root)
        analytic = [graph.grad(leaf) for leaf in leaves]

        def root_at(leaf, value):
            graph.set_value(leaf, value)
            graph.forward()
            return float(graph.value(root))

        for index, (leaf, value, grad) in enumerate(zip(leaves, values, analytic)):
            value = np.asarray(value, dtype=np.float64)
            numeric = np.zeros_like(value)
            for position in np.ndindex(value.shape):
                plus, minus = value.copy(), value.copy()
                plus[position] += EPS
                minus[position] -= EPS
                numeric[position] = (root_at(leaf, plus) - root_at(leaf, minus)) / (2 * EPS)
            graph.set_value(leaf, value)
            assert grad.shape == value.shape
            np.testing.assert_allclose(grad, numeric, atol=ATOL, rtol=RTOL,
                                       err_msg=f"gradient of input {index}")


def signed(rng, shape, low=0.5, high=2.0):
    """Values with magnitudes in [low, high] and random signs: away from 0 and from each other's
    kinks."""
    return rng.uniform(low, high, shape) * rng.choice([-1, 1], shape)


def apart(rng, left, right):
    """Two arrays whose broadcast elements differ by at least 0.1 (no ties for max/min)."""
    a = signed(rng, left)
    b = signed(rng, right)
    for _ in range(100):
        if np.min(np.abs(np.subtract(a, b))) > 0.1:
            return a, b
        b = signed(rng, right)
    raise AssertionError("could not draw values apart")


BROADCAST_SHAPES = [
    ((2, 3), (2, 3)), ((2, 3), ()), ((), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)),
    ((2, 3), (2, 1)), ((2, 1), (1, 3)), ((2, 3, 2), (3, 1)),
]


@pytest.mark.parametrize("left, right", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_binary_op_gradients(op, left, right):
    rng = np.random.default_rng(10)
    a, b = apart(rng, left, right)
    check_gradients(lambda g, x, y: getattr(g, op)(x, y), [a, b])


@pytest.mark.parametrize("op", ["neg", "exp", "log", "relu", "sigmoid", "tanh", "sum", "mean"])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 1, 3)], ids=str)
def test_unary_op_gradients(op, shape):
    rng = np.random.default_rng(11)
    value = rng.uniform(0.2, 3.0, shape) if op == "log" else signed(rng, shape, 0.05, 2.0)
    check_gradients(lambda g, x: getattr(g, op)(x), [value])


def test_sigmoid_and_tanh_gradients_far_out():
    values = np.array([-30.0, -8.0, -1e-3, 1e-3, 8.0, 30.0])
    check_gradients(lambda g, x: g.sigmoid(x), [values])
    check_gradients(lambda g, x: g.tanh(x), [values])


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (3, 4, 2), (2, 5, 3), (4, 1, 4)])
def test_matmul_gradients(m, k, n):
    rng = np.random.default_rng(12)
    check_gradients(lambda g, a, b: g.matmul(a, b), [rng.normal(size=(m, k)),
                                                    rng.normal(size=(k, n))])


@pytest.mark.parametrize("left, right", [((2, 3, 4), (4, 2)), ((3, 2), (2, 2, 3)),
                                         ((2, 1, 2, 3), (3, 3, 2))], ids=str)
def test_batched_matmul_gradients(left, right):
    rng = np.random.default_rng(14)
    check_gradients(lambda g, a, b: g.matmul(a, b), [rng.normal(size=left),
                                                    rng.normal(size=right)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(), (4,), (3, 2)], ids=str)
def test_mse_loss_gradients(reduction, shape):
    rng = np.random.default_rng(13)
    check_gradients(lambda g, p, t: g.mse_loss(p, t, reduction=reduction),
                    [rng.normal(size=shape), rng.normal(size=shape)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("batch, classes", [(1, 2), (4, 3), (3, 5)])
def test_cross_entropy_gradients(reduction, batch, classes):
    rng = np.random.default_rng(14)
    labels = rng.integers(0, classes, batch)

    def build(g, logits):
        target = g.constant(batch)
        g.set_value(target, labels)
        return g.cross_entropy(logits, target, reduction=reduction)

    check_gradients(build, [rng.normal(size=(batch, classes)) * 2])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradients_against_probabilities(reduction):
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(3, 4)) * 2
    targets = rng.dirichlet(np.ones(4), size=3)
    # Both the logits and the probability targets get gradients.
    check_gradients(lambda g, x, t: g.cross_entropy(x, t, reduction=reduction),
                    [logits, targets])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    logits_value = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels_value = np.array([2, 0])
    with Graph("float64") as g:
        logits, labels = g.input((2, 3)), g.constant(2)
        loss = g.cross_entropy(logits, labels, reduction="sum")
        g.set_value(logits, logits_value)
        g.set_value(labels, labels_value)
        g.forward()
        loss.backward()
        softmax = np.exp(logits_value) / np.exp(logits_value).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(logits.grad, softmax - np.eye(3)[labels_value], rtol=1e-12)


def test_cross_entropy_gradient_is_finite_for_huge_logits():
    with Graph("float64") as g:
        logits, labels = g.input((2, 3)), g.constant(2)
        loss = g.cross_entropy(logits, labels)
        g.set_value(logits, [[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
        g.set_value(labels, [2, 1])
        g.forward()
        loss.backward()
        np.testing.assert_allclose(logits.grad, [[0.5, 0.0, -0.5], [0.0, 0.0, 0.0]], atol=1e-12)


def test_a_small_network_built_from_ops():
    # x [4, 3] -> tanh(x W1 + b1) [4, 5] -> (. W2 + b2) [4, 2] -> cross-entropy
    rng = np.random.default_rng(15)
    labels = np.array([0, 1, 1, 0])

    def build(g, x, w1, b1, w2, b2):
        target = g.constant(4)
        g.set_value(target, labels)
        hidden = g.tanh(x @ w1 + b1)
        return g.cross_entropy(hidden @ w2 + b2, target)

    check_gradients(build, [rng.normal(size=(4, 3)), rng.normal(size=(3, 5)),
                            rng.normal(size=5), rng.normal(size=(5, 2)), rng.normal(size=2)])


def test_a_deep_composite_expression():
    # Every op in one expression, with nodes used more than once.
    rng = np.random.default_rng(16)

    def build(g, a, b, c):
        s = g.sigmoid(a * b) + g.tanh(a - c)
        t = g.maximum(s, c) / (g.exp(-b) + 1.0)
        u = g.log(g.relu(t) + 2.0) - g.minimum(a, 0.3) * s
        return g.mean(u * a) + g.sum(-u)

    check_gradients(build, [signed(rng, (2, 3)), signed(rng, (3,)), signed(rng, (2, 1))])


@pytest.mark.parametrize("op", ["add", "mul", "div", "maximum", "exp", "sigmoid", "tanh",
                                "matmul", "cross_entropy"])
def test_float32_agrees_with_float64(op):
    rng = np.random.default_rng(17)
    a_value, b_value = apart(rng, (3, 3), (3, 3))
    results = {}
    for dtype in ("float32", "float64"):
        with Graph(dtype) as g:
            a, b = g.input((3, 3)), g.input((3, 3))
            if op in ("exp", "sigmoid", "tanh"):
                out = getattr(g, op)(a)
            elif op == "cross_entropy":
                labels = g.constant(3)
                g.set_value(labels, [0, 2, 1])
                out = g.cross_entropy(a * b, labels, reduction="none")
            else:
                out = getattr(g, op)(a, b)
            weights = g.constant(out.shape)
            g.set_value(weights, np.linspace(-1, 1, out.size).reshape(out.shape))
            root = g.sum(out * weights)
            g.set_value(a, a_value)
            g.set_value(b, b_value)
            g.forward()
            root.backward()
            results[dtype] = (out.value, a.grad, b.grad)
    for got, want in zip(results["float32"], results["float64"]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# The library's own gradient check (bp_graph_check_gradients) agrees

@pytest.mark.parametrize("op", ["add", "mul", "div", "maximum", "exp", "log", "sigmoid", "tanh",
                                "relu", "matmul", "mean"])
def test_the_library_gradient_check_passes_for_every_op(op):
    rng = np.random.default_rng(30)
    with Graph("float64") as g:
        a, b = g.input((3, 3)), g.parameter((3, 3))
        a_value, b_value = apart(rng, (3, 3), (3, 3))
        g.set_value(a, np.abs(a_value) if op == "log" else a_value)
        g.set_value(b, b_value)
        if op in ("exp", "log", "sigmoid", "tanh", "relu", "mean"):
            out = getattr(g, op)(a)
        else:
            out = getattr(g, op)(a, b)
        weights = g.constant(out.shape)
        g.set_value(weights, rng.normal(size=out.shape))
        root = g.sum(out * weights)
        before = a.value
        g.set_value(a, before)
        g.forward()
        g.backward(root)
        g.backward(root)  # leaves hold twice the gradient now
        twice = a.grad
        passed, max_error = g.check_gradients(root, eps=EPS, atol=ATOL, rtol=RTOL)
        assert passed, f"max |analytic - numeric| = {max_error}"
        assert 0 <= max_error < ATOL
        np.testing.assert_array_equal(a.value, before)  # leaf values restored
        np.testing.assert_allclose(a.grad, twice / 2, rtol=1e-12)  # zeroed, then one backward


def test_the_library_gradient_check_can_fail():
    # With a huge eps the finite difference of exp is far from its derivative.
    with Graph("float64") as g:
        x = g.input(3)
        root = g.sum(g.exp(x))
        g.set_value(x, [0.0, 1.0, 2.0])
        passed, max_error = g.check_gradients(root, eps=1.0)
        assert not passed
        numeric = (np.exp(np.array([1.0, 2.0, 3.0])) - np.exp([-1.0, 0.0, 1.0])) / 2
        assert max_error == pytest.approx(np.max(np.abs(numeric - np.exp([0.0, 1.0, 2.0]))),
                                          rel=1e-9)
