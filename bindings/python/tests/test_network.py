"""The Network class: building, the training steps, gradients against numpy, determinism."""

import gc

import numpy as np
import pytest

import backprop
from backprop import Network

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_LABELS = np.array([0, 1, 1, 0])
XOR_TARGETS = XOR_LABELS.reshape(4, 1).astype(np.float32)

ACTIVATIONS = {
    "none": lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
}
DERIVATIVES = {
    "none": lambda z, a: np.ones_like(z), "relu": lambda z, a: (z > 0).astype(z.dtype),
    "tanh": lambda z, a: 1 - a * a, "sigmoid": lambda z, a: a * (1 - a),
}


def build(layers, input_width=3, seed=5, loss="mse"):
    net = Network(input_width, seed=seed, loss=loss)
    for units, activation in layers:
        net.add_dense(units, activation)
    return net


def reference(net, activations, x, targets, loss):
    """The loss and the parameter gradients of `net`, computed with numpy in float64 from its
    current weights."""
    params = [tuple(p.astype(np.float64) for p in net.layer_parameters(i))
              for i in range(net.layer_count)]
    x = x.astype(np.float64)
    inputs, pre, post = [], [], []
    a = x
    for (w, b), name in zip(params, activations):
        inputs.append(a)
        z = a @ w.T + b
        a = ACTIVATIONS[name](z)
        pre.append(z)
        post.append(a)
    batch = x.shape[0]
    if loss == "mse":
        value = np.mean((a - targets) ** 2)
        upstream = 2 * (a - targets) / a.size
    else:
        shifted = a - a.max(axis=1, keepdims=True)
        softmax = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        value = -np.mean(np.log(softmax[np.arange(batch), targets]))
        upstream = (softmax - np.eye(a.shape[1])[targets]) / batch
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        dz = upstream * DERIVATIVES[activations[i]](pre[i], post[i])
        grads[i] = (dz.T @ inputs[i], dz.sum(axis=0))
        upstream = dz @ params[i][0]
    return value, a, grads


# Building

def test_a_new_network_has_no_layers():
    net = Network(4, seed=0)
    assert (net.input_width, net.output_width, net.layer_count, net.parameter_count) == (4, 4, 0, 0)
    assert net.loss == "mse"


def test_layers_set_the_widths_and_parameter_count():
    net = Network(3).add_dense(5, "relu").add_dense(4, "tanh").add_dense(2, None)
    assert (net.input_width, net.output_width, net.layer_count) == (3, 2, 3)
    assert net.parameter_count == (3 * 5 + 5) + (5 * 4 + 4) + (4 * 2 + 2)
    assert "3 -> 2" in repr(net)


def test_parameters_are_stored_like_torch_linear_and_initialized_in_its_range():
    net = Network(6, seed=3).add_dense(40, "relu").add_dense(3, None)
    for layer, (units, fan_in) in enumerate([(40, 6), (3, 40)]):
        weight, bias = net.layer_parameters(layer)
        assert weight.shape == (units, fan_in) and bias.shape == (units,)
        assert weight.dtype == np.float32
        bound = 1 / np.sqrt(fan_in)
        assert np.all(np.abs(weight) <= bound) and np.all(np.abs(bias) <= bound)
        assert np.abs(weight).max() > 0.5 * bound  # actually spread over the range
        assert len(np.unique(weight)) == weight.size


def test_the_same_seed_gives_the_same_weights_and_a_different_seed_different_ones():
    def weights(seed):
        net = Network(4, seed=seed).add_dense(8, "tanh").add_dense(2, None)
        return [p for i in range(2) for p in net.layer_parameters(i)]

    for first, second in zip(weights(11), weights(11)):
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(weights(11)[0], weights(12)[0])


def test_the_same_seed_trains_the_same_way():
    runs = []
    for _ in range(2):
        net = build([(8, "tanh"), (1, "sigmoid")], input_width=2, seed=9)
        runs.append([net.train_step(XOR_INPUTS, XOR_TARGETS, 0.5) for _ in range(50)])
    assert runs[0] == runs[1]


def test_the_largest_seed_is_accepted():
    Network(2, seed=2 ** 64 - 1).add_dense(1, None)


def test_the_loss_can_be_set_in_the_constructor_or_later():
    assert Network(2, loss="cross_entropy").loss == "cross_entropy"
    net = Network(2)
    assert net.set_loss("cross_entropy") is net and net.loss == "cross_entropy"
    assert Network(2, loss=backprop.Loss.MSE).loss == "mse"


# Forward, backward, update against numpy

@pytest.mark.parametrize("activations", [
    ["none"], ["relu", "none"], ["tanh", "sigmoid"], ["sigmoid", "relu", "tanh"],
])
def test_mse_loss_and_gradients_match_numpy(activations):
    rng = np.random.default_rng(20)
    widths = [4, 5, 3][:len(activations) - 1] + [2]
    net = build([(w, a) for w, a in zip(widths, activations)], input_width=3)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    y = rng.normal(size=(6, 2)).astype(np.float32)
    net.zero_grad()
    outputs = net.forward(x)
    loss = net.backward(y)
    want_loss, want_outputs, want_grads = reference(net, activations, x, y, "mse")
    np.testing.assert_allclose(outputs, want_outputs, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(want_loss, rel=1e-4)
    for layer, (want_w, want_b) in enumerate(want_grads):
        got_w, got_b = net.layer_gradients(layer)
        np.testing.assert_allclose(got_w, want_w, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(got_b, want_b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_cross_entropy_loss_and_gradients_match_numpy(hidden):
    rng = np.random.default_rng(21)
    net = build([(6, hidden), (4, None)], input_width=3, loss="cross_entropy")
    x = rng.normal(size=(5, 3)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3])
    net.zero_grad()
    net.forward(x)
    loss = net.backward(labels)
    want_loss, _, want_grads = reference(net, [hidden, "none"], x, labels, "cross_entropy")
    assert loss == pytest.approx(want_loss, rel=1e-4)
    for layer, (want_w, want_b) in enumerate(want_grads):
        got_w, got_b = net.layer_gradients(layer)
        np.testing.assert_allclose(got_w, want_w, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(got_b, want_b, rtol=1e-3, atol=1e-5)


def test_update_is_plain_gradient_descent_and_keeps_the_gradients():
    rng = np.random.default_rng(22)
    net = build([(4, "tanh"), (2, None)])
    x, y = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    net.zero_grad()
    net.forward(x)
    net.backward(y)
    before = [net.layer_parameters(i) for i in range(2)]
    grads = [net.layer_gradients(i) for i in range(2)]
    net.update(0.25)
    for layer in range(2):
        for old, grad, new in zip(before[layer], grads[layer], net.layer_parameters(layer)):
            np.testing.assert_allclose(new, old - np.float32(0.25) * grad, rtol=1e-6, atol=1e-7)
        for grad, kept in zip(grads[layer], net.layer_gradients(layer)):
            np.testing.assert_array_equal(kept, grad)


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(23)
    net = build([(4, "tanh"), (2, None)])
    x, y = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    net.zero_grad()
    net.forward(x)
    net.backward(y)
    once = net.layer_gradients(0)
    net.forward(x)
    net.backward(y)
    for single, double in zip(once, net.layer_gradients(0)):
        np.testing.assert_allclose(double, 2 * single, rtol=1e-6)
    net.zero_grad()
    assert not any(g.any() for g in net.layer_gradients(0))


def test_train_step_equals_the_four_explicit_steps():
    rng = np.random.default_rng(24)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    explicit, fused = build([(4, "relu"), (2, None)]), build([(4, "relu"), (2, None)])
    for _ in range(3):
        explicit.zero_grad()
        explicit.forward(x)
        loss = explicit.backward(y)
        explicit.update(0.1)
        assert fused.train_step(x, y, 0.1) == loss
    for layer in range(2):
        for a, b in zip(explicit.layer_parameters(layer), fused.layer_parameters(layer)):
            np.testing.assert_array_equal(a, b)


def test_train_step_with_labels_equals_the_explicit_steps():
    explicit = build([(8, "tanh"), (2, None)], input_width=2, loss="cross_entropy")
    fused = build([(8, "tanh"), (2, None)], input_width=2, loss="cross_entropy")
    for _ in range(3):
        explicit.zero_grad()
        explicit.forward(XOR_INPUTS)
        loss = explicit.backward(XOR_LABELS)
        explicit.update(0.5)
        assert fused.train_step(XOR_INPUTS, XOR_LABELS, 0.5) == loss
    np.testing.assert_array_equal(explicit.layer_parameters(0)[0], fused.layer_parameters(0)[0])


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("make", [
    lambda net: backprop.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True),
    lambda net: backprop.optim.Adam(net.parameters(), lr=0.01),
], ids=["sgd-nesterov", "adam"])
def test_train_step_with_an_optimizer_equals_the_explicit_steps(loss, make):
    rng = np.random.default_rng(26)
    x = rng.normal(size=(6, 3))
    y = rng.integers(0, 2, size=6) if loss == "cross_entropy" else rng.normal(size=(6, 2))
    explicit, fused = (build([(5, "relu"), (2, None)], loss=loss) for _ in range(2))
    explicit_optimizer, fused_optimizer = make(explicit), make(fused)
    for _ in range(4):
        explicit_optimizer.zero_grad()
        explicit.forward(x)
        want = explicit.backward(y)
        explicit_optimizer.step()
        assert fused.train_step(x, y, optimizer=fused_optimizer) == want
    for layer in range(2):
        for a, b in zip(explicit.layer_parameters(layer), fused.layer_parameters(layer)):
            np.testing.assert_array_equal(a, b)


def test_train_step_takes_a_learning_rate_or_an_optimizer():
    net = build([(2, None)])
    x, y = np.zeros((1, 3)), np.zeros((1, 2))
    with pytest.raises(TypeError, match="not both"):
        net.train_step(x, y)
    with pytest.raises(TypeError, match="not both"):
        net.train_step(x, y, 0.1, optimizer=backprop.optim.SGD(net.parameters()))
    other = build([(7, None)])
    with pytest.raises(ValueError, match="another network"):
        net.train_step(x, y, optimizer=backprop.optim.SGD(other.parameters()))


def test_predict_matches_forward_and_leaves_gradients_alone():
    rng = np.random.default_rng(25)
    net = build([(4, "sigmoid"), (2, None)])
    x, y = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    net.forward(x)
    net.backward(y)
    grads = net.layer_gradients(0)
    np.testing.assert_array_equal(net.predict(x), net.forward(x))
    np.testing.assert_array_equal(net.layer_gradients(0)[0], grads[0])


def test_batch_sizes_can_change_between_calls():
    net = build([(4, "tanh"), (1, None)])
    for batch in (1, 7, 2, 64):
        out = net.forward(np.ones((batch, 3)))
        assert out.shape == (batch, 1)
        np.testing.assert_allclose(out, out[0:1].repeat(batch, axis=0))
        net.backward(np.zeros((batch, 1)))


def test_integer_and_float64_inputs_are_converted():
    net = build([(2, None)])
    a = net.forward(np.array([[1, 2, 3]]))
    b = net.forward(np.array([[1.0, 2.0, 3.0]], dtype=np.float64))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


# Training to a solution

def xor_accuracy(net, loss):
    out = net.predict(XOR_INPUTS)
    guesses = out.argmax(axis=1) if loss == "cross_entropy" else (out[:, 0] > 0.5)
    return float(np.mean(guesses == XOR_LABELS))


def test_xor_trains_with_mse_and_explicit_steps():
    net = build([(8, "tanh"), (1, "sigmoid")], input_width=2, seed=1)
    losses = []
    for _ in range(3000):
        net.zero_grad()
        net.forward(XOR_INPUTS)
        losses.append(net.backward(XOR_TARGETS))
        net.update(2.0)
    assert losses[-1] < losses[0] / 10
    assert xor_accuracy(net, "mse") == 1.0


def test_xor_trains_with_cross_entropy_and_train_step():
    net = build([(8, "tanh"), (2, None)], input_width=2, seed=42, loss="cross_entropy")
    losses = [net.train_step(XOR_INPUTS, XOR_LABELS, 0.5) for _ in range(2000)]
    assert losses[-1] < 0.05 < losses[0]
    assert xor_accuracy(net, "cross_entropy") == 1.0


# The network's graph

def test_the_graph_of_a_network_holds_its_parameters():
    net = build([(4, "tanh"), (2, None)])
    graph = net.graph
    assert graph is net.graph  # cached while anyone holds it
    assert graph.dtype == np.float32
    weight, bias = net.layer_nodes(1)
    assert weight.graph is graph and weight.shape == (2, 4) and bias.shape == (2,)
    np.testing.assert_array_equal(graph.value(weight), net.layer_parameters(1)[0])


def test_the_graph_keeps_the_network_alive(monkeypatch):
    freed = []
    original = backprop.network._free_net
    monkeypatch.setattr(backprop.network, "_free_net",
                        lambda handle: freed.append(handle) or original(handle))
    net = build([(4, "tanh"), (2, None)])
    want = net.layer_parameters(0)[0]
    graph = net.graph
    weight, bias = net.layer_nodes(0)
    del net
    gc.collect()
    assert freed == []
    np.testing.assert_array_equal(graph.value(weight), want)
    del graph, weight, bias
    gc.collect()
    assert len(freed) == 1


def test_closing_the_borrowed_graph_does_not_free_the_network(monkeypatch):
    freed = []
    original = backprop.graph._free_graph
    monkeypatch.setattr(backprop.graph, "_free_graph",
                        lambda handle: freed.append(handle) or original(handle))
    net = build([(2, None)])
    graph = net.graph
    graph.close()
    del graph
    gc.collect()
    assert freed == []
    assert net.layer_parameters(0)[0].shape == (2, 3)  # a fresh borrowed graph


def test_the_graph_of_a_closed_network_is_closed():
    net = build([(2, None)])
    graph = net.graph
    weight, _ = net.layer_nodes(0)
    net.close()
    assert graph.closed
    with pytest.raises(backprop.InvalidHandleError, match="Network"):
        graph.value(weight)


def test_nodes_of_your_own_can_be_added_to_the_graph_of_a_network():
    # An L2 penalty on the first layer's weight, backpropagated on top of the network's loss.
    rng = np.random.default_rng(26)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    net = build([(4, "tanh"), (2, None)])
    graph = net.graph
    weight, _ = net.layer_nodes(0)
    penalty = graph.sum(weight * weight) * 0.5
    net.zero_grad()
    net.forward(x)
    net.backward(y)
    loss_only = net.layer_gradients(0)[0]
    graph.forward()
    penalty.backward()
    w = net.layer_parameters(0)[0]
    assert float(penalty.value) == pytest.approx(0.5 * np.sum(w.astype(np.float64) ** 2), rel=1e-5)
    np.testing.assert_allclose(net.layer_gradients(0)[0], loss_only + w, rtol=1e-5, atol=1e-7)
    # The network's own calls still work, and compute only the network's nodes.
    net.zero_grad()
    net.forward(x)
    net.backward(y)
    np.testing.assert_allclose(net.layer_gradients(0)[0], loss_only, rtol=1e-6)


# Lifetime

def test_close_frees_exactly_once(monkeypatch):
    freed = []
    original = backprop.network._free_net
    monkeypatch.setattr(backprop.network, "_free_net",
                        lambda handle: freed.append(handle) or original(handle))
    with build([(2, None)]) as net:
        pass
    net.close()
    assert net.closed and repr(net) == "<Network closed>"
    del net
    gc.collect()
    assert len(freed) == 1
