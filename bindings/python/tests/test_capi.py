"""The declarations mirror include/backprop.h, and the library is found (or not) as documented."""

import ctypes
import re
import shutil
import subprocess
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_size_t, c_uint, c_uint64

import pytest

import backprop
from backprop import _capi
from support import HEADER, PYTHON_DIR, lib, run_python

needs_header = pytest.mark.skipif(not HEADER.is_file(), reason="needs the source tree's header")

# How each C type of the header is declared for ctypes.
C_TYPES = {
    "void": None,
    "const char *": c_char_p,
    "unsigned": c_uint, "int": c_int,
    "bp_status": c_int, "bp_dtype": c_int, "bp_reduction": c_int, "bp_activation": c_int,
    "bp_loss": c_int, "bp_comparison": c_int, "bp_gelu_approximation": c_int,
    "bp_reduce_op": c_int, "bp_initializer": c_int, "bp_optimizer_kind": c_int,
    "bp_schedule_rule": c_int,
    "bp_dtype *": POINTER(c_int),
    "bp_node": c_int32, "bp_node *": POINTER(c_int32), "const bp_node *": POINTER(c_int32),
    "size_t": c_size_t, "size_t *": POINTER(c_size_t), "const size_t *": POINTER(c_size_t),
    "uint64_t": c_uint64, "int32_t": c_int32,
    "float": c_float, "float *": POINTER(c_float), "const float *": POINTER(c_float),
    "double": c_double, "double *": POINTER(c_double), "const double *": POINTER(c_double),
    "int *": POINTER(c_int),
    "const int32_t *": POINTER(c_int32),
    "bp_graph *": _capi.GraphHandle, "const bp_graph *": _capi.GraphHandle,
    "bp_graph **": POINTER(_capi.GraphHandle),
    "bp_net *": _capi.NetHandle, "const bp_net *": _capi.NetHandle,
    "bp_net **": POINTER(_capi.NetHandle),
    "bp_optimizer *": _capi.OptimizerHandle, "const bp_optimizer *": _capi.OptimizerHandle,
    "bp_optimizer **": POINTER(_capi.OptimizerHandle),
    "void *": ctypes.c_void_p, "const void *": ctypes.c_void_p, "int32_t *": POINTER(c_int32),
    "bp_dataset *": _capi.DatasetHandle, "const bp_dataset *": _capi.DatasetHandle,
    "bp_dataset **": POINTER(_capi.DatasetHandle),
}
# Pointers to the header's structs, const or not.
for _name, _struct in _capi.STRUCTS.items():
    C_TYPES[f"{_name} *"] = C_TYPES[f"const {_name} *"] = POINTER(_struct)


def parameter_type(declaration):
    """'const size_t *shape' -> 'const size_t *'; 'bp_node a' -> 'bp_node'."""
    declaration = " ".join(declaration.split())
    if declaration == "void":
        return "void"
    match = re.fullmatch(r"(.*?)\s*(\**)\s*\w+", declaration)
    base, stars = match.group(1), match.group(2)
    return f"{base} {stars}" if stars else base


def header_functions():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    functions = []
    for result, name, parameters in re.findall(
            r"^((?:const\s+)?\w+(?:\s*\*)?)\s*\b(bp_\w+)\s*\(([^;]*?)\)\s*;", text, flags=re.M):
        result = " ".join(result.replace("*", " *").split())
        arguments = [parameter_type(p) for p in parameters.split(",")]
        if arguments == ["void"]:
            arguments = []
        functions.append((name, result, arguments))
    return functions


def header_enum(name):
    text = HEADER.read_text()
    body = re.search(r"typedef enum %s \{(.*?)\} %s;" % (name, name), text, flags=re.S).group(1)
    return {key: int(value) for key, value in re.findall(r"\b(BP_\w+)\s*=\s*(\d+)", body)}


@needs_header
def test_every_header_function_is_declared_in_header_order():
    in_header = [name for name, _, _ in header_functions()]
    declared = [name for name, _, _ in _capi.DECLARATIONS]
    assert len(in_header) > 50
    assert declared == in_header


@needs_header
def test_declared_types_match_the_header():
    for name, result, arguments in header_functions():
        function = getattr(lib, name)
        assert function.restype is C_TYPES[result], f"{name}: result {result}"
        assert tuple(function.argtypes) == tuple(C_TYPES[a] for a in arguments), \
            f"{name}: arguments {arguments}"


@needs_header
@pytest.mark.parametrize("c_name, python_enum, prefix", [
    ("bp_status", backprop.Status, "BP_(?:ERR_)?"),
    ("bp_dtype", backprop.DType, "BP_"),
    ("bp_reduction", backprop.Reduction, "BP_REDUCTION_"),
    ("bp_activation", backprop.Activation, "BP_ACTIVATION_"),
    ("bp_loss", backprop.Loss, "BP_LOSS_"),
    ("bp_comparison", _capi.Comparison, "BP_CMP_"),
    ("bp_gelu_approximation", _capi.GeluApproximation, "BP_GELU_"),
    ("bp_reduce_op", _capi.ReduceOp, "BP_REDUCE_"),
    ("bp_initializer", _capi.Initializer, "BP_INIT_"),
    ("bp_optimizer_kind", _capi.OptimizerKind, "BP_OPTIMIZER_"),
    ("bp_schedule_rule", _capi.ScheduleRule, "BP_SCHEDULE_"),
])
def test_enums_match_the_header(c_name, python_enum, prefix):
    in_header = {re.sub("^" + prefix, "", key): value
                 for key, value in header_enum(c_name).items()}
    assert {member.name: member.value for member in python_enum} == in_header


@needs_header
def test_constants_match_the_header():
    text = HEADER.read_text()
    assert re.search(r'#define BP_VERSION_STRING "([^"]+)"', text).group(1) == _capi.HEADER_VERSION
    assert int(re.search(r"#define BP_MAX_RANK (\d+)", text).group(1)) == _capi.MAX_RANK
    assert re.search(r"#define BP_NO_NODE \(\(bp_node\)(-\d+)\)", text).group(1) == \
        str(_capi.NO_NODE)
    numbers = [int(re.search(r"#define BP_VERSION_%s (\d+)" % part, text).group(1))
               for part in ("MAJOR", "MINOR", "PATCH")]
    assert numbers[0] * 10000 + numbers[1] * 100 + numbers[2] == _capi.HEADER_VERSION_NUMBER


def test_the_loaded_library_is_the_declared_version():
    assert lib.bp_version() == b"0.1.0"
    assert backprop.library_version() == backprop.__version__ == "0.1.0"
    assert lib.bp_version_number() == 100


def test_a_different_library_version_is_refused_with_both_versions_named():
    with pytest.raises(backprop.LibraryVersionError) as caught:
        _capi.check_version("0.2.0", "/some/libbackprop.so")
    message = str(caught.value)
    assert "0.2.0" in message and "0.1.0" in message and "/some/libbackprop.so" in message
    assert isinstance(caught.value, ImportError)
    _capi.check_version("0.1.0", "/some/libbackprop.so")


def test_status_strings_name_every_status():
    for status in backprop.Status:
        text = lib.bp_status_string(status).decode()
        expected = "BP_OK" if status == 0 else f"BP_ERR_{status.name}"
        assert text.startswith(expected), (status, text)
    assert lib.bp_status_string(11) == b"unknown status"
    assert lib.bp_status_string(-1) == b"unknown status"


def test_library_not_found_names_the_path_tried_and_why():
    missing = "/nonexistent/folder/libbackprop.so"
    child = run_python("import backprop", env={"BACKPROP_LIBRARY": missing})
    assert child.returncode != 0
    assert "LibraryNotFoundError" in child.stderr
    assert missing in child.stderr
    assert "no such file" in child.stderr
    assert "BACKPROP_LIBRARY" in child.stderr


def test_a_file_that_is_not_a_library_is_reported_with_the_loader_message(tmp_path):
    impostor = tmp_path / "libbackprop.so"
    impostor.write_text("not an ELF file\n")
    child = run_python("import backprop", env={"BACKPROP_LIBRARY": str(impostor)})
    assert child.returncode != 0
    assert "LibraryNotFoundError" in child.stderr
    assert str(impostor) in child.stderr
    assert "invalid ELF header" in child.stderr or "file too short" in child.stderr


def copy_package(destination):
    """Copies the Python package (not any bundled library) to destination/backprop."""
    shutil.copytree(PYTHON_DIR / "backprop", destination / "backprop",
                    ignore=shutil.ignore_patterns("__pycache__", "libbackprop.so*"))


def test_without_the_variable_both_default_places_are_named(tmp_path):
    site = tmp_path / "a" / "b"
    copy_package(site)
    child = run_python("import backprop", cwd=tmp_path, env={
        "PYTHONPATH": str(site), "BACKPROP_LIBRARY": ""})
    assert child.returncode != 0
    assert "LibraryNotFoundError" in child.stderr
    assert str(site / "backprop" / "libbackprop.so") in child.stderr
    assert str(tmp_path / "build" / "lib" / "libbackprop.so") in child.stderr


def test_the_variable_selects_the_library():
    path = str(_capi.library_path)
    child = run_python("import backprop; print(backprop.library_path)",
                       env={"BACKPROP_LIBRARY": path})
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == path


def test_a_library_in_the_package_folder_is_found_first(tmp_path):
    site = tmp_path / "site"
    copy_package(site)
    shutil.copy(_capi.library_path, site / "backprop" / "libbackprop.so")
    child = run_python("import backprop; print(backprop.library_path)", cwd=tmp_path,
                       env={"PYTHONPATH": str(site), "BACKPROP_LIBRARY": ""})
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str(site / "backprop" / "libbackprop.so")


def test_the_library_loads_without_the_swift_toolchain_on_any_path():
    # A plain environment: no LD_LIBRARY_PATH, no PATH into the toolchain.
    child = run_python(
        "import backprop; g = backprop.Graph(); x = g.input(()); print(g.node_count)",
        env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ""})
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "1"


@needs_header
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_struct_layouts_match_the_c_compiler(tmp_path):
    # A C program prints sizeof and every field's offset as the compiler lays the header out.
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "backprop.h"',
             "int main(void) {"]
    for name, struct in _capi.STRUCTS.items():
        lines.append(f'    printf("{name} size %zu\\n", sizeof({name}));')
        for field, _ in struct._fields_:
            lines.append(f'    printf("{name} {field} %zu\\n", offsetof({name}, {field}));')
    lines += ["    return 0;", "}"]
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    program = tmp_path / "layout"
    compiled = subprocess.run(["cc", "-std=c99", f"-I{HEADER.parent}", "-o", str(program),
                               str(source)], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    printed = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout
    expected = []
    for name, struct in _capi.STRUCTS.items():
        expected.append(f"{name} size {ctypes.sizeof(struct)}")
        expected += [f"{name} {field} {getattr(struct, field).offset}"
                     for field, _ in struct._fields_]
    assert printed.splitlines() == expected


@needs_header
def test_every_struct_of_the_header_is_declared():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    in_header = set(re.findall(r"typedef struct (bp_\w+) \{", text))
    assert in_header == set(_capi.STRUCTS)
