"""Where the weights live, and the weights manager: identify, verify, download, install atomically, status.

Sources for `install`: an http(s) URL (a folder URL = the three file names under it, a URL to a manifest, or a
URL to one file), a local file, a local folder, or a local manifest file. A manifest is either `SHA256SUMS`
(coreutils `sha256sum` output) or `manifest.json` (format in `parse_manifest_json`). Without a manifest, files
are recognised by their git blob ids (the circulated copies) or else installed as "unverified" after their
layout has been checked by loading them.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable, TextIO

import platformdirs

from .checkpoints import CHECKPOINT_FILES, DECODER_FILE, TRANSFORMER_FILE, VGG_FILE, read_state_dict, \
    validate_state_dict
from .errors import WeightsError

APP_NAME = "sanet-style"
ENV_VAR = "SANET_WEIGHTS"

# git blob ids (sha1 of b"blob <size>\0" + bytes) of the widely circulated copies (facts: sanet-reference.md).
KNOWN_BLOB_IDS = {
    "8e2f8b2efaa09cf8e96ba338e62f6b260a995857": VGG_FILE,
    "18a783877329319e5a640ae20f7b98c64e5f5572": VGG_FILE,
    "038871959e1f98924d30db8676629737d526761e": DECODER_FILE,
    "2456574f8e2697a1fcadd6dd6cc99b3a0c9bf588": TRANSFORMER_FILE,
}
MANIFEST_NAMES = ("SHA256SUMS", "manifest.json")
MANIFEST_FORMAT = "sanet-weights-manifest/1"
PART_SUFFIX = ".part"
_CHUNK = 1 << 20
_MAX_MANIFEST_BYTES = 1 << 20
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def default_weights_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "weights"


def resolve_weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--weights DIR, else $SANET_WEIGHTS, else the platformdirs user data dir."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_weights_dir()


def weights_dir_origin(explicit: str | os.PathLike | None = None) -> str:
    """Which rule of resolve_weights_dir picked the folder (for status output)."""
    if explicit:
        return "--weights"
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}"
    return "default user data dir"


# ---------------------------------------------------------------------------------------------- digests

@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    blob_id: str  # git blob id: sha1(b"blob <size>\0" + bytes)


def file_digests(path: Path) -> Digests:
    """sha256 and git blob id in one streaming pass (the blob header needs the size up front)."""
    path = Path(path)
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    read = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
            read += len(chunk)
    if read != size:
        raise WeightsError(f"{path}: file changed while it was being read ({size} bytes expected, {read} read)")
    return Digests(size, sha256.hexdigest(), sha1.hexdigest())


def git_blob_id(path: Path) -> str:
    """Same value as `git hash-object PATH`, computed streaming."""
    return file_digests(path).blob_id


# ---------------------------------------------------------------------------------------------- manifests

@dataclass
class ManifestEntry:
    name: str                # install name: one of CHECKPOINT_FILES
    sha256: str
    size: int | None = None
    location: str | None = None  # path or URL relative to the manifest; default: the name itself


def parse_sha256sums(text: str, label: str) -> dict[str, ManifestEntry]:
    """`<64 hex>  <name>` or `<64 hex> *<name>` per line (sha256sum output); '#' comments and blanks ignored."""
    out: dict[str, ManifestEntry] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([0-9a-fA-F]{64}) [ *](.+)$", line)
        if not m:
            raise WeightsError(f"{label}: line {no} is not '<sha256>  <file name>': {line[:80]!r}")
        location = m.group(2).strip()
        name = location.replace("\\", "/").rsplit("/", 1)[-1]
        if name in CHECKPOINT_FILES:
            out[name] = ManifestEntry(name, m.group(1).lower(), None, location)
    return out


def parse_manifest_json(text: str, label: str) -> dict[str, ManifestEntry]:
    """manifest.json:
    {"format": "sanet-weights-manifest/1",
     "files": {"vgg_normalised.pth": {"sha256": "<64 hex>", "size": 80102481, "url": "optional"}, ...}}
    `size` and `url` are optional; `url` is absolute or relative to the manifest's own location.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise WeightsError(f"{label}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise WeightsError(f"{label}: expected an object with a 'files' object (format {MANIFEST_FORMAT})")
    fmt = doc.get("format", MANIFEST_FORMAT)
    if fmt != MANIFEST_FORMAT:
        raise WeightsError(f"{label}: field 'format' is {fmt!r}, expected {MANIFEST_FORMAT!r}")
    out: dict[str, ManifestEntry] = {}
    for name, spec in doc["files"].items():
        if name not in CHECKPOINT_FILES:
            continue
        where = f"{label}: files.{name}"
        if not isinstance(spec, dict):
            raise WeightsError(f"{where}: expected an object with 'sha256'")
        digest = spec.get("sha256")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise WeightsError(f"{where}.sha256: expected 64 hex digits, found {digest!r}")
        size = spec.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise WeightsError(f"{where}.size: expected a non-negative integer, found {size!r}")
        url = spec.get("url")
        if url is not None and not isinstance(url, str):
            raise WeightsError(f"{where}.url: expected a string, found {url!r}")
        out[name] = ManifestEntry(name, digest.lower(), size, url or name)
    return out


def parse_manifest(text: str, filename: str, label: str) -> dict[str, ManifestEntry]:
    entries = (parse_manifest_json if filename.endswith(".json") else parse_sha256sums)(text, label)
    if not entries:
        raise WeightsError(f"{label}: lists none of {', '.join(CHECKPOINT_FILES)}")
    return entries


def make_manifest(folder: Path, kind: str = "SHA256SUMS") -> str:
    """Manifest text for the checkpoint files present in `folder` (to publish next to them)."""
    folder = Path(folder)
    digests = {n: file_digests(folder / n) for n in CHECKPOINT_FILES if (folder / n).is_file()}
    if kind == "SHA256SUMS":
        return "".join(f"{d.sha256}  {n}\n" for n, d in digests.items())
    return json.dumps({"format": MANIFEST_FORMAT,
                       "files": {n: {"sha256": d.sha256, "size": d.size} for n, d in digests.items()}}, indent=2)


# ---------------------------------------------------------------------------------------------- progress

class Progress:
    """A small byte-progress bar on stderr: redrawn in place on a terminal, a line per quarter otherwise."""

    def __init__(self, label: str, total: int | None, initial: int = 0, stream: TextIO | None = None,
                 enabled: bool = True):
        self.label, self.total, self.done = label, total, initial
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.initial = time.monotonic(), initial
        self._last_draw = 0.0
        self._quarter = -1
        if enabled and initial:
            self._line(f"{label}: resuming at {_mb(initial)}")

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty and now - self._last_draw >= 0.1:
            self._last_draw = now
            self.stream.write("\r" + self._text() + "\x1b[K")
            self.stream.flush()
        elif not self.tty and self.total:
            quarter = int(4 * self.done / self.total)
            if quarter > self._quarter and quarter < 4:
                self._quarter = quarter
                self._line(self._text())

    def close(self) -> None:
        if self.enabled:
            if self.tty:
                self.stream.write("\r" + self._text() + "\x1b[K\n")
                self.stream.flush()
            else:
                self._line(self._text())

    def abort(self) -> None:
        """End the bar's line without the final figures (the transfer broke)."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _text(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = (self.done - self.initial) / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(24 * frac)
            return (f"{self.label} [{bar:<24}] {100 * frac:5.1f}% {_mb(self.done)}/{_mb(self.total)}"
                    f" {_mb(rate)}/s")
        return f"{self.label} {_mb(self.done)} {_mb(rate)}/s"

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


# ---------------------------------------------------------------------------------------------- fetching

@dataclass
class FetchOptions:
    retries: int = 3           # reconnects (with HTTP Range) after a connection breaks mid-file
    timeout: float = 30.0      # seconds without data before a connection counts as broken
    progress: bool = True
    stream: TextIO | None = None  # progress and notes; default stderr


def is_url(src: str) -> bool:
    return urllib.parse.urlsplit(str(src)).scheme in ("http", "https")


class DownloadInterrupted(WeightsError):
    """The connection broke; the bytes so far are kept in the .part file for the next run to resume."""


def _http_error(url: str, exc: Exception) -> WeightsError:
    if isinstance(exc, urllib.error.HTTPError):
        return WeightsError(f"{url}: HTTP {exc.code} {exc.reason}")
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, OSError) and reason.strerror:
        reason = reason.strerror
    return WeightsError(f"{url}: cannot download ({reason or type(exc).__name__})")


def _open(url: str, timeout: float, headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, headers={"User-Agent": "sanet-style weights manager", **(headers or {})})
    return urllib.request.urlopen(req, timeout=timeout)


def fetch_text(url: str, timeout: float = 30.0) -> str | None:
    """A small text file (a manifest); None on HTTP 404, WeightsError on any other failure."""
    try:
        with _open(url, timeout) as resp:
            data = resp.read(_MAX_MANIFEST_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise _http_error(url, exc) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _http_error(url, exc) from None
    if len(data) > _MAX_MANIFEST_BYTES:
        raise WeightsError(f"{url}: too large for a manifest (over {_MAX_MANIFEST_BYTES} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise WeightsError(f"{url}: manifest is not UTF-8 text") from None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes START-END/TOTAL' or 'bytes */TOTAL' → (START, TOTAL); None where absent or '*'."""
    m = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def download(url: str, part: Path, opts: FetchOptions, label: str, expected_size: int | None = None) -> bool:
    """Stream `url` into `part`, resuming from what `part` already holds (HTTP Range) and reconnecting after a
    broken connection up to opts.retries times. Returns True when bytes from an earlier attempt were kept."""
    resumed = False
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            resp = _open(url, opts.timeout, headers)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing past what we hold: complete, or the remote file shrank
                _, total = _content_range(exc.headers.get("Content-Range"))
                if total == have and (expected_size is None or expected_size == have):
                    return True
                part.unlink()
                continue
            raise _http_error(url, exc) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            err = _http_error(url, exc)
            if have:
                raise DownloadInterrupted(f"{err}; {have} bytes kept in {part}, run the same command again "
                                          f"to resume") from None
            raise err from None
        with resp:
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if resp.status == 206:
                if not have or _content_range(resp.headers.get("Content-Range"))[0] != have:
                    part.unlink(missing_ok=True)  # a range we did not ask for: start from scratch
                    failures += 1
                    if failures > opts.retries:
                        raise WeightsError(f"{url}: server answered with an unexpected byte range")
                    continue
                mode, start, resumed = "ab", have, True
            else:  # 200: the server ignored the Range (or this is a fresh start): begin again
                mode, start = "wb", 0
            total = start + length if length is not None else expected_size
            if length is not None and shutil.disk_usage(part.parent).free < length:
                raise WeightsError(f"{part.parent}: not enough free space for {label} "
                                   f"({_mb(length)} needed, {_mb(shutil.disk_usage(part.parent).free)} free)")
            bar = Progress(label, total, start, opts.stream, opts.progress)
            broken: Exception | None = None
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                        broken = exc
                        break
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            got = part.stat().st_size
            if broken is None and (total is None or got >= total):
                bar.close()
                return resumed
            bar.abort()
        failures += 1
        why = type(broken).__name__ if broken is not None else f"connection closed at {got} of {total} bytes"
        if failures > opts.retries:
            raise DownloadInterrupted(f"{url}: download interrupted ({why}); {got} bytes kept in {part}, "
                                      f"run the same command again to resume")
        _note(opts, f"{label}: connection broken ({why}), resuming at byte {got}")
        time.sleep(min(0.2 * failures, 2.0))


def _note(opts: FetchOptions, text: str) -> None:
    stream = opts.stream or sys.stderr
    stream.write(text + "\n")
    stream.flush()


def copy_local(src: Path, dest: Path, opts: FetchOptions, label: str) -> None:
    size = src.stat().st_size
    bar = Progress(label, size, 0, opts.stream, opts.progress)
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)
            bar.update(len(chunk))
        fout.flush()
        os.fsync(fout.fileno())
    bar.close()


# ---------------------------------------------------------------------------------------------- planning

@dataclass
class Source:
    """One file to install: where it comes from and what it must be."""
    location: str                 # URL or local path
    name: str | None              # install name; None = identify by blob id or layout after fetching
    sha256: str | None = None     # from a manifest
    size: int | None = None
    manifest: str | None = None   # the manifest that vouches for it


def _url_join(base: str, rel: str) -> str:
    return urllib.parse.urljoin(base, urllib.parse.quote(rel, safe="/:?=&%"))


def _from_manifest(entries: dict[str, ManifestEntry], base: str, label: str, url: bool) -> list[Source]:
    out = []
    for e in entries.values():
        if url:
            loc = e.location if is_url(e.location or "") else _url_join(base, e.location or e.name)
        else:
            loc = str(Path(base) / (e.location or e.name))
        out.append(Source(loc, e.name, e.sha256, e.size, label))
    return out


def plan_sources(src: str, timeout: float = 30.0) -> list[Source]:
    """What `install SRC` will fetch, reading a manifest first where there is one."""
    src = str(src)
    if is_url(src):
        parts = urllib.parse.urlsplit(src)
        last = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        if last in MANIFEST_NAMES or last.endswith(".json"):
            text = fetch_text(src, timeout)
            if text is None:
                raise WeightsError(f"{src}: HTTP 404 Not Found")
            return _from_manifest(parse_manifest(text, last, src), src, src, url=True)
        if last.endswith(".pth") or last.endswith(".pt"):
            return [Source(src, last if last in CHECKPOINT_FILES else None)]
        base = src if parts.path.endswith("/") else urllib.parse.urlunsplit(parts._replace(path=parts.path + "/"))
        for mname in MANIFEST_NAMES:
            murl = _url_join(base, mname)
            text = fetch_text(murl, timeout)
            if text is not None:
                return _from_manifest(parse_manifest(text, mname, murl), murl, murl, url=True)
        return [Source(_url_join(base, n), n) for n in CHECKPOINT_FILES]

    path = Path(src).expanduser()
    if path.is_dir():
        for mname in MANIFEST_NAMES:
            mpath = path / mname
            if mpath.is_file():
                return _from_manifest(parse_manifest(_read_text(mpath), mname, str(mpath)), str(path),
                                      str(mpath), url=False)
        present = [n for n in CHECKPOINT_FILES if (path / n).is_file()]
        if not present:
            raise WeightsError(f"{path}: folder holds none of {', '.join(CHECKPOINT_FILES)}")
        return [Source(str(path / n), n) for n in CHECKPOINT_FILES]  # the absent ones fail, naming the file
    if path.is_file():
        if path.name in MANIFEST_NAMES or path.suffix == ".json":
            return _from_manifest(parse_manifest(_read_text(path), path.name, str(path)), str(path.parent),
                                  str(path), url=False)
        return [Source(str(path), path.name if path.name in CHECKPOINT_FILES else None)]
    raise WeightsError(f"{src}: no such file or folder (and not an http(s) URL)")


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise WeightsError(f"{path}: too large for a manifest")
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read manifest ({exc})") from None


# ---------------------------------------------------------------------------------------------- checking

def _load_error(exc: WeightsError, tmp: Path, label: str) -> str:
    """read_state_dict names the temp file; show the source instead."""
    return str(exc).replace(str(tmp), label, 1)


def identify_layout(path: Path, label: str) -> str:
    """Which of the three files this is, by loading it and matching keys and shapes."""
    try:
        state = read_state_dict(path)
    except WeightsError as exc:
        raise WeightsError(_load_error(exc, path, label)) from None
    errors = {}
    for name in CHECKPOINT_FILES:
        try:
            validate_state_dict(name, state, label)
            return name
        except WeightsError as exc:
            errors[name] = str(exc)
    from .checkpoints import expected_layout
    closest = max(CHECKPOINT_FILES, key=lambda n: len(set(state) & set(expected_layout()[n])))
    raise WeightsError(f"{errors[closest]} (it matches none of {', '.join(CHECKPOINT_FILES)})")


def check_checkpoint(name: str, path: Path, label: str) -> None:
    """read_state_dict + validate_state_dict, the error naming `label` and the mismatch."""
    try:
        validate_state_dict(name, read_state_dict(path), label)
    except WeightsError as exc:
        raise WeightsError(_load_error(exc, path, label)) from None


# ---------------------------------------------------------------------------------------------- install

@dataclass
class InstallResult:
    name: str
    path: Path
    digests: Digests
    verification: str   # human words: how we know the file is right
    skipped: bool = False


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported here (Windows): os.replace is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _safe_part_name(location: str) -> str:
    last = urllib.parse.unquote(urllib.parse.urlsplit(location).path.rsplit("/", 1)[-1]) or "download"
    return re.sub(r"[^A-Za-z0-9._-]", "_", last)


def _verify(source: Source, work: Path, label: str) -> tuple[Digests, str, str]:
    """Manifest size/sha256, blob id, then load + layout check. Returns (digests, install name, how verified)."""
    digests = file_digests(work)
    if source.size is not None and digests.size != source.size:
        raise WeightsError(f"{label}: size mismatch: {source.manifest} says {source.size} bytes, "
                           f"got {digests.size}; nothing installed")
    if source.sha256 and digests.sha256 != source.sha256:
        raise WeightsError(f"{label}: sha256 mismatch: {source.manifest} says {source.sha256}, "
                           f"got {digests.sha256}; nothing installed")
    known = KNOWN_BLOB_IDS.get(digests.blob_id)
    name = source.name
    if name is None:
        name = known or identify_layout(work, label)
    elif known and known != name:
        raise WeightsError(f"{label}: this is the circulated {known} (git blob id {digests.blob_id}), "
                           f"not {name}; nothing installed")
    check_checkpoint(name, work, label)
    if source.sha256:
        how = f"verified against {source.manifest}"
        if known:
            how += f", known circulated copy (git blob id {digests.blob_id})"
    elif known:
        how = f"known circulated copy (git blob id {digests.blob_id})"
    else:
        how = "unverified (not a known circulated copy), layout checked by loading"
    return digests, name, how


def install_one(source: Source, target: Path, opts: FetchOptions) -> InstallResult:
    """Fetch into a temp file inside `target`, verify, validate, fsync, then os.replace onto the final name."""
    label = source.location
    if source.sha256 and source.name and (target / source.name).is_file():
        current = file_digests(target / source.name)
        if current.sha256 == source.sha256:
            return InstallResult(source.name, target / source.name, current,
                                 f"already installed, sha256 matches {source.manifest}", skipped=True)

    url = is_url(source.location)
    if url:
        shown = source.name or _safe_part_name(source.location)
        tmp = target / (shown + PART_SUFFIX)
    else:
        src_path = Path(source.location)
        shown = source.name or src_path.name
        if not src_path.is_file():
            raise WeightsError(f"{src_path}: checkpoint file is missing")
        if source.name and (target / source.name).exists() and src_path.resolve() == (target / source.name).resolve():
            tmp = None  # installing a folder onto itself: only check it
        else:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{shown}.", suffix=".tmp", dir=target)
            os.close(fd)
            tmp = Path(tmp_name)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; an installed checkpoint is an ordinary readable file

    keep_tmp = False
    try:
        work = tmp if tmp is not None else target / source.name
        if url:
            resumed = download(source.location, tmp, opts, shown, source.size)
            try:
                digests, name, how = _verify(source, work, label)
            except WeightsError as exc:
                if not resumed:
                    raise
                # The kept bytes may belong to an older copy of the remote file: fetch it whole once.
                _note(opts, f"{shown}: {exc}; downloading the whole file again")
                tmp.unlink()
                download(source.location, tmp, opts, shown, source.size)
                digests, name, how = _verify(source, work, label)
        else:
            if tmp is not None:
                copy_local(src_path, tmp, opts, shown)
            digests, name, how = _verify(source, work, label)
        final = target / name
        if tmp is not None:
            os.replace(tmp, final)  # the data was fsynced when written; the rename is atomic
            _fsync_dir(target)
        return InstallResult(name, final, digests, how)
    except KeyboardInterrupt:
        keep_tmp = url  # a partial download stays for the next run to resume
        raise
    except DownloadInterrupted:
        keep_tmp = True  # a broken connection keeps the .part for resuming; a failed check discards it
        raise
    finally:
        if tmp is not None and not keep_tmp and tmp.exists():
            tmp.unlink()


class _InstallLock:
    """One install at a time per weights folder (two writers on one .part would interleave bytes)."""

    def __init__(self, target: Path):
        self.target = target
        self.fd: int | None = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here, carry on
            return self
        self.fd = os.open(self.target, os.O_RDONLY)  # lock the folder itself: no lock file to leave behind
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise WeightsError(f"{self.target}: another `sanet weights install` is running on this folder")
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock


def install(src: str, target: Path, opts: FetchOptions | None = None,
            on_result: Callable[[InstallResult], None] | None = None) -> list[InstallResult]:
    opts = opts or FetchOptions()
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise WeightsError(f"{target}: weights folder is not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"{target}: cannot create the weights folder ({exc.strerror})") from None
    results = []
    with _InstallLock(target):
        for source in plan_sources(src, opts.timeout):
            result = install_one(source, target, opts)
            results.append(result)
            if on_result:
                on_result(result)
    return results


# ---------------------------------------------------------------------------------------------- status

@dataclass
class FileStatus:
    name: str
    path: Path
    state: str                 # "known" | "valid" | "missing" | "corrupt"
    detail: str                # words for the artist
    size: int | None = None
    sha256: str | None = None
    blob_id: str | None = None
    partial: int | None = None  # bytes in a leftover .part download

    @property
    def usable(self) -> bool:
        return self.state in ("known", "valid")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["usable"] = self.usable
        return d


def file_status(folder: Path, name: str) -> FileStatus:
    path = Path(folder) / name
    part = Path(folder) / (name + PART_SUFFIX)
    partial = part.stat().st_size if part.is_file() else None
    if not path.exists():
        return FileStatus(name, path, "missing", "missing", partial=partial)
    if not path.is_file():
        return FileStatus(name, path, "corrupt", f"{path}: not a regular file", partial=partial)
    try:
        d = file_digests(path)
    except OSError as exc:
        return FileStatus(name, path, "corrupt", f"{path}: cannot read ({exc.strerror})", partial=partial)
    known = KNOWN_BLOB_IDS.get(d.blob_id)
    if known == name:  # byte-identical to a circulated copy: no need to load it
        return FileStatus(name, path, "known", f"known circulated copy (git blob id {d.blob_id})",
                          d.size, d.sha256, d.blob_id, partial)
    if known:
        return FileStatus(name, path, "corrupt", f"{path}: this is the circulated {known} "
                          f"(git blob id {d.blob_id}), not {name}", d.size, d.sha256, d.blob_id, partial)
    try:
        check_checkpoint(name, path, str(path))
    except WeightsError as exc:
        return FileStatus(name, path, "corrupt", str(exc), d.size, d.sha256, d.blob_id, partial)
    return FileStatus(name, path, "valid", "valid layout, unknown copy", d.size, d.sha256, d.blob_id, partial)


def weights_status(folder: Path) -> list[FileStatus]:
    return [file_status(Path(folder), n) for n in CHECKPOINT_FILES]


__all__ = ["APP_NAME", "ENV_VAR", "KNOWN_BLOB_IDS", "MANIFEST_NAMES", "MANIFEST_FORMAT", "default_weights_dir",
           "resolve_weights_dir", "weights_dir_origin", "Digests", "file_digests", "git_blob_id",
           "ManifestEntry", "parse_sha256sums", "parse_manifest_json", "parse_manifest", "make_manifest",
           "Progress", "FetchOptions", "DownloadInterrupted", "download", "plan_sources", "Source", "install", "install_one",
           "InstallResult", "FileStatus", "file_status", "weights_status", "identify_layout", "check_checkpoint"]
