"""Where the weights live, and the weights manager: identify, verify, download, install atomically, status.

Which files each model reads, and how circulated copies are recognised, is data: sanet/weights_sources.json (the
known public sources are there too; sanet.weights_sources reads them). SANet reads vgg_normalised.pth,
decoder_iter_500000.pth and transformer_iter_500000.pth; AdaAttN reads vgg_normalised.pth (the same file) and
latest_net_{transformer,decoder,adaattn_3}.pth. All of them live flat in one weights folder.

Sources for `install`: an http(s) URL (a folder URL = the model's file names under it, a URL to a manifest, a URL
to one file, or a URL to a .zip), a local file, a local folder (flat, or a release's nested layout such as
checkpoints/AdaAttN/), a local .zip, or a local manifest file. A manifest is either `SHA256SUMS` (coreutils
`sha256sum` output) or `manifest.json` (format in `parse_manifest_json`). Without a manifest, files are recognised
by their git blob ids (the circulated copies) or else installed as "unverified" after their layout has been
checked by loading them.

Importing this module does not import torch: loading a checkpoint to check it does.
"""
from __future__ import annotations

import hashlib
import html.parser
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
import zipfile
import zlib
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable, TextIO

import platformdirs

from .errors import WeightsError

APP_NAME = "sanet-style"
ENV_VAR = "SANET_WEIGHTS"
CATALOGUE_FILE = Path(__file__).with_name("weights_sources.json")
CATALOGUE_FORMAT = "sanet-weights-sources/1"


def load_catalogue(path: Path) -> dict:
    """Read a sources file (format in sanet/weights_sources.json); WeightsError naming the file and the field."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot read the weights sources file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != CATALOGUE_FORMAT:
        raise WeightsError(f"{path}: field 'format' must be {CATALOGUE_FORMAT!r}")
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        raise WeightsError(f"{path}: expected a non-empty 'models' object")
    for name, m in models.items():
        if not isinstance(m, dict) or not isinstance(m.get("sources", []), list):
            raise WeightsError(f"{path}: models.{name} must be an object with a 'sources' list")
        if "files" in m and not isinstance(m["files"], dict):
            raise WeightsError(f"{path}: models.{name}.files must be an object")
    return doc


_CATALOGUE = load_catalogue(CATALOGUE_FILE)
# model → the files it reads, in load order; one folder holds them all (a shared name is one shared file)
MODELS: dict[str, tuple[str, ...]] = {m: tuple(spec["files"]) for m, spec in _CATALOGUE["models"].items()}
MODEL_TITLES = {m: spec.get("title", m) for m, spec in _CATALOGUE["models"].items()}
DEFAULT_MODEL = "sanet"
ALL_FILES: tuple[str, ...] = tuple(dict.fromkeys(n for files in MODELS.values() for n in files))
VGG_FILE = "vgg_normalised.pth"
# git blob ids (sha1 of b"blob <size>\0" + bytes) of the widely circulated copies (facts: sanet-reference.md).
KNOWN_BLOB_IDS = {blob: name for spec in _CATALOGUE["models"].values()
                  for name, f in spec["files"].items() for blob in f.get("blob_ids", [])}
# AdaAttN's release carries its own vgg_normalised.pth. When it differs from an installed one, both are kept and
# verifiable; the engine reads vgg_normalised.pth (for every model), the release's copy is kept under this name.
ALT_VGG_FILE = "vgg_normalised.adaattn.pth"
MANIFEST_NAMES = ("SHA256SUMS", "manifest.json")
MANIFEST_FORMAT = "sanet-weights-manifest/1"
PART_SUFFIX = ".part"
_CHUNK = 1 << 20
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_HTML_BYTES = 1 << 20
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def models_of(name: str) -> list[str]:
    """The models that read file ``name``."""
    return [m for m, files in MODELS.items() if name in files]


def check_model(model: str | None) -> None:
    if model is not None and model not in MODELS:
        raise WeightsError(f"unknown model {model!r}: expected one of {', '.join(MODELS)}")


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
    name: str                # install name: one of ALL_FILES
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
        if name in ALL_FILES:
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
        if name not in ALL_FILES:
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
        raise WeightsError(f"{label}: lists none of {', '.join(ALL_FILES)}")
    return entries


def make_manifest(folder: Path, kind: str = "SHA256SUMS") -> str:
    """Manifest text for the checkpoint files present in `folder` (to publish next to them)."""
    folder = Path(folder)
    digests = {n: file_digests(folder / n) for n in ALL_FILES if (folder / n).is_file()}
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


class _DownloadForm(html.parser.HTMLParser):
    """The first <form> of a Google-Drive-style "can't scan this file for viruses" page: action + hidden inputs."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not self._done and a.get("action") and (a.get("method") or "get").lower() == "get":
            self._in_form, self.action = True, a["action"]
        elif tag == "input" and self._in_form and a.get("name") and (a.get("type") or "").lower() == "hidden":
            self.fields[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def _looks_like_html(content_type: str | None, head: bytes) -> bool:
    if content_type and content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    start = head[:512].lstrip().lower()
    return start.startswith(b"<!doctype html") or start.startswith(b"<html")


class HtmlInsteadOfFile(WeightsError):
    """The server answered with a web page (a sign-in, quota or virus-scan page) instead of the file."""


def _html_page(url: str, resp, head: bytes, label: str, followed: bool) -> str:
    """The URL to follow from an interstitial page (once), or HtmlInsteadOfFile naming what to do."""
    body = head + resp.read(_MAX_HTML_BYTES)
    form = _DownloadForm()
    try:
        form.feed(body.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001  a page we cannot parse is just a page
        form.action = None
    if form.action and not followed and "id" in form.fields:
        action = urllib.parse.urljoin(url, form.action)
        if urllib.parse.urlsplit(action).scheme in ("http", "https"):
            return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(form.fields)
    raise HtmlInsteadOfFile(f"{url}: the server sent a web page (HTML) instead of {label} (a sign-in, quota or "
                            f"virus-scan page?); nothing installed. Open the link in a browser, download the file, "
                            f"then run `sanet weights install --from FILE`")


def download(url: str, part: Path, opts: FetchOptions, label: str, expected_size: int | None = None) -> bool:
    """Stream `url` into `part`, resuming from what `part` already holds (HTTP Range) and reconnecting after a
    broken connection up to opts.retries times. Returns True when bytes from an earlier attempt were kept.

    Redirects are followed (urllib keeps the Range header). A web page instead of the file is never written:
    a Google-Drive-style download form is followed once, any other page raises HtmlInsteadOfFile."""
    resumed = False
    failures = 0
    followed = False
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
                head, early = b"", None
            else:  # 200: the server ignored the Range (or this is a fresh start): begin again
                mode, start = "wb", 0
                try:
                    head, early = resp.read(4096), None
                except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                    head, early = b"", exc   # broken before 4 KiB: nothing kept, tried again below
                if early is None and _looks_like_html(resp.headers.get("Content-Type"), head):
                    url = _html_page(url, resp, head, label, followed)
                    followed = True
                    part.unlink(missing_ok=True)
                    continue
            total = start + length if length is not None else expected_size
            if length is not None and shutil.disk_usage(part.parent).free < length:
                raise WeightsError(f"{part.parent}: not enough free space for {label} "
                                   f"({_mb(length)} needed, {_mb(shutil.disk_usage(part.parent).free)} free)")
            bar = Progress(label, total, start, opts.stream, opts.progress)
            broken: Exception | None = early
            with open(part, mode) as out:
                if head:
                    out.write(head)
                    bar.update(len(head))
                while broken is None:
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
    location: str                 # URL or local path (of the file, or of the .zip holding it)
    name: str | None              # install name; None = identify by blob id or layout after fetching
    sha256: str | None = None     # from a manifest
    size: int | None = None
    manifest: str | None = None   # the manifest that vouches for it
    member: str | None = None     # the file's path inside the .zip at `location`
    model: str | None = None      # whose release it comes from (AdaAttN's vgg copy is kept apart if it differs)


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


def _release_model(names) -> str | None:
    """The model whose release a set of files is: the one that owns all the non-shared files, if any."""
    own = {m for n in names for m in models_of(n) if len(models_of(n)) == 1}
    return own.pop() if len(own) == 1 else None


def _complete(present: dict[str, str], model: str | None, where: str) -> list[str]:
    """Names to install from a folder or archive: what is there, plus the rest of each model it belongs to (those
    fail, naming the file), or exactly ``model``'s files when one is asked for."""
    if model is not None:
        return list(MODELS[model])
    if not present:
        raise WeightsError(f"{where}: holds none of {', '.join(ALL_FILES)}")
    touched = {m for n in present for m in models_of(n) if len(models_of(n)) == 1} or {DEFAULT_MODEL}
    if set(present) == {VGG_FILE}:
        touched = set()
    wanted = set(present) | {n for m in touched for n in MODELS[m]}
    return [n for n in ALL_FILES if n in wanted]


def zip_members(archive: Path, hints: dict[str, str] | None = None) -> dict[str, str]:
    """install name → member path inside a .zip: the hinted path when present, else the shallowest member with
    that base name (a release's nested layout such as checkpoints/AdaAttN/latest_net_decoder.pth)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"{archive}: not a readable .zip archive ({exc})") from None
    out = {}
    for name in ALL_FILES:
        hint = (hints or {}).get(name)
        if hint in names:
            out[name] = hint
            continue
        found = sorted((m for m in names if m.rsplit("/", 1)[-1] == name), key=lambda m: (m.count("/"), m))
        if found:
            out[name] = found[0]
    return out


def plan_archive(archive: Path, label: str, model: str | None = None,
                 hints: dict[str, str] | None = None) -> list[Source]:
    members = zip_members(archive, hints)
    names = _complete(members, model, f"{label} (a .zip)")
    release = _release_model(members) if model is None else model
    return [Source(str(archive), n, member=members.get(n) or f"{n} (not in the archive)",
                   model=release if n == VGG_FILE else None) for n in names]


def _nested_files(folder: Path, depth: int = 3) -> dict[str, str]:
    """Known file names in a folder, flat or in a release's nested layout (shallowest copy wins)."""
    found: dict[str, str] = {}
    level = [folder]
    for _ in range(depth + 1):
        nxt = []
        for d in level:
            try:
                entries = sorted(d.iterdir())
            except OSError:
                continue
            for e in entries:
                if e.is_file() and e.name in ALL_FILES and e.name not in found:
                    found[e.name] = str(e)
                elif e.is_dir() and not e.name.startswith("."):
                    nxt.append(e)
        level = nxt
    return found


def plan_sources(src: str, timeout: float = 30.0, model: str | None = None) -> list[Source]:
    """What `install SRC` will fetch, reading a manifest first where there is one. A .zip URL is planned after
    it has been downloaded (see install)."""
    src = str(src)
    check_model(model)
    if is_url(src):
        parts = urllib.parse.urlsplit(src)
        last = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        if last in MANIFEST_NAMES or last.endswith(".json"):
            text = fetch_text(src, timeout)
            if text is None:
                raise WeightsError(f"{src}: HTTP 404 Not Found")
            return _from_manifest(parse_manifest(text, last, src), src, src, url=True)
        if last.endswith(".pth") or last.endswith(".pt"):
            return [Source(src, last if last in ALL_FILES else None)]
        if last.lower().endswith(".zip"):
            return [Source(src, None, member="*")]   # fetched whole, then planned like a local .zip
        base = src if parts.path.endswith("/") else urllib.parse.urlunsplit(parts._replace(path=parts.path + "/"))
        for mname in MANIFEST_NAMES:
            murl = _url_join(base, mname)
            text = fetch_text(murl, timeout)
            if text is not None:
                return _from_manifest(parse_manifest(text, mname, murl), murl, murl, url=True)
        return [Source(_url_join(base, n), n) for n in MODELS[model or DEFAULT_MODEL]]

    path = Path(src).expanduser()
    if path.is_dir():
        for mname in MANIFEST_NAMES:
            mpath = path / mname
            if mpath.is_file():
                return _from_manifest(parse_manifest(_read_text(mpath), mname, str(mpath)), str(path),
                                      str(mpath), url=False)
        present = _nested_files(path)
        names = _complete(present, model, f"{path}: folder")
        release = _release_model(present) if model is None else model
        # the absent ones fail, naming the file
        return [Source(present.get(n, str(path / n)), n, model=release if n == VGG_FILE else None) for n in names]
    if path.is_file():
        if path.name in MANIFEST_NAMES or path.suffix == ".json":
            return _from_manifest(parse_manifest(_read_text(path), path.name, str(path)), str(path.parent),
                                  str(path), url=False)
        if path.suffix.lower() == ".zip" or (path.suffix.lower() not in (".pth", ".pt") and zipfile.is_zipfile(path)
                                             and not _is_torch_zip(path)):
            return plan_archive(path, str(path), model)
        return [Source(str(path), path.name if path.name in ALL_FILES else None)]
    raise WeightsError(f"{src}: no such file or folder (and not an http(s) URL)")


def _is_torch_zip(path: Path) -> bool:
    """A checkpoint in torch's zip format (one folder with data.pkl) rather than an archive of checkpoints."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/data.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise WeightsError(f"{path}: too large for a manifest")
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read manifest ({exc})") from None


# ---------------------------------------------------------------------------------------------- checking

def expected_layouts() -> dict[str, dict[str, tuple[int, ...]]]:
    """file name → {key: shape} for every known file: sanet.checkpoints, from the models' own modules."""
    from . import checkpoints
    return checkpoints.expected_layout()


def read_state_dict(path: Path):
    """sanet.checkpoints.read_state_dict (weights_only=True), with any unpickling failure as one WeightsError."""
    from .checkpoints import read_state_dict as _read
    try:
        return _read(path)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001  e.g. IndexError from a few garbage bytes: the file's problem
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WeightsError(f"{path}: not a readable checkpoint (truncated or corrupt?): {type(exc).__name__}"
                           f"{': ' + first if first else ''}") from None


def validate_state_dict(name: str, state: dict, where) -> None:
    """Keys, shapes and dtypes of ``state`` against the layout of file ``name`` (sanet.checkpoints, the one
    definition, taken from the models' own modules); the error names ``where``. The AdaAttN release's own VGG copy
    (ALT_VGG_FILE) has the VGG layout."""
    from . import checkpoints
    checkpoints.validate_state_dict(VGG_FILE if name == ALT_VGG_FILE else name, state, where)


def _load_error(exc: WeightsError, tmp: Path, label: str) -> str:
    """read_state_dict names the temp file; show the source instead."""
    return str(exc).replace(str(tmp), label, 1)


def identify_layout(path: Path, label: str) -> str:
    """Which known file this is, by loading it and matching keys and shapes."""
    try:
        state = read_state_dict(path)
    except WeightsError as exc:
        raise WeightsError(_load_error(exc, path, label)) from None
    errors = {}
    for name in ALL_FILES:
        try:
            validate_state_dict(name, state, label)
            return name
        except WeightsError as exc:
            errors[name] = str(exc)
    layouts = expected_layouts()
    closest = max(ALL_FILES, key=lambda n: len(set(state) & set(layouts[n])))
    raise WeightsError(f"{errors[closest]} (it matches none of {', '.join(ALL_FILES)})")


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


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename inside it is durable (a no-op where folders cannot be opened)."""
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


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and file_digests(a).sha256 == file_digests(b).sha256


def _place(name: str, work: Path, target: Path, source: Source, digests: Digests, how: str) -> tuple[Path, str]:
    """Where a verified file goes. AdaAttN's release carries its own vgg_normalised.pth: when a different usable
    copy is installed already, that one stays (every model reads vgg_normalised.pth) and the release's copy is
    kept, verifiable, as ALT_VGG_FILE."""
    final = target / name
    if name == VGG_FILE and source.model not in (None, DEFAULT_MODEL) and final.is_file() \
            and file_status(target, VGG_FILE).usable and file_digests(final).sha256 != digests.sha256:
        return target / ALT_VGG_FILE, (f"{how}; differs from the installed {VGG_FILE} (git blob id "
                                       f"{file_digests(final).blob_id}), which every model uses: kept as "
                                       f"{ALT_VGG_FILE}")
    return final, how


def install_one(source: Source, target: Path, opts: FetchOptions) -> InstallResult:
    """Fetch into a temp file inside `target`, verify, validate, fsync, then os.replace onto the final name."""
    label = source.location if source.member is None else f"{source.location}!{source.member}"
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
        if source.member is None and source.name and (target / source.name).exists() \
                and src_path.resolve() == (target / source.name).resolve():
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
            if source.member is not None:
                extract_member(src_path, source.member, tmp, opts, shown)
            elif tmp is not None:
                copy_local(src_path, tmp, opts, shown)
            digests, name, how = _verify(source, work, label)
        final, how = _place(name, work, target, source, digests, how)
        if tmp is not None:
            if final.is_file() and final.name != name and file_digests(final).sha256 == digests.sha256:
                return InstallResult(final.name, final, digests, how, skipped=True)
            os.replace(tmp, final)  # the data was fsynced when written; the rename is atomic
            fsync_dir(target)
        return InstallResult(final.name, final, digests, how)
    except KeyboardInterrupt:
        keep_tmp = url  # a partial download stays for the next run to resume
        raise
    except DownloadInterrupted:
        keep_tmp = True  # a broken connection keeps the .part for resuming; a failed check discards it
        raise
    finally:
        if tmp is not None and not keep_tmp and tmp.exists():
            tmp.unlink()


def extract_member(archive: Path, member: str, dest: Path, opts: FetchOptions, label: str) -> None:
    """Copy one member of a .zip into ``dest`` (streamed, with progress, fsynced)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise WeightsError(f"{archive}: has no member {member}; nothing installed") from None
            bar = Progress(label, info.file_size, 0, opts.stream, opts.progress)
            with zf.open(info) as fin, open(dest, "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    fout.write(chunk)
                    bar.update(len(chunk))
                fout.flush()
                os.fsync(fout.fileno())
            bar.close()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsError(f"{archive}: cannot read member {member} (truncated or corrupt archive?): {exc}") \
            from None


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


def prepare_target(target: Path) -> Path:
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise WeightsError(f"{target}: weights folder is not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"{target}: cannot create the weights folder ({exc.strerror})") from None
    return target


def fetch_archive(url: str, target: Path, opts: FetchOptions, label: str | None = None) -> Path:
    """Download a .zip into the weights folder as ``.NAME.part`` (resumable; kept after a broken connection)."""
    name = _safe_part_name(url)
    if not name.lower().endswith(".zip"):
        name += ".zip"
    part = target / f".{name}{PART_SUFFIX}"
    download(url, part, opts, label or name)
    if not zipfile.is_zipfile(part):
        part.unlink(missing_ok=True)
        raise WeightsError(f"{url}: the download is not a .zip archive; nothing installed")
    return part


def install_sources(sources: list[Source], target: Path, opts: FetchOptions, model: str | None = None,
                    on_result: Callable[[InstallResult], None] | None = None) -> list[InstallResult]:
    """Install planned sources (the caller holds the folder lock). A .zip URL is fetched whole, then its members
    are installed one by one and the archive is removed."""
    results = []
    for source in sources:
        if source.member == "*":
            archive = fetch_archive(source.location, target, opts)
            try:
                inner = plan_archive(archive, source.location, model)
                results += install_sources(inner, target, opts, model, on_result)
            finally:
                archive.unlink(missing_ok=True)
            continue
        result = install_one(source, target, opts)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def install(src: str, target: Path, opts: FetchOptions | None = None,
            on_result: Callable[[InstallResult], None] | None = None, model: str | None = None) -> list[InstallResult]:
    """Install from one source (URL, folder, file, .zip or manifest): every file it holds, or ``model``'s files."""
    opts = opts or FetchOptions()
    check_model(model)
    target = prepare_target(target)
    with _InstallLock(target):
        return install_sources(plan_sources(src, opts.timeout, model), target, opts, model, on_result)


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


def weights_status(folder: Path, model: str = DEFAULT_MODEL) -> list[FileStatus]:
    """The state of each file ``model`` reads, in load order."""
    check_model(model)
    return [file_status(Path(folder), n) for n in MODELS[model]]


def alt_vgg_status(folder: Path) -> FileStatus | None:
    """The AdaAttN release's own vgg copy, when one was kept apart (see _place)."""
    if not (Path(folder) / ALT_VGG_FILE).exists():
        return None
    st = file_status(Path(folder), ALT_VGG_FILE)
    if st.usable:
        st.detail = (f"the AdaAttN release's copy, kept apart because it differs from {VGG_FILE} (every model reads "
                     f"{VGG_FILE}); {st.detail}")
    return st


def models_status(folder: Path) -> dict[str, list[FileStatus]]:
    """model → its files' states (a shared file is checked once)."""
    seen: dict[str, FileStatus] = {}
    out = {}
    for model, files in MODELS.items():
        out[model] = [seen.setdefault(n, file_status(Path(folder), n)) for n in files]
    return out


def model_usable(states: list[FileStatus]) -> bool:
    return all(s.usable for s in states)


def where_to_put(folder: Path, model: str = DEFAULT_MODEL) -> str:
    """The lines that tell someone who has the files from elsewhere exactly which names go where."""
    lines = [f"put these files of {MODEL_TITLES[model]} in {folder}:"]
    lines += [f"    {Path(folder) / n}" for n in MODELS[model]]
    pages = [s.get("page") for s in _CATALOGUE["models"][model].get("sources", []) if s.get("page")]
    if pages:
        lines.append("  (they are published at " + " and ".join(pages) + "; a browser may reach them when this "
                     "command cannot)")
    lines.append("or let sanet copy and check them: sanet weights install --from PATH   (a folder, a .zip such "
                 "as the release archive, or a URL)")
    return "\n".join(lines)


__all__ = ["APP_NAME", "ENV_VAR", "KNOWN_BLOB_IDS", "MODELS", "ALL_FILES", "DEFAULT_MODEL", "VGG_FILE", "ALT_VGG_FILE",
           "MANIFEST_NAMES", "MANIFEST_FORMAT", "default_weights_dir", "resolve_weights_dir", "weights_dir_origin",
           "Digests", "file_digests", "git_blob_id", "ManifestEntry", "parse_sha256sums", "parse_manifest_json",
           "parse_manifest", "make_manifest", "Progress", "FetchOptions", "DownloadInterrupted", "HtmlInsteadOfFile",
           "download", "plan_sources", "plan_archive", "zip_members", "Source", "install", "install_one",
           "install_sources", "prepare_target", "fetch_archive", "InstallResult", "FileStatus", "file_status",
           "weights_status", "models_status", "model_usable", "alt_vgg_status", "where_to_put", "identify_layout",
           "check_checkpoint", "expected_layouts", "validate_state_dict", "load_catalogue"]
