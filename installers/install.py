"""sanet-style installer: the daemon's venv, the GIMP 3 and Krita plug-ins, weights and autostart.

    python installers/install.py [--torch cpu|cuda|rocm|mps|existing] [--autostart] [--weights-from SRC]
    python installers/install.py --dry-run        # print every action, change nothing
    python installers/install.py --uninstall      # remove everything a previous run installed

Re-running upgrades in place. Every action is one log line. What was created is listed in
<user data dir>/install-manifest.json, which --uninstall follows.
"""
from __future__ import annotations

if __package__ in (None, ""):            # run as a script (install.sh / install.ps1): make `installers` importable
    import os as _os
    import sys as _sys
    _sys.path.insert(0, _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))
    __package__ = "installers"

import argparse
import os
import sys

from .actions import InstallError
from .context import Context, make_context
from .daemon_env import TORCH_MODES
from .editor_python import parse_version
from .locations import venv_executable
from .plugin_step import install_editor
from .service_step import install_autostart, install_weights
from .uninstall import uninstall
from .venv_step import install_venv

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sanet-install", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torch", choices=TORCH_MODES, default=None,
                   help="torch build for the daemon: cpu, cuda, rocm, mps, or existing = the torch of the Python "
                        "running this installer (default: keep the venv's torch, else cpu; mps on macOS)")
    p.add_argument("--torch-version", metavar="V", help="pin torch==V (cpu/cuda/rocm/mps modes)")
    p.add_argument("--torch-index", metavar="URL", help="pip index for torch (default: PyTorch's index for the mode)")
    p.add_argument("--copy-torch", action="store_true",
                   help="with --torch existing: install torch==<that exact version> into the venv instead of "
                        "linking the installer's site-packages")
    p.add_argument("--upgrade-torch", action="store_true", help="replace the torch already in the venv")
    p.add_argument("--venv", metavar="DIR", help="the daemon's virtual environment (default: <user data dir>/venv)")
    p.add_argument("--python", metavar="EXE", default=sys.executable,
                   help="interpreter the venv is made from (default: the one running this; >= 3.10)")
    p.add_argument("--source", metavar="DIR", default=SOURCE_ROOT, help="the sanet-style checkout to install")
    p.add_argument("--editable", action="store_true", help="pip install -e the checkout (for developers)")
    p.add_argument("--no-deps", action="store_true",
                   help="install the project without its dependencies (they must already be importable)")
    p.add_argument("--skip-venv", action="store_true", help="only install the editor plug-ins")
    p.add_argument("--no-gimp", action="store_true", help="do not install the GIMP plug-in")
    p.add_argument("--no-krita", action="store_true", help="do not install the Krita plug-in")
    p.add_argument("--gimp-dir", metavar="DIR", action="append",
                   help="GIMP 3 profile folder (the one holding plug-ins/); repeatable; skips detection")
    p.add_argument("--krita-dir", metavar="DIR", action="append",
                   help="Krita resource folder (the one holding pykrita/); repeatable; skips detection")
    p.add_argument("--kritarc", metavar="FILE", help="kritarc to edit with --krita-dir (default: detected)")
    p.add_argument("--gimp-python", metavar="X.Y", type=parse_version, help="GIMP's Python version, if not detected")
    p.add_argument("--krita-python", metavar="X.Y", type=parse_version,
                   help="Krita's Python version (e.g. 3.10 for the Linux AppImage)")
    p.add_argument("--vendor", choices=("auto", "always", "never"), default="auto",
                   help="bundle pyzmq + msgpack wheels with the plug-ins: auto = unless the editor's Python has them")
    p.add_argument("--vendor-pythons", metavar="X.Y,...", type=_versions,
                   help="also bundle extension modules for these Python versions (default: 3.10-3.13 when the "
                        "editor's version is only a default, e.g. an AppImage or an unreadable Flatpak runtime)")
    p.add_argument("--wheel-cache", metavar="DIR", help="where downloaded wheels are kept "
                                                         "(default: <user cache dir>/wheels)")
    p.add_argument("--wheels-from", metavar="DIR", help="use wheels from this folder, never download (offline)")
    p.add_argument("--refresh-wheels", action="store_true", help="download the wheels again")
    p.add_argument("--weights-from", metavar="SRC", help="install the weights with `sanet weights install SRC`")
    p.add_argument("--autostart", action="store_true", help="start sanetd at login (systemd/launchd/Startup)")
    p.add_argument("--no-service-manager", action="store_true",
                   help="write the autostart file but do not call systemctl/launchctl")
    p.add_argument("--dry-run", action="store_true", help="print every action, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove everything a previous install created")
    p.add_argument("--keep-weights", action="store_true", help="with --uninstall: keep the installed weights")
    p.add_argument("--purge", action="store_true",
                   help="with --uninstall: also delete sanetd's own files (style library, logs, sanetd.conf)")
    return p


def _versions(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(parse_version(v) for v in text.split(",") if v.strip())


# --- install / uninstall -----------------------------------------------------------------------------------

def install(ctx: Context) -> None:
    a, act = ctx.args, ctx.act
    act.log(f"sanet-style installer: source {os.path.abspath(a.source)}, data {ctx.data_dir}")
    try:
        _install_steps(ctx)
    finally:
        # Saved even after a failed step, so --uninstall can remove what was already put in place.
        if not act.dry_run and (ctx.manifest.data["paths"] or ctx.manifest.data.get("venv")
                                or ctx.manifest.data.get("dirs")):
            ctx.manifest.save()
    act.log(f"install manifest: {ctx.manifest.path}" + (" (not written: dry run)" if act.dry_run else ""))
    if not a.skip_venv:
        act.info(f"start the daemon with: {venv_executable(ctx.os_name, ctx.venv, 'sanetd')}")


def _install_steps(ctx: Context) -> None:
    a, act = ctx.args, ctx.act
    src = os.path.abspath(a.source)
    if not (os.path.isfile(os.path.join(src, "pyproject.toml")) and os.path.isdir(os.path.join(src, "plugins"))):
        raise InstallError(f"{src} is not a sanet-style checkout (no pyproject.toml and plugins/): run "
                           f"installers/install.sh from a clone, or pass --source CLONE")
    if a.weights_from and a.skip_venv:
        raise InstallError("--weights-from needs the venv (leave out --skip-venv)")
    if a.autostart and a.skip_venv:
        raise InstallError("--autostart needs the venv (leave out --skip-venv)")
    ctx.ensure_dir(ctx.data_dir)
    pip_python = sys.executable
    if not a.skip_venv:
        pip_python = install_venv(ctx)
        if act.dry_run and not os.path.exists(pip_python):
            pip_python = sys.executable
    for editor in ("gimp", "krita"):
        if not getattr(a, f"no_{editor}"):
            install_editor(ctx, editor, pip_python)
    if a.weights_from:
        install_weights(ctx)
    if a.autostart:
        install_autostart(ctx)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.copy_torch and args.torch != "existing":
        print("sanet-install: --copy-torch only goes with --torch existing", file=sys.stderr)
        return 2
    try:
        ctx = make_context(args)
        (uninstall if args.uninstall else install)(ctx)
    except InstallError as e:
        print(f"sanet-install: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sanet-install: interrupted; run it again to finish (it upgrades in place)", file=sys.stderr)
        return 130
    if ctx.warnings:
        print(f"sanet-install: finished with {len(ctx.warnings)} warning(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
