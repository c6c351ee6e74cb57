"""Every graph op the header declares, through its Python name: the value against numpy, the
gradient against central finite differences (on float64 graphs, with the helper of
test_gradients.py), and float32 graphs against float64 ones.

Each entry of OPS builds one op from input leaves (the differentiable operands); operands that
are not differentiable (labels, indices, conditions) are numpy constants captured by the builder.
"""

import math

import numpy as np
import pytest

from backprop import Graph
from test_gradients import check_gradients

isolated = pytest.mark.isolated  # bad input for the library: a crash fails one test

RNG = np.random.default_rng(2024)


def signed(shape, low=0.3, high=2.0):
    return RNG.uniform(low, high, shape) * RNG.choice([-1, 1], shape)


def positive(shape, low=0.3, high=2.0):
    return RNG.uniform(low, high, shape)


def erf(x):
    return np.vectorize(math.erf)(x)


def log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def layer_norm(x, dims, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - dims, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if w is not None:
        y = y * w + b
    return y


def reduced(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


LABELS = np.array([2, 0, 1, 2])
CONDITION = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
INDICES = np.array([[3, 0], [3, 1], [2, 3]])
PROBS = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
TARGET_01 = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.9]])

# id -> (builder(graph, *leaves), reference(*arrays), inputs, differentiable)
OPS = {
    # Elementwise arithmetic
    "pow nodes": (lambda g, a, b: g.pow(a, b), np.power,
                  [positive((2, 3)), signed((2, 3), 0.2, 1.5)], True),
    "pow broadcast": (lambda g, a, b: a ** b, np.power, [positive((2, 3)), signed((3,))], True),
    "pow scalar": (lambda g, a: a ** 3, lambda a: a ** 3, [signed((2, 3))], True),
    "pow scalar fractional": (lambda g, a: g.pow_scalar(a, 0.5), np.sqrt, [positive((4,))], True),
    "rpow": (lambda g, a: 2.0 ** a, lambda a: 2.0 ** a, [signed((2, 2))], True),
    "clamp": (lambda g, a: a.clamp(-0.5, 0.8), lambda a: np.clip(a, -0.5, 0.8),
              [np.array([-1.7, -0.2, 0.3, 0.7, 1.1, 1.9])], True),
    "where": (lambda g, a, b: g.where(CONDITION, a, b), lambda a, b: np.where(CONDITION, a, b),
              [signed((2, 3)), signed((2, 3))], True),
    "where broadcast": (lambda g, a, b: g.where(CONDITION, a, b),
                        lambda a, b: np.where(CONDITION, a, b), [signed((3,)), signed(())], True),
    "node where": (lambda g, a, b: a.where(CONDITION, b), lambda a, b: np.where(CONDITION, a, b),
                   [signed((2, 3)), signed((2, 3))], True),
    "node maximum minimum": (lambda g, a, b: a.maximum(b) + a.minimum(0.5),
                             lambda a, b: np.maximum(a, b) + np.minimum(a, 0.5),
                             [np.array([0.1, -1.0, 2.0]), np.array([0.7, -2.0, 1.0])], True),
    # Elementwise functions
    "abs": (lambda g, a: abs(a), np.abs, [signed((2, 3))], True),
    "sqrt": (lambda g, a: a.sqrt(), np.sqrt, [positive((2, 3))], True),
    "square": (lambda g, a: a.square(), np.square, [signed((2, 3))], True),
    "reciprocal": (lambda g, a: a.reciprocal(), np.reciprocal, [signed((2, 3))], True),
    "neg": (lambda g, a: -a, np.negative, [signed((3,))], True),
    "exp": (lambda g, a: a.exp(), np.exp, [signed((3,))], True),
    "log": (lambda g, a: a.log(), np.log, [positive((3,))], True),
    "relu": (lambda g, a: a.relu(), lambda a: np.maximum(a, 0), [signed((2, 3))], True),
    "leaky_relu": (lambda g, a: g.leaky_relu(a, negative_slope=0.2),
                   lambda a: np.where(a > 0, a, 0.2 * a), [signed((2, 3))], True),
    "leaky_relu default": (lambda g, a: a.leaky_relu(), lambda a: np.where(a > 0, a, 0.01 * a),
                           [signed((5,))], True),
    "elu": (lambda g, a: g.elu(a, alpha=1.5), lambda a: np.where(a > 0, a, 1.5 * np.expm1(a)),
            [signed((2, 3))], True),
    "gelu": (lambda g, a: g.gelu(a), lambda a: 0.5 * a * (1 + erf(a / math.sqrt(2))),
             [signed((2, 3))], True),
    "gelu tanh": (lambda g, a: a.gelu(approximate="tanh"),
                  lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                                    (a + 0.044715 * a ** 3))),
                  [signed((2, 3))], True),
    "silu": (lambda g, a: a.silu(), lambda a: a / (1 + np.exp(-a)), [signed((2, 3))], True),
    "softplus": (lambda g, a: a.softplus(), lambda a: np.logaddexp(0, a), [signed((2, 3))], True),
    "sigmoid": (lambda g, a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), [signed((3,))], True),
    "tanh": (lambda g, a: a.tanh(), np.tanh, [signed((3,))], True),
    # Matrix products
    "matmul transpose_b": (lambda g, a, b: g.matmul(a, b, transpose_b=True), lambda a, b: a @ b.T,
                           [signed((2, 3)), signed((4, 3))], True),
    "matmul transpose_a": (lambda g, a, b: g.matmul(a, b, transpose_a=True), lambda a, b: a.T @ b,
                           [signed((3, 2)), signed((3, 4))], True),
    "matmul both transposed": (lambda g, a, b: g.matmul_transposed(a, b, True, True),
                               lambda a, b: a.T @ b.T, [signed((3, 2)), signed((4, 3))], True),
    "batched matmul transposed": (lambda g, a, b: g.matmul(a, b, transpose_b=True),
                                  lambda a, b: a @ np.swapaxes(b, -1, -2),
                                  [signed((2, 2, 3)), signed((4, 3))], True),
    "node matmul": (lambda g, a, b: a.matmul(b), np.matmul, [signed((2, 3)), signed((3, 2))],
                    True),
    "linear": (lambda g, x, w, b: g.linear(x, w, b), lambda x, w, b: x @ w.T + b,
               [signed((2, 3)), signed((4, 3)), signed((4,))], True),
    # Reductions
    "sum axis": (lambda g, a: a.sum(axis=1), lambda a: a.sum(axis=1), [signed((2, 3, 2))], True),
    "sum axes keepdims": (lambda g, a: a.sum(axis=(0, 2), keepdims=True),
                          lambda a: a.sum(axis=(0, 2), keepdims=True), [signed((2, 3, 2))], True),
    "sum all keepdims": (lambda g, a: a.sum(keepdims=True), lambda a: a.sum(keepdims=True),
                         [signed((2, 3))], True),
    "mean negative axis": (lambda g, a: a.mean(axis=-1), lambda a: a.mean(axis=-1),
                           [signed((2, 3))], True),
    "max axis": (lambda g, a: a.max(axis=0), lambda a: a.max(axis=0), [signed((3, 4))], True),
    "max all": (lambda g, a: a.max(), lambda a: a.max(), [signed((3, 4))], True),
    "min axis keepdims": (lambda g, a: a.min(axis=1, keepdims=True),
                          lambda a: a.min(axis=1, keepdims=True), [signed((3, 4))], True),
    "logsumexp": (lambda g, a: a.logsumexp(axis=1),
                  lambda a: np.log(np.exp(a).sum(axis=1)), [signed((3, 4))], True),
    "reduce by name": (lambda g, a: g.reduce(a, "sum", axis=-2), lambda a: a.sum(axis=-2),
                       [signed((2, 3, 2))], True),
    # Layout
    "reshape": (lambda g, a: a.reshape(3, 2), lambda a: a.reshape(3, 2), [signed((2, 3))], True),
    "reshape -1": (lambda g, a: a.reshape((-1, 4)), lambda a: a.reshape(-1, 4),
                   [signed((2, 2, 2))], True),
    "permute": (lambda g, a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1),
                [signed((2, 3, 4))], True),
    "permute negative": (lambda g, a: g.permute(a, (-1, 0, 1)), lambda a: a.transpose(2, 0, 1),
                         [signed((2, 3, 2))], True),
    "transpose": (lambda g, a: a.transpose(), lambda a: np.swapaxes(a, -1, -2),
                  [signed((2, 3, 4))], True),
    "transpose dims": (lambda g, a: a.transpose(0, 2), lambda a: np.swapaxes(a, 0, 2),
                       [signed((2, 3, 4))], True),
    "T matrix": (lambda g, a: a.T, lambda a: a.T, [signed((2, 3))], True),
    "T rank 3": (lambda g, a: a.T, lambda a: a.T, [signed((2, 3, 4))], True),
    "flatten": (lambda g, a: a.flatten(1), lambda a: a.reshape(2, -1), [signed((2, 3, 2))], True),
    "unsqueeze": (lambda g, a: a.unsqueeze(1), lambda a: a[:, None], [signed((2, 3))], True),
    "squeeze": (lambda g, a: a.squeeze(), lambda a: a.squeeze(), [signed((2, 1, 3))], True),
    "concat": (lambda g, a, b: g.concat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1),
               [signed((2, 3)), signed((2, 2))], True),
    "concat negative axis": (lambda g, a, b, c: g.cat([a, b, c], axis=-2),
                             lambda a, b, c: np.concatenate([a, b, c], -2),
                             [signed((1, 3)), signed((2, 3)), signed((1, 3))], True),
    "stack": (lambda g, a, b: g.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1),
              [signed((2, 3)), signed((2, 3))], True),
    "slice": (lambda g, a: g.slice(a, 1, 1, 3), lambda a: a[:, 1:3], [signed((2, 4))], True),
    "slice negative bounds": (lambda g, a: g.slice(a, -1, -3, None), lambda a: a[..., -3:],
                              [signed((2, 4))], True),
    "index slices": (lambda g, a: a[:, 1:3], lambda a: a[:, 1:3], [signed((3, 4))], True),
    "index int": (lambda g, a: a[1], lambda a: a[1], [signed((3, 4))], True),
    "index negative int": (lambda g, a: a[:, -1], lambda a: a[:, -1], [signed((3, 4))], True),
    "index ellipsis newaxis": (lambda g, a: a[..., None, 1:], lambda a: a[..., None, 1:],
                               [signed((2, 3))], True),
    "index two slices": (lambda g, a: a[1:, :2], lambda a: a[1:, :2], [signed((3, 4))], True),
    "index array gathers": (lambda g, a: a[np.array([2, 0, 2])], lambda a: a[[2, 0, 2]],
                            [signed((3, 2))], True),
    "gather": (lambda g, t: g.gather(t, INDICES), lambda t: t[INDICES], [signed((4, 2))], True),
    # Softmax, normalization
    "softmax": (lambda g, a: a.softmax(), lambda a: np.exp(log_softmax(a)), [signed((2, 4))],
                True),
    "softmax axis 0": (lambda g, a: g.softmax(a, axis=0), lambda a: np.exp(log_softmax(a, 0)),
                       [signed((3, 2))], True),
    "log_softmax": (lambda g, a: a.log_softmax(axis=-1), log_softmax, [signed((2, 4))], True),
    "layer_norm": (lambda g, a: g.layer_norm(a, 4), lambda a: layer_norm(a, 1),
                   [signed((3, 4))], True),
    "layer_norm affine": (lambda g, a, w, b: g.layer_norm(a, (4,), w, b, eps=1e-3),
                          lambda a, w, b: layer_norm(a, 1, w, b, eps=1e-3),
                          [signed((3, 4)), signed((4,)), signed((4,))], True),
    "node layer_norm": (lambda g, a, w, b: a.layer_norm(4, w, b),
                        lambda a, w, b: layer_norm(a, 1, w, b),
                        [signed((3, 4)), signed((4,)), signed((4,))], True),
    "layer_norm two axes": (lambda g, a: g.layer_norm(a, (2, 3)), lambda a: layer_norm(a, 2),
                            [signed((2, 2, 3))], True),
    "layer_norm weight only": (lambda g, a, w: g.layer_norm(a, 3, weight=w),
                               lambda a, w: layer_norm(a, 1, w, np.zeros(3)),
                               [signed((2, 3)), signed((3,))], True),
    # Losses
    **{f"mse_loss {r}": (lambda g, p, t, r=r: g.mse_loss(p, t, reduction=r),
                         lambda p, t, r=r: reduced((p - t) ** 2, r),
                         [signed((2, 3)), signed((2, 3))], True) for r in ("mean", "sum", "none")},
    **{f"l1_loss {r}": (lambda g, p, t, r=r: g.l1_loss(p, t, reduction=r),
                        lambda p, t, r=r: reduced(np.abs(p - t), r),
                        [signed((2, 3)), signed((2, 3)) + 5.0], True)
       for r in ("mean", "sum", "none")},
    **{f"huber_loss {r}": (lambda g, p, t, r=r: g.huber_loss(p, t, reduction=r, delta=0.7),
                           lambda p, t, r=r: reduced(np.where(
                               np.abs(p - t) < 0.7, 0.5 * (p - t) ** 2,
                               0.7 * (np.abs(p - t) - 0.35)), r),
                           [np.array([[0.1, -2.0, 0.5], [3.0, -0.2, 1.5]]), np.zeros((2, 3))],
                           True) for r in ("mean", "sum", "none")},
    **{f"binary_cross_entropy {r}": (
        lambda g, p, r=r: g.binary_cross_entropy(p, TARGET_01, reduction=r),
        lambda p, r=r: reduced(-(TARGET_01 * np.log(p) + (1 - TARGET_01) * np.log(1 - p)), r),
        [RNG.uniform(0.1, 0.9, (2, 3))], True) for r in ("mean", "sum", "none")},
    "bce_loss target gradient": (
        lambda g, p, t: g.bce_loss(p, t), lambda p, t: np.mean(-(t * np.log(p) +
                                                                 (1 - t) * np.log(1 - p))),
        [RNG.uniform(0.1, 0.9, (2, 3)), RNG.uniform(0.1, 0.9, (2, 3))], True),
    **{f"binary_cross_entropy_with_logits {r}": (
        lambda g, x, r=r: g.binary_cross_entropy_with_logits(x, TARGET_01, reduction=r),
        lambda x, r=r: reduced(np.maximum(x, 0) - x * TARGET_01 + np.log1p(np.exp(-np.abs(x))),
                               r),
        [signed((2, 3))], True) for r in ("mean", "sum", "none")},
    "bce_with_logits_loss target gradient": (
        lambda g, x, t: g.bce_with_logits_loss(x, t, reduction="sum"),
        lambda x, t: np.sum(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))),
        [signed((2, 3)), RNG.uniform(0, 1, (2, 3))], True),
    **{f"cross_entropy labels {r}": (
        lambda g, x, r=r: g.cross_entropy(x, LABELS, reduction=r),
        lambda x, r=r: reduced(-log_softmax(x)[np.arange(4), LABELS], r),
        [signed((4, 3))], True) for r in ("mean", "sum", "none")},
    **{f"cross_entropy probabilities {r}": (
        lambda g, x, t, r=r: g.cross_entropy(x, t, reduction=r),
        lambda x, t, r=r: reduced(-(t * log_softmax(x)).sum(axis=1), r),
        [signed((4, 3)), PROBS], True) for r in ("mean", "sum", "none")},
    **{f"nll_loss {r}": (
        lambda g, x, r=r: g.nll_loss(g.log_softmax(x), LABELS, reduction=r),
        lambda x, r=r: reduced(-log_softmax(x)[np.arange(4), LABELS], r),
        [signed((4, 3))], True) for r in ("mean", "sum", "none")},
    "nll_loss raw": (lambda g, x: g.nll_loss(x, LABELS), lambda x: -x[np.arange(4), LABELS].mean(),
                     [signed((4, 3))], True),
    # Without gradients
    "compare lt": (lambda g, a, b: a < b, lambda a, b: (a < b).astype(float),
                   [signed((2, 3)), signed((2, 3))], False),
    "compare ge scalar": (lambda g, a: a >= 0.5, lambda a: (a >= 0.5).astype(float),
                          [signed((2, 3))], False),
    "compare reflected": (lambda g, a: 0.5 < a, lambda a: (0.5 < a).astype(float),
                          [signed((2, 3))], False),
    "compare eq": (lambda g, a: a.eq(np.array([1.0, 2.0, 3.0])),
                   lambda a: (a == np.array([1.0, 2.0, 3.0])).astype(float),
                   [np.array([[1.0, 0.0, 3.0], [2.0, 2.0, 3.0]])], False),
    "compare ne": (lambda g, a: g.ne(a, 2.0), lambda a: (a != 2.0).astype(float),
                   [np.array([[1.0, 2.0], [2.0, 5.0]])], False),
    "compare by symbol": (lambda g, a, b: g.compare(a, b, "<="),
                          lambda a, b: (a <= b).astype(float),
                          [np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])], False),
    "compare le gt": (lambda g, a, b: (a <= b) + (a > b) * 2,
                      lambda a, b: (a <= b) + (a > b) * 2.0, [signed((4,)), signed((4,))], False),
    "detach": (lambda g, a: a.detach() * 2, lambda a: a * 2, [signed((3,))], False),
}


def run(build, inputs, dtype):
    with Graph(dtype) as g:
        leaves = [g.input(np.shape(v)) for v in inputs]
        out = build(g, *leaves)
        for leaf, value in zip(leaves, inputs):
            g.set_value(leaf, value)
        g.forward()
        return out.value


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_value_matches_numpy(name):
    build, reference, inputs, _ = OPS[name]
    np.testing.assert_allclose(run(build, inputs, "float64"), reference(*inputs), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in OPS if OPS[n][3]))
def test_op_gradient_matches_finite_differences(name):
    build, _, inputs, _ = OPS[name]
    check_gradients(build, [np.asarray(v, dtype=np.float64) for v in inputs])


@pytest.mark.parametrize("name", sorted(OPS))
def test_float32_agrees_with_float64(name):
    build, _, inputs, _ = OPS[name]
    single = run(build, inputs, "float32")
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, run(build, inputs, "float64"), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["compare lt", "detach"])
def test_ops_without_gradient_pass_none_back(name):
    build, _, inputs, _ = OPS[name]
    with Graph("float64") as g:
        leaves = [g.input(np.shape(v), value=v) for v in inputs]
        # The zero term gives every leaf a path with a gradient (a root through no-gradient ops
        # alone is refused by backward: nothing would get a gradient).
        root = (build(g, *leaves) * 3.0).sum() + sum((leaf * 0.0).sum() for leaf in leaves)
        g.forward()
        root.backward()
        for leaf in leaves:
            assert not leaf.grad.any()


def test_float32_gradients_agree_with_float64():
    x = signed((3, 4))
    grads = {}
    for dtype in ("float32", "float64"):
        with Graph(dtype) as g:
            a = g.input(x.shape, value=x)
            loss = g.cross_entropy(g.layer_norm(a.tanh() @ a.T, 3), [0, 2, 1]) + \
                (a.softmax() * a).sum(axis=0).logsumexp()
            g.forward()
            loss.backward()
            grads[dtype] = a.grad
    np.testing.assert_allclose(grads["float32"], grads["float64"], rtol=1e-4, atol=1e-5)


# Semantics beyond the value

def test_max_splits_the_gradient_among_ties():
    with Graph("float64") as g:
        x = g.input((2, 3), value=[[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
        root = x.max(axis=1).sum()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_gather_adds_the_gradients_of_repeated_rows():
    with Graph("float64") as g:
        table = g.parameter((3, 2), value=np.arange(6.0).reshape(3, 2))
        root = table[np.array([0, 2, 0, 0])].sum()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(table.grad, [[3, 3], [0, 0], [1, 1]])


@isolated
def test_gather_out_of_range_fails_the_forward():
    import backprop
    with Graph() as g:
        table = g.parameter((3, 2))
        g.gather(table, [0, 3])
        with pytest.raises(backprop.InvalidArgumentError):
            g.forward()


def test_where_keeps_nan_of_the_untaken_branch_out_of_the_gradient():
    with Graph("float64") as g:
        x = g.input(3, value=[0.0, 1.0, 4.0])
        root = g.where(x > 0, x.log(), 0.0).sum()
        g.forward()
        root.backward()
        np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.25])


def test_dropout_in_training_and_evaluation_mode():
    x = np.ones((50, 40))
    with Graph("float64") as g:
        a = g.input(x.shape, value=x)
        y = g.dropout(a, p=0.25)
        root = y.sum()
        assert g.training
        g.seed(7)
        g.forward()
        first = y.value
        assert set(np.unique(first)) == {0.0, 1 / 0.75}
        assert 0.2 < np.mean(first == 0) < 0.3
        root.backward()
        np.testing.assert_array_equal(a.grad, first)  # the mask of the latest forward
        g.seed(7)
        g.forward()
        np.testing.assert_array_equal(y.value, first)  # same seed, same mask
        g.eval()
        assert not g.training
        g.forward()
        np.testing.assert_array_equal(y.value, x)
        assert g.train() is g and g.training


def test_dropout_of_zero_and_one():
    with Graph() as g:
        a = g.input(4, value=[1, 2, 3, 4])
        keep, drop = g.dropout(a, 0.0), g.dropout(a, 1.0)
        g.forward()
        np.testing.assert_array_equal(keep.value, [1, 2, 3, 4])
        np.testing.assert_array_equal(drop.value, [0, 0, 0, 0])


def test_comparison_operators_return_nodes_and_nodes_have_no_truth_value():
    with Graph() as g:
        a, b = g.input(2), g.input(2)
        for node in (a < b, a <= b, a > b, a >= b, a.eq(b), a.ne(b)):
            assert node.shape == (2,) and node.graph is g
        assert (a == b) is False and (a == a) is True and (a != b) is True
        with pytest.raises(TypeError, match="truth value"):
            bool(a < b)


def test_leaves_can_start_from_a_value():
    with Graph() as g:
        p = g.parameter((2, 2), value=0.5)
        c = g.constant(3, value=[1, 2, 3])
        np.testing.assert_array_equal(p.value, np.full((2, 2), 0.5))
        np.testing.assert_array_equal(c.value, [1, 2, 3])
        assert (p + 1).sum().graph is g


def test_item_reads_a_scalar():
    with Graph() as g:
        s = g.input((), value=2.5)
        y = s * 2
        g.forward()
        assert y.item() == 5.0


@pytest.mark.parametrize("call, error, match", [
    (lambda g, x: x.reshape(5, -1), ValueError, "reshape"),
    (lambda g, x: x.reshape(-1, -1), ValueError, "only one"),
    (lambda g, x: x.permute(1, 0, 2), ValueError, "permute"),
    (lambda g, x: x[::2], IndexError, "step 1"),
    (lambda g, x: x[5], IndexError, "out of range"),
    (lambda g, x: x[2:2], IndexError, "empty"),
    (lambda g, x: x[0, 0, 0], IndexError, "too many"),
    (lambda g, x: x[..., ...], IndexError, "ellipsis"),
    (lambda g, x: x["a"], IndexError, "unsupported"),
    (lambda g, x: g.slice(x, 0, 3, 1), ValueError, "empty"),
    (lambda g, x: x.sum(axis=()), ValueError, "axis"),
    (lambda g, x: x.squeeze(0), ValueError, "size 1"),
    (lambda g, x: g.layer_norm(x, 3), ValueError, "trailing"),
    (lambda g, x: g.concat([]), ValueError, "at least one"),
    (lambda g, x: x.gelu("fast"), ValueError, "approximate"),
    (lambda g, x: g.compare(x, x, "like"), ValueError, "comparison"),
    (lambda g, x: g.reduce(x, "median"), ValueError, "op"),
    (lambda g, x: g.mse_loss(x, x, reduction="avg"), ValueError, "reduction"),
    (lambda g, x: x[np.array([0.5])], TypeError, "integers"),
    (lambda g, x: x.transpose(0, 5), ValueError, "out of range"),
])
def test_bad_op_arguments_are_caught_in_python(call, error, match):
    with Graph() as g:
        x = g.input((3, 4))
        before = g.node_count
        with pytest.raises(error, match=match):
            call(g, x)
        assert g.node_count == before


@isolated
@pytest.mark.parametrize("call", [
    lambda g, x: x @ x,
    lambda g, x: g.concat([x, g.input((2, 2))], axis=0),
    lambda g, x: g.softmax(x, axis=3),
    lambda g, x: g.cross_entropy(x, [[[0.0]]]),
    lambda g, x: g.add(x, g.input(5)),
])
def test_shape_errors_from_the_library_name_the_shapes(call):
    import backprop
    with Graph() as g:
        x = g.input((3, 4))
        with pytest.raises(backprop.ShapeError):
            call(g, x)
