"""The daemon's virtual environment: which torch goes in, and the pip commands that never swap it.

torch is installed first and then pinned with a constraints file for every later pip call, so installing
the project (which depends on ``torch>=2.1``) can never make pip resolve a different torch build.
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass

from .locations import venv_executable

TORCH_MODES = ("cpu", "cuda", "rocm", "mps", "existing")
# Index per mode on each OS; None = the default index (PyPI). PyPI's Linux torch is the CUDA build and its
# macOS torch includes MPS; Windows needs the CUDA index for a GPU build. Override with --torch-index.
TORCH_INDEX = {
    ("cpu", "linux"): "https://download.pytorch.org/whl/cpu",
    ("cpu", "windows"): "https://download.pytorch.org/whl/cpu",
    ("cpu", "darwin"): None,
    ("cuda", "linux"): None,
    ("cuda", "windows"): "https://download.pytorch.org/whl/cu128",
    ("rocm", "linux"): "https://download.pytorch.org/whl/rocm6.4",
    ("mps", "darwin"): None,
}
CONSTRAINTS_NAME = "sanet-constraints.txt"
EXISTING_PTH = "_sanet_existing_torch.pth"


@dataclass(frozen=True)
class ExistingTorch:
    version: str            # e.g. "2.13.0+cpu"
    site_dir: str           # the site-packages folder holding torch
    in_venv: bool           # the installer's Python is itself a venv (its packages are not "system" ones)
    python: str


def find_existing_torch() -> ExistingTorch | None:
    """The torch of the Python running the installer, from its metadata (no slow `import torch`)."""
    try:
        dist = importlib.metadata.distribution("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
    site_dir = os.path.abspath(str(dist.locate_file("")))
    return ExistingTorch(dist.version, site_dir, sys.prefix != sys.base_prefix, sys.executable)


def torch_plan(mode: str, os_name: str, version: str | None, index: str | None) -> tuple[list[str], str | None]:
    """(pip requirement args, index url) for the non-existing modes; raises ValueError for impossible pairs."""
    if mode not in TORCH_MODES or mode == "existing":
        raise ValueError(f"--torch {mode}: expected one of {', '.join(TORCH_MODES)}")
    if (mode, os_name) not in TORCH_INDEX and index is None:
        raise ValueError(f"--torch {mode} is not available on {os_name}: choose "
                         + ", ".join(m for (m, o) in TORCH_INDEX if o == os_name) + " or existing")
    req = f"torch=={version}" if version else "torch"
    return [req], index if index is not None else TORCH_INDEX.get((mode, os_name))


def venv_python(os_name: str, venv: str) -> str:
    return venv_executable(os_name, venv, "python")


def site_packages(venv: str, os_name: str, version: tuple[int, int]) -> str:
    if os_name == "windows":
        return os.path.join(venv, "Lib", "site-packages")
    return os.path.join(venv, "lib", f"python{version[0]}.{version[1]}", "site-packages")


def is_venv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def pip_install_command(python: str, args: list[str], constraints: str | None = None,
                        index: str | None = None) -> list[str]:
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    if constraints:
        cmd += ["--constraint", constraints]
    if index:
        cmd += ["--index-url", index]
    return cmd + args


# Prints torch's version as the venv sees it, without importing torch (fast), or "" when absent.
TORCH_VERSION_SNIPPET = (
    "import importlib.metadata as m\n"
    "try:\n    print(m.version('torch'))\nexcept m.PackageNotFoundError:\n    print('')\n")
