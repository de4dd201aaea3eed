"""Where the weights live (the weights manager grows here: install, status, manifest)."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "sanet-style"
ENV_VAR = "SANET_WEIGHTS"


def default_weights_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "weights"


def resolve_weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--weights DIR, else $SANET_WEIGHTS, else the platformdirs user data dir."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_weights_dir()
