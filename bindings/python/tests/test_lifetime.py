"""Every handle is freed exactly once, whichever way its object goes: close(), a with block,
garbage collection, or interpreter exit with the object still alive. Borrowed graphs are never
freed. Counted at the boundary: a child process wraps bp_graph_free and bp_net_free and logs
every call with the handle and the status it returned."""

import json

import pytest

from support import run_python

# The child: wrap the create and free functions to log every call with its handle (an address,
# which the allocator may reuse once freed) and status, make objects that go every way, then
# exit without closing the rest. Lines go out with os.write, which works until the very end.
CHILD = r"""
import ctypes, gc, json, os
import backprop
from backprop import _capi

def log(**record):
    os.write(1, (json.dumps(record) + "\n").encode())

def address(handle):
    return ctypes.cast(handle, ctypes.c_void_p).value

def wrap(name, kind):
    original = getattr(_capi.lib, name)
    def call(*args):
        status = original(*args)
        handle = args[-1]._obj if kind == "create" else args[0]  # byref(out) keeps its object
        log(event=kind, function=name, handle=address(handle), status=int(status))
        return status
    setattr(_capi.lib, name, call)

for name in ("bp_graph_create", "bp_net_create"):
    wrap(name, "create")
for name in ("bp_graph_free", "bp_net_free"):
    wrap(name, "free")

# Closed explicitly, then closed again and collected.
g = backprop.Graph()
g.close(); g.close(); del g
# A with block.
with backprop.Network(2) as n:
    n.add_dense(2, None)
del n
# Garbage collection by reference count, and of a reference cycle.
backprop.Graph("float64")
cycle = [backprop.Graph()]
cycle.append(cycle)
del cycle
gc.collect()
log(event="phase", name="left alive at exit")
# Left alive at exit: a graph with nodes that refer to it, one in a cycle, a network with its
# borrowed graph and layer nodes, and a network whose borrowed graph was closed.
g = backprop.Graph()
x = g.input(3); y = (x * 2.0).sum()
loop = [backprop.Graph()]; loop.append(loop)
net = backprop.Network(3, seed=1).add_dense(4, "tanh").add_dense(2, None)
borrowed = net.graph; w, b = net.layer_nodes(0)
other = backprop.Network(2)
other.graph.close()
log(event="phase", name="exit")
"""


@pytest.fixture(scope="module")
def child():
    return run_python(CHILD, env={"PYTHONDEVMODE": "1"})


def events(child):
    return [json.loads(line) for line in child.stdout.splitlines()]


def test_the_child_exits_cleanly_under_dev_mode(child):
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""


def test_every_handle_is_freed_exactly_once_with_ok(child):
    live = {}  # address -> the free function it needs
    frees = 0
    for record in events(child):
        if record["event"] == "create":
            assert record["status"] == 0
            assert record["handle"] not in live, "a live handle was handed out twice"
            live[record["handle"]] = record["function"].replace("_create", "_free")
        elif record["event"] == "free":
            frees += 1
            assert record["handle"] in live, f"freed a handle that is not live: {record}"
            assert live.pop(record["handle"]) == record["function"], record
            assert record["status"] == 0, record
    assert live == {}, "handles never freed"
    assert frees == 8


def test_objects_left_alive_are_freed_at_exit_and_only_then(child):
    phase, freed = None, {}
    for record in events(child):
        if record["event"] == "phase":
            phase = record["name"]
        elif record["event"] == "free":
            freed.setdefault(phase, []).append(record["function"])
    assert sorted(freed[None]) == ["bp_graph_free"] * 3 + ["bp_net_free"]
    assert "left alive at exit" not in freed  # nothing freed while they were in use
    assert sorted(freed["exit"]) == ["bp_graph_free"] * 2 + ["bp_net_free"] * 2


def test_a_graph_freed_at_exit_reads_as_closed_afterwards():
    # An atexit handler registered before the graph existed runs after the graph's finalizer
    # (atexit runs last-in, first-out): by then the graph is freed, and says so.
    child = run_python(
        "import atexit, backprop\n"
        "def late():\n"
        "    print(graph.closed)\n"
        "    try:\n"
        "        graph.node_count\n"
        "    except backprop.InvalidHandleError as error:\n"
        "        print('InvalidHandleError:', error)\n"
        "atexit.register(late)\n"
        "graph = backprop.Graph(); graph.input(2)\n",
        env={"PYTHONDEVMODE": "1"})
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["True", "InvalidHandleError: the Graph is closed"]
    assert child.stderr == ""


# The same for the objects of the training layer: optimizers, networks made by loading a
# checkpoint (file, bytes, pickle), and the dataset load_csv makes and frees at once.
TRAINING_CHILD = r"""
import ctypes, gc, json, os, pickle, sys, tempfile
import numpy as np
import backprop
from backprop import _capi, data, nn, optim

def log(**record):
    os.write(1, (json.dumps(record) + "\n").encode())

def address(handle):
    return ctypes.cast(handle, ctypes.c_void_p).value

def wrap(name, made):
    original = getattr(_capi.lib, name)
    def call(*args):
        status = original(*args)
        if made is None:
            log(event="free", function=name, handle=address(args[0]), status=int(status))
        else:
            for position, kind in made:
                handle = args[position]._obj
                if status == 0 and address(handle):
                    log(event="create", kind=kind, handle=address(handle))
        return status
    setattr(_capi.lib, name, call)

wrap("bp_net_create", [(-1, "net")])
wrap("bp_optimizer_create", [(-1, "optimizer")])
wrap("bp_net_load", [(1, "net"), (2, "optimizer")])
wrap("bp_net_load_buffer", [(2, "net"), (3, "optimizer")])
wrap("bp_dataset_load_csv", [(-1, "dataset")])
for name in ("bp_net_free", "bp_optimizer_free", "bp_dataset_free"):
    wrap(name, None)

x, y = data.load_csv(sys.argv[1])
model = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10), seed=1)
model.fit(x[:100] / 16, y[:100], epochs=1, progress=False)
path = os.path.join(tempfile.mkdtemp(), "model")
model.save(path)
loaded = nn.Sequential.load(path)
copied = pickle.loads(pickle.dumps(loaded))
with optim.SGD(copied) as spare:
    pass
optim.RMSprop()
del loaded
gc.collect()
log(event="phase", name="exit")
"""


def test_training_objects_are_freed_exactly_once():
    from support import REPOSITORY

    child = run_python(TRAINING_CHILD, str(REPOSITORY / "examples" / "data" / "digits.csv"),
                       env={"PYTHONDEVMODE": "1"})
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    live, counts = {}, {}
    for record in events(child):
        if record["event"] == "create":
            assert record["handle"] not in live
            live[record["handle"]] = record["kind"]
            counts[record["kind"]] = counts.get(record["kind"], 0) + 1
        elif record["event"] == "free":
            assert record["status"] == 0, record
            kind = live.pop(record["handle"], None)
            assert kind is not None, f"freed a handle that is not live: {record}"
            assert record["function"] == f"bp_{kind}_free", record
    assert live == {}, "handles never freed"
    # One net and optimizer made, one of each loaded from the file and from the pickle, two
    # more optimizers; one dataset.
    assert counts == {"dataset": 1, "net": 3, "optimizer": 5}
