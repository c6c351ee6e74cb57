"""Builds libbackprop.so with the Swift toolchain and bundles it in the wheel.

hatchling runs this hook before it assembles a wheel. It finds the repository root two folders
above this file (the one holding Package.swift), runs the same command as `make lib`

    swift build -c release --product backprop

there, and adds the resulting libbackprop.so to the wheel as backprop/libbackprop.so, where
backprop._capi looks for it. The wheel is tagged py3-none-<platform>: the package loads the
library with ctypes, so it works with any Python 3 on this platform but not on another one.

The toolchain is found as $SWIFT, on PATH, or in /opt/swift/usr/bin. Editable installs build
nothing: they use the library of the source tree (`make lib`) or $BACKPROP_LIBRARY.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any, Dict, List

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LIBRARY = "libbackprop.so"
PRODUCT = "backprop"
TOOLCHAIN_BIN = "/opt/swift/usr/bin"


def repository_root(project_root: Path) -> Path:
    """The repository holding this binding (bindings/python -> the root), checked."""
    root = project_root.resolve().parent.parent
    if not (root / "Package.swift").is_file():
        raise RuntimeError(
            f"cannot build libbackprop: {root} has no Package.swift. The wheel must be built "
            f"from the libbackprop source tree (pip install ./bindings/python), not from an "
            f"sdist or a copy of the binding alone.")
    return root


def swift_environment() -> Dict[str, str]:
    """The build's environment: PATH gains the toolchain's folder when it is not on it."""
    environment = dict(os.environ)
    path = environment.get("PATH", os.defpath)
    if TOOLCHAIN_BIN not in path.split(os.pathsep):
        environment["PATH"] = path + os.pathsep + TOOLCHAIN_BIN
    return environment


def swift_command(environment: Dict[str, str]) -> str:
    swift = environment.get("SWIFT") or shutil.which("swift", path=environment["PATH"])
    if not swift:
        raise RuntimeError(f"cannot build libbackprop: no `swift` on PATH or in {TOOLCHAIN_BIN}; "
                           f"install the Swift toolchain or set $SWIFT")
    return swift


def run(command: List[str], root: Path, environment: Dict[str, str]) -> str:
    """Runs a command in the repository root; returns its standard output, or raises with its
    output when it fails (pip shows that message)."""
    result = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"`{' '.join(command)}` failed in {root} with exit status "
                           f"{result.returncode}:\n{output[-8000:]}")
    return result.stdout


def build_library(root: Path) -> Path:
    """Builds the release library in `root`; returns its path."""
    environment = swift_environment()
    swift = swift_command(environment)
    run([swift, "build", "-c", "release", "--product", PRODUCT], root, environment)
    bin_dir = Path(run([swift, "build", "-c", "release", "--show-bin-path"], root,
                       environment).strip())
    library = bin_dir / LIBRARY
    if not library.is_file():
        raise RuntimeError(f"swift build succeeded but {library} does not exist")
    return library


def wheel_tag() -> str:
    """py3-none-<platform>, e.g. py3-none-linux_x86_64."""
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{platform}"


class LibraryBuildHook(BuildHookInterface):
    """Builds libbackprop.so and puts it in the wheel, which then is platform-specific."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: Dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        library = build_library(repository_root(Path(self.root)))
        build_data["force_include"][str(library)] = f"backprop/{LIBRARY}"
        build_data["pure_python"] = False
        build_data["tag"] = wheel_tag()
