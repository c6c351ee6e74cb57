"""The wheel: `pip wheel ./bindings/python` builds libbackprop.so with the Swift toolchain and
bundles it, and the installed package imports in a fresh virtual environment with no environment
variables at all, from any directory.

The wheel is built once for this module (a minute when the library must be compiled, seconds
when `make lib` just built it) and installed into one new virtual environment. Deselect these
tests with ``-m "not wheel"``.
"""

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import backprop
from support import PYTHON_DIR

pytestmark = pytest.mark.wheel

BUILD_TIMEOUT = 1800
PLATFORM = sysconfig.get_platform().replace("-", "_").replace(".", "_")


def run(command, **options):
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                            **options)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def pip_wheel(source, destination, cwd):
    """`pip wheel source` from `cwd`. With hatchling installed (scripts/setup.sh installs it) the
    build uses it directly; otherwise pip fetches it into an isolated build environment."""
    options = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         *options, "-w", str(destination), str(source)],
        cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    destination = tmp_path_factory.mktemp("wheelhouse")
    result = pip_wheel(PYTHON_DIR, destination, cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    wheels = list(destination.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A new virtual environment with the wheel installed. It sees the system's site-packages
    for numpy (so no download is needed), and pip resolves the wheel's dependencies with no
    index: numpy must be satisfied, the package itself must come from the wheel."""
    root = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", "--system-site-packages", root])
    python = root / "bin" / "python"
    run([python, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", wheel],
        cwd=tmp_path_factory.mktemp("install-from-here"))
    return python


def bare(python, code, cwd, **variables):
    """Runs code with the venv's python under `env -i`: no PATH, no PYTHONPATH, no
    LD_LIBRARY_PATH, nothing but the variables given."""
    command = ["env", "-i", *(f"{key}={value}" for key, value in variables.items()),
               str(python), "-c", code]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_wheel_is_tagged_for_any_python3_on_this_platform(wheel):
    assert wheel.name == f"libbackprop-{backprop.__version__}-py3-none-{PLATFORM}.whl"


def test_the_wheel_bundles_the_library_and_the_typing_marker(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        library = archive.read("backprop/libbackprop.so")
    assert {"backprop/__init__.py", "backprop/_capi.py", "backprop/py.typed",
            "backprop/libbackprop.so"} <= names
    assert library[:4] == b"\x7fELF"
    assert not any(name.startswith("tests/") or "/tests/" in name for name in names)
    # The library built for the wheel exports the functions the package declares.
    assert all(name.encode() in library for name, _, _ in backprop._capi.DECLARATIONS)


def test_the_installed_package_imports_with_no_environment_from_any_directory(venv, tmp_path):
    code = ("import backprop, numpy as np\n"
            "g = backprop.Graph('float64'); x = g.input(3); y = (x * x).sum()\n"
            "g.set_value(x, [1, 2, 3]); g.forward(); y.backward()\n"
            "print(backprop.__file__); print(backprop.library_path)\n"
            "print(backprop.library_version()); print(float(y.value), x.grad.tolist())\n")
    child = bare(venv, code, cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    package_file, library, version, result = child.stdout.splitlines()
    site = Path(package_file).parent
    assert site.parent.name == "site-packages" and venv.parent.parent in site.parents
    assert Path(library) == site / "libbackprop.so"
    assert version == backprop.__version__
    assert result == "14.0 [2.0, 4.0, 6.0]"


def test_the_installed_package_has_its_subpackages_and_trains(venv, tmp_path):
    code = ("import numpy as np\n"
            "from backprop import data, nn, optim\n"
            "from backprop.optim.lr_scheduler import StepLR\n"
            "from backprop.nn.utils import clip_grad_norm_\n"
            "model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2), seed=1)\n"
            "x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, dtype=np.float32)\n"
            "y = np.array([0, 1, 1, 0] * 8)\n"
            "opt = optim.Adam(model, lr=0.05); StepLR(opt, 100)\n"
            "h = model.fit(x, y, epochs=200, batch_size=8, optimizer=opt, progress=False)\n"
            "print(model.evaluate(x, y)[1], list(model.state_dict()))\n")
    child = bare(venv, code, cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "1.0 ['0.weight', '0.bias', '2.weight', '2.bias']"


def test_backprop_library_still_overrides_the_bundled_library(venv, tmp_path):
    chosen = tmp_path / "chosen" / "libbackprop.so"
    chosen.parent.mkdir()
    shutil.copy(backprop.library_path, chosen)
    child = bare(venv, "import backprop; print(backprop.library_path)", cwd=tmp_path,
                 BACKPROP_LIBRARY=chosen)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str(chosen)
    missing = tmp_path / "missing" / "libbackprop.so"
    child = bare(venv, "import backprop", cwd=tmp_path, BACKPROP_LIBRARY=missing)
    assert child.returncode != 0
    assert "LibraryNotFoundError" in child.stderr and str(missing) in child.stderr


def test_a_copy_of_the_binding_outside_the_source_tree_refuses_to_build(tmp_path):
    copy = tmp_path / "binding"
    shutil.copytree(PYTHON_DIR, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "libbackprop.so*", "build", "dist"))
    result = pip_wheel(copy, tmp_path / "out", cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Package.swift" in output and "source tree" in output
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.whl"))



def test_an_editable_install_uses_the_source_tree_and_its_library(tmp_path):
    tree_library = PYTHON_DIR.parent.parent / "build" / "lib" / "libbackprop.so"
    if not tree_library.is_file():
        pytest.skip("needs `make lib`'s build/lib/libbackprop.so")
    root = tmp_path / "env"
    run([sys.executable, "-m", "venv", "--system-site-packages", root])
    python = root / "bin" / "python"
    # Without hatchling installed, pip fetches it into an isolated build environment.
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("hatchling") \
        else []
    run([python, "-m", "pip", "install", "--disable-pip-version-check", *offline, "-e",
         PYTHON_DIR], cwd=tmp_path)
    child = bare(python, "import backprop; print(backprop.__file__); print(backprop.library_path)",
                 cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    package_file, library = child.stdout.splitlines()
    assert Path(package_file) == PYTHON_DIR / "backprop" / "__init__.py"
    assert Path(library) == tree_library
