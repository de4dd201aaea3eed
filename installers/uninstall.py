"""--uninstall: undo what the manifest lists (files, folders, kritarc and Flatpak edits, autostart, the venv);
sanetd's own files (style library, logs, settings) only with --purge."""
from __future__ import annotations

import os

from . import autostart, flatpak, kritarc
from .actions import InstallError
from .context import Context, read_text
from .daemon_env import is_venv, venv_python
from .locations import KRITA_PLUGIN_NAME, user_config_dir, user_log_dir
from .service_step import service_commands, uid


def _daemon_user_files(ctx: Context) -> list[str]:
    """What sanetd itself writes (not the installer): style library, logs, sanetd.conf."""
    config_file = os.path.join(user_config_dir(ctx.os_name, ctx.home, ctx.env), "sanetd.conf")
    out = [os.path.join(ctx.data_dir, "styles"), user_log_dir(ctx.os_name, ctx.home, ctx.env), config_file]
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
        log_parent = os.path.dirname(user_log_dir(ctx.os_name, ctx.home, ctx.env))
        ours = {user_config_dir(ctx.os_name, ctx.home, ctx.env), ctx.data_dir, log_parent,
                os.path.dirname(ctx.data_dir)}     # Windows nests sanet-style\sanet-style
        for path in sorted(ours, key=len, reverse=True):
            if os.path.basename(path) == "sanet-style" and os.path.isdir(path) and not os.listdir(path):
                act.log(f"remove empty folder {path}")
                if not act.dry_run:
                    os.rmdir(path)
    elif kept:
        act.info(f"kept sanetd's own files (your style library, logs, settings): {', '.join(kept)}; "
                 f"--uninstall --purge removes them")


def _uninstall_manifest(ctx: Context) -> None:
    act, m = ctx.act, ctx.manifest
    if m.data.get("autostart"):
        service_commands(ctx, autostart.disable_commands(ctx.os_name, uid()), "disable autostart")
    for entry in m.data.get("kritarc", []):
        _undo_kritarc(ctx, entry)
    for entry in m.data.get("flatpak", []):
        if os.path.isfile(entry["file"]):
            text = flatpak.revoke(read_text(entry["file"]))
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
    text = kritarc.set_value(read_text(rc), key, entry.get("previous"))
    if entry.get("added_section"):
        text = kritarc.drop_empty_section(text)
    if entry.get("created") and not text.strip():
        ctx.act.remove(rc, "kritarc (created by the installer)")
    else:
        what = f"Krita setting [python] {key}=" + (entry.get("previous") or "<removed>")
        ctx.act.write_file(rc, text, what)
