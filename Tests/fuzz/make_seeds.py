#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: small valid inputs for libFuzzer to mutate.

    python3 Tests/fuzz/make_seeds.py --lib build/lib/libbackprop.so --out build/fuzz/seeds

checkpoint/  checkpoints saved by the library itself (bp_net_save_buffer): every layer kind,
             both losses, float32 and float64, each optimizer with state after a few steps, and
             a network without layers. Kept small, since mutations of small files reach the
             checks fastest.
csv/         the first lines of examples/data/digits.csv, and short files in each layout the
             header allows (delimiters, no header, no label, quotes, CRLF, a byte order mark),
             each preceded by the option byte fuzz_csv.c decodes.

The library is called through plain ctypes (not the Python package), so this script needs
nothing but the built library.
"""

import argparse
import ctypes
import os
from ctypes import byref, c_double, c_float, c_int, c_int32, c_size_t, c_uint64, c_void_p
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# Option byte of fuzz_csv.c: bits 0-2 delimiter index, bit 3 header, bit 4 label,
# bits 5-6 label column index (-1, 0, 1, -2), bit 7 NULL options.
DELIMITER = {",": 0, ";": 1, "\t": 2, "|": 3, " ": 4, ":": 5}
LABEL_COLUMN = {-1: 0, 0: 1, 1: 2, -2: 3}


def option_byte(delimiter=",", header=True, label=True, label_column=-1, defaults=False):
    if defaults:
        return 0x80
    return (DELIMITER[delimiter] | (header << 3) | (label << 4) |
            (LABEL_COLUMN[label_column] << 5))


class OptimizerOptions(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("learning_rate", c_double), ("weight_decay", c_double),
                ("momentum", c_double), ("dampening", c_double), ("nesterov", c_int),
                ("beta1", c_double), ("beta2", c_double), ("amsgrad", c_int), ("eps", c_double),
                ("alpha", c_double), ("centered", c_int), ("lr_decay", c_double),
                ("initial_accumulator_value", c_double)]


class Library:
    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))
        self.lib.bp_last_error.restype = ctypes.c_char_p

    def __call__(self, name, *args):
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise RuntimeError(f"{name}: {self.lib.bp_last_error().decode()}")

    def net(self, inputs, layers, loss=0, dtype=None, seed=7):
        """layers: ("dense", units, activation) | ("dropout", p) | ("layer_norm", eps)."""
        net = c_void_p()
        if dtype is None:
            self("bp_net_create", c_size_t(inputs), c_uint64(seed), byref(net))
        else:
            self("bp_net_create_dtype", c_int(dtype), c_size_t(inputs), c_uint64(seed),
                 byref(net))
        for layer in layers:
            if layer[0] == "dense":
                self("bp_net_add_dense", net, c_size_t(layer[1]), c_int(layer[2]))
            elif layer[0] == "dropout":
                self("bp_net_add_dropout", net, c_double(layer[1]))
            else:
                self("bp_net_add_layer_norm", net, c_double(layer[1]))
        self("bp_net_set_loss", net, c_int(loss))
        return net

    def optimizer(self, kind, **options):
        o = OptimizerOptions()
        self("bp_optimizer_options_default", c_int(kind), byref(o))
        for key, value in options.items():
            setattr(o, key, value)
        optimizer = c_void_p()
        self("bp_optimizer_create", c_int(kind), byref(o), byref(optimizer))
        return optimizer

    def train(self, net, optimizer, inputs, outputs, loss, steps=2):
        batch = 3
        x = (c_float * (batch * inputs))(*[((i * 7) % 5 - 2) / 2 for i in range(batch * inputs)])
        out = (c_float * (batch * outputs))()
        for _ in range(steps):
            self("bp_net_zero_grad", net)
            self("bp_net_forward", net, c_size_t(batch), x, c_size_t(batch * inputs), out,
                 c_size_t(batch * outputs))
            if loss == 0:
                t = (c_float * (batch * outputs))(*[0.5] * (batch * outputs))
                self("bp_net_backward", net, t, c_size_t(batch * outputs), None)
            else:
                labels = (c_int32 * batch)(*[i % outputs for i in range(batch)])
                self("bp_net_backward_labels", net, labels, c_size_t(batch), None)
            self("bp_optimizer_step", optimizer, net)

    def save(self, net, optimizer=None):
        size = c_size_t()
        self("bp_net_save_buffer", net, optimizer, None, c_size_t(0), byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        self("bp_net_save_buffer", net, optimizer, buffer, size, byref(size))
        return buffer.raw[:size.value]


SGD, ADAM, ADAMW, RMSPROP, ADAGRAD = range(5)
NONE, RELU, SIGMOID, TANH = range(4)
MSE, CROSS_ENTROPY = range(2)


def checkpoints(lib):
    """(name, bytes) of each seed checkpoint."""
    seeds = []
    # 4 -> 8 relu -> 3: the header's own example, without and with an optimizer.
    net = lib.net(4, [("dense", 8, RELU), ("dense", 3, NONE)])
    seeds.append(("mlp_plain.safetensors", lib.save(net)))
    adam = lib.optimizer(ADAM, learning_rate=0.01)
    lib.train(net, adam, 4, 3, MSE)
    seeds.append(("mlp_adam.safetensors", lib.save(net, adam)))
    # Every layer kind and activation, cross-entropy, SGD with momentum and nesterov.
    net = lib.net(3, [("dense", 4, TANH), ("dropout", 0.25), ("layer_norm", 1e-5),
                      ("dense", 3, SIGMOID), ("dense", 2, NONE)], loss=CROSS_ENTROPY)
    sgd = lib.optimizer(SGD, learning_rate=0.1, momentum=0.9, nesterov=1)
    lib.train(net, sgd, 3, 2, CROSS_ENTROPY)
    seeds.append(("every_layer_sgd.safetensors", lib.save(net, sgd)))
    # float64, with the optimizers that keep the most state.
    net = lib.net(2, [("dense", 3, RELU), ("dense", 1, NONE)], dtype=1)
    rmsprop = lib.optimizer(RMSPROP, momentum=0.5, centered=1)
    lib.train(net, rmsprop, 2, 1, MSE)
    seeds.append(("float64_rmsprop.safetensors", lib.save(net, rmsprop)))
    net = lib.net(2, [("dense", 2, NONE)])
    adamw = lib.optimizer(ADAMW, amsgrad=1)
    lib.train(net, adamw, 2, 2, MSE)
    seeds.append(("adamw_amsgrad.safetensors", lib.save(net, adamw)))
    adagrad = lib.optimizer(ADAGRAD, initial_accumulator_value=0.1)
    seeds.append(("adagrad_no_steps.safetensors", lib.save(net, adagrad)))
    # No layers at all.
    seeds.append(("no_layers.safetensors", lib.save(lib.net(5, []))))
    return seeds


def csv_files():
    """(name, bytes) of each seed CSV, the option byte first."""
    digits = (ROOT / "examples" / "data" / "digits.csv").read_bytes().split(b"\n")
    seeds = [("digits_head.csv", bytes([option_byte(defaults=True)]) + b"\n".join(digits[:5]))]
    small = [
        ("plain.csv", option_byte(), b"a,b,label\n1,2,0\n3.5,-4e-1,1\n+.25,7.,2\n"),
        ("semicolon_crlf.csv", option_byte(";"), b"x;y;t\r\n1;2;0.5\r\n\r\n-3;4E+2;1\r\n"),
        ("tab_no_header.csv", option_byte("\t", header=False), b"1\t2\t3\n4\t5\t6\n"),
        ("quoted_bom.csv", option_byte(), b"\xef\xbb\xbf\"a,b\",c\n \"1\" , 2 \n\"3\",\"4\"\n"),
        ("no_label.csv", option_byte(label=False), b"p,q\n1e-3,2\n"),
        ("label_first.csv", option_byte("|", label_column=0), b"y|a|b\n1|0.5|0.25\n0|1|2\n"),
        ("space.csv", option_byte(" ", header=False, label_column=1), b"1 2 3\n4 5 6\n"),
        ("huge_numbers.csv", option_byte(":"), b"a:b\n1e38:3.4028234e38\n-1e-45:2147483647\n"),
    ]
    return seeds + [(name, bytes([byte]) + text) for name, byte, text in small]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default=str(ROOT / "build" / "lib" / "libbackprop.so"))
    parser.add_argument("--out", default=str(ROOT / "build" / "fuzz" / "seeds"))
    args = parser.parse_args()
    lib = Library(args.lib)
    out = Path(args.out)
    for folder, seeds in (("checkpoint", checkpoints(lib)), ("csv", csv_files())):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for name, data in seeds:
            (out / folder / name).write_bytes(data)
        sizes = ", ".join(f"{name} ({len(data)} B)" for name, data in seeds)
        print(f"make_seeds: {out / folder}: {sizes}")


if __name__ == "__main__":
    main()
