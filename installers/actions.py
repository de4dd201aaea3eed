"""Every change the installer makes goes through ``Actions``: one readable log line each, nothing done in
--dry-run, and each created path recorded in the manifest so --uninstall can remove exactly that."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from typing import Callable

MANIFEST_NAME = "install-manifest.json"
MANIFEST_VERSION = 1


class InstallError(Exception):
    """A step failed; str() says which step and what to do."""


class Manifest:
    """What an install created: paths (removed on uninstall) and edits to shared files (undone)."""

    def __init__(self, path: str):
        self.path = path
        self.data: dict = {"version": MANIFEST_VERSION, "paths": [], "kritarc": [], "autostart": None,
                           "venv": None}

    @classmethod
    def load(cls, path: str) -> "Manifest":
        m = cls(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return m
        except (OSError, ValueError) as e:
            raise InstallError(f"cannot read the install manifest {path}: {e}; delete it to start afresh") from e
        if data.get("version") != MANIFEST_VERSION:
            raise InstallError(f"{path}: manifest version {data.get('version')!r}, expected {MANIFEST_VERSION}")
        m.data.update(data)
        return m

    def add_path(self, path: str) -> None:
        path = os.path.abspath(path)
        if path not in self.data["paths"]:
            self.data["paths"].append(path)

    def add_kritarc(self, file: str, previous: str | None) -> None:
        for entry in self.data["kritarc"]:
            if entry["file"] == file:
                return                        # keep the value from before our first install
        self.data["kritarc"].append({"file": file, "previous": previous})

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, self.path)


class Actions:
    """Performs (or, in dry-run, only describes) file-system changes and commands."""

    def __init__(self, dry_run: bool = False, out: Callable[[str], None] | None = None):
        self.dry_run = dry_run
        self._planned: set[str] = set()      # folders a dry run "created", so they are announced once
        self._out = out or (lambda line: print(line, flush=True))

    def log(self, message: str) -> None:
        self._out(("[dry-run] " if self.dry_run else "") + message)

    def info(self, message: str) -> None:
        """A finding, not an action (shown the same way in dry-run)."""
        self._out("  " + message)

    def run(self, cmd: list[str], what: str, env: dict | None = None, capture: bool = False) -> str:
        self.log(f"{what}: {' '.join(_quote(c) for c in cmd)}")
        if self.dry_run:
            return ""
        try:
            proc = subprocess.run(cmd, env=env, text=True,
                                  stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT
                                  if capture else None)
        except OSError as e:
            raise InstallError(f"{what} failed: cannot run {cmd[0]}: {e}") from e
        if proc.returncode != 0:
            tail = ("\n" + proc.stdout[-3000:]) if capture and proc.stdout else ""
            raise InstallError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}{tail}")
        return proc.stdout or ""

    def mkdir(self, path: str) -> None:
        if os.path.isdir(path) or path in self._planned:
            return
        self._planned.add(path)
        self.log(f"create folder {path}")
        if not self.dry_run:
            os.makedirs(path, exist_ok=True)

    def write_file(self, path: str, text: str, what: str, mode: int | None = None, newline: str | None = None) -> None:
        self.log(f"write {what}: {path}")
        if self.dry_run:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".sanet-tmp"
        with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)

    def replace_tree(self, build: Callable[[str], None], dest: str, what: str) -> None:
        """Build the new folder next to ``dest`` and swap it in, so a re-run upgrades in place and a failed
        build leaves the previous install working."""
        self.log(f"install {what}: {dest}")
        if self.dry_run:
            return
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        staging = dest + ".sanet-new"
        old = dest + ".sanet-old"
        for leftover in (staging, old):
            remove_path(leftover)
        try:
            build(staging)
        except BaseException:
            remove_path(staging)
            raise
        try:
            if os.path.lexists(dest):
                os.replace(dest, old)
            os.replace(staging, dest)
        except OSError as e:
            remove_path(staging)
            raise InstallError(f"cannot replace {dest} ({e.strerror}): close GIMP and Krita (they keep the "
                               f"plug-in's files open on Windows) and run the installer again") from e
        remove_path(old)

    def copy_file(self, src: str, dest: str, what: str) -> None:
        self.log(f"install {what}: {dest}")
        if self.dry_run:
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".sanet-tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)

    def remove(self, path: str, what: str) -> None:
        if not os.path.lexists(path):
            return
        self.log(f"remove {what}: {path}")
        if not self.dry_run:
            remove_path(path)

    def remove_empty_dirs(self, path: str, stop: str) -> None:
        """Remove ``path`` and its parents while they are empty, never ``stop`` or above."""
        stop = os.path.abspath(stop)
        path = os.path.abspath(path)
        while path.startswith(stop + os.sep) and os.path.isdir(path) and not os.listdir(path):
            self.log(f"remove empty folder {path}")
            if self.dry_run:
                break
            os.rmdir(path)
            path = os.path.dirname(path)


def remove_path(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        def _writable(func, p, _exc):      # read-only files (e.g. on Windows) would stop rmtree
            os.chmod(p, stat.S_IWRITE | stat.S_IREAD | stat.S_IEXEC)
            func(p)
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_writable)
        else:
            shutil.rmtree(path, onerror=_writable)


def _quote(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or not arg) else arg
