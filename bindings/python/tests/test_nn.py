"""backprop.nn: Sequential built from torch.nn-style modules, parameters and state_dict named as
torch names them, fit/evaluate over the library's loop with a Python epoch callback, checkpoints
and pickling."""

import copy
import gc
import io
import pickle

import numpy as np
import pytest

import backprop
from backprop import Network, nn, optim

isolated = pytest.mark.isolated  # bad input for the library: a crash fails one test


def blobs(samples=300, classes=3, features=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, features))
    labels = rng.integers(0, classes, samples)
    x = centers[labels] + rng.normal(size=(samples, features))
    return x.astype(np.float32), labels.astype(np.int32)


def regression(samples=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(samples, 2)).astype(np.float32)
    y = (np.sin(2 * x[:, :1]) + x[:, 1:] ** 2).astype(np.float32)
    return x, y


def classifier(seed=0, **kwargs):
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), seed=seed, **kwargs)


# Building

def test_a_sequential_mirrors_torch_names_and_folds_activations():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.LayerNorm(8),
                          nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3), nn.Sigmoid(), seed=1)
    assert len(model) == 8 and model.layer_count == 5
    assert list(model.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "4.weight",
                                        "4.bias", "6.weight", "6.bias"]
    assert [tuple(v.shape) for v in model.state_dict().values()] == [
        (8, 4), (8,), (8,), (8,), (6, 8), (6,), (3, 6), (3,)]
    assert model.input_width == 4 and model.output_width == 3
    assert model.parameter_count == 40 + 16 + 54 + 21
    assert isinstance(model[1], nn.ReLU) and isinstance(model[-1], nn.Sigmoid)
    assert repr(model).splitlines()[1] == "  (0): Linear(in_features=4, out_features=8, bias=True)"
    assert "(3): LayerNorm((8,), eps=1e-05, elementwise_affine=True)" in repr(model)
    assert [type(m).__name__ for m in model] == [type(m).__name__ for m in model.modules]


def test_the_network_applies_the_folded_activations():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Sigmoid(), seed=2)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    (w1, b1), (w2, b2) = model[0].parameters(), model[2].parameters()
    expected = 1 / (1 + np.exp(-(np.tanh(x @ w1.T + b1) @ w2.T + b2)))
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5)


def test_a_layer_norm_can_come_first_and_fixes_the_width():
    model = nn.Sequential(nn.LayerNorm(5), nn.Linear(5, 2))
    assert model.input_width == 5
    x = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    normalized = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    w, b = model[1].parameters()
    np.testing.assert_allclose(model.predict(x), normalized @ w.T + b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("modules, error, match", [
    ((), ValueError, "at least one"),
    ((nn.ReLU(), nn.Linear(2, 2)), ValueError, "right after a Linear"),
    ((nn.Linear(2, 2), nn.Dropout(), nn.ReLU()), ValueError, "not after a Dropout"),
    ((nn.Linear(2, 2), nn.ReLU(), nn.Tanh()), ValueError, "right after a Linear"),
    ((nn.Linear(2, 3), nn.Linear(2, 1)), ValueError, "takes 2 features"),
    ((nn.Linear(2, 3), nn.LayerNorm(4)), ValueError, "normalizes 4 features"),
    ((nn.Dropout(), nn.Linear(2, 2)), ValueError, "cannot come first"),
    ((nn.Linear(2, 2), "relu"), TypeError, "not supported"),
    ((nn.Linear(2, 2), object()), TypeError, "not supported"),
])
def test_modules_that_cannot_form_a_network_are_refused(modules, error, match):
    with pytest.raises(error, match=match):
        nn.Sequential(*modules)


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Linear(2, 2, bias=False), "bias"),
    (lambda: nn.Linear(0, 2), "in_features"),
    (lambda: nn.Linear(2, 2, init="glorot"), "init"),
    (lambda: nn.Dropout(1.5), "between 0 and 1"),
    (lambda: nn.LayerNorm((2, 3)), "one width"),
    (lambda: nn.LayerNorm(3, elementwise_affine=False), "elementwise_affine"),
])
def test_module_arguments_the_library_cannot_do_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_module_belongs_to_one_network():
    linear = nn.Linear(2, 2)
    nn.Sequential(linear)
    with pytest.raises(ValueError, match="already part"):
        nn.Sequential(linear)
    with pytest.raises(ValueError, match="not part of a network"):
        nn.Linear(2, 2).weight


@pytest.mark.parametrize("init, check", [
    ("zeros", lambda w, b, n: not w.any() and not b.any()),
    (0.25, lambda w, b, n: (w == 0.25).all() and (b == 0.25).all()),
    ("default", lambda w, b, n: np.abs(w).max() <= 1 / np.sqrt(n) and b.any()),
    ("xavier_uniform", lambda w, b, n: np.abs(w).max() <= np.sqrt(6 / (n + 64)) and not b.any()),
    ("kaiming_uniform", lambda w, b, n: np.abs(w).max() <= np.sqrt(6 / n) and not b.any()),
    ("kaiming_normal", lambda w, b, n: abs(w.std() - np.sqrt(2 / n)) < 0.1 * np.sqrt(2 / n)),
    ("xavier_normal", lambda w, b, n: abs(w.std() - np.sqrt(2 / (n + 64))) < 0.1 * w.std()),
])
def test_initializers(init, check):
    model = nn.Sequential(nn.Linear(100, 64, init=init), seed=5)
    assert check(model[0].weight, model[0].bias, 100)
    network = Network(100, seed=5).add_dense(64, None, init=init)
    np.testing.assert_array_equal(network.layer_parameters(0)[0], model[0].weight)


def test_module_parameters_can_be_read_and_written():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.LayerNorm(3))
    model[0].weight = np.ones((3, 2))
    model[0].bias = [1, 2, 3]
    np.testing.assert_array_equal(model[0].weight, np.ones((3, 2)))
    np.testing.assert_array_equal(model[0].bias, [1, 2, 3])
    np.testing.assert_array_equal(model[2].weight, np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        model[0].weight = np.ones((2, 3))
    assert model[1].parameters() == ()


def test_network_methods_build_the_same_modules():
    network = Network(4, seed=1, loss="cross_entropy").add_dense(8, "tanh").add_dropout(0.3) \
        .add_layer_norm(1e-3).add_dense(2, None)
    assert [type(m).__name__ for m in network.modules] == ["Linear", "Tanh", "Dropout",
                                                           "LayerNorm", "Linear"]
    assert list(network.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "4.weight",
                                          "4.bias"]
    assert network.modules[3].eps == 1e-3 and network.modules[2].p == 0.3
    with pytest.raises(ValueError, match="dropout"):
        network.layer_nodes(1)


# Parameters and state_dict

def test_state_dict_round_trips_between_networks():
    source, target = classifier(seed=1), classifier(seed=2)
    assert not np.array_equal(source[0].weight, target[0].weight)
    result = target.load_state_dict(source.state_dict())
    assert result == ([], [])
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x, _ = blobs(10)
    np.testing.assert_array_equal(source.predict(x), target.predict(x))


def test_load_state_dict_checks_keys_and_shapes_before_writing():
    model = classifier()
    before = model.parameters_vector()
    state = model.state_dict()
    with pytest.raises(KeyError, match="missing keys \\['2.bias'\\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(KeyError, match="unexpected keys \\['5.weight'\\]"):
        model.load_state_dict({**state, "5.weight": np.zeros(2)})
    bad = dict(state, **{"0.weight": np.zeros((16, 4)), "2.weight": np.zeros((3, 15))})
    with pytest.raises(ValueError, match="size mismatch for 2.weight"):
        model.load_state_dict(bad)
    with pytest.raises(backprop.NonFiniteError):
        model.load_state_dict(dict(state, **{"0.weight": np.full((16, 4), np.nan)}))
    np.testing.assert_array_equal(model.parameters_vector(), before)
    # Not strict: only what matches, and a report of the rest.
    result = model.load_state_dict({"0.bias": np.zeros(16), "9.bias": np.ones(1)}, strict=False)
    assert result.missing_keys == ["0.weight", "2.weight", "2.bias"]
    assert result.unexpected_keys == ["9.bias"]
    assert not model[0].bias.any()


def test_parameters_are_copies_in_the_flat_order():
    model = classifier()
    parameters = model.parameters()
    assert parameters.network is model and len(parameters) == 4
    np.testing.assert_array_equal(np.concatenate([p.ravel() for p in parameters]),
                                  model.parameters_vector())
    parameters[0][:] = 0
    assert model[0].weight.any()


def test_a_float64_network_keeps_float64_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1), dtype="float64", seed=1)
    assert model.dtype == np.float64
    assert all(v.dtype == np.float64 for v in model.state_dict().values())
    state = {k: v + 1e-12 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name])


# Modes, the step-by-step loop, the loss

def test_train_and_eval_choose_forward_or_predict():
    model = nn.Sequential(nn.Linear(20, 20), nn.Dropout(0.5), seed=3, loss="mse")
    x = np.ones((4, 20), dtype=np.float32)
    assert model.training and model.train() is model
    dropped = model(x)
    assert (dropped == 0).any()
    model.eval()
    assert not model.training
    np.testing.assert_array_equal(model(x), model.predict(x))
    assert not (model(x) == 0).all()


def test_the_loss_is_chosen_from_the_first_targets():
    x, labels = blobs(30)
    model = classifier()
    assert model.loss == "mse"  # until it sees targets
    model.fit(x, labels, epochs=1, progress=False)
    assert model.loss == "cross_entropy"
    regressor = nn.Sequential(nn.Linear(2, 1))
    xr, yr = regression(20)
    regressor.train_step(xr, yr, lr=0.1)
    assert regressor.loss == "mse"
    assert nn.Sequential(nn.Linear(2, 2), loss=nn.CrossEntropyLoss()).loss == "cross_entropy"
    assert nn.Sequential(nn.Linear(2, 2), loss=nn.MSELoss()).loss == "mse"


# fit and evaluate

def test_fit_learns_and_reports_every_epoch():
    x, labels = blobs()
    model = classifier()
    history = model.fit(x, labels, epochs=15, batch_size=16, validation_split=0.2,
                        optimizer=optim.Adam(model, lr=1e-2), progress=False)
    assert isinstance(history, nn.History) and model.history is history
    assert len(history) == history.epochs_run == 15
    assert history[0]["epoch"] == 1 and history[-1]["epoch"] == 15
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                               "grad_norms", "update_ratios", "vanishing", "exploding"}
    assert len(history[0]["grad_norms"]) == len(history[0]["update_ratios"]) == 2
    assert history["loss"][-1] < history["loss"][0] / 2
    assert history["val_accuracy"][-1] > 0.9
    assert history.history["lr"] == [pytest.approx(1e-2)] * 15
    assert not any(history["exploding"])
    assert history.final_val_loss == pytest.approx(history[-1]["val_loss"])
    assert "15 epochs, ran all epochs" in repr(history)
    assert isinstance(model.optimizer, optim.Adam)


def test_fit_without_validation_has_no_validation_keys():
    x, labels = blobs(60)
    history = classifier().fit(x, labels, epochs=2, progress=False)
    assert "val_loss" not in history[0]
    assert np.isnan(history.final_val_loss)
    with pytest.raises(KeyError):
        history["val_loss"]


def test_validation_data_is_evaluated_like_evaluate():
    x, labels = blobs(400)
    model = classifier()
    history = model.fit(x[:300], labels[:300], epochs=5, validation_data=(x[300:], labels[300:]),
                        progress=False)
    loss, accuracy = model.evaluate(x[300:], labels[300:])
    assert history[-1]["val_loss"] == pytest.approx(loss, rel=1e-6)
    assert history[-1]["val_accuracy"] == pytest.approx(accuracy)


def test_evaluate_matches_numpy():
    x, labels = blobs(50)
    model = classifier()
    logits = model.predict(x).astype(np.float64)
    shifted = logits - logits.max(1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    loss, accuracy = model.evaluate(x, labels)
    assert loss == pytest.approx(-log_probabilities[np.arange(50), labels].mean(), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(logits.argmax(1) == labels))


def test_fit_a_regression_with_a_vector_of_targets():
    x, y = regression()
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1), seed=1)
    history = model.fit(x, y.ravel(), epochs=60, batch_size=16,
                        optimizer=optim.Adam(model, lr=1e-2), progress=False)
    assert model.loss == "mse"
    assert history["loss"][-1] < 0.01
    loss, _ = model.evaluate(x, y)
    assert loss == pytest.approx(np.mean((model.predict(x) - y) ** 2), rel=1e-4)


def test_early_stopping_restores_the_best_weights():
    x, labels = blobs(200, seed=3)
    model = classifier()
    # A learning rate this large makes the validation loss rise soon.
    history = model.fit(x, labels, epochs=200, validation_split=0.25, patience=3,
                        optimizer=optim.SGD(model, lr=0.5, momentum=0.9), progress=False)
    assert history.stopped_early and history.epochs_run < 200
    assert history.best_epoch == 1 + int(np.nanargmin(history["val_loss"]))
    assert history.best_loss == pytest.approx(min(history["val_loss"]))
    val_loss, _ = model.evaluate(x[150:], labels[150:])
    assert val_loss == pytest.approx(history.best_loss, rel=1e-5)


def test_optimizers_by_name_and_the_previous_one():
    x, labels = blobs(60)
    model = classifier()
    model.fit(x, labels, epochs=1, optimizer="sgd", progress=False)
    first = model.optimizer
    assert isinstance(first, optim.SGD)
    model.fit(x, labels, epochs=1, progress=False)
    assert model.optimizer is first  # training goes on with the same optimizer
    with pytest.raises(ValueError, match="optimizer"):
        model.fit(x, labels, epochs=1, optimizer="lbfgs", progress=False)


def test_callbacks_see_every_epoch_and_can_stop_training():
    x, labels = blobs(60)
    seen = []

    class Recorder:
        def on_epoch_end(self, epoch, logs):
            seen.append(("object", epoch, logs["loss"]))

    def stop_at_three(logs):
        seen.append(("function", logs["epoch"]))
        if logs["epoch"] == 3:
            raise nn.StopTraining

    history = classifier().fit(x, labels, epochs=10, callbacks=[Recorder(), stop_at_three],
                               progress=False)
    assert len(history) == 3 and history.stopped_by_callback and not history.stopped_early
    assert [s[:2] for s in seen] == [("object", 1), ("function", 1), ("object", 2),
                                     ("function", 2), ("object", 3), ("function", 3)]


def test_stop_training_attribute_ends_training():
    x, labels = blobs(60)
    model = classifier()

    def stop(logs):
        if logs["epoch"] == 2:
            model.stop_training = True

    history = model.fit(x, labels, epochs=10, callbacks=[stop], progress=False)
    assert len(history) == 2 and history.stopped_by_callback
    assert len(model.fit(x, labels, epochs=3, progress=False)) == 3  # reset by the next fit


def test_an_exception_in_a_callback_stops_training_and_is_raised_after():
    x, labels = blobs(60)
    model = classifier()
    error = RuntimeError("callback failed")
    epochs = []

    def fail(logs):
        epochs.append(logs["epoch"])
        if logs["epoch"] == 2:
            raise error

    with pytest.raises(RuntimeError) as caught:
        model.fit(x, labels, epochs=10, callbacks=[fail], progress=False)
    assert caught.value is error and epochs == [1, 2]
    assert len(model.history) == model.history.epochs_run == 2
    assert model.history.stopped_by_callback
    model.evaluate(x, labels)  # the network is usable afterwards


@isolated
def test_a_callback_cannot_use_the_busy_network():
    x, labels = blobs(60)
    model = classifier()
    with pytest.raises(backprop.BusyError):
        model.fit(x, labels, epochs=3, callbacks=[lambda logs: model.predict(x)],
                  progress=False)


def test_progress_bar_with_tqdm_and_silence_without(capsys):
    pytest.importorskip("tqdm")
    x, labels = blobs(60)
    classifier().fit(x, labels, epochs=3, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "epoch" in err
    classifier().fit(x, labels, epochs=3, progress=False)
    assert capsys.readouterr() == ("", "")


def test_no_progress_bar_without_tqdm(capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    x, labels = blobs(60)
    classifier().fit(x, labels, epochs=2, progress=True)
    assert capsys.readouterr() == ("", "")


def test_clipping_options_bound_the_update():
    x, labels = blobs(60)
    history = classifier().fit(x, labels, epochs=2, clip_grad_norm=1e-3,
                               optimizer=optim.SGD(lr=0.1), progress=False)
    assert history[-1]["grad_norms"][0] < 1.0
    classifier().fit(x, labels, epochs=1, clip_grad_value=0.01, progress=False)


@isolated
def test_non_finite_data_is_refused_before_training():
    x, labels = blobs(20)
    x[3, 1] = np.nan
    model = classifier()
    before = model.parameters_vector()
    with pytest.raises(backprop.NonFiniteError):
        model.fit(x, labels, epochs=2, progress=False)
    np.testing.assert_array_equal(model.parameters_vector(), before)


@isolated
def test_a_diverging_fit_raises_non_finite_with_the_epochs_done():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 2)) * 10).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1), seed=1)
    with pytest.raises(backprop.NonFiniteError) as caught:
        model.fit(x, x[:, :1] * 100, epochs=50, optimizer=optim.SGD(model, lr=10.0),
                  progress=False)
    assert caught.value.history is model.history and len(model.history) < 50
    assert np.isfinite(model.parameters_vector()).all()  # the weights of the last good step


@isolated
@pytest.mark.parametrize("kwargs, error", [
    ({"epochs": 0}, backprop.InvalidArgumentError),
    ({"batch_size": 0}, backprop.InvalidArgumentError),
    ({"validation_split": 1.5}, backprop.InvalidArgumentError),
    ({"epochs": -1}, ValueError),
    ({"validation_data": (np.zeros((3, 4)),)}, TypeError),
    ({"validation_data": (np.zeros((3, 5)), np.zeros(3, dtype=int))}, ValueError),
    ({"optimizer": 3}, TypeError),
])
def test_bad_fit_arguments(kwargs, error):
    x, labels = blobs(20)
    with pytest.raises(error):
        classifier().fit(x, labels, progress=False, **kwargs)


def test_fit_is_reproducible_from_the_seed():
    x, labels = blobs(100)
    first, second = classifier(seed=7), classifier(seed=7)
    a = first.fit(x, labels, epochs=3, progress=False)
    b = second.fit(x, labels, epochs=3, progress=False)
    assert a["loss"] == b["loss"]
    np.testing.assert_array_equal(first.parameters_vector(), second.parameters_vector())


# Checkpoints and pickling

def test_save_and_load_keep_predictions_and_the_optimizer(tmp_path):
    x, labels = blobs(100)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.LayerNorm(16),
                          nn.Linear(16, 3), seed=4)
    model.fit(x, labels, epochs=3, optimizer=optim.AdamW(model, lr=3e-3), progress=False)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = nn.Sequential.load(path)
    assert isinstance(loaded, nn.Sequential) and repr(loaded) == repr(model)
    assert loaded.loss == "cross_entropy" and loaded.seed == 4
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert isinstance(loaded.optimizer, optim.AdamW)
    assert loaded.optimizer.defaults == pytest.approx(model.optimizer.defaults)
    assert loaded.optimizer.model is loaded
    assert isinstance(Network.load(str(path)), Network)


def test_training_goes_on_bit_for_bit_after_loading(tmp_path):
    x, labels = blobs(100)
    model = classifier(seed=5)
    model.fit(x, labels, epochs=2, optimizer=optim.Adam(model, lr=1e-2), progress=False)
    model.save(tmp_path / "checkpoint")
    loaded = nn.Sequential.load(tmp_path / "checkpoint")
    model.fit(x, labels, epochs=2, progress=False)
    loaded.fit(x, labels, epochs=2, progress=False)
    np.testing.assert_array_equal(loaded.parameters_vector(), model.parameters_vector())


def test_save_with_an_explicit_optimizer_and_without_one(tmp_path):
    model = classifier()
    optimizer = optim.RMSprop(model, lr=0.01)
    model.save(tmp_path / "with", optimizer=optimizer)
    assert isinstance(Network.load(tmp_path / "with").optimizer, optim.RMSprop)
    model.save(tmp_path / "without")
    assert Network.load(tmp_path / "without").optimizer is None


def test_checkpoints_are_named_like_torch_state_dicts(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    model = classifier()
    model.save(tmp_path / "model.safetensors")
    tensors = safetensors.load_file(str(tmp_path / "model.safetensors"))
    state = model.state_dict()
    assert sorted(tensors) == sorted(state)
    for name in state:
        np.testing.assert_array_equal(tensors[name], state[name])


@isolated
def test_loading_a_bad_file_raises_and_leaks_nothing(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(backprop.FormatError):
        Network.load(tmp_path / "bad")
    with pytest.raises(backprop.BackpropIOError):
        Network.load(tmp_path / "missing")
    with pytest.raises(backprop.FormatError):
        Network.from_bytes(b"not a checkpoint at all")


def test_bytes_round_trip():
    model = classifier()
    data = model.to_bytes()
    assert isinstance(data, bytes)
    copy_of = nn.Sequential.from_bytes(data)
    x, _ = blobs(10)
    np.testing.assert_array_equal(copy_of.predict(x), model.predict(x))
    assert nn.Sequential.from_bytes(bytearray(data)).parameter_count == model.parameter_count


def test_pickle_and_deepcopy_go_through_the_checkpoint():
    x, labels = blobs(100)
    model = classifier()
    model.fit(x, labels, epochs=2, progress=False)
    model.eval()
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert type(clone) is nn.Sequential and clone is not model
        assert not clone.training
        np.testing.assert_array_equal(clone.predict(x), model.predict(x))
        assert isinstance(clone.optimizer, optim.Adam) and clone.optimizer is not model.optimizer
        assert clone.history["loss"] == model.history["loss"]
        clone.fit(x, labels, epochs=1, progress=False)  # trains on with its own optimizer
    buffer = io.BytesIO()
    pickle.dump(Network(3, seed=2).add_dense(2), buffer)
    restored = pickle.loads(buffer.getvalue())
    assert type(restored) is Network and restored.parameter_count == 8


def test_a_closed_network_cannot_be_pickled_or_saved(tmp_path):
    model = classifier()
    model.close()
    with pytest.raises(backprop.InvalidHandleError):
        pickle.dumps(model)
    with pytest.raises(backprop.InvalidHandleError):
        model.save(tmp_path / "x")
    assert repr(model) == "<Sequential closed>"


def test_loaded_networks_and_optimizers_are_freed_once(monkeypatch, tmp_path):
    from backprop import network as network_module
    freed_nets, freed_optimizers = [], []
    original_net, original_opt = network_module._free_net, optim._free_optimizer
    monkeypatch.setattr(network_module, "_free_net",
                        lambda h: freed_nets.append(h) or original_net(h))
    monkeypatch.setattr(optim, "_free_optimizer",
                        lambda h: freed_optimizers.append(h) or original_opt(h))
    model = classifier()
    model.save(tmp_path / "m", optimizer=optim.SGD(model))
    loaded = Network.load(tmp_path / "m")
    clone = pickle.loads(pickle.dumps(loaded))
    loaded.close()
    del model, loaded, clone
    gc.collect()
    assert len(freed_nets) == 3 and len(set(map(id, freed_nets))) == 3
    assert len(freed_optimizers) == 3
