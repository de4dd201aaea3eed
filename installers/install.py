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
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from . import autostart, flatpak, kritarc
from .actions import MANIFEST_NAME, Actions, InstallError, Manifest
from .daemon_env import (CONSTRAINTS_NAME, EXISTING_PTH, TORCH_MODES, TORCH_VERSION_SNIPPET, find_existing_torch,
                         is_venv, pip_install_command, torch_plan, venv_python)
from .editor_python import GUESS_VERSIONS, editor_python, parse_version
from .locations import (GIMP_PLUGIN_NAME, KRITA_PLUGIN_NAME, EditorProfile, autostart_file, current_os,
                        existing_profiles, gimp_profiles, krita_profiles, user_cache_dir, user_config_dir,
                        user_data_dir, user_log_dir, venv_executable)
from .wheels import VENDOR_DIR, PythonTarget, extract_wheel, parse_wheel_name, pip_download_command, select_wheels

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")


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


@dataclass
class Context:
    args: argparse.Namespace
    os_name: str
    home: str
    env: dict
    act: Actions
    data_dir: str
    manifest: Manifest
    venv: str
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.act.info("WARNING: " + message)

    def ensure_dir(self, path: str) -> None:
        """Create ``path``; record each folder we create so --uninstall can remove it again if empty."""
        missing = []
        p = os.path.abspath(path)
        while not os.path.isdir(p) and os.path.dirname(p) != p:
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            self.act.mkdir(d)
            dirs = self.manifest.data.setdefault("dirs", [])
            if d not in dirs:
                dirs.append(d)


def make_context(args: argparse.Namespace, out=None) -> Context:
    os_name = current_os()
    home = os.path.expanduser("~")
    env = dict(os.environ)
    data_dir = user_data_dir(os_name, home, env)
    manifest = Manifest.load(os.path.join(data_dir, MANIFEST_NAME))
    venv = os.path.abspath(args.venv) if args.venv else (manifest.data.get("venv") or {}).get("path") \
        or os.path.join(data_dir, "venv")
    return Context(args, os_name, home, env, Actions(args.dry_run, out), data_dir, manifest, venv)


# --- the daemon's venv -------------------------------------------------------------------------------------

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
            site = _quiet_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]) \
                if os.path.exists(py) else os.path.join(venv, "lib", "python3.X", "site-packages")
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


# --- editor plug-ins ---------------------------------------------------------------------------------------

def _profiles(ctx: Context, editor: str) -> list[EditorProfile]:
    a = ctx.args
    dirs = a.gimp_dir if editor == "gimp" else a.krita_dir
    if dirs:
        out = []
        for d in dirs:
            d = os.path.abspath(d)
            if editor == "gimp":
                out.append(EditorProfile("gimp", "native", ctx.os_name, d, os.path.join(d, "plug-ins")))
            else:
                rc = a.kritarc or krita_profiles(ctx.os_name, ctx.home, ctx.env)[0].kritarc
                out.append(EditorProfile("krita", "native", ctx.os_name, d, os.path.join(d, "pykrita"), rc))
        return out
    candidates = (gimp_profiles if editor == "gimp" else krita_profiles)(ctx.os_name, ctx.home, ctx.env)
    found = existing_profiles(candidates, os.path.exists)
    if not found:
        name = "GIMP 3" if editor == "gimp" else "Krita"
        ctx.act.info(f"no {name} profile found (looked in {', '.join(c.profile_dir for c in candidates)}): "
                     f"start {name} once and run this again, or pass --{editor}-dir")
    return found


def _wheels_for(ctx: Context, target: PythonTarget, pip_python: str) -> dict[str, str]:
    """Paths of the pyzmq and msgpack wheels for ``target``: from --wheels-from, the cache, or pip download."""
    a, act = ctx.args, ctx.act
    if a.wheels_from:
        folder = os.path.abspath(a.wheels_from)
    else:
        cache = a.wheel_cache or os.path.join(user_cache_dir(ctx.os_name, ctx.home, ctx.env), "wheels")
        folder = os.path.join(os.path.abspath(cache), target.key)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    try:
        if a.refresh_wheels and not a.wheels_from:
            raise ValueError("refresh requested")
        chosen = select_wheels(names, target)
        act.info(f"wheels for {target.key} from {folder}")
    except ValueError as e:
        if a.wheels_from:
            raise InstallError(f"--wheels-from {folder}: {e}") from e
        act.run(pip_download_command(pip_python, target, folder), f"download pyzmq + msgpack for {target.key}",
                capture=True)
        if act.dry_run:
            return {}
        try:
            chosen = select_wheels(os.listdir(folder), target)
        except ValueError as e2:
            raise InstallError(f"pip downloaded no usable wheel into {folder}: {e2}") from e2
    return {p: os.path.join(folder, f) for p, f in chosen.items()}


def _check_same_versions(wheels: list[str]) -> None:
    """Wheels unpacked into one folder must be one release per project, or the pure-Python files would mix."""
    seen: dict[str, set[str]] = {}
    for w in wheels:
        name = parse_wheel_name(w)
        seen.setdefault(name.project, set()).add(name.version)
    mixed = {p: sorted(v) for p, v in seen.items() if len(v) > 1}
    if mixed:
        raise InstallError(f"the wheel cache holds different releases for different Pythons: {mixed}; "
                           f"run again with --refresh-wheels")


def _fill_client(staging: str, source: str, wheels: list[str], client_in_vendor: bool) -> None:
    """Copy sanet_client and unpack the wheels into <plug-in>/vendor, the folder a plug-in puts first on sys.path.

    GIMP runs plug-ins/sanet-style/sanet-style.py as a script, so that folder is on sys.path already and
    sanet_client sits beside the plug-in's own modules. Krita imports pykrita/sanet_style as a package whose
    folder is not on sys.path, so there sanet_client goes into vendor/ too (plugins/krita/.../clientlib.py).
    """
    vendor = os.path.join(staging, VENDOR_DIR)
    client_parent = vendor if client_in_vendor else staging
    shutil.copytree(os.path.join(source, "plugins", "sanet_client"), os.path.join(client_parent, "sanet_client"),
                    ignore=COPY_IGNORE)
    for wheel in wheels:
        os.makedirs(vendor, exist_ok=True)
        extract_wheel(wheel, vendor)


def install_editor(ctx: Context, editor: str, pip_python: str) -> None:
    a, act = ctx.args, ctx.act
    src_root = os.path.abspath(a.source)
    if editor == "gimp":
        src = os.path.join(src_root, "plugins", "gimp", GIMP_PLUGIN_NAME)
        main_file = os.path.join(src, GIMP_PLUGIN_NAME + ".py")
        if not os.path.isfile(main_file):
            raise InstallError(f"{main_file} is missing from the checkout {src_root}")
    else:
        src = os.path.join(src_root, "plugins", "krita", KRITA_PLUGIN_NAME)
        desktop = os.path.join(src_root, "plugins", "krita", KRITA_PLUGIN_NAME + ".desktop")
        for needed in (os.path.join(src, "__init__.py"), desktop):
            if not os.path.isfile(needed):
                raise InstallError(f"{needed} is missing from the checkout {src_root}")
    override = a.gimp_python if editor == "gimp" else a.krita_python
    for profile in _profiles(ctx, editor):
        ep = editor_python(profile, ctx.home, ctx.env, override)
        t = ep.target
        vendor = a.vendor == "always" or (a.vendor == "auto" and ep.has_deps is not True)
        extra = a.vendor_pythons if a.vendor_pythons is not None else (GUESS_VERSIONS if ep.guessed else ())
        targets = [PythonTarget(v, t.platforms, t.os_name, "extra") for v in extra if v != t.version] + [t]
        also = f" (+ {', '.join(x.cp for x in targets[:-1])})" if len(targets) > 1 else ""
        act.info(f"{profile.label} in {profile.profile_dir}: Python {t.version[0]}.{t.version[1]} ({t.source}); "
                 + (f"bundling pyzmq + msgpack for {t.key}{also}" if vendor else "its Python has pyzmq + msgpack"))
        # The editor's own target goes last, so its copy of the pure-Python files is the one that stays.
        wheels = [w for tt in targets for w in _wheels_for(ctx, tt, pip_python).values()] if vendor else []
        _check_same_versions(wheels)
        name = GIMP_PLUGIN_NAME if editor == "gimp" else KRITA_PLUGIN_NAME
        dest = os.path.join(profile.plugin_dir, name)
        ctx.ensure_dir(profile.plugin_dir)

        def build(staging: str, src=src, wheels=wheels) -> None:
            shutil.copytree(src, staging, ignore=COPY_IGNORE)
            _fill_client(staging, src_root, wheels, client_in_vendor=editor == "krita")
            if editor == "gimp":           # GIMP only runs plug-ins/<name>/<name>.py if it is executable
                os.chmod(os.path.join(staging, GIMP_PLUGIN_NAME + ".py"), 0o755)

        act.replace_tree(build, dest, f"{profile.label} plug-in")
        ctx.manifest.add_path(dest)
        if editor == "krita":
            _install_krita_extras(ctx, profile, src_root)
        if profile.variant == "flatpak":
            _grant_flatpak_runtime(ctx, flatpak.APP_IDS[editor])
        elif profile.variant == "snap":
            ctx.warn(f"{profile.label}: a strictly confined Snap cannot reach sanetd's socket in "
                     f"$XDG_RUNTIME_DIR/sanet-style; prefer the native or Flatpak build")


def _grant_flatpak_runtime(ctx: Context, app_id: str) -> None:
    """Let the sandboxed editor see $XDG_RUNTIME_DIR/sanet-style (connection file + ipc socket)."""
    path = flatpak.overrides_file(app_id, ctx.home, ctx.env)
    existed = os.path.isfile(path)
    text = _read(path) if existed else ""
    if flatpak.has_grant(text):
        ctx.act.info(f"{app_id} can already reach {flatpak.RUNTIME_GRANT}")
        return
    ctx.ensure_dir(os.path.dirname(path))
    entries = ctx.manifest.data.setdefault("flatpak", [])
    if not any(e["file"] == path for e in entries):
        entries.append({"file": path, "created": not existed})
    ctx.act.write_file(path, flatpak.grant(text), f"Flatpak permission {flatpak.RUNTIME_GRANT} for {app_id}")


def _install_krita_extras(ctx: Context, profile: EditorProfile, src_root: str) -> None:
    act = ctx.act
    desktop_src = os.path.join(src_root, "plugins", "krita", KRITA_PLUGIN_NAME + ".desktop")
    desktop = os.path.join(profile.plugin_dir, KRITA_PLUGIN_NAME + ".desktop")
    act.copy_file(desktop_src, desktop, "Krita plug-in entry")
    ctx.manifest.add_path(desktop)
    action_src = os.path.join(src_root, "plugins", "krita", KRITA_PLUGIN_NAME + ".action")
    if os.path.isfile(action_src):            # optional keyboard-shortcut actions
        actions_dir = os.path.join(profile.profile_dir, "actions")
        ctx.ensure_dir(actions_dir)
        dest = os.path.join(actions_dir, KRITA_PLUGIN_NAME + ".action")
        act.copy_file(action_src, dest, "Krita actions")
        ctx.manifest.add_path(dest)
    rc = profile.kritarc
    key = f"enable_{KRITA_PLUGIN_NAME}"
    existed = os.path.isfile(rc)
    text = _read(rc) if existed else ""
    previous = kritarc.get_value(text, key)
    had_section = "[python]" in (line.strip() for line in text.splitlines())
    if previous == "true":
        act.info(f"Krita plug-in already enabled in {rc}")
        return
    ctx.ensure_dir(os.path.dirname(rc))
    ctx.manifest.add_kritarc(rc, previous)
    for entry in ctx.manifest.data["kritarc"]:
        if entry["file"] == rc:
            entry.setdefault("created", not existed)
            entry.setdefault("added_section", not had_section)
    act.write_file(rc, kritarc.set_value(text, key, "true"), f"Krita setting [python] {key}=true")


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()


# --- weights and autostart ---------------------------------------------------------------------------------

def install_weights(ctx: Context) -> None:
    src = ctx.args.weights_from
    sanet = venv_executable(ctx.os_name, ctx.venv, "sanet")
    default_dir = os.path.join(ctx.data_dir, "weights")
    if not ctx.env.get("SANET_WEIGHTS") and not os.path.exists(default_dir):
        ctx.manifest.data["weights"] = default_dir       # ours to remove on --uninstall (unless --keep-weights)
    ctx.act.run([sanet, "weights", "install", src], "install the weights")


def install_autostart(ctx: Context) -> None:
    act = ctx.act
    path = autostart_file(ctx.os_name, ctx.home, ctx.env)
    sanetd = venv_executable(ctx.os_name, ctx.venv, "sanetd")
    log_file = None
    if ctx.os_name == "darwin":
        log_dir = os.path.join(ctx.home, "Library", "Logs", "sanet-style")
        ctx.ensure_dir(log_dir)
        log_file = os.path.join(log_dir, "sanetd.log")
        ctx.manifest.add_path(log_file)
    ctx.ensure_dir(os.path.dirname(path))
    act.write_file(path, autostart.render(ctx.os_name, sanetd, log_file), "autostart entry",
                   newline="" if ctx.os_name == "windows" else None)
    ctx.manifest.add_path(path)
    ctx.manifest.data["autostart"] = path
    _service_commands(ctx, autostart.enable_commands(ctx.os_name, path, _uid()), "enable autostart")
    if ctx.os_name == "windows":
        act.info("sanetd will start at the next login; start it now with: "
                 f"\"{venv_executable(ctx.os_name, ctx.venv, 'pythonw')}\" -m sanetd")


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _service_commands(ctx: Context, commands: list[tuple[list[str], bool]], what: str) -> None:
    """Failures are warnings: the autostart file is in place either way and the log says what to run."""
    if not commands:
        return
    if ctx.args.no_service_manager or not autostart.service_manager_available(ctx.os_name, ctx.env):
        ctx.act.info(f"not calling the service manager (--no-service-manager or no user session); later run: "
                     + " ; ".join(" ".join(c) for c, _ in commands))
        return
    for cmd, required in commands:
        try:
            ctx.act.run(cmd, what, capture=True)
        except InstallError as e:
            if required:
                ctx.warn(str(e).splitlines()[0])


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


def _daemon_user_files(ctx: Context) -> list[str]:
    """What sanetd itself writes (not the installer): style library, logs, its config file's folder."""
    out = [os.path.join(ctx.data_dir, "styles"), user_log_dir(ctx.os_name, ctx.home, ctx.env)]
    config = user_config_dir(ctx.os_name, ctx.home, ctx.env)
    if config != ctx.data_dir:
        out.append(config)
    return [p for p in out if os.path.exists(p)]


def uninstall(ctx: Context) -> None:
    act, m = ctx.act, ctx.manifest
    if os.path.exists(m.path):
        _uninstall_manifest(ctx)
    else:
        act.info(f"nothing to uninstall: no manifest at {m.path}")
    kept = _daemon_user_files(ctx)
    if kept and ctx.args.purge:
        for path in kept:
            act.remove(path, "sanetd's own files")
        for path in (ctx.data_dir, os.path.dirname(user_log_dir(ctx.os_name, ctx.home, ctx.env))):
            if os.path.isdir(path) and not os.listdir(path):
                act.log(f"remove empty folder {path}")
                if not act.dry_run:
                    os.rmdir(path)
    elif kept:
        act.info(f"kept sanetd's own files (your style library, logs, settings): {', '.join(kept)}; "
                 f"--uninstall --purge removes them")


def _uninstall_manifest(ctx: Context) -> None:
    act, m = ctx.act, ctx.manifest
    if m.data.get("autostart"):
        _service_commands(ctx, autostart.disable_commands(ctx.os_name, _uid()), "disable autostart")
    for entry in m.data.get("kritarc", []):
        _undo_kritarc(ctx, entry)
    for entry in m.data.get("flatpak", []):
        if os.path.isfile(entry["file"]):
            text = flatpak.revoke(_read(entry["file"]))
            if entry.get("created") and not text.strip():
                act.remove(entry["file"], "Flatpak override (created by the installer)")
            else:
                act.write_file(entry["file"], text, f"Flatpak override without {flatpak.RUNTIME_GRANT}")
    for path in reversed(m.data.get("paths", [])):
        act.remove(path, "installed file")
    venv = m.data.get("venv")
    if venv and venv.get("created"):
        act.remove(venv["path"], "the daemon's venv")
    elif venv and is_venv(venv["path"]):
        try:
            act.run([venv_python(ctx.os_name, venv["path"]), "-m", "pip", "uninstall", "-y", "sanet-style"],
                    "remove sanet-style from the venv")
        except InstallError as e:
            ctx.warn(str(e).splitlines()[0])
    weights = m.data.get("weights")
    if weights and not ctx.args.keep_weights:
        act.remove(weights, "installed weights")
    act.remove(m.path, "install manifest")
    for d in sorted(m.data.get("dirs", []), key=len, reverse=True):
        if os.path.isdir(d) and not os.listdir(d):
            act.log(f"remove empty folder {d}")
            if not act.dry_run:
                os.rmdir(d)


def _undo_kritarc(ctx: Context, entry: dict) -> None:
    rc = entry["file"]
    if not os.path.isfile(rc):
        return
    key = f"enable_{KRITA_PLUGIN_NAME}"
    text = kritarc.set_value(_read(rc), key, entry.get("previous"))
    if entry.get("added_section"):
        text = kritarc.drop_empty_section(text)
    if entry.get("created") and not text.strip():
        ctx.act.remove(rc, "kritarc (created by the installer)")
    else:
        what = f"Krita setting [python] {key}=" + (entry.get("previous") or "<removed>")
        ctx.act.write_file(rc, text, what)


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
