"""Checkpoints are real safetensors files: the reference reader opens what bp_net_save writes,
with torch.nn.Sequential's names, [out, in] weights and our values, and bp_net_load reads what
the reference writer makes.

Self-contained: it calls the C API through backprop._capi only.
"""

import ctypes
import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load, load_file, save_file

from backprop import _capi

lib = _capi.lib
OK = _capi.Status.OK
ADAM = 1


def check(status):
    assert status == OK, lib.bp_last_error().decode()


def float_pointer(array):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def make_net(dtype=0, seed=5):
    """4 -> 8 relu -> dropout 0.25 -> layer norm -> 3, cross-entropy (torch modules 0 to 4)."""
    net = _capi.NetHandle()
    check(lib.bp_net_create_dtype(dtype, 4, seed, ctypes.byref(net)))
    check(lib.bp_net_add_dense(net, 8, _capi.Activation.RELU))
    check(lib.bp_net_add_dropout(net, 0.25))
    check(lib.bp_net_add_layer_norm(net, 1e-5))
    check(lib.bp_net_add_dense(net, 3, _capi.Activation.NONE))
    check(lib.bp_net_set_loss(net, _capi.Loss.CROSS_ENTROPY))
    return net


def train(net, optimizer, steps=3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0, 2], dtype=np.int32)
    outputs = np.empty((6, 3), dtype=np.float32)
    for _ in range(steps):
        check(lib.bp_net_zero_grad(net))
        check(lib.bp_net_forward(net, 6, float_pointer(x), x.size, float_pointer(outputs),
                                 outputs.size))
        check(lib.bp_net_backward_labels(net, labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                         6, None))
        check(lib.bp_optimizer_step(optimizer, net))


def layer_parameters(net, layer, weight_shape, bias_shape):
    weight = np.empty(weight_shape, dtype=np.float32)
    bias = np.empty(bias_shape, dtype=np.float32)
    check(lib.bp_net_layer_parameters(net, layer, float_pointer(weight), weight.size,
                                      float_pointer(bias), bias.size))
    return weight, bias


def flat_parameters(net):
    count = ctypes.c_size_t()
    check(lib.bp_net_parameter_count(net, ctypes.byref(count)))
    out = np.empty(count.value, dtype=np.float32)
    check(lib.bp_net_parameters(net, float_pointer(out), out.size))
    return out


@pytest.fixture
def trained():
    net = make_net()
    optimizer = _capi.OptimizerHandle()
    check(lib.bp_optimizer_create(ADAM, None, ctypes.byref(optimizer)))
    train(net, optimizer)
    yield net, optimizer
    check(lib.bp_optimizer_free(optimizer))
    check(lib.bp_net_free(net))


def test_the_reference_reader_sees_torch_names_shapes_and_our_values(trained, tmp_path):
    net, optimizer = trained
    path = tmp_path / "net.safetensors"
    check(lib.bp_net_save(net, optimizer, str(path).encode()))
    tensors = load_file(str(path))

    count = flat_parameters(net).size
    expected_shapes = {
        "0.weight": (8, 4), "0.bias": (8,),   # Linear(4, 8); ReLU is module 1, Dropout 2
        "3.weight": (8,), "3.bias": (8,),     # LayerNorm(8)
        "4.weight": (3, 8), "4.bias": (3,),   # Linear(8, 3)
        "optimizer.exp_avg": (count,), "optimizer.exp_avg_sq": (count,),
    }
    assert {name: array.shape for name, array in tensors.items()} == expected_shapes
    assert all(array.dtype == np.float32 for array in tensors.values())

    for layer, module, weight_shape, bias_shape in [(0, 0, (8, 4), (8,)), (2, 3, (8,), (8,)),
                                                    (3, 4, (3, 8), (3,))]:
        weight, bias = layer_parameters(net, layer, weight_shape, bias_shape)
        np.testing.assert_array_equal(tensors[f"{module}.weight"], weight)
        np.testing.assert_array_equal(tensors[f"{module}.bias"], bias)
    # The flat parameter block is the layers' tensors end to end, the optimizer state's layout.
    flat = np.concatenate([tensors[name].ravel() for name in
                           ("0.weight", "0.bias", "3.weight", "3.bias", "4.weight", "4.bias")])
    np.testing.assert_array_equal(flat, flat_parameters(net))
    assert np.all(tensors["optimizer.exp_avg_sq"] >= 0)
    assert np.any(tensors["optimizer.exp_avg"] != 0)


def test_the_metadata_holds_the_architecture_and_optimizer_as_json(trained, tmp_path):
    net, optimizer = trained
    path = tmp_path / "net.safetensors"
    check(lib.bp_net_save(net, optimizer, str(path).encode()))
    with safe_open(str(path), "np") as f:
        metadata = f.metadata()
    assert metadata["format"] == "libbackprop"
    assert metadata["format_version"] == "1"
    architecture = json.loads(metadata["architecture"])
    assert architecture == {
        "input_width": 4, "seed": 5, "dtype": "float32", "loss": "cross_entropy",
        "layers": [{"kind": "dense", "units": 8, "activation": "relu"},
                   {"kind": "dropout", "p": 0.25},
                   {"kind": "layer_norm", "eps": 1e-5},
                   {"kind": "dense", "units": 3, "activation": "none"}]}
    described = json.loads(metadata["optimizer"])
    assert described["algorithm"] == "Adam" and described["step"] == 3
    assert described["options"]["lr"] == 1e-3 and described["options"]["betas"] == [0.9, 0.999]
    assert described["state"] == ["exp_avg", "exp_avg_sq"]
    assert len(json.loads(metadata["rng_state"])) == 4


def test_a_buffer_checkpoint_is_the_same_safetensors_bytes(trained, tmp_path):
    net, optimizer = trained
    size = ctypes.c_size_t()
    check(lib.bp_net_save_buffer(net, optimizer, None, 0, ctypes.byref(size)))
    buffer = ctypes.create_string_buffer(size.value)
    check(lib.bp_net_save_buffer(net, optimizer, buffer, size.value, ctypes.byref(size)))
    path = tmp_path / "net.safetensors"
    check(lib.bp_net_save(net, optimizer, str(path).encode()))
    assert buffer.raw == path.read_bytes()
    from_buffer, from_file = load(buffer.raw), load_file(str(path))
    assert from_buffer.keys() == from_file.keys()
    for name in from_file:
        np.testing.assert_array_equal(from_buffer[name], from_file[name])


def test_float64_networks_are_F64_tensors(tmp_path):
    net = make_net(dtype=_capi.DType.FLOAT64)
    try:
        path = tmp_path / "net64.safetensors"
        check(lib.bp_net_save(net, None, str(path).encode()))
        tensors = load_file(str(path))
        assert sorted(tensors) == ["0.bias", "0.weight", "3.bias", "3.weight", "4.bias", "4.weight"]
        assert all(array.dtype == np.float64 for array in tensors.values())
        np.testing.assert_array_equal(tensors["3.weight"], np.ones(8))
    finally:
        check(lib.bp_net_free(net))


def test_a_file_written_by_the_reference_writer_loads_and_computes(tmp_path):
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((5, 3)).astype(np.float32)
    b1 = rng.standard_normal(5).astype(np.float32)
    w2 = rng.standard_normal((2, 5)).astype(np.float32)
    b2 = rng.standard_normal(2).astype(np.float32)
    architecture = {"input_width": 3, "seed": 7, "dtype": "float32", "loss": "mse",
                    "layers": [{"kind": "dense", "units": 5, "activation": "tanh"},
                               {"kind": "dense", "units": 2, "activation": "none"}]}
    path = tmp_path / "handmade.safetensors"
    save_file({"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2}, str(path),
              metadata={"format": "libbackprop", "format_version": "1",
                        "architecture": json.dumps(architecture), "rng_state": "[1, 2, 3, 4]"})
    net = _capi.NetHandle()
    optimizer = _capi.OptimizerHandle()
    check(lib.bp_net_load(str(path).encode(), ctypes.byref(net), ctypes.byref(optimizer)))
    try:
        assert not optimizer  # the file holds none
        x = rng.standard_normal((4, 3)).astype(np.float32)
        y = np.empty((4, 2), dtype=np.float32)
        check(lib.bp_net_predict(net, 4, float_pointer(x), x.size, float_pointer(y), y.size))
        expected = np.tanh(x.astype(np.float64) @ w1.T + b1) @ w2.T + b2
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    finally:
        check(lib.bp_net_free(net))

    # The same tensors with the weights stored transposed are refused, naming the tensor.
    save_file({"0.weight": w1.T.copy(), "0.bias": b1, "2.weight": w2, "2.bias": b2}, str(path),
              metadata={"format": "libbackprop", "format_version": "1",
                        "architecture": json.dumps(architecture), "rng_state": "[1, 2, 3, 4]"})
    assert lib.bp_net_load(str(path).encode(), ctypes.byref(net), None) == _capi.Status.FORMAT
    assert b"0.weight" in lib.bp_last_error()
