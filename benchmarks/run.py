"""`make bench`: trains the standard configurations with libbackprop (from C and from Python)
and with the baselines that are installed (numpy, PyTorch eager, JAX jit), times cblas_sgemm on
the same shapes, counts heap allocations per step, records peak RSS, checks that every
implementation computes the same thing, and writes benchmarks/RESULTS.md.

    python benchmarks/run.py [--quick] [--threads 1,2] [--configs tiny,small] [--output FILE]
    python benchmarks/run.py --report-from build/bench/results.json   # no measuring

The second form writes RESULTS.md again from the raw results of an earlier run, with the
current report code and results_limits.md.

Every measurement runs in a process of its own (so peak RSS and thread settings belong to one
measurement). One-thread runs are pinned to one CPU. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are
removed from this process's environment, and so from every child's, before anything loads a BLAS:
each OpenBLAS then picks its kernel for the CPU it finds, and RESULTS.md names the kernel.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Unset for the benchmark's own process tree: they force an OpenBLAS kernel (on some of our
#: machines a Haswell kernel that runs sgemm at about half the auto-detected kernel's speed).
FORCED_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
UNSET_VARIABLES = {name: os.environ.pop(name) for name in FORCED_BLAS_VARIABLES
                   if name in os.environ}

#: The standard configurations: widths (input, then each dense layer) and the batch.
CONFIGS = [
    {"name": "tiny", "layers": [2, 16, 2], "batch": 4},
    {"name": "small", "layers": [64, 128, 10], "batch": 32},
    {"name": "mnist-64", "layers": [784, 256, 128, 10], "batch": 64},
    {"name": "mnist-256", "layers": [784, 256, 128, 10], "batch": 256},
    {"name": "wide", "layers": [1024, 2048, 2048, 10], "batch": 128},
]
BASELINES = ("numpy", "torch", "jax")
#: The configurations on which every implementation is checked against numpy, and how closely.
CHECK_CONFIGS = ("tiny", "small", "mnist-64")
#: Configurations also timed with the step as four calls, where the cost of a call shows.
FOUR_CALL_CONFIGS = ("tiny", "small")
#: The configurations whose target is a ratio to the best baseline, which are also timed in
#: paired rounds: libbackprop and every baseline interleaved in one process.
PAIRED_CONFIGS = ("small", "mnist-64", "mnist-256", "wide")
PAIRED_ROUNDS = 9
CHECK_STEPS = 50
CHECK_LOSS_TOLERANCE = 1e-4    # |loss - numpy's loss| at every step, relative to the loss
CHECK_PARAM_TOLERANCE = 1e-3   # max |w - numpy's w| after the last step
#: The targets of the issue.
TINY_C_STEPS = 1_000_000
TINY_PY_OVER_TORCH = 20.0
OVER_BEST_BASELINE = 1.1
GEMM_FRACTION = 0.85
RSS_FACTOR = 1.3

BENCH = ROOT / "build" / "bench" / "bench"
SHIM = ROOT / "build" / "bench" / "libmalloc_count.so"
GEMM_SHIM = ROOT / "build" / "bench" / "libgemm_count.so"
BUILT_LIBRARY = ROOT / "build" / "lib" / "libbackprop.so"
#: The library every measurement loads: a copy of BUILT_LIBRARY taken when the run starts, so
#: that a `make lib` during the run cannot mix two versions in one RESULTS.md.
SNAPSHOT_DIR = ROOT / "build" / "bench" / "lib"
LIBRARY = SNAPSHOT_DIR / "libbackprop.so"


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Running measurements
# ------------------------------------------------------------------------------------------------

def pinned_cpu():
    """The CPU one-thread runs are pinned to: the last one this process may use."""
    return max(os.sched_getaffinity(0))


def child_env(threads, extra=None):
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "bindings" / "python"), str(HERE)] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["BACKPROP_LIBRARY"] = str(LIBRARY)
    # The C harness finds libbackprop.so.0 through its RUNPATH (build/lib), which
    # LD_LIBRARY_PATH overrides: point it at the snapshot.
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(SNAPSHOT_DIR)] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else []))
    if threads == 1:
        # XLA's CPU backend: no Eigen thread pool for the ops, one thread inside each op.
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    else:
        env.pop("XLA_FLAGS", None)
    env.update(extra or {})
    return env


def run_json(command, threads, extra_env=None, timeout=900):
    """Runs a measurement process and returns the JSON objects it printed, one per line."""
    cpu = pinned_cpu()
    preexec = (lambda: os.sched_setaffinity(0, {cpu})) if threads == 1 else None
    result = subprocess.run(command, env=child_env(threads, extra_env), capture_output=True,
                            text=True, preexec_fn=preexec, timeout=timeout)
    records = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        records.append({"error": f"exit status {result.returncode}: {detail}"})
    return records


def cpu_busy_seconds(cpu=None):
    """CPU time spent so far by the whole machine, or by one CPU, from /proc/stat (user, nice,
    system, irq, softirq and steal: steal is time the hypervisor gave to someone else)."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        line = next(line for line in Path("/proc/stat").read_text().splitlines()
                    if line.split()[0] == name)
    except (OSError, StopIteration):
        return 0.0
    fields = line.split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU time of this process and of its finished children."""
    import resource
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Noise:
    """Keeps other work on the machine out of the measurements.

    Foreign CPU use during a measurement is the machine's busy time (/proc/stat; only the pinned
    CPU's for one-thread runs) minus this process tree's own CPU time. A measurement during which others used more than `limit` of a
    CPU is repeated (up to `retries` times) after waiting for the machine to be quiet: a swift
    build on the other core halves the speed of everything here. Waiting is capped at
    `max_wait` seconds in all; what could not be measured quietly is listed in RESULTS.md."""

    def __init__(self, max_wait, limit=0.15, retries=3):
        self.max_wait, self.limit, self.retries = max_wait, limit, retries
        self.waited = 0.0
        self.repeated = []   # measurements repeated because of foreign load
        self.noisy = []      # (what, foreign CPUs) kept although the machine was busy
        self.foreign = []    # foreign CPU use during every kept measurement

    def quiet(self, cpu=None, window=1.0):
        """Waits until others use less than `limit` CPUs (of `cpu` alone, when given) over
        `window` seconds, or until the waiting budget is gone. Returns whether it is quiet."""
        while True:
            busy0, own0, t0 = cpu_busy_seconds(cpu), own_cpu_seconds(), time.monotonic()
            time.sleep(window)
            foreign = ((cpu_busy_seconds(cpu) - busy0) - (own_cpu_seconds() - own0)) / \
                (time.monotonic() - t0)
            if foreign < self.limit:
                return True
            if self.waited >= self.max_wait:
                return False
            if self.waited % 30 < window:
                log(f"other processes use {foreign:.1f} CPUs; waiting")
            self.waited += window

    def measure(self, what, threads, run):
        """Runs `run()` until no foreign load overlapped it (or out of retries). One-thread
        runs are pinned: only foreign load on their CPU counts."""
        cpu = pinned_cpu() if threads == 1 else None
        for attempt in range(self.retries + 1):
            self.quiet(cpu)
            busy0, own0, t0 = cpu_busy_seconds(cpu), own_cpu_seconds(), time.monotonic()
            result = run()
            elapsed = time.monotonic() - t0
            foreign = max(0.0, ((cpu_busy_seconds(cpu) - busy0) - (own_cpu_seconds() - own0))
                          / elapsed)
            for record in (result if isinstance(result, list) else [result]):
                record["foreign_cpus"] = foreign
            if foreign < self.limit or attempt == self.retries or self.waited >= self.max_wait:
                self.foreign.append(foreign)
                if foreign >= self.limit:
                    self.noisy.append((what, foreign))
                return result
            self.repeated.append(what)
            log(f"{what}: other processes used {foreign:.2f} CPUs meanwhile; measuring again")


ALLOCATOR_FRAMES = ("libmalloc_count", "swift_slowAlloc", "swift_allocObject", "Array",
                    "Dictionary", "_ContiguousArrayBuffer", "swift_", "malloc", "operator new")


def attribute_allocations(shape, threads, count):
    """Where the allocations after the first step come from: runs the alloc mode again with the
    tracer on, and names, for each allocation, the first frame that is not the allocator or a
    Swift collection's internals. Returns [(origin, count, bytes)] by count."""
    command = [str(BENCH), "alloc", *shape, "--steps", "50"]
    env = child_env(threads, {"LD_PRELOAD": str(SHIM), "BENCH_ALLOC_TRACE": str(count)})
    traced = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    named = subprocess.run([sys.executable, str(HERE / "symbolize.py")], input=traced.stderr,
                           capture_output=True, text=True).stdout.splitlines()
    origins = {}
    size, origin, blas = None, None, None

    def close():
        if size is not None:
            n, b = origins.get(origin or "unknown", (0, 0))
            origins[origin or "unknown"] = (n + 1, b + size)

    for line in named:
        if line.startswith("allocation of "):
            close()
            size, origin, blas = int(line.split()[2]), None, None
        elif size is not None and origin is None and line.startswith("    "):
            library, _, name = line.strip().partition(": ")
            if library.startswith(("libmalloc_count", "libc.so")):
                continue
            if library.startswith("libopenblas"):
                blas = name  # the outermost OpenBLAS frame so far: cblas_sgemm in the end
                continue
            if any(p in name for p in ALLOCATOR_FRAMES[1:]):
                continue
            origin = (f"{blas} (OpenBLAS) called from {name}" if blas
                      else f"{name} ({library.split('.so')[0]})")
    close()
    return sorted(((o, n, b) for o, (n, b) in origins.items()), key=lambda x: -x[1])


def median_rate(record):
    """(steps/s, relative spread) from a timing record: the median timing, and
    (max - min) / median over the timings."""
    times = record["seconds"]
    med = statistics.median(times)
    return record["steps_per_timing"] / med, (max(times) - min(times)) / med


# ------------------------------------------------------------------------------------------------
# Facts about the machine and the software
# ------------------------------------------------------------------------------------------------

def cpu_facts():
    model, flags, cores, siblings = "unknown", set(), set(), 0
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    physical = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and model == "unknown":
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            cores.add((physical, value))
        elif key == "processor":
            siblings += 1
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1048576:.1f} GiB"
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "avx512_fp16")
            if f in flags]
    return {"model": model, "logical_cpus": siblings or os.cpu_count(),
            "cores": len(cores) or None, "usable_cpus": len(os.sched_getaffinity(0)),
            "simd": simd, "memory": memory, "kernel": platform.release()}


PY_FACTS = r"""
import json, re, ctypes, sys
facts = {"python": sys.version.split()[0]}
try:
    import numpy as np
    facts["numpy"] = np.__version__
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    facts["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    for path in set(re.findall(r"(/\S*openblas\S*\.so\S*)", open("/proc/self/maps").read())):
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            try:
                f = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
            except AttributeError:
                continue
            f.restype = ctypes.c_char_p
            facts["numpy_blas"] += f", kernel {f().decode()}"
            break
except Exception as e:
    facts["numpy_error"] = f"{type(e).__name__}: {e}"
try:
    import torch
    facts["torch"] = torch.__version__
    facts["torch_cpu"] = torch.backends.cpu.get_cpu_capability()
    facts["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "not MKL"
except Exception as e:
    facts["torch_error"] = f"{type(e).__name__}: {e}"
try:
    import jax, jaxlib
    facts["jax"] = f"{jax.__version__} (jaxlib {jaxlib.__version__}), {jax.devices()[0].platform}"
except Exception as e:
    facts["jax_error"] = f"{type(e).__name__}: {e}"
print(json.dumps(facts))
"""


def software_facts():
    out = run_json([sys.executable, "-c", PY_FACTS], 1)
    return out[0] if out else {}


def snapshot_library():
    """Copies the built library to SNAPSHOT_DIR (with its SONAME link); returns its identity."""
    import hashlib
    import shutil
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUILT_LIBRARY, LIBRARY)
    link = SNAPSHOT_DIR / "libbackprop.so.0"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("libbackprop.so")
    digest = hashlib.sha256(LIBRARY.read_bytes()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(LIBRARY.stat().st_mtime, datetime.timezone.utc)
    return f"built {built:%Y-%m-%d %H:%M:%S} UTC, sha256 {digest}"


def ratio_text(ratio):
    """A ratio to the best baseline, to 2 decimals, or 3 where 2 would round a ratio below the
    target up to it (1.097x is not met, and 1.10x would read as if it were)."""
    text = f"{ratio:.2f}x"
    if ratio < OVER_BEST_BASELINE and float(text[:-1]) >= OVER_BEST_BASELINE:
        text = f"{ratio:.3f}x"
    return text


def run_facts(args, started, finished):
    """What build_report needs to know of a run besides its results, kept in the raw results so
    that --report-from can write the report again."""
    names = ("threads", "configs", "seconds", "warmup", "repeats", "passes", "rounds")
    options = {name: getattr(args, name) for name in names}
    return {"started": started.isoformat(), "finished": finished.isoformat(),
            "commit": git_facts(), "options": options}


def report_from(raw_path, output):
    """Writes the report again from an earlier run's raw results (main's --report-from)."""
    try:
        raw = json.loads(Path(raw_path).read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"bench: cannot read {raw_path}: {error}")
    if not isinstance(raw, dict) or "run" not in raw:
        raise SystemExit(f"bench: {raw_path} predates --report-from (no \"run\" facts): "
                         "measure again with make bench")
    data = {k: v for k, v in raw.items() if k not in ("machine", "info", "run")}
    report, _ = build_report(data, raw["run"], raw["machine"], raw["info"])
    Path(output).write_text(report + "\n")
    log(f"wrote {output} from {raw_path}")


def git_facts():
    def git(*args):
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return r.stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "Sources", "include")
    return commit + (" with uncommitted changes in Sources/ or include/" if dirty else "")


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------

def shape_args(config, threads):
    return ["--layers", ",".join(map(str, config["layers"])), "--batch", str(config["batch"]),
            "--threads", str(threads)]


def peak_gflops(data):
    """One core's multiply-add peak in GFLOP/s (`bench peak`), or None when not measured."""
    record = data.get("peak", {}).get("1", {})
    if "seconds" not in record:
        return None
    return record["flops_per_step"] * median_rate(record)[0] / 1e9


def job_rate(section, record):
    """The rate a timed record measured (0 for a failed one): steps/s, or GEMM steps/s."""
    timed = record.get("step") if section == "gemm" else record
    return median_rate(timed)[0] if timed and "seconds" in timed else 0.0


def measure(args):
    configs = [c for c in CONFIGS if c["name"] in args.configs]
    threads_list = args.threads
    timing = ["--seconds", str(args.seconds), "--warmup", str(args.warmup),
              "--repeats", str(args.repeats)]
    noise = Noise(args.max_wait)
    data = {"c": {}, "c4": {}, "gemm": {}, "peak": {}, "alloc": {}, "py": {}, "check": [],
            "skipped": {}}

    facts = software_facts()
    available = ["backprop", "backprop-4calls", "numpy"]
    for name in ("torch", "jax"):
        if name in facts:
            available.append(name)
        else:
            data["skipped"][name] = facts.get(f"{name}_error", "not installed")
    if "numpy" not in facts:
        raise SystemExit("bench: numpy is needed (make setup, or make bench-baselines)")

    log("correctness check: every implementation against numpy")
    check_configs = [c for c in configs if c["name"] in CHECK_CONFIGS] or configs[:1]
    data["check"] = run_json([sys.executable, str(HERE / "frameworks.py"), "--check",
                              "--configs", json.dumps(check_configs),
                              "--check-steps", str(CHECK_STEPS), "--check-frameworks",
                              ",".join(available)], 1)

    log("heap allocations and GEMM calls per step")
    for threads in threads_list:
        for config in configs:
            shape = shape_args(config, threads)
            alloc = run_json([str(BENCH), "alloc", *shape, "--steps", "50"], threads,
                             {"LD_PRELOAD": f"{SHIM} {GEMM_SHIM}"})[0]
            if alloc.get("later_allocations"):
                alloc["origins"] = attribute_allocations(shape, threads,
                                                         min(alloc["later_allocations"], 500))
            data["alloc"][f"{config['name']}/{threads}"] = alloc

    # Every timed measurement is a job: (section, key, threads, command). The jobs of one
    # configuration at one thread count (libbackprop from C, the GEMM-bound rate, and every
    # framework from Python) run one after another, so that the ratios between them come from
    # the same minute: the host's load drifts from one minute to the next.
    jobs = [("peak", "1", 1, [str(BENCH), "peak", *timing])]
    for threads in threads_list:
        for config in configs:
            key = f"{config['name']}/{threads}"
            shape = shape_args(config, threads)
            jobs.append(("c", key, threads, [str(BENCH), "train", *shape, *timing]))
            # The four-call form of the step matters for the per-step overhead only.
            if config["name"] in FOUR_CALL_CONFIGS:
                jobs.append(("c4", key, threads,
                             [str(BENCH), "train", *shape, *timing, "--calls", "4"]))
            jobs.append(("gemm", key, threads, [str(BENCH), "gemm", *shape, *timing]))
            for framework in available:
                if framework == "backprop-4calls" and config["name"] not in FOUR_CALL_CONFIGS:
                    continue
                jobs.append(("py", f"{framework}/{config['name']}/{threads}", threads,
                             [sys.executable, str(HERE / "frameworks.py"), "--framework",
                              framework, "--threads", str(threads), "--configs",
                              json.dumps([config]), *timing]))

    # Noise on a shared machine only ever slows a measurement down: each job runs once per pass,
    # every other pass in reverse order, and the fastest run is kept.
    results = {}
    for number in range(args.passes):
        order = jobs if number % 2 == 0 else jobs[::-1]
        log(f"pass {number + 1} of {args.passes}: {len(order)} timed measurements")
        for section, key, threads, command in order:
            records = noise.measure(f"{section} {key}", threads,
                                    lambda: run_json(command, threads))
            record = next((r for r in records if "error" in r or "seconds" in r
                           or "step" in r), records[0] if records else {"error": "no output"})
            results.setdefault((section, key), []).append(record)
    spreads = []
    for (section, key), runs in results.items():
        rates = [job_rate(section, r) for r in runs]
        best = max(range(len(runs)), key=lambda i: rates[i])
        record = runs[best]
        record["pass_rates"] = rates
        if len(rates) > 1 and min(rates) > 0:
            spreads.append((max(rates) / min(rates) - 1, f"{section} {key}"))
        data[section][key] = record
    data["pass_spreads"] = sorted(spreads, reverse=True)

    # The same ratios from timings interleaved in one process, round by round (time_paired in
    # frameworks.py): a ratio then compares timings made seconds apart, not minutes.
    paired = ["backprop"] + [f for f in available if f in BASELINES]
    data["paired"] = {}
    paired_configs = [c for c in configs if c["name"] in PAIRED_CONFIGS] if len(paired) > 1 else []
    if paired_configs:
        log(f"paired rounds: {', '.join(paired)} in one process, and the C harness")
    for threads in threads_list:
        for config in paired_configs:
            key = f"{config['name']}/{threads}"
            command = [sys.executable, str(HERE / "frameworks.py"), "--paired", ",".join(paired),
                       "--threads", str(threads), "--configs", json.dumps([config]),
                       "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                       "--rounds", str(args.rounds), "--c-command",
                       json.dumps([str(BENCH), "train", *shape_args(config, threads),
                                   "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                                   "--repeats", "1"])]
            records = noise.measure(f"paired {key}", threads, lambda: run_json(command, threads))
            data["paired"][key] = next((r for r in records if "paired" in r or "error" in r),
                                       {"error": "no output"})
    data["noise"] = {"repeated": noise.repeated, "noisy": noise.noisy, "waited": noise.waited,
                     "max_foreign": max(noise.foreign, default=0.0),
                     "mean_foreign": statistics.mean(noise.foreign) if noise.foreign else 0.0}
    data["available"] = available
    data["facts"] = facts
    return data


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

def si(value, digits=3):
    """1234567 -> '1.23M'."""
    if value is None:
        return "n/a"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def mib(n):
    return f"{n / 1048576:.1f}"


def needed_gemm_flops(config):
    """Flops of the GEMMs one step needs: forward and weight gradient of every layer, input
    gradient of every layer but the first (the network's input needs no gradient)."""
    widths, batch = config["layers"], config["batch"]
    layers = list(zip(widths[:-1], widths[1:]))
    return sum(2 * batch * k * n * (2 if i == 0 else 3) for i, (k, n) in enumerate(layers))


def reference_bytes(config):
    """(model bytes, activation bytes): parameters, gradients and momentum buffers; and per
    sample the input, each hidden layer's pre-activation and ReLU output with a gradient for
    each, and the logits, their gradient and the softmax probabilities."""
    widths, batch = config["layers"], config["batch"]
    parameters = sum(k * n + n for k, n in zip(widths[:-1], widths[1:]))
    hidden = sum(widths[1:-1])
    activations = batch * (widths[0] + 4 * hidden + 3 * widths[-1])
    return 3 * 4 * parameters, 4 * activations


def build_report(data, run, machine, info):
    """RESULTS.md's text from a run's results and `run` (run_facts)."""
    args = argparse.Namespace(**run["options"])
    started = datetime.datetime.fromisoformat(run["started"])
    finished = datetime.datetime.fromisoformat(run["finished"])
    configs = [c for c in CONFIGS if c["name"] in args.configs]
    threads_list = args.threads
    lines = []
    add = lines.append
    header = (HERE / "results_header.md").read_text().rstrip("\n")
    add(header)
    add("")
    add("## This run")
    add("")
    add(f"- Date: {started:%Y-%m-%d %H:%M} UTC, {(finished - started).total_seconds() / 60:.1f} "
        f"minutes; libbackprop {info.get('bp_version', '?')} ({info.get('library', '?')}), "
        f"tree at commit {run['commit']}.")
    cores = f"{machine['cores']} cores" if machine["cores"] else "cores unknown"
    add(f"- Machine: {machine['model']}, {machine['logical_cpus']} logical CPUs ({cores}, "
        f"{machine['usable_cpus']} usable here), {', '.join(machine['simd'])}; "
        f"{machine['memory']} RAM; Linux {machine['kernel']}.")
    peak = peak_gflops(data)
    add(f"- One core's float32 multiply-add peak: "
        f"{f'{peak:.1f} GFLOP/s' if peak else 'not measured'} (`bench peak`).")
    add(f"- BLAS under libbackprop: {info.get('config', '?')}; kernel "
        f"**{info.get('corename', '?')}** (openblas_get_corename).")
    if UNSET_VARIABLES:
        forced = ", ".join(f"{k}={v}" for k, v in UNSET_VARIABLES.items())
        add(f"- This machine sets {forced}; the benchmark removed it for its own processes, so "
            f"the kernel above is the one OpenBLAS detected.")
    else:
        add("- Neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE was set.")
    f = data["facts"]
    add(f"- Python {f.get('python', '?')}; numpy {f.get('numpy', '?')} "
        f"({f.get('numpy_blas', '?')}); "
        + (f"PyTorch {f['torch']} ({f.get('torch_blas')}, CPU capability {f.get('torch_cpu')})"
           if "torch" in f else "PyTorch: skipped")
        + "; " + (f"JAX {f['jax']}" if "jax" in f else "JAX: skipped") + ".")
    for name, why in data["skipped"].items():
        add(f"- **{name} skipped**: {why.splitlines()[0][:200]} (run `make bench-baselines`).")
    passes = ("each measurement ran once" if args.passes == 1 else
              f"each measurement ran in {args.passes} passes over all of them (every other one in "
              f"reverse order) and the fastest is shown")
    add(f"- Timings: median of {args.repeats} timings of about {args.seconds} s each after a "
        f"{args.warmup} s warm-up, in a fresh process; {passes}; the measurements of one "
        f"configuration and thread count ran one after another; threads "
        f"{', '.join(map(str, threads_list))}; one-thread runs pinned to CPU {pinned_cpu()}.")
    spreads = data.get("pass_spreads", [])
    if spreads:
        large = [(d, w) for d, w in spreads if d > 0.10]
        add(f"- Passes: the fastest and slowest runs of a measurement differed by more than 10% "
            f"in {len(large)} of {len(spreads)} measurements" + (": " + ", ".join(
                f"{w} ({d:.0%})" for d, w in large[:8]) + ("..." if len(large) > 8 else "")
                if large else "") + ".")
    load = data.get("load", ("?", "?"))
    nz = data["noise"]
    limit = Noise(0).limit
    add(f"- Noise: load average {load[0]} before, {load[1]} after. Other processes used "
        f"{nz['mean_foreign']:.2f} CPUs on average during the kept measurements (at most "
        f"{nz['max_foreign']:.2f}); {len(nz['repeated'])} measurements were repeated because "
        f"others used {limit} CPUs or more meanwhile; {nz['waited']:.0f} s were spent "
        f"waiting for a quiet machine; {len(nz['noisy'])} measurements were kept although "
        "disturbed (the waiting budget was spent)."
        + " Spread is (max - min) / median over the timings; cells marked † spread more than "
          f"10%; cells marked ‡ were measured while others used {limit} CPUs or more, and the "
          "targets that depend on them are not judged.")
    add("")

    def busy(record):
        return record.get("foreign_cpus", 0.0) >= limit

    def c_rate(key, section="c"):
        r = data[section].get(key, {})
        return median_rate(r) if "seconds" in r else (None, None)

    def py_rate(framework, name, threads):
        r = data["py"].get(f"{framework}/{name}/{threads}", {})
        return median_rate(r) if "seconds" in r else (None, None)

    def paired_ratios(name, threads, own):
        """Per round of the paired timings: the rate of `own` (backprop-c, the C harness, or
        backprop, from Python) over the best baseline's in that round, and that baseline's
        name. None when the paired run did not measure both."""
        record = data.get("paired", {}).get(f"{name}/{threads}", {})
        timings = record.get("timings", {})
        bases = [f for f in timings if f in BASELINES]
        if own not in timings or not bases:
            return None

        def rate(framework, number):
            return timings[framework]["steps"][number] / timings[framework]["seconds"][number]

        rounds = []
        for number in range(len(timings[own]["seconds"])):
            best = max(bases, key=lambda f: rate(f, number))
            rounds.append((rate(own, number) / rate(best, number), best))
        return rounds

    def c_busy(key, section="c"):
        return busy(data[section].get(key, {}))

    def py_busy(framework, name, threads):
        return busy(data["py"].get(f"{framework}/{name}/{threads}", {}))

    def cell(rate, spread, scale=1, disturbed=False):
        if rate is None:
            return "n/a"
        return (si(rate * scale) + (" †" if spread is not None and spread > 0.10 else "")
                + (" ‡" if disturbed else ""))

    columns = [("libbackprop C", None), ("libbackprop Python", "backprop"), ("numpy", "numpy"),
               ("PyTorch eager", "torch"), ("JAX jit", "jax")]
    for unit, title in (("samples", "Samples per second"), ("steps", "Steps per second")):
        add(f"## {title}")
        add("")
        add("| config | threads | " + " | ".join(c for c, _ in columns) +
            " | libbackprop C / best baseline | Python / best baseline |")
        add("|---|---|" + "---:|" * (len(columns) + 2))
        for threads in threads_list:
            for config in configs:
                name, batch = config["name"], config["batch"]
                scale = batch if unit == "samples" else 1
                rates, marks = [], []
                for _, fw in columns:
                    rates.append(c_rate(f"{name}/{threads}") if fw is None
                                 else py_rate(fw, name, threads))
                    marks.append(c_busy(f"{name}/{threads}") if fw is None
                                 else py_busy(fw, name, threads))
                best = max((r for (r, _), (_, fw) in zip(rates, columns)
                            if fw in BASELINES and r), default=None)
                c_over = ratio_text(rates[0][0] / best) if best and rates[0][0] else "n/a"
                p_over = ratio_text(rates[1][0] / best) if best and rates[1][0] else "n/a"
                add(f"| {name} ({'-'.join(map(str, config['layers']))}, batch {batch}) | "
                    f"{threads} | " + " | ".join(cell(r, s, scale, m)
                                                 for (r, s), m in zip(rates, marks)) +
                    f" | {c_over} | {p_over} |")
        add("")
    four_calls = [(t, c["name"]) for t in threads_list for c in configs
                  if c["name"] in FOUR_CALL_CONFIGS]
    if four_calls:
        def four_call_rates(t, name):
            c, c_spread = c_rate(f"{name}/{t}", "c4")
            p, p_spread = py_rate("backprop-4calls", name, t)
            return (f"{name}, {t} thread(s): {cell(c, c_spread, 1, c_busy(f'{name}/{t}', 'c4'))}"
                    f" from C, {cell(p, p_spread, 1, py_busy('backprop-4calls', name, t))} from "
                    "Python")
        add("The same step in the four calls it stands for (`bp_net_zero_grad`, `bp_net_forward`, "
            "`bp_net_backward_labels`, `bp_optimizer_step`), in steps per second: " +
            "; ".join(four_call_rates(t, name) for t, name in four_calls) + ".")
        add("")

    paired_rows = []
    for threads in threads_list:
        for config in configs:
            cells, names, count = [], [], 0
            for own in ("backprop-c", "backprop"):
                rounds = paired_ratios(config["name"], threads, own) or []
                ratios = [r for r, _ in rounds]
                names += [n for _, n in rounds]
                count = max(count, len(rounds))
                cells.append(f"{ratio_text(statistics.median(ratios))} ({min(ratios):.2f}-"
                             f"{max(ratios):.2f})" if ratios else "n/a")
            if names:
                paired_rows.append(f"| {config['name']} | {threads} | {count} | {cells[0]} | "
                                   f"{cells[1]} | {max(set(names), key=names.count)} |")
    if paired_rows:
        add("## Paired rounds")
        add("")
        add("libbackprop and every baseline timed in turn, round after round: the baselines "
            "and libbackprop from Python (one ctypes call a step) built in one process, and the "
            "C harness started afresh by it each round (its own warm-up, then one timing). Each "
            f"round times each of them once for about {args.seconds} s, the order rotating from "
            "round to round (`frameworks.py --paired`). A round's ratio is libbackprop's "
            "samples/s over the best baseline's in that round, so it compares timings made "
            "seconds apart, where the tables above compare runs made up to a minute apart: load "
            "from elsewhere that lasts longer than a round slows all of a round's timings alike "
            "and leaves its ratio. Shown: the median ratio over the rounds (lowest-highest).")
        add("")
        add("| config | threads | rounds | C / best baseline | Python / best baseline | best "
            "baseline most often |")
        add("|---|---|---:|---:|---:|---|")
        for row in paired_rows:
            add(row)
        add("")

    # GEMM-bound
    add("## Against the GEMM-bound rate")
    add("")
    add("The GEMM-bound rate is the rate at which `cblas_sgemm` alone runs the GEMMs of one "
        "training step (forward, weight gradient, and input gradient except for the first layer) "
        "on the same shapes, transposes and thread count. The update floor adds a plain C loop "
        "doing SGD with momentum over the same parameters, which any implementation must also "
        "pay (it is memory-bound). The FMA peak is one core's multiply-add throughput (`bench "
        "peak`) times the thread count: no GEMM runs faster. The last column counts the "
        "`cblas_sgemm` calls libbackprop makes in a step (an LD_PRELOAD shim, "
        "benchmarks/gemm_count.c) and their flops against those the step needs: libbackprop runs "
        "most products in its own kernel, which the shim does not see, and a product it gives "
        "OpenBLAS on two threads is one call per part (BackpropKernels/split_gemm.c).")
    add("")
    add("| config | threads | GEMM GFLOP/s | of FMA peak | GEMM-bound samples/s | GEMM + update "
        "floor samples/s | libbackprop C samples/s | of GEMM-bound | of GEMM + update floor | "
        "non-GEMM time per step | libbackprop's GEMMs per step |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    peak = peak_gflops(data)
    gemm_fraction, gemm_busy, gemm_bound = {}, {}, {}

    def gemm_work(key, config):
        """libbackprop's cblas_sgemm calls and flops per step (counted by libgemm_count.so in
        the alloc run), against the flops the step needs."""
        a = data["alloc"].get(key, {})
        if "later_gemm_calls" not in a or not a.get("later_steps"):
            return "n/a"
        steps = a["later_steps"]
        if a["later_gemm_calls"] == 0:
            # Small products run in libbackprop's own loops, most others in its own kernel
            # (BackpropKernels/packed_gemm.c).
            return "none: all in libbackprop's own loops and kernel"
        share = a['later_gemm_flops'] / steps / needed_gemm_flops(config)
        rest = "" if share > 0.995 else "; the rest in libbackprop's own kernel"
        return f"{a['later_gemm_calls'] / steps:g} calls, {share:.2f}x the flops needed{rest}"

    for threads in threads_list:
        for config in configs:
            key = f"{config['name']}/{threads}"
            g = data["gemm"].get(key, {})
            if "step" not in g:
                add(f"| {config['name']} | {threads} | n/a | | | | | | | | |")
                continue
            gemm_rate, _ = median_rate(g["step"])
            upd_rate, _ = median_rate(g["update"])
            t_gemm, t_upd = 1 / gemm_rate, 1 / upd_rate
            flops = sum(2 * x["m"] * x["n"] * x["k"] for x in g["gemms"])
            batch = config["batch"]
            c, _ = c_rate(key)
            frac = c / gemm_rate if c else None
            floor = 1 / (t_gemm + t_upd)
            gemm_fraction[key] = frac
            gemm_bound[key] = gemm_rate * batch
            gemm_busy[key] = busy(g) or c_busy(key)
            mark = " ‡" if gemm_busy[key] else ""
            extra = f"{(1 / c - t_gemm) * 1e6:.1f} µs" if c else "n/a"
            gflops = flops * gemm_rate / 1e9
            of_peak = f"{gflops / (peak * threads):.0%}" if peak else "n/a"
            add(f"| {config['name']} | {threads} | {gflops:.1f} | {of_peak} | "
                f"{si(gemm_rate * batch)} | {si(floor * batch)} | "
                f"{si(c * batch) if c else 'n/a'} | "
                f"{f'{frac:.0%}' if frac else 'n/a'}{mark} | "
                f"{f'{c / floor:.0%}' if c else 'n/a'}{mark} | {extra} | "
                f"{gemm_work(key, config)} |")
    add("")

    # Memory and allocations
    add("## Memory and heap allocations (C benchmark)")
    add("")
    add("Reference = parameters + gradients + momentum buffers (3 x 4 bytes per parameter) + "
        "activations (4 bytes x batch x (inputs + 4 x hidden units + 3 x outputs): each hidden "
        "layer's pre-activation and ReLU output with their gradients; logits, their gradient "
        "and the softmax). Baseline = the peak RSS of the tiny configuration's process at the "
        "same thread count (runtime, OpenBLAS and its threads, a network of 82 parameters). "
        "Ratio = (peak RSS - baseline - the harness's data) / reference; the target is at most "
        f"{RSS_FACTOR}. Peak RSS is the high-water mark of the process (VmHWM); the training "
        "peak is the same mark reset after building the network and before the first step, so "
        "the two apart show whether building or training sets the peak. Allocations are counted "
        "by an LD_PRELOAD shim (benchmarks/malloc_count.c) in the first step and in each of the "
        "next 50.")
    add("")
    add("| config | threads | parameters | reference MiB | baseline MiB | harness data MiB | "
        "peak RSS MiB | ratio | training peak MiB | ratio | allocations in step 1 | "
        "allocations in steps 2-51 |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rss_ratio, train_ratio, allocs, origins = {}, {}, {}, {}
    for threads in threads_list:
        base = data["c"].get(f"tiny/{threads}", {}).get("peak_rss_bytes")
        for config in configs:
            key = f"{config['name']}/{threads}"
            r, a = data["c"].get(key, {}), data["alloc"].get(key, {})
            model, act = reference_bytes(config)
            peak, train = r.get("peak_rss_bytes"), r.get("training_peak_rss_bytes")
            data_bytes = r.get("data_bytes", 0)

            def ratio_of(value, store):
                if config["name"] == "tiny":
                    return "baseline"
                if not (value and value > 0 and base):
                    return "n/a"
                excess = value - base - data_bytes
                if model + act < 1048576:
                    # Below a MiB, page-level noise in the baseline swamps the reference.
                    return f"n/a ({mib(max(excess, 0))} MiB over)"
                store[key] = max(excess, 0) / (model + act)
                return f"{store[key]:.2f}"

            peak_text = ratio_of(peak, rss_ratio)
            train_text = ratio_of(train, train_ratio)
            if "later_allocations" in a:
                allocs[key] = (a["first_step_allocations"], a["later_allocations"])
                steps = [i + 2 for i, n in enumerate(a.get("later_by_step", [])) if n]
                where = ""
                if steps:
                    where = (f", in step {steps[0]}" if len(steps) == 1 else
                             f", in {len(steps)} of the steps" if len(steps) > 3 else
                             f", in steps {', '.join(map(str, steps))}")
                later = f"{a['later_allocations']} ({si(a['later_bytes'])}B){where}"
                if a.get("origins"):
                    origins[key] = a["origins"]
                first = f"{a['first_step_allocations']} ({si(a['first_step_bytes'])}B)"
            else:
                first, later = f"n/a ({a.get('error', '?')})", "n/a"
            add(f"| {config['name']} | {threads} | {r.get('parameters', 'n/a')} | "
                f"{mib(model + act)} | {mib(base) if base else 'n/a'} | {mib(data_bytes)} | "
                f"{mib(peak) if peak else 'n/a'} | {peak_text} | "
                f"{mib(train) if train and train > 0 else 'n/a'} | {train_text} | "
                f"{first} | {later} |")
    add("")
    if origins:
        add("Where the allocations after step 1 come from (the first caller that is not the "
            "allocator or a Swift collection; benchmarks/symbolize.py names the frames):")
        add("")
        for key, found in origins.items():
            add(f"- {key}: " + "; ".join(f"{n} x {origin} ({si(b / n)}B each)"
                                         for origin, n, b in found[:4]) + ".")
        add("")

    # Targets
    add("## Targets")
    add("")
    add("The targets are stated for one thread; the lines for two threads are for information.")
    add("")
    verdicts = []

    def verdict(ok, disturbed=False):
        if disturbed:
            return "**not judged** (measured while the machine was busy)"
        return "**met**" if ok else "**not met**"

    for threads in threads_list:
        c, _ = c_rate(f"tiny/{threads}")
        if c:
            verdicts.append(f"- tiny from C, {threads} thread(s): {si(c)} steps/s "
                            f"({1e6 / c:.2f} µs a step) against {si(TINY_C_STEPS)}: "
                            f"{verdict(c >= TINY_C_STEPS, c_busy(f'tiny/{threads}'))}.")
        p, _ = py_rate("backprop", "tiny", threads)
        t, _ = py_rate("torch", "tiny", threads)
        four, _ = py_rate("backprop-4calls", "tiny", threads)
        disturbed = py_busy("backprop", "tiny", threads) or py_busy("torch", "tiny", threads)
        if p and t:
            verdicts.append(
                f"- tiny from Python, {threads} thread(s): {si(p)} steps/s, {p / t:.1f}x "
                f"PyTorch eager's {si(t)}, against {TINY_PY_OVER_TORCH:.0f}x: "
                f"{verdict(p >= TINY_PY_OVER_TORCH * t, disturbed)}. One ctypes call a step "
                f"({1e6 / p:.1f} µs)" + (f"; four calls a step reach {si(four)} steps/s = "
                                         f"{four / t:.1f}x." if four else "."))
        elif p:
            verdicts.append(f"- tiny from Python, {threads} thread(s): {si(p)} steps/s; PyTorch "
                            "not measured: target not evaluated.")
    for threads in threads_list:
        for config in configs:
            name = config["name"]
            if name == "tiny":
                continue
            base_rates = {fw: py_rate(fw, name, threads)[0] for fw in BASELINES}
            base_rates = {k: v for k, v in base_rates.items() if v}
            if not base_rates:
                continue
            best_fw = max(base_rates, key=base_rates.get)
            best = base_rates[best_fw]
            baseline_busy = any(py_busy(fw, name, threads) for fw in base_rates)
            batch = config["batch"]
            parts = []
            for label, rate, own_busy in (
                    ("C", c_rate(f"{name}/{threads}")[0], c_busy(f"{name}/{threads}")),
                    ("Python", py_rate("backprop", name, threads)[0],
                     py_busy("backprop", name, threads))):
                if rate:
                    parts.append(f"{label} {ratio_text(rate / best)} "
                                 f"{verdict(rate >= OVER_BEST_BASELINE * best, own_busy or baseline_busy)}")
            for label, own in (("C", "backprop-c"), ("Python", "backprop")):
                rounds = paired_ratios(name, threads, own)
                if rounds:
                    median = statistics.median(r for r, _ in rounds)
                    paired_busy = busy(data["paired"][f"{name}/{threads}"])
                    parts.append(f"{label} in paired rounds {ratio_text(median)} (median of "
                                 f"{len(rounds)}) {verdict(median >= OVER_BEST_BASELINE, paired_busy)}")
            needed = OVER_BEST_BASELINE * best * batch
            bound = gemm_bound.get(f"{name}/{threads}")
            reach = (f" The target, {si(needed)} samples/s, is {needed / bound:.0%} of the "
                     "GEMM-bound rate" + (": beyond what this BLAS's GEMMs allow." if needed > bound
                                          else ".") if bound else "")
            verdicts.append(f"- {name}, {threads} thread(s): best baseline {best_fw} "
                            f"{si(best * batch)} samples/s; libbackprop " + ", ".join(parts) +
                            f" (target {OVER_BEST_BASELINE}x).{reach}")
    for threads in threads_list:
        for name in ("mnist-256", "wide"):
            key = f"{name}/{threads}"
            frac = gemm_fraction.get(key)
            if frac is not None:
                verdicts.append(f"- {name}, {threads} thread(s): {frac:.0%} of the GEMM-bound "
                                f"rate against {GEMM_FRACTION:.0%}: "
                                f"{verdict(frac >= GEMM_FRACTION, gemm_busy.get(key))}.")
    for threads in threads_list:
        runs = {k: v for k, v in allocs.items() if k.endswith(f"/{threads}")}
        if not runs:
            continue
        bad = {k: v for k, v in runs.items() if v[1] != 0}
        label = f"- Zero heap allocations per step after the first, {threads} thread(s): "
        if bad:
            verdicts.append(label + "**not met**: " +
                            "; ".join(f"{k}: {v[1]} in 50 steps" for k, v in bad.items()) + ".")
        else:
            verdicts.append(label + f"**met** ({len(runs)} configurations).")
    if rss_ratio:
        worst = max(rss_ratio, key=rss_ratio.get)
        ok = all(v <= RSS_FACTOR for v in rss_ratio.values())
        line = (f"- Peak RSS within {RSS_FACTOR}x of the reference plus the baseline: "
                f"{verdict(ok)} (worst {worst}: {rss_ratio[worst]:.2f})")
        if train_ratio:
            worst_train = max(train_ratio, key=train_ratio.get)
            line += (f"; while training alone the worst is {worst_train}: "
                     f"{train_ratio[worst_train]:.2f}")
        verdicts.append(line + ".")
    lines.extend(verdicts)
    add("")
    # What limits the targets not met: written by hand from profiles, kept next to the figures.
    add((HERE / "results_limits.md").read_text().rstrip("\n"))
    add("")

    # Correctness
    add("## Correctness check")
    add("")
    add(f"Before timing, each implementation trains {CHECK_STEPS} steps from libbackprop's own "
        "initial weights on the same data, one thread; every loss and the final parameters are "
        f"compared with numpy's (pass: loss within {CHECK_LOSS_TOLERANCE:g} relative at every "
        f"step, parameters within {CHECK_PARAM_TOLERANCE:g}). Differences of 1e-5 in the "
        "parameters appear when a pre-activation lands within rounding of zero and ReLU "
        "decides differently; they do not grow.")
    add("")
    add("| config | implementation | first loss | last loss | max loss difference | "
        "max parameter difference | result |")
    add("|---|---|---:|---:|---:|---:|---|")
    check_failed = []
    for r in data["check"]:
        if "check" not in r:
            add(f"| ? | ? | | | | | error: {r.get('error')} |")
            check_failed.append("?")
            continue
        if "error" in r:
            add(f"| {r['check']} | {r['framework']} | | | | | error: {r['error'][:120]} |")
            continue
        ok = (r["max_loss_diff"] <= CHECK_LOSS_TOLERANCE * max(1.0, abs(r["last_loss"]))
              and r["max_param_diff"] <= CHECK_PARAM_TOLERANCE)
        if not ok:
            check_failed.append(f"{r['check']}/{r['framework']}")
        add(f"| {r['check']} | {r['framework']} | {r['first_loss']:.6f} | "
            f"{r['last_loss']:.6f} | {r['max_loss_diff']:.1e} | {r['max_param_diff']:.1e} | "
            f"{'pass' if ok else '**FAIL**'} |")
    add("")

    # GEMM detail
    add("## GEMM detail: cblas_sgemm alone on each shape (GFLOP/s)")
    add("")
    add("m x n x k as in C = A B with C m x n; forward Z = X W^T, weight grad dW = dZ^T X, "
        "input grad dX = dZ W.")
    add("")
    add("| config | layer | GEMM | m x n x k | " +
        " | ".join(f"{t} thread(s)" for t in threads_list) + " |")
    add("|---|---|---|---|" + "---:|" * len(threads_list))
    for config in configs:
        if config["name"] == "tiny":
            continue
        first = data["gemm"].get(f"{config['name']}/{threads_list[0]}", {})
        for i, g in enumerate(first.get("gemms", [])):
            cells = []
            for threads in threads_list:
                gg = data["gemm"].get(f"{config['name']}/{threads}", {}).get("gemms", [])
                if i < len(gg):
                    rate, _ = median_rate(gg[i])
                    cells.append(f"{2 * g['m'] * g['n'] * g['k'] * rate / 1e9:.1f}")
                else:
                    cells.append("n/a")
            add(f"| {config['name']} | {g['layer']} | {g['kind']} | "
                f"{g['m']} x {g['n']} x {g['k']} | " + " | ".join(cells) + " |")
    add("")
    errors = failed_measurements(data)
    if errors:
        add("## Errors")
        add("")
        lines.extend(f"- {e}" for e in errors)
        add("")
    return "\n".join(lines), check_failed


def failed_measurements(data):
    """'key: error' for every measurement that did not run, and for every framework the paired
    rounds left out."""
    failed = [f"{k}: {v['error']}" for part in ("c", "c4", "gemm", "peak", "alloc", "py", "paired")
              for k, v in data.get(part, {}).items() if isinstance(v, dict) and "error" in v]
    failed += [f"paired {k} {framework}: {error}" for k, v in data.get("paired", {}).items()
               for framework, error in v.get("errors", {}).items()]
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short timings, for trying the harness (not for RESULTS.md)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--configs", default=",".join(c["name"] for c in CONFIGS))
    parser.add_argument("--seconds", type=float, default=0.4,
                        help="length of one timing (default 0.4)")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=5, help="timings per measurement")
    parser.add_argument("--passes", type=int, default=3,
                        help="runs of every measurement; the fastest is kept (default 3)")
    parser.add_argument("--rounds", type=int, default=PAIRED_ROUNDS,
                        help=f"rounds of the paired timings (default {PAIRED_ROUNDS})")
    parser.add_argument("--max-wait", type=float, default=300,
                        help="seconds to wait in all for other processes to leave the CPUs")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when any measurement failed, not only the "
                             "correctness check (make bench-smoke)")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--raw", default=str(ROOT / "build" / "bench" / "results.json"))
    parser.add_argument("--report-from", metavar="RAW",
                        help="measure nothing: write --output again from the raw results of an "
                             "earlier run (after a change to the report or results_limits.md)")
    args = parser.parse_args()
    if args.report_from:
        report_from(args.report_from, args.output)
        return 0
    args.threads = [int(t) for t in args.threads.split(",")]
    args.configs = args.configs.split(",")
    unknown = set(args.configs) - {c["name"] for c in CONFIGS}
    if unknown:
        parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    if args.quick:
        args.seconds, args.warmup, args.repeats, args.passes, args.rounds = 0.1, 0.05, 3, 1, 3
    for path in (BENCH, SHIM, GEMM_SHIM, BUILT_LIBRARY):
        if not path.exists():
            raise SystemExit(f"bench: {path} is missing: run `make bench`, which builds it")
    if UNSET_VARIABLES:
        log("unset for this run: " + ", ".join(f"{k}={v}" for k, v in UNSET_VARIABLES.items()))

    started = datetime.datetime.now(datetime.timezone.utc)
    library = snapshot_library()
    log(f"measuring a copy of {BUILT_LIBRARY} ({library})")
    load_before = os.getloadavg()[0]
    info = run_json([str(BENCH), "info"], 1)[0]
    log(f"BLAS kernel {info.get('corename')}; python {sys.executable}")
    data = measure(args)
    data["load"] = (f"{load_before:.2f}", f"{os.getloadavg()[0]:.2f}")
    finished = datetime.datetime.now(datetime.timezone.utc)
    machine = cpu_facts()
    info["library"] = library
    run = run_facts(args, started, finished)
    report, check_failed = build_report(data, run, machine, info)
    Path(args.output).write_text(report + "\n")
    raw = Path(args.raw)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"machine": machine, "info": info, "run": run, **data}, indent=1,
                              default=str) + "\n")
    log(f"wrote {args.output} and {raw} in {(finished - started).total_seconds():.0f} s")
    print(report[report.index("## Samples per second"):report.index("## Memory")])
    if check_failed:
        log("correctness check FAILED: " + ", ".join(check_failed))
        return 1
    if args.strict and failed_measurements(data):
        log("measurements FAILED: " + "; ".join(failed_measurements(data)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
