"""Threads: ctypes releases the GIL during calls, so Python threads really call the library at
the same time. Distinct handles work in parallel; one handle used from two threads at once makes
one call fail with BusyError, never corrupts it."""

import os
import threading
import time

import numpy as np
import pytest

import backprop
from backprop import Graph, Network

pytestmark = pytest.mark.isolated


def run_threads(target, count):
    errors = []

    def guarded(index):
        try:
            target(index)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def until_busy(*actions, seconds=30):
    """Runs each action in a loop in a thread of its own (the same action twice for one), all
    started together, until one of them gets BusyError or time runs out. Returns the BusyErrors
    and the results of the calls that succeeded."""
    actions = actions * 2 if len(actions) == 1 else actions
    busy, results = [], []
    stop = threading.Event()
    start = threading.Barrier(len(actions))

    def work(index):
        start.wait()
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                results.append(actions[index]())
            except backprop.BusyError as error:
                busy.append(error)
                stop.set()

    assert run_threads(work, len(actions)) == []
    return busy, results


def matmul_graph(size, seed):
    rng = np.random.default_rng(seed)
    g = Graph("float64")
    a, b = g.input((size, size)), g.input((size, size))
    loss = g.sum(g.tanh(a @ b))
    a_value, b_value = rng.normal(size=(size, size)) / size, rng.normal(size=(size, size))
    g.set_value(a, a_value)
    g.set_value(b, b_value)
    want = np.sum(np.tanh(a_value @ b_value))
    return g, loss, want


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_distinct_graphs_in_parallel_give_the_right_results(threads):
    def work(index):
        g, loss, want = matmul_graph(96, index)
        for _ in range(20):
            g.forward()
            g.zero_grad()
            g.backward(loss)
            assert float(loss.value) == pytest.approx(want, rel=1e-12)
        g.close()

    assert run_threads(work, threads) == []


@pytest.mark.parametrize("threads", [2, 3])
def test_distinct_networks_train_in_parallel_like_alone(threads):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    labels = np.array([0, 1, 1, 0])

    def train():
        net = Network(2, seed=42, loss="cross_entropy").add_dense(16, "tanh").add_dense(2, None)
        losses = [net.train_step(x, labels, 0.5) for _ in range(300)]
        return losses, net.layer_parameters(0)[0]

    alone = train()
    results = {}
    errors = run_threads(lambda index: results.__setitem__(index, train()), threads)
    assert errors == []
    for losses, weight in results.values():
        assert losses == alone[0]
        np.testing.assert_array_equal(weight, alone[1])


def test_one_graph_from_two_threads_is_busy_not_corrupt():
    g, loss, want = matmul_graph(256, 0)

    def forward_and_read():
        g.forward()
        return float(loss.value)

    busy, values = until_busy(forward_and_read)
    assert busy, "two threads forwarding one graph never saw BusyError"
    assert all(isinstance(e.message, str) and e.message for e in busy)
    assert all(value == pytest.approx(want, rel=1e-12) for value in values)
    g.forward()
    assert float(loss.value) == pytest.approx(want, rel=1e-12)


def test_one_network_from_two_threads_is_busy_not_corrupt():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 64)).astype(np.float32)
    y = rng.normal(size=(512, 8)).astype(np.float32)
    net = Network(64, seed=3).add_dense(256, "tanh").add_dense(8, None)
    reference = Network(64, seed=3).add_dense(256, "tanh").add_dense(8, None)
    busy, losses = until_busy(lambda: net.train_step(x, y, 0.01))
    assert busy, "two threads training one network never saw BusyError"
    # Every step that succeeded was a whole step: the same as that many steps alone.
    for _ in losses:
        reference.train_step(x, y, 0.01)
    np.testing.assert_array_equal(net.layer_parameters(0)[0], reference.layer_parameters(0)[0])


def test_the_graph_of_a_network_shares_its_lock():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(512, 64)).astype(np.float32)
    y = rng.normal(size=(512, 8)).astype(np.float32)
    net = Network(64, seed=3).add_dense(256, "tanh").add_dense(8, None)
    graph = net.graph
    weight, _ = net.layer_nodes(0)
    # One thread trains the network, the other reads its graph: a BusyError can only come from
    # the two sharing one lock.
    busy, _ = until_busy(lambda: net.train_step(x, y, 0.01), lambda: graph.value(weight))
    assert busy, "the network and its graph were used at once without BusyError"
    assert np.all(np.isfinite(graph.value(weight)))


def test_closing_a_graph_in_use_by_another_thread_is_busy_or_waits_for_nothing():
    g, loss, want = matmul_graph(256, 3)
    started = threading.Event()
    outcome = []

    def forward_loop(index):
        if index == 0:
            started.set()
            for _ in range(30):
                try:
                    g.forward()
                except (backprop.BusyError, backprop.InvalidHandleError) as error:
                    outcome.append(type(error).__name__)
                    break
        else:
            started.wait()
            while True:
                try:
                    g.close()
                    outcome.append("closed")
                    break
                except backprop.BusyError:
                    outcome.append("busy")

    assert run_threads(forward_loop, 2) == []
    assert "closed" in outcome and g.closed


def test_other_python_threads_run_while_a_call_is_inside_the_library():
    # One long call: a gradient check of 4000 elements runs 8000 forward passes inside a single
    # library call. Had the GIL stayed held, the main thread could not tick during it at all.
    g = Graph("float64")
    x = g.input(4000)
    loss = g.sum(g.tanh(x * x))
    g.set_value(x, np.linspace(-1, 1, 4000))
    span, entered, done = {}, threading.Event(), threading.Event()

    def long_call():
        entered.set()
        span["start"] = time.perf_counter()
        g.check_gradients(loss)
        span["end"] = time.perf_counter()
        done.set()

    thread = threading.Thread(target=long_call)
    thread.start()
    entered.wait()
    ticks = []
    while not done.is_set():
        ticks.append(time.perf_counter())
    thread.join()
    start, end = span["start"], span["end"]
    assert end - start > 0.1, "the call was too short to tell"
    margin = 0.02
    inside = [t for t in ticks if start + margin < t < end - margin]
    assert len(inside) > 1000, f"{len(inside)} ticks during a {end - start:.3f} s call"


def test_the_thread_count_is_clamped_to_the_cpus_this_process_may_run_on():
    original = backprop.get_num_threads()
    cpus = len(os.sched_getaffinity(0))
    try:
        backprop.set_num_threads(1)
        assert backprop.get_num_threads() == 1
        backprop.set_num_threads(cpus + 63)
        # BLAS may cap the count lower still (OpenBLAS at the number it was built for).
        assert 1 <= backprop.get_num_threads() <= cpus
        if cpus <= 32:
            assert backprop.get_num_threads() == cpus
        with pytest.raises(backprop.InvalidArgumentError):
            backprop.set_num_threads(0)
        assert 1 <= backprop.get_num_threads() <= cpus
    finally:
        backprop.set_num_threads(original)


OPTIMIZERS = {
    "sgd": lambda: backprop.optim.SGD(lr=0.05),
    "sgd-nesterov": lambda: backprop.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam-amsgrad": lambda: backprop.optim.Adam(lr=1e-3, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda: backprop.optim.AdamW(lr=1e-3),
    "rmsprop-centered": lambda: backprop.optim.RMSprop(lr=1e-3, momentum=0.5, centered=True),
    "adagrad": lambda: backprop.optim.Adagrad(lr=1e-2, lr_decay=0.1),
}


def train_wide_network(threads, optimizer="sgd"):
    """Five steps of a 200-300-130-10 network (99,720 parameters) on fixed data, with `threads`
    threads: its products and its update are large enough to be cut across the library's
    threads. The losses, and the bytes of every layer's weights and biases."""
    backprop.set_num_threads(threads)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(96, 200)).astype(np.float32)
    labels = rng.integers(0, 10, size=96)
    net = Network(200, seed=3, loss="cross_entropy")
    net.add_dense(300).add_dense(130).add_dense(10, None)
    with OPTIMIZERS[optimizer]() as opt:
        losses = [net.train_step(x, labels, optimizer=opt) for _ in range(5)]
    parameters = [p.tobytes() for layer in range(net.layer_count) for p in net.layer_parameters(layer)]
    net.close()
    return losses, parameters


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_products_and_updates_cut_across_threads_give_the_bits_of_one_thread(optimizer):
    # float32 products below 1024 columns run in the library's own kernel, which sums every
    # value in the same order however a product is cut; every parameter's update is its own.
    original = backprop.get_num_threads()
    try:
        alone = train_wide_network(1, optimizer)
        for threads in (2, 3):
            assert train_wide_network(threads, optimizer) == alone
    finally:
        backprop.set_num_threads(original)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_the_worker_threads_again():
    # The parent's worker threads are running when it forks; the child has none of them and
    # must start its own rather than wait for the parent's forever.
    import multiprocessing

    original = backprop.get_num_threads()
    try:
        expected = train_wide_network(2)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply_async(train_wide_network, (2,)).get(timeout=120) == expected
        assert train_wide_network(2) == expected
    finally:
        backprop.set_num_threads(original)
