"""Training from Python threads, straight through the C declarations.

ctypes releases the GIL for the length of every call, so Python threads really are inside the
library at the same time (the BUSY counts below could not happen otherwise). The header's
promises, from Python:

  - N threads training N networks (steps with an optimizer, then bp_net_fit_labels) end with
    checkpoints byte for byte equal to training the same networks one after another;
  - two threads stepping one network, and a third reading its weights, see BP_ERR_BUSY and
    never a corrupted network: after S successful steps the weights are exactly those of S
    steps taken in one thread, and every read returned the weights after a whole step.

test_threads.py (graphs, Network objects) and Tests/c/test_threads.c (pthreads) hold more.
"""

import ctypes
import threading
import time
from ctypes import byref, c_float, c_size_t

import numpy as np
import pytest

from backprop import _capi

pytestmark = pytest.mark.isolated

lib = _capi.lib
Status = _capi.Status
INPUTS, HIDDEN, CLASSES, SAMPLES, BATCH = 16, 32, 4, 96, 16


def check(status):
    assert status == Status.OK, f"{Status(status).name}: {lib.bp_last_error().decode()}"


def floats(array):
    return array.ctypes.data_as(ctypes.POINTER(c_float))


def data(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(SAMPLES, INPUTS)).astype(np.float32)
    labels = (((x[:, 0] + x[:, 1] + 2) * CLASSES / 4).astype(np.int32) % CLASSES)
    return x, labels.astype(np.int32)


def train(seed, steps=20):
    """A network with dropout and an Adam optimizer, trained on its own data; the bytes of its
    checkpoint (weights, optimizer state, dropout generator)."""
    x, labels = data(seed)
    net, adam = _capi.NetHandle(), _capi.OptimizerHandle()
    check(lib.bp_net_create(INPUTS, seed, byref(net)))
    check(lib.bp_net_add_dense(net, HIDDEN, _capi.Activation.RELU))
    check(lib.bp_net_add_dropout(net, 0.1))
    check(lib.bp_net_add_dense(net, CLASSES, _capi.Activation.NONE))
    check(lib.bp_net_set_loss(net, _capi.Loss.CROSS_ENTROPY))
    check(lib.bp_optimizer_create(_capi.OptimizerKind.ADAM, None, byref(adam)))
    outputs = np.empty((BATCH, CLASSES), dtype=np.float32)
    for step in range(steps):
        start = (step * BATCH) % (SAMPLES - BATCH + 1)
        batch = np.ascontiguousarray(x[start:start + BATCH])
        batch_labels = np.ascontiguousarray(labels[start:start + BATCH])
        check(lib.bp_net_zero_grad(net))
        check(lib.bp_net_forward(net, BATCH, floats(batch), batch.size, floats(outputs),
                                 outputs.size))
        check(lib.bp_net_backward_labels(
            net, batch_labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), BATCH, None))
        check(lib.bp_optimizer_step(adam, net))
    options = _capi.bp_fit_options()
    check(lib.bp_fit_options_default(byref(options)))
    options.batch_size, options.epochs, options.validation_split = BATCH, 2, 0.25
    check(lib.bp_net_fit_labels(net, adam, SAMPLES, floats(x), x.size,
                                labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), SAMPLES,
                                byref(options), None))
    size = c_size_t()
    check(lib.bp_net_save_buffer(net, adam, None, 0, byref(size)))
    raw = (ctypes.c_uint8 * size.value)()
    check(lib.bp_net_save_buffer(net, adam, raw, size, byref(size)))
    check(lib.bp_optimizer_free(adam))
    check(lib.bp_net_free(net))
    return bytes(raw)


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
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return errors


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_networks_trained_in_threads_equal_networks_trained_one_by_one(threads):
    alone = [train(100 + i) for i in range(threads)]
    assert len(set(alone)) == threads  # different seeds, different networks
    together = [None] * threads

    def work(index):
        together[index] = train(100 + index)

    assert run_threads(work, threads) == []
    assert together == alone


# ---- one network, several threads -----------------------------------------------------------

def trajectory_net():
    net = _capi.NetHandle()
    check(lib.bp_net_create(INPUTS, 31, byref(net)))
    check(lib.bp_net_add_dense(net, HIDDEN, _capi.Activation.TANH))
    check(lib.bp_net_add_dense(net, 1, _capi.Activation.NONE))
    return net


X, _ = data(9)
TARGETS = np.ascontiguousarray(X[:, :1] + X[:, 1:2])


def step(net):
    return lib.bp_net_train_step(net, SAMPLES, floats(X), X.size, floats(TARGETS), SAMPLES,
                                 c_float(0.01), None)


# 16 -> 32 tanh -> 1: weights and biases.
PARAMETERS = INPUTS * HIDDEN + HIDDEN + HIDDEN + 1


def parameters(net):
    out = np.empty(PARAMETERS, dtype=np.float32)
    return lib.bp_net_parameters(net, floats(out), out.size), out


def test_two_threads_stepping_one_network_get_busy_and_never_corrupt_it():
    target, deadline = 300, time.monotonic() + 60
    net = trajectory_net()
    lock = threading.Lock()
    counts = {"steps": 0, "reserved": 0, "busy": 0, "other": []}
    reads = []
    start = threading.Barrier(3)

    def finished():
        with lock:
            return (counts["steps"] >= target and counts["busy"] > 0 and len(reads) >= 10) \
                or time.monotonic() > deadline

    def stepper(_):
        start.wait()
        while not finished():
            with lock:
                room = counts["steps"] + counts["reserved"] < target
                counts["reserved"] += room
            status = step(net) if room else parameters(net)[0]
            with lock:
                counts["reserved"] -= room
                if status == Status.OK:
                    counts["steps"] += room
                elif status == Status.BUSY and lib.bp_last_error():
                    counts["busy"] += 1
                else:
                    counts["other"].append(status)

    def reader(_):
        start.wait()
        while not finished():
            status, values = parameters(net)
            with lock:
                if status == Status.OK:
                    reads.append(values.tobytes())
                elif status == Status.BUSY:
                    counts["busy"] += 1
                else:
                    counts["other"].append(status)

    assert run_threads(lambda i: reader(i) if i == 2 else stepper(i), 3) == []
    assert counts["other"] == []
    assert counts["busy"] > 0, "no call was ever refused: were the threads ever inside at once?"
    assert counts["steps"] == target
    assert len(reads) >= 10

    # The same number of steps, one after another, and the weights after each of them.
    alone = trajectory_net()
    history = [parameters(alone)[1].tobytes()]
    for _ in range(target):
        check(step(alone))
        history.append(parameters(alone)[1].tobytes())
    assert parameters(net)[1].tobytes() == history[-1]
    position = {weights: k for k, weights in enumerate(history)}
    seen = [position.get(weights) for weights in reads]
    assert None not in seen, "a read returned weights that no whole step produced"
    assert seen == sorted(seen), "a read went back to older weights"
    check(lib.bp_net_free(alone))
    check(lib.bp_net_free(net))
