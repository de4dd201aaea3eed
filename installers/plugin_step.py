"""Step 2: the GIMP 3 and Krita plug-ins in every editor profile found, each with sanet_client and the
pyzmq + msgpack wheels its editor's Python can load; Krita enabled in kritarc; Flatpak editors allowed to
reach the daemon's runtime folder."""
from __future__ import annotations

import os
import shutil

from . import flatpak, kritarc
from .actions import InstallError
from .context import Context, read_text
from .editor_python import GUESS_VERSIONS, editor_python
from .locations import (GIMP_PLUGIN_NAME, KRITA_PLUGIN_NAME, EditorProfile, existing_profiles, gimp_profiles,
                        krita_profiles, user_cache_dir)
from .wheels import VENDOR_DIR, PythonTarget, extract_wheel, parse_wheel_name, pip_download_command, select_wheels

COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")


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


def _normalize_modes(root: str) -> None:
    """Folders 0755, files 0644 (0755 if executable) whatever the clone's umask: the editor runs this code."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)


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
            _normalize_modes(staging)
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
    text = read_text(path) if existed else ""
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
    text = read_text(rc) if existed else ""
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
