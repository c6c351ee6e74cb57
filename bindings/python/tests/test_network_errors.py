"""Bad input to every Network method: shapes and types caught in Python, everything else
reported by the library as the exception of its status, with the weights left as they were.

Tests that hand bad input to the library are marked ``isolated`` (see conftest.py).
"""

import numpy as np
import pytest

import backprop
from backprop import Network

isolated = pytest.mark.isolated
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)
LABELS = np.array([0, 1, 1, 0])


def mse_net(seed=3):
    return Network(2, seed=seed).add_dense(4, "tanh").add_dense(1, "sigmoid")


def ce_net(seed=3):
    return Network(2, seed=seed, loss="cross_entropy").add_dense(4, "tanh").add_dense(2, None)


def weights(net):
    return [p.copy() for i in range(net.layer_count) for p in net.layer_parameters(i)]


def gradients(net):
    return [g.copy() for i in range(net.layer_count) for g in net.layer_gradients(i)]


def assert_same(before, after):
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


# Caught in Python

@pytest.mark.parametrize("kwargs, error", [
    ({"input_width": -1}, ValueError), ({"input_width": 2.5}, TypeError),
    ({"input_width": 2, "seed": -1}, ValueError), ({"input_width": 2, "seed": 2 ** 64}, ValueError),
    ({"input_width": 2, "seed": 1.5}, TypeError), ({"input_width": 2, "loss": "hinge"}, ValueError),
    ({"input_width": 2, "loss": None}, ValueError),
])
def test_bad_constructor_arguments(kwargs, error):
    with pytest.raises(error):
        Network(**kwargs)


@pytest.mark.parametrize("units, activation, error", [
    (-1, "relu", ValueError), (2.0, "relu", TypeError), (3, "softmax", ValueError),
    (3, "ReLU", ValueError), (3, 7, ValueError),
])
def test_bad_layers_are_refused(units, activation, error):
    net = Network(2)
    with pytest.raises(error):
        net.add_dense(units, activation)
    assert net.layer_count == 0


def test_an_unknown_loss_is_refused():
    net = mse_net()
    with pytest.raises(ValueError, match="loss"):
        net.set_loss("hinge")
    assert net.loss == "mse"


NET_METHODS = {
    "add_dense": lambda n: n.add_dense(2), "set_loss": lambda n: n.set_loss("mse"),
    "input_width": lambda n: n.input_width, "output_width": lambda n: n.output_width,
    "layer_count": lambda n: n.layer_count, "parameter_count": lambda n: n.parameter_count,
    "forward": lambda n: n.forward(X), "predict": lambda n: n.predict(X),
    "backward": lambda n: n.backward(Y), "update": lambda n: n.update(0.1),
    "zero_grad": lambda n: n.zero_grad(), "train_step": lambda n: n.train_step(X, Y, 0.1),
    "graph": lambda n: n.graph, "layer_nodes": lambda n: n.layer_nodes(0),
    "layer_parameters": lambda n: n.layer_parameters(0),
    "layer_gradients": lambda n: n.layer_gradients(0),
}


@pytest.mark.parametrize("method", sorted(NET_METHODS))
def test_every_method_of_a_closed_network_raises_invalid_handle(method):
    net = mse_net()
    net.close()
    with pytest.raises(backprop.InvalidHandleError, match="closed"):
        NET_METHODS[method](net)


@pytest.mark.parametrize("method", ["forward", "predict", "train_step"])
@pytest.mark.parametrize("inputs", [np.zeros(2), np.zeros((4, 3)), np.zeros((4, 1)),
                                    np.zeros((4, 2, 1)), np.zeros(()), [[1, 2, 3]]],
                         ids=lambda a: str(np.shape(a)))
def test_inputs_of_the_wrong_shape_name_the_expected_shape(method, inputs):
    net = mse_net()
    call = {"forward": lambda: net.forward(inputs), "predict": lambda: net.predict(inputs),
            "train_step": lambda: net.train_step(inputs, Y, 0.1)}[method]
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        call()


@pytest.mark.parametrize("inputs", [np.zeros((4, 2), dtype=complex), np.full((4, 2), "x"),
                                    np.empty((4, 2), dtype=object)], ids=str)
def test_inputs_that_are_not_real_numbers_are_type_errors(inputs):
    with pytest.raises(TypeError, match="real numbers"):
        mse_net().forward(inputs)


@pytest.mark.parametrize("targets, expected", [
    (np.zeros(4), r"\(4, 1\)"), (np.zeros((3, 1)), r"\(4, 1\)"), (np.zeros((4, 2)), r"\(4, 1\)"),
    (np.zeros((4, 1, 1)), r"\(4, 1\)"),
], ids=str)
def test_targets_of_the_wrong_shape_name_the_expected_shape(targets, expected):
    net = mse_net()
    net.forward(X)
    with pytest.raises(ValueError, match=expected):
        net.backward(targets)
    with pytest.raises(ValueError, match=expected):
        net.train_step(X, targets, 0.1)


@pytest.mark.parametrize("labels, error, match", [
    (np.array([0.0, 1.0, 1.0, 0.0]), TypeError, "integer"),
    (np.array(["0", "1", "1", "0"]), TypeError, "integer"),
    (np.array([[0], [1], [1], [0]]), ValueError, r"\(4,\)"),
    (np.array([0, 1, 1]), ValueError, r"\(4,\)"),
    (np.array([0, 1, 1, 2 ** 40]), ValueError, "int32"),
    (np.array([0, 1, 1, -2 ** 40]), ValueError, "int32"),
], ids=str)
def test_bad_labels_are_refused_in_python(labels, error, match):
    net = ce_net()
    net.forward(X)
    with pytest.raises(error, match=match):
        net.backward(labels)
    with pytest.raises(error, match=match):
        net.train_step(X, labels, 0.1)


def test_negative_layer_indexes_are_refused():
    with pytest.raises(ValueError):
        mse_net().layer_parameters(-1)


@pytest.mark.parametrize("lr, error", [("fast", ValueError), (None, TypeError)])
def test_learning_rates_must_be_numbers(lr, error):
    with pytest.raises(error):
        mse_net().update(lr)


# Reported by the library

@isolated
def test_an_input_width_of_zero_is_an_invalid_argument():
    with pytest.raises(backprop.InvalidArgumentError):
        Network(0)


@isolated
def test_a_layer_of_zero_units_is_an_invalid_argument():
    net = Network(2)
    with pytest.raises(backprop.InvalidArgumentError):
        net.add_dense(0, "relu")
    assert net.layer_count == 0


@isolated
@pytest.mark.parametrize("units", [2 ** 62, 2 ** 64 - 1])
def test_a_layer_too_large_to_represent_is_out_of_memory(units):
    net = Network(4)
    with pytest.raises(backprop.OutOfMemoryError):
        net.add_dense(units, "relu")
    assert net.layer_count == 0 and net.output_width == 4


@isolated
def test_forward_without_layers_is_a_state_error():
    net = Network(2)
    for call in (net.forward, net.predict):
        with pytest.raises(backprop.StateError):
            call(X)


@isolated
def test_a_batch_of_zero_is_an_invalid_argument():
    net = mse_net()
    for call in (net.forward, net.predict):
        with pytest.raises(backprop.InvalidArgumentError):
            call(np.zeros((0, 2)))


@isolated
def test_backward_before_any_forward_is_a_state_error():
    net = mse_net()
    with pytest.raises(backprop.StateError):
        net.backward(Y)
    net = ce_net()
    with pytest.raises(backprop.StateError):
        net.backward(LABELS)


@isolated
def test_backward_after_predict_is_a_state_error():
    net = mse_net()
    net.forward(X)
    net.predict(X)
    with pytest.raises(backprop.StateError):
        net.backward(Y)
    net.forward(X)
    net.backward(Y)


@isolated
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["forward", "predict"])
def test_nonfinite_inputs_are_refused_and_nothing_changes(call, bad):
    # The header: "On failure nothing was changed": neither weights nor gradients. (train_step:
    # see test_a_failing_train_step_changes_neither_weights_nor_gradients.)
    net = mse_net()
    net.train_step(X, Y, 0.1)  # some gradients to keep
    before, grads_before = weights(net), gradients(net)
    x = X.copy()
    x[2, 1] = bad
    with pytest.raises(backprop.NonFiniteError):
        getattr(net, call)(x)
    assert_same(before, weights(net))
    assert_same(grads_before, gradients(net))


@isolated
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_targets_are_refused_and_nothing_changes(bad):
    net = mse_net()
    net.zero_grad()
    net.forward(X)
    before = weights(net)
    y = Y.copy()
    y[1, 0] = bad
    with pytest.raises(backprop.NonFiniteError):
        net.backward(y)
    assert not any(g.any() for g in gradients(net))
    with pytest.raises(backprop.NonFiniteError):
        net.train_step(X, y, 0.1)
    assert_same(before, weights(net))


@isolated
@pytest.mark.parametrize("bad_label", [2, -1, 2 ** 31 - 1, -2 ** 31])
def test_labels_out_of_range_are_invalid_arguments_and_nothing_changes(bad_label):
    net = ce_net()
    net.zero_grad()
    net.forward(X)
    before = weights(net)
    labels = LABELS.copy()
    labels[3] = bad_label
    with pytest.raises(backprop.InvalidArgumentError):
        net.backward(labels)
    assert not any(g.any() for g in gradients(net))
    with pytest.raises(backprop.InvalidArgumentError):
        net.train_step(X, labels, 0.1)
    assert_same(before, weights(net))


@isolated
@pytest.mark.parametrize("lr", [-0.1, np.nan, np.inf, -np.inf, 1e39])
def test_bad_learning_rates_are_invalid_arguments_and_nothing_changes(lr):
    net = mse_net()
    net.forward(X)
    net.backward(Y)
    before = weights(net)
    with pytest.raises(backprop.InvalidArgumentError):
        net.update(lr)
    assert_same(before, weights(net))
    with pytest.raises(backprop.InvalidArgumentError):
        net.train_step(X, Y, lr)
    assert_same(before, weights(net))


@isolated
def test_a_zero_learning_rate_is_allowed():
    net = mse_net()
    before = weights(net)
    net.train_step(X, Y, 0.0)
    assert_same(before, weights(net))


@isolated
def test_nonfinite_gradients_are_refused_by_update_and_nothing_changes():
    # One sample, one feature, one output: y = w x + b, loss = (y - 0)^2, dL/dw = 2 y x. With
    # |w x| = 1e19 the loss (1e38) is finite in float32, but dL/dw = 2e38 / |w| overflows.
    net = Network(1, seed=4).add_dense(1, None)
    w = float(net.layer_parameters(0)[0][0, 0])
    assert 0 < abs(w) < 0.5, f"the seed should give a weight in (0, 0.5), got {w}"
    x = np.array([[1e19 / abs(w)]], dtype=np.float32)
    y = np.zeros((1, 1), dtype=np.float32)
    net.zero_grad()
    net.forward(x)
    loss = net.backward(y)
    assert np.isfinite(loss)
    weight_grad = net.layer_gradients(0)[0]
    assert not np.isfinite(weight_grad).all(), "the test needs an overflowing gradient"
    before = weights(net)
    with pytest.raises(backprop.NonFiniteError):
        net.update(0.1)
    assert_same(before, weights(net))
    with pytest.raises(backprop.NonFiniteError):
        net.train_step(x, y, 0.1)
    assert_same(before, weights(net))


@isolated
def test_an_infinite_loss_is_refused_by_backward_and_nothing_changes():
    # Finite inputs whose loss overflows float32: the library refuses to backpropagate it.
    net = Network(3, seed=4).add_dense(2, None)
    huge = np.full((2, 3), 1e30, dtype=np.float32)
    net.zero_grad()
    net.forward(huge)
    with pytest.raises(backprop.NonFiniteError):
        net.backward(np.zeros((2, 2)))
    assert not any(g.any() for g in gradients(net))


@isolated
def test_a_layer_index_out_of_range_is_an_invalid_argument():
    net = mse_net()
    with pytest.raises(backprop.InvalidArgumentError):
        net.layer_parameters(2)
    with pytest.raises(backprop.InvalidArgumentError):
        Network(2).layer_nodes(0)


@isolated
@pytest.mark.parametrize("case", ["nan input", "inf target", "negative learning rate",
                                  "nan input, labels", "label out of range",
                                  "nan learning rate, labels"])
def test_a_failing_train_step_changes_neither_weights_nor_gradients(case):
    # The header: "On failure nothing was changed" (and for train_step: "on failure the weights
    # are unchanged"). The gradients of the previous step must survive too.
    labels = "labels" in case or "label " in case
    net = ce_net() if labels else mse_net()
    targets = LABELS if labels else Y
    net.train_step(X, targets, 0.1)
    before, grads_before = weights(net), gradients(net)
    x, y, lr = X.copy(), targets.copy(), 0.1
    if "nan input" in case:
        x[1, 1] = np.nan
    elif case == "inf target":
        y[2, 0] = np.inf
    elif case == "label out of range":
        y[2] = 5
    else:
        lr = -1.0 if "negative" in case else np.nan
    error = backprop.NonFiniteError if "input" in case or "target" in case else \
        backprop.InvalidArgumentError
    with pytest.raises(error):
        net.train_step(x, y, lr)
    assert_same(before, weights(net))
    assert_same(grads_before, gradients(net))
