"""What every install step shares: the parsed options, the OS and home, the action log and the manifest."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from .actions import MANIFEST_NAME, Actions, Manifest
from .locations import current_os, user_data_dir


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


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()
