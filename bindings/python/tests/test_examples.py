"""The examples run and print the right numbers."""

import re
import shutil
import subprocess

import pytest

from backprop import _capi
from support import PYTHON_DIR, REPOSITORY, run_python

EXAMPLES = PYTHON_DIR / "examples"


def test_circuit_prints_the_value_and_the_gradients():
    child = run_python(None, str(EXAMPLES / "circuit.py"), cwd=REPOSITORY)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["f = -12", "df/dx = -4", "df/dy = -4", "df/dz = 3"]


def test_xor_reaches_full_accuracy_with_a_falling_loss():
    child = run_python(None, str(EXAMPLES / "xor.py"), cwd=REPOSITORY)
    assert child.returncode == 0, child.stdout + child.stderr
    losses = [float(value) for value in re.findall(r"^epoch +\d+ +loss ([0-9.]+)$", child.stdout,
                                                    flags=re.M)]
    assert len(losses) >= 5
    assert losses == sorted(losses, reverse=True), "the loss should fall at every report"
    assert losses[-1] < losses[0] / 10
    assert "accuracy: 4/4 (100%)" in child.stdout


def test_xor_prints_the_same_as_every_time():
    first = run_python(None, str(EXAMPLES / "xor.py"), cwd=REPOSITORY)
    second = run_python(None, str(EXAMPLES / "xor.py"), cwd=REPOSITORY)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


@pytest.mark.parametrize("name", ["circuit", "xor"])
def test_python_and_c_examples_agree(name, tmp_path):
    """Compiles the C example (when a compiler and the header are there) and compares output."""

    source = REPOSITORY / "examples" / f"{name}.c"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not source.is_file() or compiler is None:
        pytest.skip("needs the C example and a C compiler")
    # Link against the library Python loaded, under its SONAME as the dynamic loader wants it.
    library_dir = tmp_path / "lib"
    library_dir.mkdir()
    (library_dir / "libbackprop.so").symlink_to(_capi.library_path)
    (library_dir / "libbackprop.so.0").symlink_to(_capi.library_path)
    binary = tmp_path / name
    build = subprocess.run(
        [compiler, "-std=c11", f"-I{REPOSITORY / 'include'}", str(source), f"-L{library_dir}",
         "-lbackprop", f"-Wl,-rpath,{library_dir}", "-lm", "-o", str(binary)],
        capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"the C example does not build here: {build.stderr[-500:]}")
    c_output = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    python_output = run_python(None, str(EXAMPLES / f"{name}.py"), cwd=REPOSITORY)
    assert c_output.returncode == python_output.returncode == 0
    assert python_output.stdout == c_output.stdout


def test_digits_reaches_97_percent_on_the_held_out_quarter():
    child = run_python(None, str(EXAMPLES / "digits.py"), cwd=REPOSITORY, timeout=120)
    assert child.returncode == 0, child.stdout + child.stderr
    assert "1348 training images, 449 test images" in child.stdout
    accuracy = float(re.search(r"test accuracy ([0-9.]+)%", child.stdout).group(1))
    assert accuracy >= 97.0


def test_plot_training_writes_a_png_of_the_curves(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    child = run_python(None, str(EXAMPLES / "plot_training.py"), str(out), cwd=tmp_path,
                       timeout=120)
    assert child.returncode == 0, child.stdout + child.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000  # two panels with curves, not an empty canvas
    assert f"wrote {out}" in child.stdout
    accuracy = float(re.search(r"validation accuracy ([0-9.]+)%", child.stdout).group(1))
    assert accuracy > 95.0
