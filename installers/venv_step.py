"""Step 1: the daemon's virtual environment with the chosen torch and the sanet-style project."""
from __future__ import annotations

import os
import subprocess
import sys

from .actions import InstallError
from .context import Context
from .daemon_env import (CONSTRAINTS_NAME, EXISTING_PTH, TORCH_VERSION_SNIPPET, find_existing_torch, is_venv,
                         pip_install_command, site_packages, torch_plan, venv_python)
from .editor_python import parse_version
from .locations import venv_executable


def _venv_torch_version(python: str) -> str:
    """torch's version as the venv sees it ("" if none); a read-only check, so it also runs in --dry-run."""
    return _quiet_output([python, "-c", TORCH_VERSION_SNIPPET]) if os.path.exists(python) else ""


def _quiet_output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def install_venv(ctx: Context) -> str:
    """Create/upgrade the venv with the chosen torch and the project; returns the venv's python."""
    a, act = ctx.args, ctx.act
    venv = ctx.venv
    py = venv_python(ctx.os_name, venv)
    mode = a.torch
    existing = None
    if mode == "existing":
        existing = find_existing_torch()
        if existing is None:
            raise InstallError(f"--torch existing: {sys.executable} has no torch. Install it there first "
                               f"(pip install torch==<version>) or choose --torch cpu|cuda|rocm|mps.")
        act.info(f"existing torch {existing.version} in {existing.site_dir}")
        if a.python != sys.executable and not a.copy_torch:
            raise InstallError("--torch existing reuses the torch of the Python running the installer: "
                               "leave out --python, or add --copy-torch")
    fresh = not is_venv(venv)
    if fresh:
        if os.path.isdir(venv) and os.listdir(venv):
            raise InstallError(f"--venv {venv}: the folder exists, is not empty and is not a virtual environment")
        ctx.ensure_dir(os.path.dirname(venv))
        cmd = [a.python, "-m", "venv"]
        if existing is not None and not a.copy_torch:
            cmd.append("--system-site-packages")   # torch (and its deps) come from the installer's Python
        act.run(cmd + [venv], "create the daemon's venv", capture=True)
        ctx.manifest.data["venv"] = {"path": venv, "created": True}
    else:
        act.info(f"reusing the venv {venv}")
        ctx.manifest.data.setdefault("venv", None)
        if not ctx.manifest.data["venv"] or ctx.manifest.data["venv"].get("path") != venv:
            ctx.manifest.data["venv"] = {"path": venv, "created": False}

    constraints = os.path.join(venv, CONSTRAINTS_NAME)
    if existing is not None:
        if a.copy_torch:
            act.run(pip_install_command(py, [f"torch=={existing.version}"]), f"install torch=={existing.version}")
        elif existing.in_venv:
            # The installer runs from a venv: --system-site-packages would expose the *base* interpreter, not
            # this venv, so a .pth file adds the folder that holds torch (after the venv's own packages).
            if os.path.exists(py):
                site = _quiet_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
            else:                             # dry run: where the venv made from --python will put it
                version = _quiet_output([a.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
                site = site_packages(venv, ctx.os_name, parse_version(version or "3.0"))
            act.write_file(os.path.join(site, EXISTING_PTH), existing.site_dir + "\n", "link to the existing torch")
            act.info(f"the daemon's venv now uses the packages in {existing.site_dir}; keep that environment, "
                     f"or re-install with --copy-torch for an independent copy")
        pinned = existing.version
    else:
        current = _venv_torch_version(py)
        if current and not a.upgrade_torch:
            act.info(f"keeping torch {current} in the venv (--upgrade-torch replaces it)")
            pinned = current
        else:
            mode = mode or ("mps" if ctx.os_name == "darwin" else "cpu")
            try:
                reqs, index = torch_plan(mode, ctx.os_name, a.torch_version, a.torch_index)
            except ValueError as e:
                raise InstallError(str(e)) from e
            act.run(pip_install_command(py, ["--upgrade"] + reqs, index=index), f"install torch ({mode})")
            pinned = _venv_torch_version(py) or (a.torch_version or "")
    if pinned:
        act.write_file(constraints, f"# torch is pinned so pip never swaps the build chosen by the installer\n"
                                    f"torch=={pinned}\n", "pip constraints")
    project = ["--upgrade"] + (["--no-deps"] if a.no_deps else []) + (["-e"] if a.editable else []) + [a.source]
    # pip's chatter is kept back and shown only if it fails; the torch download above streams (it is long).
    act.run(pip_install_command(py, project, constraints if pinned else None), "install sanet-style", capture=True)
    if existing is not None and not act.dry_run:
        seen = _venv_torch_version(py)
        if seen != existing.version:
            raise InstallError(f"the venv sees torch {seen or 'none'}, expected the existing {existing.version}: "
                               f"{venv} was made for another torch; remove it (--uninstall) or pick --venv NEWDIR")
        act.info(f"the venv uses torch {seen}")
    sanetd = venv_executable(ctx.os_name, venv, "sanetd")
    if not act.dry_run and not os.path.exists(sanetd):
        raise InstallError(f"{sanetd} is missing after installing the project: check `pip install` output above")
    return py
