"""The training step of the benchmark in each Python framework, and the worker that times them.

Every trainer does the same computation: dense layers y = x W^T + b (W stored [out, in] as
torch.nn.Linear), ReLU between them, softmax cross-entropy averaged over the batch, then SGD
with momentum 0.9 and learning rate 0.01 in torch.optim.SGD's form (buf = 0.9 buf + g, first
buf = g; w -= lr buf). `check_same_computation` runs them side by side from the same weights.

Trainers:
  backprop      libbackprop through the ctypes declarations of the Python package
                (backprop._capi): bp_optimizer_train_step_labels, one call a step, as
                Network.train_step(x, y, optimizer=...) makes it
  backprop-4calls  the same step as four calls: bp_net_zero_grad, bp_net_forward,
                bp_net_backward_labels and bp_optimizer_step, as Network.forward / backward and
                Optimizer.step make them; it shows what a ctypes call costs
  numpy         a vectorized implementation: np.matmul into preallocated buffers (BLAS GEMMs
                with transpose flags, no copies), in-place elementwise work. It leaves the
                scalar loss (a log and a mean) out of the timed step, since its gradient does
                not need it: that favours numpy slightly
  torch         PyTorch eager: nn.Sequential, F.cross_entropy, torch.optim.SGD
  jax           a jax.jit-compiled step (value_and_grad and the update in one program), with
                the parameters and momentum buffers donated so XLA updates them in place

Worker use (benchmarks/run.py starts one process per framework, configuration and thread count,
and one per configuration and thread count for the paired rounds):
  python frameworks.py --framework numpy --threads 1 --configs '[...]'
  python frameworks.py --paired backprop,numpy,torch,jax --threads 1 --configs '[...]'
  python frameworks.py --check
Each configuration's result is printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np

LEARNING_RATE = 0.01
MOMENTUM = 0.9
DATA_BATCHES = 8
WEIGHT_SEED = 42
DATA_SEED = 7


# ------------------------------------------------------------------------------------------------
# Data and initial weights
# ------------------------------------------------------------------------------------------------

def synthetic_data(widths, batch, seed=DATA_SEED):
    """DATA_BATCHES minibatches: inputs from N(0, 1) (float32, C-contiguous) and labels uniform
    over the classes (int32)."""
    rng = np.random.default_rng(seed)
    xs = [np.ascontiguousarray(rng.standard_normal((batch, widths[0]), dtype=np.float32))
          for _ in range(DATA_BATCHES)]
    ys = [rng.integers(0, widths[-1], size=batch).astype(np.int32) for _ in range(DATA_BATCHES)]
    return xs, ys


def initial_weights(widths, seed=WEIGHT_SEED):
    """torch.nn.Linear's initialization: W [out, in] and b [out] uniform in +-1/sqrt(in)."""
    rng = np.random.default_rng(seed)
    weights = []
    for k, n in zip(widths[:-1], widths[1:]):
        bound = 1.0 / math.sqrt(k)
        weights.append((rng.uniform(-bound, bound, (n, k)).astype(np.float32),
                        rng.uniform(-bound, bound, n).astype(np.float32)))
    return weights


# ------------------------------------------------------------------------------------------------
# Trainers: step(d) trains on minibatch d; sync() waits for queued work; loss() and weights()
# read results (outside the timed loop).
# ------------------------------------------------------------------------------------------------

class NumpyTrainer:
    name = "numpy"

    def __init__(self, widths, xs, ys, weights, threads):
        f32 = np.float32
        self.xs, self.ys = xs, ys
        self.L = len(widths) - 1
        batch = xs[0].shape[0]
        self.W = [w.copy() for w, _ in weights]
        self.b = [b.copy() for _, b in weights]
        self.gW = [np.zeros_like(w) for w in self.W]
        self.gb = [np.zeros_like(b) for b in self.b]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.tW = [np.zeros_like(w) for w in self.W]
        self.tb = [np.zeros_like(b) for b in self.b]
        self.z = [np.empty((batch, n), f32) for n in widths[1:]]      # pre-activations, logits
        self.a = [np.empty((batch, n), f32) for n in widths[1:-1]]    # ReLU outputs
        self.dz = [np.empty((batch, n), f32) for n in widths[1:]]     # gradients of z
        self.mask = [np.empty((batch, n), bool) for n in widths[1:-1]]
        self.rows = np.arange(batch)
        self.max = np.empty((batch, 1), f32)
        self.sum = np.empty((batch, 1), f32)
        self.inv_batch = f32(1.0 / batch)
        self.lr = f32(LEARNING_RATE)
        self.momentum = f32(MOMENTUM)
        self._loss = float("nan")

    def step(self, d):
        x, y = self.xs[d], self.ys[d]
        L, W, b, z, a = self.L, self.W, self.b, self.z, self.a
        h = x
        for l in range(L):
            np.matmul(h, W[l].T, out=z[l])
            z[l] += b[l]
            if l < L - 1:
                np.maximum(z[l], 0, out=a[l])
                h = a[l]
        # softmax cross-entropy, stable; its gradient (softmax - onehot) / batch into dz[-1]
        logits, p = z[-1], self.dz[-1]
        np.max(logits, axis=1, keepdims=True, out=self.max)
        np.subtract(logits, self.max, out=p)
        np.exp(p, out=p)
        np.sum(p, axis=1, keepdims=True, out=self.sum)
        picked = logits[self.rows, y]
        self._loss_terms = (self.sum, self.max, picked)
        p /= self.sum
        p[self.rows, y] -= 1
        p *= self.inv_batch
        for l in range(L - 1, -1, -1):
            prev = x if l == 0 else a[l - 1]
            np.matmul(self.dz[l].T, prev, out=self.gW[l])
            np.sum(self.dz[l], axis=0, out=self.gb[l])
            if l > 0:
                np.matmul(self.dz[l], W[l], out=self.dz[l - 1])
                np.greater(z[l - 1], 0, out=self.mask[l - 1])
                np.multiply(self.dz[l - 1], self.mask[l - 1], out=self.dz[l - 1])
        for params, grads, bufs, tmps in ((W, self.gW, self.vW, self.tW),
                                         (b, self.gb, self.vb, self.tb)):
            for w, g, v, t in zip(params, grads, bufs, tmps):
                np.multiply(v, self.momentum, out=v)
                v += g
                np.multiply(v, self.lr, out=t)
                w -= t

    def sync(self):
        pass

    def loss(self):
        s, m, picked = self._loss_terms
        return float(np.mean(np.log(s[:, 0].astype(np.float64)) + m[:, 0] - picked))

    def weights(self):
        return [(w.copy(), b.copy()) for w, b in zip(self.W, self.b)]


class TorchTrainer:
    name = "torch"

    def __init__(self, widths, xs, ys, weights, threads):
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(threads)
        self.torch, self.F = torch, F
        layers = []
        for l, (k, n) in enumerate(zip(widths[:-1], widths[1:])):
            linear = torch.nn.Linear(k, n)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(weights[l][0]))
                linear.bias.copy_(torch.from_numpy(weights[l][1]))
            layers.append(linear)
            if l < len(widths) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE,
                                         momentum=MOMENTUM)
        self.xs = [torch.from_numpy(x) for x in xs]
        self.ys = [torch.from_numpy(y.astype(np.int64)) for y in ys]
        self._loss = None

    def step(self, d):
        self.optimizer.zero_grad()
        loss = self.F.cross_entropy(self.model(self.xs[d]), self.ys[d])
        loss.backward()
        self.optimizer.step()
        self._loss = loss

    def sync(self):
        pass

    def loss(self):
        return float(self._loss.detach())

    def weights(self):
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
                for m in linears]


class JaxTrainer:
    name = "jax"

    def __init__(self, widths, xs, ys, weights, threads):
        import jax
        import jax.numpy as jnp
        self.jax = jax
        count = len(widths) - 1

        def loss_fn(params, x, y):
            h = x
            for l, (w, b) in enumerate(params):
                h = h @ w.T + b
                if l < count - 1:
                    h = jax.nn.relu(h)
            logp = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(params, bufs, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            bufs = jax.tree_util.tree_map(lambda v, g: MOMENTUM * v + g, bufs, grads)
            params = jax.tree_util.tree_map(lambda p, v: p - LEARNING_RATE * v, params, bufs)
            return params, bufs, loss

        self._step = jax.jit(step, donate_argnums=(0, 1))
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
        self.bufs = [(jnp.zeros_like(w), jnp.zeros_like(b)) for w, b in self.params]
        self.xs = [jax.device_put(x) for x in xs]
        self.ys = [jax.device_put(y) for y in ys]
        self._loss = None

    def step(self, d):
        self.params, self.bufs, self._loss = self._step(self.params, self.bufs, self.xs[d],
                                                        self.ys[d])

    def sync(self):
        if self._loss is not None:
            self._loss.block_until_ready()

    def loss(self):
        return float(self._loss)

    def weights(self):
        return [(np.asarray(w).copy(), np.asarray(b).copy()) for w, b in self.params]


def _backprop_api():
    """backprop._capi (the package's ctypes declarations), its library, and the optimizer's
    options struct and handle type."""
    from backprop import _capi
    return _capi, _capi.lib, _capi.bp_optimizer_options, _capi.OptimizerHandle


class BackpropTrainer:
    """libbackprop from Python: one ctypes call a step through backprop._capi, with every
    pointer argument built once, before the timed loop."""

    name = "backprop"

    def __init__(self, widths, xs, ys, weights, threads):
        import ctypes
        from ctypes import POINTER, byref, c_float, c_int32
        capi, lib, Options, Handle = _backprop_api()
        self.capi, self.lib, self.ctypes = capi, lib, ctypes
        self._check(lib.bp_set_num_threads(threads), "bp_set_num_threads")
        self.net = capi.NetHandle()
        self._check(lib.bp_net_create(widths[0], WEIGHT_SEED, byref(self.net)), "bp_net_create")
        for l, n in enumerate(widths[1:]):
            act = capi.Activation.RELU if l < len(widths) - 2 else capi.Activation.NONE
            self._check(lib.bp_net_add_dense(self.net, n, act), "bp_net_add_dense")
        self._check(lib.bp_net_set_loss(self.net, capi.Loss.CROSS_ENTROPY), "bp_net_set_loss")
        options = Options()
        self._check(lib.bp_optimizer_options_default(0, byref(options)), "options_default")
        options.learning_rate = LEARNING_RATE
        options.momentum = MOMENTUM
        self.optimizer = Handle()
        self._check(lib.bp_optimizer_create(0, byref(options), byref(self.optimizer)),
                    "bp_optimizer_create")
        self.widths = widths
        if weights is not None:
            self._set_weights(weights)
        self.batch = xs[0].shape[0]
        self.xs, self.ys = xs, ys  # keep the arrays alive: the pointers below point into them
        self.xp = [x.ctypes.data_as(POINTER(c_float)) for x in xs]
        self.yp = [y.ctypes.data_as(POINTER(c_int32)) for y in ys]
        self.in_count = self.batch * widths[0]
        self.out = np.empty((self.batch, widths[-1]), np.float32)
        self.outp = self.out.ctypes.data_as(POINTER(c_float))
        self.out_count = self.out.size
        self._loss = c_float()
        self.lossp = ctypes.pointer(self._loss)

    def _check(self, status, what):
        if status != 0:
            message = self.lib.bp_last_error()
            raise RuntimeError(f"{what} failed with status {status}: {message!r}")

    def _nodes(self):
        from ctypes import byref
        graph = self.capi.GraphHandle()
        self._check(self.lib.bp_net_graph(self.net, byref(graph)), "bp_net_graph")
        nodes = []
        for l in range(len(self.widths) - 1):
            w, b = self.capi.bp_node(), self.capi.bp_node()
            self._check(self.lib.bp_net_layer_nodes(self.net, l, byref(w), byref(b)),
                        "bp_net_layer_nodes")
            nodes.append((w.value, b.value))
        return graph, nodes

    def _set_weights(self, weights):
        from ctypes import POINTER, c_float
        graph, nodes = self._nodes()
        for (wn, bn), (w, b) in zip(nodes, weights):
            for node, array in ((wn, w), (bn, b)):
                array = np.ascontiguousarray(array, np.float32)
                self._check(self.lib.bp_graph_set_value(graph, node,
                                                        array.ctypes.data_as(POINTER(c_float)),
                                                        array.size), "bp_graph_set_value")

    def weights(self):
        from ctypes import POINTER, c_float
        graph, nodes = self._nodes()
        result = []
        for (wn, bn), (k, n) in zip(nodes, zip(self.widths[:-1], self.widths[1:])):
            w, b = np.empty((n, k), np.float32), np.empty(n, np.float32)
            for node, array in ((wn, w), (bn, b)):
                self._check(self.lib.bp_graph_value(graph, node,
                                                    array.ctypes.data_as(POINTER(c_float)),
                                                    array.size), "bp_graph_value")
            result.append((w, b))
        return result

    def step(self, d):
        if self.lib.bp_optimizer_train_step_labels(self.optimizer, self.net, self.batch,
                                                   self.xp[d], self.in_count, self.yp[d],
                                                   self.batch, self.lossp):
            self._check(1, "bp_optimizer_train_step_labels")

    def sync(self):
        pass

    def loss(self):
        return float(self._loss.value)

    def close(self):
        self.lib.bp_optimizer_free(self.optimizer)
        self.lib.bp_net_free(self.net)


class BackpropFourCallTrainer(BackpropTrainer):
    """The same step as four ctypes calls: zero_grad, forward, backward and the optimizer's
    step."""

    name = "backprop-4calls"

    def step(self, d):
        lib, net = self.lib, self.net
        if (lib.bp_net_zero_grad(net)
                or lib.bp_net_forward(net, self.batch, self.xp[d], self.in_count, self.outp,
                                      self.out_count)
                or lib.bp_net_backward_labels(net, self.yp[d], self.batch, self.lossp)
                or lib.bp_optimizer_step(self.optimizer, net)):
            self._check(1, "a training step in four calls")


TRAINERS = {t.name: t for t in (BackpropTrainer, BackpropFourCallTrainer, NumpyTrainer,
                                TorchTrainer, JaxTrainer)}


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------

def trainer_timer(trainer, seconds, warmup):
    """Warms `trainer` up for `warmup` seconds (at least 5 steps) and returns (timing, warm-up
    steps): timing() times one run of as many steps as last about `seconds` at the warm-up's
    rate and returns (steps, seconds)."""
    step, sync, clock = trainer.step, trainer.sync, time.perf_counter
    counter = 0
    start = clock()
    while True:
        step(counter % DATA_BATCHES)
        counter += 1
        if counter >= 5:
            sync()
            elapsed = clock() - start
            if elapsed >= warmup:
                break
    steps, next_step = max(3, int(seconds / (elapsed / counter))), [counter]

    def timing():
        t0 = clock()
        for i in range(steps):
            step((next_step[0] + i) % DATA_BATCHES)
        sync()
        next_step[0] += steps
        return steps, clock() - t0
    return timing, counter


def time_steps(trainer, seconds, warmup, repeats):
    """Warm up as trainer_timer does, then `repeats` timings. Returns the timing record."""
    timing, warmup_steps = trainer_timer(trainer, seconds, warmup)
    runs = [timing() for _ in range(repeats)]
    steps = runs[0][0] if runs else 0
    return {"warmup_steps": warmup_steps, "steps_per_timing": steps,
            "seconds": [elapsed for _, elapsed in runs]}


def command_timer(command):
    """A function that runs `command` (the C harness's train mode with --repeats 1: its own
    warm-up, then one timing) and returns its (steps, seconds)."""
    def timing():
        output = subprocess.run(command, capture_output=True, text=True, check=True,
                                timeout=600).stdout
        record = next(json.loads(line) for line in output.splitlines()
                      if line.startswith("{") and '"seconds"' in line)
        return record["steps_per_timing"], record["seconds"][0]
    return timing


def time_paired(timers, rounds):
    """Interleaved timings: every round calls each timer once, the order rotating from round
    to round. The timings of one round are made within a few seconds of each other, so a ratio
    between two of them does not carry the host's load as it drifts from one minute to the
    next. Returns {name: {"steps": [per round], "seconds": [per round]}}."""
    records = {name: {"steps": [], "seconds": []} for name in timers}
    names = list(timers)
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            steps, seconds = timers[name]()
            records[name]["steps"].append(steps)
            records[name]["seconds"].append(seconds)
    return records


def run_paired(frameworks, threads, configs, seconds, warmup, rounds, c_command=None):
    """One JSON line per configuration: the interleaved timings (time_paired) of `frameworks`,
    built in this process, and, when `c_command` is given, of the C harness as "backprop-c".
    A framework that fails to build or step is left out and its error recorded."""
    for config in configs:
        widths, batch = config["layers"], config["batch"]
        xs, ys = synthetic_data(widths, batch)
        record = {"paired": frameworks, "config": config["name"], "layers": widths,
                  "batch": batch, "threads": threads, "errors": {}}
        trainers, timers = [], {}
        if c_command:
            timers["backprop-c"] = command_timer(c_command)
        for framework in frameworks:
            try:
                trainer = TRAINERS[framework](widths, xs, ys, initial_weights(widths), threads)
                trainer.step(0)
                trainer.sync()
                trainers.append(trainer)
                timers[framework] = trainer_timer(trainer, seconds, warmup)[0]
            except Exception as error:  # reported in RESULTS.md, not fatal for the others
                record["errors"][framework] = f"{type(error).__name__}: {error}"
        try:
            record["timings"] = time_paired(timers, rounds)
        except (subprocess.SubprocessError, StopIteration, ValueError) as error:
            record["errors"]["backprop-c"] = f"{type(error).__name__}: {error}"
        for trainer in trainers:
            if hasattr(trainer, "close"):
                trainer.close()
        print(json.dumps(record), flush=True)


def run_worker(framework, threads, configs, seconds, warmup, repeats):
    cls = TRAINERS[framework]
    for config in configs:
        widths, batch = config["layers"], config["batch"]
        xs, ys = synthetic_data(widths, batch)
        record = {"framework": framework, "config": config["name"], "layers": widths,
                  "batch": batch, "threads": threads}
        try:
            t0 = time.perf_counter()
            trainer = cls(widths, xs, ys, initial_weights(widths), threads)
            trainer.step(0)
            trainer.sync()
            record["setup_seconds"] = time.perf_counter() - t0  # includes JAX's compilation
            record["first_loss"] = trainer.loss()
            record.update(time_steps(trainer, seconds, warmup, repeats))
            record["last_loss"] = trainer.loss()
            if hasattr(trainer, "close"):
                trainer.close()
        except Exception as error:  # reported in RESULTS.md, not fatal for the whole run
            record["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(record), flush=True)


# ------------------------------------------------------------------------------------------------
# The correctness check: the same computation everywhere
# ------------------------------------------------------------------------------------------------

def check_same_computation(configs, steps, frameworks):
    """From libbackprop's own initial weights, trains every available framework for `steps`
    steps on the same data and compares each loss and the final weights with numpy's."""
    for config in configs:
        widths, batch = config["layers"], config["batch"]
        xs, ys = synthetic_data(widths, batch)
        reference_net = BackpropTrainer(widths, xs, ys, None, 1)
        weights = reference_net.weights()  # libbackprop's initialization, shared by everyone
        reference_net.close()
        runs = {}
        for name in frameworks:
            try:
                trainer = TRAINERS[name](widths, xs, ys, weights, 1)
            except Exception as error:
                runs[name] = {"error": f"{type(error).__name__}: {error}"}
                continue
            losses = []
            for s in range(steps):
                trainer.step(s % DATA_BATCHES)
                trainer.sync()
                losses.append(trainer.loss())
            runs[name] = {"losses": losses, "weights": trainer.weights()}
            if hasattr(trainer, "close"):
                trainer.close()
        reference = runs["numpy"]
        for name, run in runs.items():
            record = {"check": config["name"], "framework": name, "steps": steps,
                      "layers": widths, "batch": batch}
            if "error" in run:
                record["error"] = run["error"]
            else:
                loss_diff = max(abs(a - b) for a, b in zip(run["losses"], reference["losses"]))
                weight_diff = max(float(np.max(np.abs(w - rw))) for (w, _), (rw, _)
                                  in zip(run["weights"], reference["weights"]))
                bias_diff = max(float(np.max(np.abs(b - rb))) for (_, b), (_, rb)
                                in zip(run["weights"], reference["weights"]))
                record.update({"first_loss": run["losses"][0], "last_loss": run["losses"][-1],
                               "max_loss_diff": loss_diff,
                               "max_param_diff": max(weight_diff, bias_diff)})
            print(json.dumps(record), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", choices=sorted(TRAINERS))
    parser.add_argument("--paired", help="comma-separated frameworks to time interleaved, in "
                        "one process (time_paired), instead of one --framework")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of --paired timings")
    parser.add_argument("--c-command", help="with --paired: a JSON list, the C harness's train "
                        "command (one timing), timed in the rounds as backprop-c")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", help="JSON list of {name, layers, batch}")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--check", action="store_true",
                        help="run the correctness check instead of timings")
    parser.add_argument("--check-steps", type=int, default=50)
    parser.add_argument("--check-frameworks", default="backprop,numpy,torch,jax")
    args = parser.parse_args()
    configs = json.loads(args.configs) if args.configs else []
    if args.check:
        check_same_computation(configs, args.check_steps, args.check_frameworks.split(","))
    elif args.paired:
        frameworks = args.paired.split(",")
        unknown = set(frameworks) - set(TRAINERS)
        if unknown:
            parser.error(f"unknown frameworks: {', '.join(sorted(unknown))}")
        run_paired(frameworks, args.threads, configs, args.seconds, args.warmup, args.rounds,
                   json.loads(args.c_command) if args.c_command else None)
    else:
        if not args.framework:
            parser.error("--framework is required unless --check or --paired")
        run_worker(args.framework, args.threads, configs, args.seconds, args.warmup,
                   args.repeats)


if __name__ == "__main__":
    sys.exit(main())
