"""backprop.optim: torch.optim's optimizers, their formulas checked step by step against numpy
transcriptions of torch's documented algorithms; the learning-rate schedulers against torch's
formulas; gradient clipping; and the optimizer's lifetime and errors."""

import gc
import math

import numpy as np
import pytest

import backprop
from backprop import Graph, _capi, nn, optim
from backprop.optim import lr_scheduler

isolated = pytest.mark.isolated  # bad input for the library: a crash fails one test

START = np.array([0.5, -1.0, 2.0, -0.25])
SLOPE = np.array([0.3, -0.2, 1.5, -2.0])


def gradient(w):
    """The gradient of sum(SLOPE * w) + 0.5 * sum(w**2) + 0.25 * sum(w**4)."""
    return SLOPE + w + w ** 3


def reference(name, options, steps):
    """torch.optim's update rules, in numpy."""
    w = START.copy()
    lr = options.get("lr", {"SGD": 0.01, "Adam": 1e-3, "AdamW": 1e-3}.get(name, 1e-2))
    wd = options.get("weight_decay", 1e-2 if name == "AdamW" else 0.0)
    state = {}
    for t in range(1, steps + 1):
        g = gradient(w)
        if name != "AdamW":
            g = g + wd * w
        if name == "SGD":
            momentum = options.get("momentum", 0.0)
            dampening = options.get("dampening", 0.0)
            if momentum:
                buf = g.copy() if t == 1 else momentum * state["buf"] + (1 - dampening) * g
                state["buf"] = buf
                g = g + momentum * buf if options.get("nesterov") else buf
            w = w - lr * g
        elif name in ("Adam", "AdamW"):
            b1, b2 = options.get("betas", (0.9, 0.999))
            eps = options.get("eps", 1e-8)
            if name == "AdamW":
                w = w * (1 - lr * wd)
            m = b1 * state.get("m", 0) + (1 - b1) * g
            v = b2 * state.get("v", 0) + (1 - b2) * g * g
            state["m"], state["v"] = m, v
            if options.get("amsgrad"):
                v = state["vmax"] = np.maximum(state.get("vmax", 0), v)
            w = w - lr / (1 - b1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
        elif name == "RMSprop":
            alpha, eps = options.get("alpha", 0.99), options.get("eps", 1e-8)
            sq = state["sq"] = alpha * state.get("sq", 0) + (1 - alpha) * g * g
            if options.get("centered"):
                ga = state["ga"] = alpha * state.get("ga", 0) + (1 - alpha) * g
                avg = np.sqrt(sq - ga * ga) + eps
            else:
                avg = np.sqrt(sq) + eps
            momentum = options.get("momentum", 0.0)
            if momentum:
                buf = state["buf"] = momentum * state.get("buf", 0) + g / avg
                w = w - lr * buf
            else:
                w = w - lr * g / avg
        elif name == "Adagrad":
            clr = lr / (1 + (t - 1) * options.get("lr_decay", 0.0))
            total = state["sum"] = state.get("sum", options.get("initial_accumulator_value",
                                                                0.0)) + g * g
            w = w - clr * g / (np.sqrt(total) + options.get("eps", 1e-10))
    return w


def run_graph(optimizer_class, options, steps):
    with Graph("float64") as g:
        w = g.parameter(4, value=START)
        loss = (w * SLOPE).sum() + 0.5 * (w * w).sum() + 0.25 * (w ** 4).sum()
        opt = optimizer_class(g, **options)
        for _ in range(steps):
            opt.zero_grad()
            g.forward()
            loss.backward()
            opt.step()
        return w.value


CASES = [
    ("SGD", {}), ("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {}), ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {}), ("AdamW", {"lr": 0.02, "weight_decay": 0.3}),
    ("RMSprop", {}), ("RMSprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.5}),
    ("RMSprop", {"lr": 0.005, "centered": True, "weight_decay": 0.01}),
    ("Adagrad", {}), ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.5,
                                  "weight_decay": 0.02}),
]


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n} {o}" for n, o in CASES])
def test_updates_follow_torch_formulas(name, options):
    got = run_graph(getattr(optim, name), options, steps=5)
    np.testing.assert_allclose(got, reference(name, options, steps=5), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls, kind", [(optim.SGD, _capi.OptimizerKind.SGD),
                                       (optim.Adam, _capi.OptimizerKind.ADAM),
                                       (optim.AdamW, _capi.OptimizerKind.ADAMW),
                                       (optim.RMSprop, _capi.OptimizerKind.RMSPROP),
                                       (optim.Adagrad, _capi.OptimizerKind.ADAGRAD)])
def test_python_defaults_are_the_library_defaults(cls, kind):
    import ctypes
    options = _capi.bp_optimizer_options()
    assert _capi.lib.bp_optimizer_options_default(kind, ctypes.byref(options)) == 0
    with cls() as opt:
        expected = optim._defaults_of(kind, options)
        assert opt.defaults == pytest.approx(expected)
        assert opt.lr == options.learning_rate


def test_an_optimizer_trains_a_network_step_by_step():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    model = nn.Sequential(nn.Linear(3, 1), seed=2, loss="mse")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    assert optimizer.model is model
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        model(x)
        losses.append(model.backward(y))
        optimizer.step()
    assert losses[-1] < 1e-4 < losses[0]
    np.testing.assert_allclose(model[0].weight, [[1.0, -2.0, 0.5]], atol=1e-2)


def test_zero_grad_zeroes_the_network_gradients():
    model = nn.Sequential(nn.Linear(2, 2), seed=1, loss="mse")
    optimizer = optim.Adam(model)
    model.forward([[1.0, 2.0]])
    model.backward([[0.0, 1.0]])
    assert model.gradients_vector().any()
    optimizer.zero_grad()
    assert not model.gradients_vector().any()


def test_the_learning_rate_can_be_read_and_set():
    with optim.SGD(lr=0.25) as opt:
        assert opt.lr == 0.25
        opt.lr = 0.5
        assert opt.lr == 0.5 and opt.param_groups[0]["lr"] == 0.5
        assert "SGD(lr=0.5" in repr(opt)


@isolated
@pytest.mark.parametrize("make", [
    lambda: optim.SGD(lr=-1.0), lambda: optim.SGD(nesterov=True),
    lambda: optim.SGD(momentum=0.9, dampening=0.1, nesterov=True),
    lambda: optim.Adam(betas=(1.0, 0.999)), lambda: optim.Adam(eps=-1e-8),
    lambda: optim.RMSprop(alpha=-0.5), lambda: optim.Adagrad(lr_decay=-1.0),
    lambda: optim.AdamW(lr=float("inf")),
])
def test_bad_options_are_refused_by_the_library(make):
    with pytest.raises(backprop.InvalidArgumentError):
        make()


def test_nan_options_are_refused():
    with pytest.raises(ValueError):
        optim.SGD(lr=float("nan"))


@isolated
def test_non_finite_gradients_change_nothing():
    with Graph("float64") as g:
        w = g.parameter(2, value=[1.0, 0.0])
        loss = w.log().sum()  # log(0): infinite gradient
        opt = optim.SGD(g, lr=0.1)
        g.forward()
        loss.backward()
        with pytest.raises(backprop.NonFiniteError):
            opt.step()
        np.testing.assert_array_equal(w.value, [1.0, 0.0])


def test_an_optimizer_needs_something_to_update():
    with optim.SGD() as opt:
        with pytest.raises(ValueError, match="nothing to update"):
            opt.step()
    with pytest.raises(TypeError, match="Network"):
        optim.SGD([np.zeros(3)])
    with pytest.raises(TypeError):
        optim.Optimizer()


def test_an_optimizer_serves_one_network():
    first = nn.Sequential(nn.Linear(2, 1), seed=1, loss="mse")
    second = nn.Sequential(nn.Linear(2, 1), seed=1, loss="mse")
    opt = optim.Adam(first)
    with pytest.raises(ValueError, match="another network"):
        second.fit(np.zeros((4, 2)), np.zeros((4, 1)), optimizer=opt, progress=False)


def test_reset_forgets_the_state():
    a = run_graph(optim.Adam, {"lr": 0.1}, steps=1)
    with Graph("float64") as g:
        w = g.parameter(4, value=START)
        loss = (w * SLOPE).sum() + 0.5 * (w * w).sum() + 0.25 * (w ** 4).sum()
        opt = optim.Adam(g, lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            g.forward()
            loss.backward()
            opt.step()
        w.value = START
        opt.reset()
        opt.zero_grad()
        g.forward()
        loss.backward()
        opt.step()
        np.testing.assert_allclose(w.value, a)


def test_a_closed_optimizer_raises_and_frees_once(monkeypatch):
    freed = []
    original = optim._free_optimizer
    monkeypatch.setattr(optim, "_free_optimizer", lambda h: freed.append(h) or original(h))
    opt = optim.SGD(lr=0.1)
    opt.close()
    opt.close()
    assert opt.closed and repr(opt) == "<SGD closed>"
    with pytest.raises(backprop.InvalidHandleError, match="closed"):
        opt.lr
    with optim.Adam():
        pass
    optim.RMSprop()
    gc.collect()
    assert len(freed) == 3


# Schedulers

def rates(make_scheduler, epochs, lr=0.1, metrics=None):
    opt = optim.SGD(lr=lr)
    scheduler = make_scheduler(opt)
    out = [opt.lr]
    for epoch in range(epochs):
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
        out.append(scheduler.get_last_lr()[0])
    return out


def test_step_lr():
    got = rates(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 9)
    assert got == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(10)])


def test_exponential_lr():
    got = rates(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9), 6)
    assert got == pytest.approx([0.1 * 0.9 ** e for e in range(7)])


def test_cosine_annealing_lr_then_stays_at_the_minimum():
    got = rates(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01), 10)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * min(e, 8) / 8)) / 2 for e in range(11)]
    assert got == pytest.approx(expected)


def test_linear_lr_warms_up_to_the_base_rate():
    got = rates(lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4), 6)
    assert got == pytest.approx([0.1 * (0.25 + 0.75 * min(e, 4) / 4) for e in range(7)])


def test_sequential_lr_warm_up_then_step():
    def make(o):
        warmup = lr_scheduler.LinearLR(o, start_factor=0.5, total_iters=2)
        decay = lr_scheduler.StepLR(o, step_size=2, gamma=0.1)
        return lr_scheduler.SequentialLR(o, [warmup, decay], milestones=[2])

    got = rates(make, 6)
    assert got == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.01, 0.01, 0.001])


def test_reduce_lr_on_plateau():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]
    got = rates(lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2), 10,
                metrics=metrics)
    # Bad epochs after 0.9: three without improvement reduce once patience (2) is exceeded.
    assert got == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_a_new_scheduler_starts_from_the_base_rate():
    opt = optim.SGD(lr=0.2)
    lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    assert opt.lr == pytest.approx(0.1)
    lr_scheduler.ExponentialLR(opt, gamma=0.5)  # replaces the warm-up
    assert opt.lr == pytest.approx(0.2)


@pytest.mark.parametrize("make, match", [
    (lambda o: lr_scheduler.LinearLR(o, end_factor=0.5), "end_factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="max"), "min"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="abs"), "rel"),
    (lambda o: lr_scheduler.StepLR(o, step_size=0), "step_size"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 1)], [1]), "LinearLR"),
    (lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.LinearLR(o, total_iters=3), lr_scheduler.StepLR(o, 1)], [2]),
     "milestones"),
    (lambda o: lr_scheduler.StepLR("not an optimizer", 1), "Optimizer"),
])
def test_unsupported_scheduler_options_are_refused(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(optim.SGD(lr=0.1))


def test_fit_steps_the_schedule_once_per_epoch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 2)).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 1), seed=3, loss="mse")
    opt = optim.SGD(model, lr=0.1)
    lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    history = model.fit(x, x[:, :1], epochs=6, optimizer=opt, progress=False)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


# Gradient clipping

def net_with_gradients():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), seed=4, loss="mse")
    model.forward(np.full((5, 3), 3.0))
    model.backward(np.full((5, 2), 10.0))
    return model


def test_clip_grad_norm_scales_to_the_maximum_and_returns_the_norm():
    model = net_with_gradients()
    before = model.gradients_vector().astype(np.float64)
    norm = nn.clip_grad_norm_(model.parameters(), max_norm=0.5)
    assert norm == pytest.approx(np.linalg.norm(before), rel=1e-5)
    after = model.gradients_vector()
    assert np.linalg.norm(after) == pytest.approx(0.5, rel=1e-4)
    np.testing.assert_allclose(after, before * 0.5 / (norm + 1e-6), rtol=1e-5)
    # Under the maximum: unchanged.
    assert nn.clip_grad_norm_(model, max_norm=10.0) == pytest.approx(0.5, rel=1e-4)
    np.testing.assert_array_equal(model.gradients_vector(), after)


def test_clip_grad_value_clamps_every_gradient():
    model = net_with_gradients()
    before = model.gradients_vector()
    nn.clip_grad_value_(model, 0.01)
    np.testing.assert_allclose(model.gradients_vector(), np.clip(before, -0.01, 0.01))


@isolated
def test_clipping_arguments_are_checked():
    model = net_with_gradients()
    with pytest.raises(ValueError, match="norm_type"):
        nn.clip_grad_norm_(model, 1.0, norm_type=1)
    with pytest.raises(backprop.InvalidArgumentError):
        nn.clip_grad_norm_(model, -1.0)
    with pytest.raises(backprop.InvalidArgumentError):
        nn.clip_grad_value_(model, 0.0)
    with pytest.raises(TypeError, match="Network"):
        nn.clip_grad_value_([np.zeros(2)], 1.0)


def test_parameters_to_vector_and_back():
    model = net_with_gradients()
    vector = nn.utils.parameters_to_vector(model)
    assert vector.shape == (model.parameter_count,)
    nn.utils.vector_to_parameters(np.zeros_like(vector), model.parameters())
    assert not model.parameters_vector().any()
    with pytest.raises(ValueError, match="vector of 26"):
        model.set_parameters_vector(np.zeros(3))
