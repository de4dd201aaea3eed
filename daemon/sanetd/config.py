"""sanetd settings: defaults < config file < SANETD_* environment < command line."""
from __future__ import annotations

import argparse
import configparser
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import platformdirs

from sanet_client import protocol as P

from . import __version__

APP_NAME = "sanet-style"
DEVICES = ("auto", "cuda", "cpu", "mps")
PRECISIONS = P.PRECISIONS
DEFAULT_NICE = 10                    # the daemon yields to the editor: 10 = "lower priority", like a batch job
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """A setting with a bad value; the message names where it came from."""


DEVICE_ITEM = re.compile(r"^(auto|cpu|mps|cuda)(:(\d+|all))?$")


def device_list(spec: str) -> list[str]:
    """The devices named by a --device value, one worker each: "cuda:0,cuda:1", "cpu,cpu", "cuda" (the current
    GPU), "auto". "cuda:all" stays as it is here (main.py expands it once torch is loaded). ValueError names the
    item that is not a device."""
    items = [t.strip().lower() for t in str(spec).split(",")]
    for t in items:
        m = DEVICE_ITEM.match(t)
        if not m or (m.group(3) == "all" and m.group(1) != "cuda") or (m.group(2) and m.group(1) in ("auto", "cpu")):
            raise ValueError(f"{t!r} is not a device: expected auto, cpu, mps, cuda, cuda:N or cuda:all, "
                             f"several separated by commas (one worker each, e.g. cuda:0,cuda:1)")
    if len(items) > 1 and "auto" in items:
        raise ValueError("'auto' picks one device; name the devices to use several (e.g. cuda:0,cuda:1)")
    return items


@dataclass
class Settings:
    device: str = "auto"             # one device, or several separated by commas (one worker each), or cuda:all
    weights: str | None = None       # None: the engine's default (SANET_WEIGHTS, else the data dir)
    endpoint: str | None = None      # None: ipc:// in the runtime dir (tcp://127.0.0.1:* on Windows)
    log_level: str = "info"
    keep_alive: float = 300.0        # idle seconds before the model is unloaded; <0 never, 0 after each job
    max_queue: int = 16              # waiting jobs beyond the running one; more are answered `busy`
    max_pixels: int = 8192 * 8192    # per layer, style or mask
    lease: float = 15.0              # a client silent this long has its jobs cancelled
    precision: str = P.DEFAULT_PRECISION   # auto: bf16 previews on CPUs with bf16 hardware, results fp32
    threads: int | None = None       # compute threads; None: all physical cores (the daemon runs at lower priority)
    nice: int = DEFAULT_NICE         # added to the daemon's niceness at start (0: same priority as the editor)
    compile: bool = False            # torch.compile the networks on CPUs, built in the background (opt-in)
    memory_budget: float | None = None   # GiB the engine may use before it tiles; None: the engine's per-device default
    data_dir: str | None = None      # style library lives in <data_dir>/styles
    log_dir: str | None = None
    curve: bool = False              # CURVE encryption on a loopback tcp endpoint (the local endpoint)
    listen: str | None = None        # tcp://HOST:PORT: the networked endpoint (CURVE + ZAP allow-list), next to the local one
    max_queued: int | None = None    # waiting jobs per client (an invite's --max-queued overrides); None: max_queue

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else Path(platformdirs.user_data_dir(APP_NAME))

    def resolved_log_dir(self) -> Path:
        return Path(self.log_dir) if self.log_dir else Path(platformdirs.user_log_dir(APP_NAME))


def config_file_path() -> Path:
    explicit = os.environ.get("SANETD_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "sanetd.conf"


def _convert(name: str, raw, source: str):
    """Turn a string (file/env) or CLI value into the field's type, naming the source on error."""
    try:
        if name in ("keep_alive", "lease", "memory_budget"):
            value = float(raw)
        elif name in ("max_queue", "max_pixels", "max_queued", "threads", "nice"):
            value = int(raw)
        elif name in ("curve", "compile"):
            if isinstance(raw, bool):
                value = raw
            elif str(raw).lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError("expected true or false")
        else:
            value = str(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: {name} = {raw!r} is not valid ({exc})") from None
    if name == "device":
        try:
            device_list(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: device = {raw!r}: {exc}") from None
    choices = {"precision": PRECISIONS, "log_level": LOG_LEVELS}.get(name)
    if choices and value not in choices:
        raise ConfigError(f"{source}: {name} = {raw!r}; expected one of {', '.join(choices)}")
    if name == "max_queue" and value < 0:
        raise ConfigError(f"{source}: max_queue = {raw!r}; expected 0 or more")
    if name == "max_queued" and value < 0:
        raise ConfigError(f"{source}: max_queued = {raw!r}; expected 0 or more")
    if name == "listen" and not str(value).startswith("tcp://"):
        raise ConfigError(f"{source}: listen = {raw!r}; expected tcp://HOST:PORT (e.g. tcp://0.0.0.0:5555)")
    if name == "max_pixels" and value < 1:
        raise ConfigError(f"{source}: max_pixels = {raw!r}; expected 1 or more")
    if name == "memory_budget" and not value > 0:
        raise ConfigError(f"{source}: memory_budget = {raw!r}; expected a positive number of GiB")
    if name == "threads" and value < 1:
        raise ConfigError(f"{source}: threads = {raw!r}; expected 1 or more (leave it out for all physical cores)")
    if name == "nice" and not 0 <= value <= 19:
        raise ConfigError(f"{source}: nice = {raw!r}; expected 0 (normal priority) to 19 (lowest)")
    if name == "lease" and value <= 0:
        raise ConfigError(f"{source}: lease = {raw!r}; expected more than 0 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sanetd",
        description="The sanet-style daemon: owns the models (SANet, AdaAttN) and serves GIMP, Krita and scripts.",
        epilog="Commands for a shared server: `sanetd invite NAME -o FILE`, `sanetd revoke NAME`, `sanetd clients` "
               "(see `sanetd invite --help`). "
               "Settings come from (lowest first) built-in defaults, the config file "
               f"({config_file_path()}; [sanetd] section, same names with underscores), SANETD_* "
               "environment variables (e.g. SANETD_DEVICE=cuda) and these options.")
    p.add_argument("--version", action="version", version=f"sanetd {__version__}")
    p.add_argument("--device", metavar="DEVICE[,DEVICE...]",
                   help="where the model runs: auto (default), cpu, cuda, cuda:N, mps; several separated by commas, "
                        "or cuda:all, run one worker per device over one queue (e.g. cuda:0,cuda:1)")
    p.add_argument("--weights", metavar="DIR", help="folder with the checkpoints (every model whose files are there "
                   "can be used; `sanet weights status` lists them)")
    p.add_argument("--endpoint", help="the local endpoint: ipc://PATH or tcp://127.0.0.1:PORT (default: ipc in the "
                                      "runtime dir)")
    p.add_argument("--listen", metavar="tcp://HOST:PORT",
                   help="also serve other computers on this address (e.g. tcp://0.0.0.0:5555): always encrypted "
                        "(CURVE), only clients invited with `sanetd invite` get in")
    p.add_argument("--max-queued", dest="max_queued", type=int, metavar="N",
                   help="jobs one client may have waiting (default: --max-queue; `sanetd invite --max-queued` "
                        "sets it per client)")
    p.add_argument("--log-level", dest="log_level", choices=LOG_LEVELS)
    p.add_argument("--keep-alive", dest="keep_alive", type=float, metavar="SECONDS",
                   help="unload the model after this many idle seconds (default 300; <0 never)")
    p.add_argument("--max-queue", dest="max_queue", type=int, metavar="N",
                   help="jobs that may wait behind the running one (default 16)")
    p.add_argument("--max-pixels", dest="max_pixels", type=int, metavar="N",
                   help="largest layer/style/mask in pixels (default 67108864 = 8192x8192)")
    p.add_argument("--lease", type=float, metavar="SECONDS",
                   help="cancel the jobs of a client silent this long (default 15)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="default precision of jobs that name none (default auto: bf16 previews on CPUs with "
                        "AVX-512-BF16 or AMX-BF16, full-resolution results in fp32)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="compute threads (default: all physical cores; the daemon runs at lower priority)")
    p.add_argument("--nice", type=int, metavar="N",
                   help=f"lower the daemon's priority by N (0-19, default {DEFAULT_NICE}) so the editor stays "
                        "responsive while it computes")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the networks on CPUs, built in the background (first jobs run eager)")
    p.add_argument("--memory-budget", dest="memory_budget", type=float, metavar="GIB",
                   help="memory the engine may use; larger layers run in tiles (default on CPU: what keeps the process "
                        "near 2 GiB, ~1.2 for 1920×1080, ~1.0 for 3840×2160; half the free "
                        "GPU memory on CUDA)")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="where the style library is kept")
    p.add_argument("--log-dir", dest="log_dir", metavar="DIR", help="where sanetd.log is written")
    p.add_argument("--curve", action="store_true", default=None,
                   help="encrypt a loopback tcp --endpoint with CURVE (networked clients use --listen)")
    return p


def load_settings(argv=None, environ=None) -> Settings:
    environ = os.environ if environ is None else environ
    args = parser().parse_args(argv)
    settings = Settings()
    names = [f.name for f in fields(Settings)]
    path = config_file_path()
    if path.is_file():
        cp = configparser.ConfigParser()
        try:
            cp.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(f"config file {path} is not valid: {exc}") from None
        if cp.has_section("sanetd"):
            for key, raw in cp.items("sanetd"):
                name = key.replace("-", "_")
                if name not in names:
                    raise ConfigError(f"config file {path}: unknown setting {key!r}; known: {', '.join(names)}")
                setattr(settings, name, _convert(name, raw, f"config file {path}"))
    for name in names:
        env = "SANETD_" + name.upper()
        if environ.get(env):
            setattr(settings, name, _convert(name, environ[env], f"environment {env}"))
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, _convert(name, value, "--" + name.replace("_", "-")))
    return settings
