"""Steps 3 and 4: the weights (through the venv's `sanet weights install`) and autostart at login."""
from __future__ import annotations

import os

from . import autostart
from .actions import InstallError
from .context import Context
from .locations import autostart_file, venv_executable


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
    service_commands(ctx, autostart.enable_commands(ctx.os_name, path, uid()), "enable autostart")
    if ctx.os_name == "windows":
        act.info("sanetd will start at the next login; start it now with: "
                 f"\"{venv_executable(ctx.os_name, ctx.venv, 'pythonw')}\" -m sanetd")


def uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def service_commands(ctx: Context, commands: list[tuple[list[str], bool]], what: str) -> None:
    """Failures are warnings: the autostart file is in place either way and the log says what to run."""
    if not commands:
        return
    if ctx.args.no_service_manager or not autostart.service_manager_available(ctx.os_name, ctx.env):
        ctx.act.info("not calling the service manager (--no-service-manager or no user session); later run: "
                     + " ; ".join(" ".join(c) for c, _ in commands))
        return
    for cmd, required in commands:
        try:
            ctx.act.run(cmd, what, capture=True)
        except InstallError as e:
            if required:
                ctx.warn(str(e).splitlines()[0])
