"""API-sequence fuzzing: random sequences of C calls with random and hostile arguments.

Hypothesis draws sequences of calls to the functions of ``backprop._capi.DECLARATIONS`` (every
function of the header but bp_graph_custom, whose callbacks are tested on their own), building
each argument from its C type: handles that are live, NULL, freed, of the wrong kind or foreign
pointers; node ids that exist, belong to another graph or never existed; sizes that are small
or absurd (2^31 up to SIZE_MAX); counts that are honest or above SIZE_MAX / 2; doubles that are
NaN, infinite or huge; enum values out of range; paths that are missing, folders, devices or not
UTF-8; options structs with hostile fields or a size too small; checkpoint bytes that are valid,
truncated or bit-flipped. Every call must:

  - return a status of the header (``Status``), and not BP_ERR_INTERNAL, which the header calls
    a bug in the library;
  - on failure, leave a non-empty ``bp_last_error()`` and no handle in its out-pointer;
  - fail whenever a handle argument is not a live handle of its kind, or a count is above
    SIZE_MAX / 2 (the header: "more than any memory can hold, is BP_ERR_OUT_OF_MEMORY").

The sequences run in a child process, so that a crash fails the test instead of killing pytest;
the child writes each call to a trace file before making it, and a crash reports the last calls.
The child's address space is capped, so that an absurd size fails to allocate instead of
filling the machine's memory.

Bounded by default (``BACKPROP_FUZZ_EXAMPLES``, 150 sequences, derandomized so that every run
makes the same calls); ``make fuzz-api FUZZ_EXAMPLES=5000`` runs longer with a fresh random seed
(``BACKPROP_FUZZ_RANDOM=1``). docs/RELIABILITY.md records the latest long run.
"""

import ctypes
import os
import signal
import subprocess
import sys
from ctypes import (POINTER, byref, c_char_p, c_double, c_float, c_int, c_int32, c_size_t,
                    c_uint8, c_void_p)
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("BACKPROP_FUZZ_EXAMPLES", "150"))
RANDOM = os.environ.get("BACKPROP_FUZZ_RANDOM", "") not in ("", "0")
CHILD = "BACKPROP_FUZZ_CHILD"
TRACE = "BACKPROP_FUZZ_TRACE"
SIZE_MAX = 2 ** 64 - 1
CAPACITY_FUNCTIONS = ("bp_graph_shape", "bp_net_save_buffer")


def test_random_call_sequences_never_crash_and_fail_cleanly(tmp_path):
    trace = tmp_path / "calls.txt"
    environment = dict(os.environ, **{CHILD: "1", TRACE: str(trace), "PYTHONPATH": os.pathsep.join(
        [str(PYTHON_DIR)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))})
    timeout = max(600, EXAMPLES)
    try:
        child = subprocess.run([sys.executable, __file__, str(tmp_path)], env=environment,
                               capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {timeout} s (a hang?); the last calls:\n{tail(trace)}")
    output = (child.stdout + child.stderr).strip()
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        pytest.fail(f"the library killed the process ({name}); the last calls, the one that "
                    f"crashed last:\n{tail(trace)}\n\nits output:\n{output[-3000:]}")
    assert child.returncode == 0, output[-6000:]
    print(output.splitlines()[-1] if output else "")


def tail(path, lines=25):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no trace written)"


# ------------------------------------------------------------------------------------------------
# The child: everything below runs only there.
# ------------------------------------------------------------------------------------------------

def run_child(folder):
    import resource

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from backprop import _capi

    # Absurd sizes must fail to allocate, not succeed and fill the machine's memory.
    with open("/proc/self/status") as status:
        virtual = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (virtual + (3 << 30), resource.RLIM_INFINITY))

    world_files = prepare_files(_capi, Path(folder))
    trace = open(os.environ[TRACE], "w")
    counts = {"calls": 0, "failed": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(st.data())
    def sequences(data):
        world = World(_capi, data, world_files, trace, counts)
        try:
            world.populate()
            for _ in range(data.draw(st.integers(1, 40), label="length")):
                world.call(data.draw(st.sampled_from(world.functions), label="function"))
        finally:
            world.release()

    sequences()
    print(f"{EXAMPLES} sequences, {counts['calls']} calls ({counts['failed']} refused with a "
          f"documented status)")


def prepare_files(capi, folder):
    """Paths and bytes the calls can use: a CSV file, a checkpoint, and hostile paths."""
    lib = capi.lib
    csv = folder / "data.csv"
    csv.write_text("a,b,c,label\n1,2,3,0\n4,5,6,1\n-1,0.5,2e-3,2\n7,8,9,1\n")
    net = capi.NetHandle()
    assert lib.bp_net_create(3, 1, byref(net)) == 0
    assert lib.bp_net_add_dense(net, 4, capi.Activation.RELU) == 0
    assert lib.bp_net_add_dense(net, 2, capi.Activation.NONE) == 0
    checkpoint = folder / "model.safetensors"
    assert lib.bp_net_save(net, None, str(checkpoint).encode()) == 0
    size = c_size_t()
    assert lib.bp_net_save_buffer(net, None, None, 0, byref(size)) == 0
    raw = (c_uint8 * size.value)()
    assert lib.bp_net_save_buffer(net, None, raw, size, byref(size)) == 0
    assert lib.bp_net_free(net) == 0
    (folder / "saved").mkdir()
    return {
        # Saves may overwrite these; every sequence starts from their original bytes.
        "originals": {csv: csv.read_bytes(), checkpoint: checkpoint.read_bytes()},
        "csv": str(csv).encode(),
        "paths": [None, b"", str(csv).encode(), str(checkpoint).encode(),
                  str(folder / "missing.safetensors").encode(), str(folder).encode(),
                  str(folder / "saved" / "out.safetensors").encode(),
                  str(folder / "no" / "such" / "folder").encode(), b"/dev/full", b"/dev/null",
                  str(folder).encode() + b"/not-utf8-\xff\xfe"],
        "checkpoint": bytes(raw),
    }


class World:
    """The handles, nodes and files of one sequence, and the calls made on them."""

    def __init__(self, capi, data, files, trace, counts):
        from hypothesis import strategies as st
        self.capi, self.lib, self.data, self.files = capi, capi.lib, data, files
        self.st, self.trace, self.counts = st, trace, counts
        self.handle_types = {capi.GraphHandle: "graph", capi.NetHandle: "net",
                             capi.OptimizerHandle: "optimizer", capi.DatasetHandle: "dataset"}
        self.out_handle_types = {POINTER(t): kind for t, kind in self.handle_types.items()}
        self.type_of_kind = {kind: t for t, kind in self.handle_types.items()}
        self.struct_types = {POINTER(cls): cls for cls in capi.STRUCTS.values()}
        self.live = {kind: [] for kind in self.type_of_kind}  # addresses
        self.borrowed = {}  # graph address -> the network that owns it
        self.dead = []
        self.nodes = [0, 1, 2]
        self.functions = sorted(name for name, _, argtypes in capi.DECLARATIONS
                                if name != "bp_graph_custom")
        self.signatures = {name: (restype, argtypes) for name, restype, argtypes
                           in capi.DECLARATIONS}
        self.keep = []  # buffers that must outlive the call

    # ---- drawing -------------------------------------------------------------------------

    def draw(self, strategy, label=None):
        return self.data.draw(strategy, label=label)

    def one_of(self, *choices):
        return self.draw(self.st.sampled_from(choices))

    def chance(self, p):
        return self.draw(self.st.integers(0, 999)) < p * 1000

    def is_live(self, address, kind=None):
        kinds = [kind] if kind else list(self.live)
        return any(address in self.live[k] for k in kinds)

    def handle(self, kind):
        """(argument, address, valid): a handle argument of `kind` and whether it is one."""
        others = [a for k, found in self.live.items() if k != kind for a in found]
        choice = self.one_of("live", "live", "live", "live", "live", "live", "live", "null",
                             "dead", "other", "foreign")
        if choice == "live" and self.live[kind]:
            address = self.one_of(*self.live[kind])
        elif choice == "dead" and self.dead:
            address = self.one_of(*self.dead)
        elif choice == "other" and others:
            address = self.one_of(*others)
        elif choice == "foreign":
            buffer = (c_uint8 * 64)()
            self.keep.append(buffer)
            address = self.one_of(ctypes.addressof(buffer), 8, 0xDEADBEEF000, 2 ** 47 - 4096)
        else:
            address = None
        argument = ctypes.cast(c_void_p(address), self.type_of_kind[kind])
        return argument, address, address is None or self.is_live(address, kind)

    def size(self, absurd):
        small = self.draw(self.st.sampled_from([0, 1, 1, 2, 2, 3, 4, 5, 8]))
        if absurd and self.chance(0.5):
            return self.one_of(2 ** 31, 2 ** 40, 2 ** 62, 2 ** 63, SIZE_MAX)
        return small

    def int32(self):
        pool = self.nodes[-8:] + [0, 1, 2, 3, 4, 5, 6, -1, -2, 99, 2 ** 31 - 1, -2 ** 31]
        return self.one_of(*pool)

    def real(self):
        return self.one_of(0.0, 1.0, -1.0, 0.5, 0.01, 1e-8, 3.0, 1e300, -1e300, 5e-324,
                           float("nan"), float("inf"), float("-inf"))

    def values(self, ctype, length):
        if ctype in (c_float, c_double):
            return [self.one_of(0.0, 1.0, -1.0, 0.25, 2.0, 1e30, float("nan"), float("inf"))
                    if self.chance(0.1) else self.draw(self.st.floats(-4, 4), label="value")
                    for _ in range(length)]
        if ctype is c_size_t:
            return [self.one_of(1, 2, 3, 4, 0, 2 ** 40) if self.chance(0.1)
                    else self.one_of(1, 2, 3, 4) for _ in range(length)]
        if ctype is c_uint8:
            return None
        return [self.int32() for _ in range(length)]

    def array(self, ctype, writable_room=0):
        """A buffer of `ctype` (or NULL) and its length."""
        if self.chance(0.08):
            return None, 0
        length = self.draw(self.st.integers(0, 40), label="length")
        if ctype is c_uint8:
            buffer = self.checkpoint_bytes(max(length, writable_room))
            return buffer, len(buffer)
        length = max(length, writable_room)
        buffer = (ctype * max(length, 1))(*self.values(ctype, length))
        self.keep.append(buffer)
        return buffer, length

    def checkpoint_bytes(self, room):
        raw = bytearray(self.files["checkpoint"])
        how = self.one_of("valid", "truncated", "flipped", "random", "empty")
        if how == "truncated":
            raw = raw[:self.draw(self.st.integers(0, len(raw)))]
        elif how == "flipped":
            for _ in range(self.draw(self.st.integers(1, 8))):
                at = self.draw(self.st.integers(0, len(raw) - 1))
                raw[at] ^= 1 << self.draw(self.st.integers(0, 7))
        elif how == "random":
            raw = bytearray(self.draw(self.st.binary(max_size=64)))
        elif how == "empty":
            raw = bytearray()
        raw.extend(bytes(max(0, room - len(raw))))
        buffer = (c_uint8 * max(len(raw), 1)).from_buffer_copy(bytes(raw) or b"\0")
        self.keep.append(buffer)
        return buffer

    def struct(self, cls):
        """An options struct: the library's defaults, then hostile changes; or a size too
        small or larger than this header's (with real room behind it)."""
        capi = self.capi
        instance = cls()
        defaults = {"bp_csv_options": lambda o: self.lib.bp_csv_options_default(byref(o)),
                    "bp_fit_options": lambda o: self.lib.bp_fit_options_default(byref(o)),
                    "bp_optimizer_options": lambda o: self.lib.bp_optimizer_options_default(
                        self.one_of(*list(capi.OptimizerKind)), byref(o)),
                    "bp_schedule_options": lambda o: self.lib.bp_schedule_options_default(
                        self.one_of(*list(capi.ScheduleRule)), byref(o))}
        if cls.__name__ in defaults:
            defaults[cls.__name__](instance)
        instance.size = ctypes.sizeof(cls)
        for name, ctype in cls._fields_:
            if name == "size" or not self.chance(0.15):
                continue
            if ctype in (c_double, c_float):
                setattr(instance, name, self.real())
            elif ctype is c_size_t:
                # Work stays bounded: epochs and patience are small.
                bounded = name in ("epochs", "patience", "step_size", "period", "cooldown",
                                   "warmup_epochs")
                setattr(instance, name, self.size(absurd=not bounded) if not bounded
                        else self.one_of(0, 1, 2, 3))
            elif ctype is ctypes.c_char:
                setattr(instance, name, bytes([self.draw(self.st.integers(0, 255))]))
            elif ctype in (c_int, ctypes.c_int64):
                setattr(instance, name, self.int32())
        if cls.__name__ == "bp_fit_options":
            self.fit_validation(instance)
        how = self.one_of("exact", "exact", "exact", "small", "larger")
        if how == "small":
            instance.size = self.one_of(0, 1, 8, ctypes.sizeof(cls) - 1)
        elif how == "larger":
            room = (c_uint8 * (ctypes.sizeof(cls) + 64))()
            ctypes.memmove(room, byref(instance), ctypes.sizeof(cls))
            larger = ctypes.cast(room, POINTER(cls))
            larger.contents.size = ctypes.sizeof(cls) + 64
            self.keep.append(room)
            return larger
        self.keep.append(instance)
        return byref(instance)

    def fit_validation(self, options):
        """Validation data, given honestly (a buffer and its length) or not at all."""
        options.callback = self.capi.bp_epoch_callback()
        if not self.chance(0.3):
            options.validation_samples = 0
            options.validation_inputs = None
            options.validation_targets = None
            options.validation_labels = None
            return
        options.validation_samples = self.one_of(0, 1, 2, 3)
        for pointer, count, ctype in (("validation_inputs", "validation_input_count", c_float),
                                      ("validation_targets", "validation_target_count", c_float),
                                      ("validation_labels", "validation_label_count", c_int32)):
            buffer, length = self.array(ctype)
            setattr(options, pointer, ctypes.cast(buffer, POINTER(ctype)) if buffer else None)
            setattr(options, count, self.draw(self.st.integers(0, length)))

    # ---- setting up and tearing down -----------------------------------------------------

    def populate(self):
        """The original files, and a few live objects to start from, made with valid calls."""
        lib, capi = self.lib, self.capi
        for path, original in self.files["originals"].items():
            if path.is_dir():
                path.rmdir()
            path.write_bytes(original)
        for dtype in (capi.DType.FLOAT32, capi.DType.FLOAT64):
            graph = capi.GraphHandle()
            assert lib.bp_graph_create(dtype, byref(graph)) == 0
            self.live["graph"].append(ctypes.cast(graph, c_void_p).value)
            shape = (c_size_t * 2)(2, 3)
            for maker in (lib.bp_graph_input, lib.bp_graph_parameter, lib.bp_graph_constant):
                node = c_int32()
                assert maker(graph, shape, 2, byref(node)) == 0
                self.nodes.append(node.value)
        net = capi.NetHandle()
        assert lib.bp_net_create(3, 7, byref(net)) == 0
        assert lib.bp_net_add_dense(net, 4, capi.Activation.TANH) == 0
        assert lib.bp_net_add_dense(net, 2, capi.Activation.NONE) == 0
        self.live["net"].append(ctypes.cast(net, c_void_p).value)
        optimizer = capi.OptimizerHandle()
        assert lib.bp_optimizer_create(capi.OptimizerKind.ADAM, None, byref(optimizer)) == 0
        self.live["optimizer"].append(ctypes.cast(optimizer, c_void_p).value)
        dataset = capi.DatasetHandle()
        assert lib.bp_dataset_load_csv(self.files["csv"], None, byref(dataset)) == 0
        self.live["dataset"].append(ctypes.cast(dataset, c_void_p).value)

    def release(self):
        frees = {"graph": self.lib.bp_graph_free, "net": self.lib.bp_net_free,
                 "optimizer": self.lib.bp_optimizer_free, "dataset": self.lib.bp_dataset_free}
        for kind in ("net", "graph", "optimizer", "dataset"):
            for address in list(self.live[kind]):
                if address in self.borrowed:
                    continue
                status = frees[kind](ctypes.cast(c_void_p(address), self.type_of_kind[kind]))
                assert status == 0, f"freeing a live {kind} at the end: status {status}"
                self.forget(kind, address)
        self.keep.clear()

    def forget(self, kind, address):
        """A handle was freed: it, and a graph it lent out, are dead from now on."""
        self.live[kind].remove(address)
        self.dead.append(address)
        for graph, owner in list(self.borrowed.items()):
            if owner == address:
                del self.borrowed[graph]
                if graph in self.live["graph"]:
                    self.live["graph"].remove(graph)
                self.dead.append(graph)

    # ---- one call ------------------------------------------------------------------------

    def call(self, name):
        restype, argtypes = self.signatures[name]
        absurd = self.one_of("none", "none", "none", "none", "sizes", "counts")
        # Half the calls get buffers of the lengths their handles call for, so that calls get
        # past the count checks and reach the computation with hostile values.
        consistent = self.chance(0.5)
        buffers = 0
        arguments, shown = [], []
        invalid_handle = absurd_count = False
        out_handles, out_kinds = [], []
        for position, argtype in enumerate(argtypes):
            follows_buffer = (position > 0 and argtype is c_size_t and
                              self.is_buffer(argtypes, position - 1))
            if argtype in self.handle_types:
                argument, address, valid = self.handle(self.handle_types[argtype])
                invalid_handle |= not valid
                shown.append(f"<{self.handle_types[argtype]} {address and hex(address)}"
                             f"{'' if valid else ' NOT LIVE'}>")
            elif argtype in self.out_handle_types:
                argument = self.type_of_kind[self.out_handle_types[argtype]]()
                if self.chance(0.05):
                    argument = None
                    shown.append("NULL")
                else:
                    out_handles.append(argument)
                    out_kinds.append(self.out_handle_types[argtype])
                    shown.append("&out")
                    argument = byref(argument)
            elif follows_buffer:
                length = self.last_length
                if absurd == "counts" and self.chance(0.6):
                    argument = self.one_of(2 ** 63, 2 ** 63 + 5, SIZE_MAX)
                    absurd_count = True
                elif consistent:
                    argument = length
                else:
                    argument = self.draw(self.st.integers(0, length), label="count")
                shown.append(str(argument))
            elif self.is_buffer(argtypes, position):
                ctype = c_uint8 if argtype is c_void_p else argtype._type_
                # Room for whatever a call may write against an absurd capacity: a shape's
                # BP_MAX_RANK dimensions, a whole checkpoint.
                room = 0 if absurd != "counts" else (1 << 16 if ctype is c_uint8 else 8)
                planned = self.planned_length(name, arguments, buffers) if consistent else None
                buffers += 1
                if planned is not None:
                    argument = (ctype * max(planned, 1))(*self.values(ctype, planned))
                    self.keep.append(argument)
                    self.last_length = planned
                else:
                    argument, self.last_length = self.array(ctype, room)
                shown.append("NULL" if argument is None else
                             f"{ctype.__name__}[{self.last_length}]")
            elif argtype in self.struct_types:
                argument = None if self.chance(0.1) else self.struct(self.struct_types[argtype])
                shown.append("NULL" if argument is None
                             else f"&{self.struct_types[argtype].__name__}")
            elif argtype is c_char_p:
                argument = self.one_of(*self.files["paths"])
                shown.append(repr(argument))
            elif isinstance(argtype, type) and issubclass(argtype, ctypes._Pointer):
                # An out-pointer of one value, or NULL.
                argument = None if self.chance(0.04) else byref(argtype._type_())
                shown.append("NULL" if argument is None else f"&{argtype._type_.__name__}")
            elif argtype is c_size_t:  # a size, a width, a seed
                argument = self.size(absurd == "sizes")
                shown.append(str(argument))
            elif argtype in (c_double, c_float):
                argument = self.real()
                shown.append(repr(argument))
            elif argtype is c_int:
                argument = self.int32()
                shown.append(str(argument))
            else:
                raise AssertionError(f"{name}: no rule for argument type {argtype}")
            arguments.append(argument)

        text = f"{name}({', '.join(shown)})"
        self.trace.write(text + "\n")
        self.trace.flush()
        result = getattr(self.lib, name)(*arguments)
        self.counts["calls"] += 1
        self.check(name, restype, result, text, invalid_handle, absurd_count, arguments,
                   out_handles, out_kinds)

    def planned_length(self, name, arguments, index):
        """The element count the header asks of buffer `index` of this call, given the
        handle and the batch size already drawn; None when it cannot be worked out."""
        if not arguments:
            return None
        address = ctypes.cast(arguments[0], c_void_p).value
        sizes = [a for a in arguments[1:] if isinstance(a, int)]
        batch = sizes[0] if sizes else self.one_of(1, 2, 3)
        lib, out = self.lib, c_size_t()
        # The optimizer's one-call training step takes the network second.
        net_position = 1 if name.startswith("bp_optimizer_train_step") else 0
        if net_position == 1 and len(arguments) > 1:
            address = ctypes.cast(arguments[1], c_void_p).value
            sizes = [a for a in arguments[2:] if isinstance(a, int)]
            batch = sizes[0] if sizes else batch
        if (name.startswith("bp_net_") or net_position == 1) and self.is_live(address, "net"):
            net = arguments[net_position]
            widths = []
            for query in (lib.bp_net_input_width, lib.bp_net_output_width,
                          lib.bp_net_parameter_count):
                if query(net, byref(out)) != 0:
                    return None
                widths.append(out.value)
            inputs, outputs, parameters = widths
            plans = {
                "bp_net_forward": [batch * inputs, batch * outputs],
                "bp_net_predict": [batch * inputs, batch * outputs],
                "bp_net_train_step": [batch * inputs, batch * outputs],
                "bp_net_train_step_labels": [batch * inputs, batch],
                "bp_optimizer_train_step": [batch * inputs, batch * outputs],
                "bp_optimizer_train_step_labels": [batch * inputs, batch],
                "bp_net_fit": [batch * inputs, batch * outputs],
                "bp_net_fit_labels": [batch * inputs, batch],
                "bp_net_evaluate": [batch * inputs, batch * outputs],
                "bp_net_evaluate_labels": [batch * inputs, batch],
                "bp_net_backward": [batch * outputs],
                "bp_net_backward_labels": [batch],
                "bp_net_parameters": [parameters],
                "bp_net_set_parameters": [parameters],
                "bp_net_gradients": [parameters],
            }
            plan = plans.get(name)
        elif name.startswith("bp_graph_") and self.is_live(address, "graph") and sizes:
            if lib.bp_graph_size(arguments[0], arguments[1], byref(out)) != 0:
                return None
            plan = [out.value] * 2
        elif name.startswith("bp_dataset_") and self.is_live(address, "dataset"):
            rows, features = c_size_t(), c_size_t()
            if lib.bp_dataset_size(arguments[0], byref(rows), byref(features)) != 0:
                return None
            plan = [rows.value * features.value if name == "bp_dataset_features"
                    else rows.value]
        else:
            return None
        if plan is None or index >= len(plan) or plan[index] > 1 << 16:
            return None
        return plan[index]

    @staticmethod
    def is_buffer(argtypes, position):
        """A pointer (not to a struct) followed by a size_t is a buffer and its count."""
        argtype = argtypes[position]
        pointer = argtype is c_void_p or (
            isinstance(argtype, type) and issubclass(argtype, ctypes._Pointer) and
            not issubclass(argtype._type_, ctypes.Structure))
        return pointer and position + 1 < len(argtypes) and argtypes[position + 1] is c_size_t

    # ---- what every call must do ---------------------------------------------------------

    def check(self, name, restype, result, text, invalid_handle, absurd_count, arguments,
              out_handles, out_kinds):
        capi, lib = self.capi, self.lib
        if name in ("bp_version", "bp_status_string", "bp_last_error"):
            assert result is not None, f"{text} returned NULL"
            return
        if name in ("bp_version_number", "bp_get_num_threads"):
            assert result >= 1, f"{text} returned {result}"
            return
        message = lib.bp_last_error()
        assert result in {int(s) for s in capi.Status}, f"{text}: unknown status {result}"
        assert result != capi.Status.INTERNAL, f"{text}: BP_ERR_INTERNAL: {message!r}"
        if result != capi.Status.OK:
            self.counts["failed"] += 1
            assert message, f"{text} returned {capi.Status(result).name} with no message"
            for handle in out_handles:
                assert not handle, f"{text} failed but wrote a handle into its out-pointer"
            return
        assert not invalid_handle, f"{text} succeeded with a handle that is not live"
        # A capacity only bounds what the call may write (the rank, the checkpoint's size), and
        # these two accept any capacity that is large enough; docs/RELIABILITY.md notes that
        # this departs from the header's general rule for sizes above SIZE_MAX / 2.
        assert not absurd_count or name in CAPACITY_FUNCTIONS, \
            f"{text} succeeded with a count above SIZE_MAX / 2"
        self.after_success(name, arguments, out_handles, out_kinds)

    def after_success(self, name, arguments, out_handles, out_kinds):
        for handle, kind in zip(out_handles, out_kinds):
            address = ctypes.cast(handle, c_void_p).value
            if address is None:  # bp_net_load's optimizer_out when the file holds none
                continue
            if address in self.dead:
                self.dead.remove(address)
            if address not in self.live[kind]:
                self.live[kind].append(address)
            if name == "bp_net_graph":
                self.borrowed[address] = ctypes.cast(arguments[0], c_void_p).value
        if name.endswith("_free"):
            kind = {"bp_graph_free": "graph", "bp_net_free": "net",
                    "bp_optimizer_free": "optimizer", "bp_dataset_free": "dataset"}[name]
            address = ctypes.cast(arguments[0], c_void_p).value
            if address is not None:
                self.forget(kind, address)
        for argument in arguments:
            # A node id written by the call joins the pool.
            obj = getattr(argument, "_obj", None)
            if isinstance(obj, c_int32) and obj.value not in self.nodes:
                self.nodes.append(obj.value)


if __name__ == "__main__" and os.environ.get(CHILD):
    run_child(sys.argv[1])
