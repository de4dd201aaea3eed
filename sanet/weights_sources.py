"""The known public sources of the checkpoint files, and `sanet weights install` without an argument.

The list is data: sanet/weights_sources.json (per model: what each source contains and how it is verified). Another
list replaces its sources when SANET_WEIGHTS_SOURCES names one (a mirror of your own, an offline share); the file
names and the blob ids of circulated copies always come from the packaged file.

Source kinds:

* ``mirror``: ``url`` is a folder URL laid out like the weights folder (its SHA256SUMS or manifest.json is used);
* ``files``: ``files`` maps each install name to a direct URL;
* ``zip``: ``url`` is a .zip; ``members`` maps install names to paths inside (base names are matched otherwise);
* ``github-release``: ``url`` is the GitHub API URL of a release; its assets are the files, loose or in a .zip;
* ``yandex-disk``: ``files`` maps install names to public links; ``api`` turns a link into a download URL.

Each source of a model is tried in order until all of the model's files are usable; what one source installed is
kept when the next one is tried (every file is verified and installed atomically on its own).
"""
from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import weights as W
from .errors import WeightsError

ENV_SOURCES = "SANET_WEIGHTS_SOURCES"
KINDS = ("mirror", "files", "zip", "github-release", "yandex-disk")


@dataclass(frozen=True)
class KnownSource:
    model: str
    name: str
    kind: str
    page: str = ""
    contains: str = ""
    verify: str = ""
    spec: dict = field(default_factory=dict, compare=False, hash=False)


def catalogue_path() -> Path:
    explicit = os.environ.get(ENV_SOURCES)
    return Path(explicit).expanduser() if explicit else W.CATALOGUE_FILE


def known_sources(model: str | None = None) -> list[KnownSource]:
    """The sources of ``model`` (or of every model), in the order they are tried."""
    W.check_model(model)
    path = catalogue_path()
    doc = W.load_catalogue(path)
    out = []
    for m, spec in doc["models"].items():
        if m not in W.MODELS:
            raise WeightsError(f"{path}: models.{m}: unknown model; known: {', '.join(W.MODELS)}")
        if model is not None and m != model:
            continue
        for i, s in enumerate(spec.get("sources", [])):
            where = f"{path}: models.{m}.sources[{i}]"
            if not isinstance(s, dict) or s.get("kind") not in KINDS:
                raise WeightsError(f"{where}.kind: expected one of {', '.join(KINDS)}")
            need = {"mirror": ("url",), "zip": ("url",), "github-release": ("url",), "files": ("files",),
                    "yandex-disk": ("files", "api")}[s["kind"]]
            for key in need:
                if not s.get(key):
                    raise WeightsError(f"{where}.{key}: missing (a {s['kind']} source needs it)")
            out.append(KnownSource(m, str(s.get("name") or s.get("url") or f"source {i + 1}"), s["kind"],
                                   str(s.get("page", "")), str(s.get("contains", "")), str(s.get("verify", "")), s))
    return out


def describe(model: str | None = None) -> str:
    """What `sanet weights sources` prints: per model, the files and each source with what it holds."""
    by_model: dict[str, list[KnownSource]] = {}
    for s in known_sources(model):
        by_model.setdefault(s.model, []).append(s)
    lines = [f"known sources ({catalogue_path()}), tried in this order by `sanet weights install`:"]
    for m in ([model] if model else list(W.MODELS)):
        spec = W._CATALOGUE["models"][m]
        lines.append("")
        lines.append(f"{W.MODEL_TITLES[m]} [{m}]: {spec.get('origin', '')}".rstrip(": "))
        lines.append(f"  files: {', '.join(W.MODELS[m])}")
        for i, s in enumerate(by_model.get(m, []), 1):
            lines.append(f"  {i}. {s.name}")
            if s.page:
                lines.append(f"     page:     {s.page}")
            for label, key in (("url", "url"), ("api", "api")):
                if s.spec.get(key) and s.spec.get(key) != s.page:
                    lines.append(f"     {label}:{' ' * (9 - len(label))}{s.spec[key]}")
            for name, link in (s.spec.get("files") or {}).items():
                lines.append(f"     {name}: {link}")
            if s.contains:
                lines.append(f"     contains: {s.contains}")
            if s.verify:
                lines.append(f"     verified: {s.verify}")
        if not by_model.get(m):
            lines.append("  (no known source)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ resolving

def _json(url: str, opts: W.FetchOptions) -> object:
    text = W.fetch_text(url, opts.timeout)
    if text is None:
        raise WeightsError(f"{url}: HTTP 404 Not Found")
    try:
        return json.loads(text)
    except ValueError:
        raise WeightsError(f"{url}: expected a JSON answer, got something else") from None


def _github_assets(src: KnownSource, opts: W.FetchOptions) -> tuple[list[W.Source], list[str]]:
    """(loose .pth sources, .zip asset URLs) of a GitHub release."""
    doc = _json(src.spec["url"], opts)
    assets = doc.get("assets") if isinstance(doc, dict) else None
    if not isinstance(assets, list):
        raise WeightsError(f"{src.spec['url']}: not a GitHub release (no 'assets' list)")
    loose, zips = [], []
    for a in assets:
        if not isinstance(a, dict) or not isinstance(a.get("browser_download_url"), str):
            continue
        name, url = str(a.get("name", "")), a["browser_download_url"]
        size = a.get("size") if isinstance(a.get("size"), int) else None
        if name in W.MODELS[src.model]:
            loose.append(W.Source(url, name, size=size, manifest=f"{src.name} (asset size)" if size else None,
                                  model=src.model if name == W.VGG_FILE else None))
        elif name.lower().endswith(".zip"):
            zips.append(url)
    if not loose and not zips:
        raise WeightsError(f"{src.spec['url']}: the release has no .pth or .zip asset")
    return loose, zips


def _yandex(src: KnownSource, name: str, link: str, opts: W.FetchOptions) -> W.Source:
    api = src.spec["api"].replace("{public_key}", urllib.parse.quote(link, safe=""))
    doc = _json(api, opts)
    href = doc.get("href") if isinstance(doc, dict) else None
    if not isinstance(href, str) or not W.is_url(href):
        raise WeightsError(f"{api}: no download link ('href') in the answer")
    return W.Source(href, name, model=src.model if name == W.VGG_FILE else None)


# ------------------------------------------------------------------------------------------------ installing

def _missing(target: Path, model: str) -> list[str]:
    return [s.name for s in W.weights_status(target, model) if not s.usable]


def _install_archive(url: str, target: Path, model: str, opts: W.FetchOptions, hints: dict | None,
                     report: Callable) -> None:
    archive = W.fetch_archive(url, target, opts)
    try:
        wanted = set(_missing(target, model))
        sources = [s for s in W.plan_archive(archive, url, model, hints) if s.name in wanted]
        W.install_sources(sources, target, opts, model, report)
    finally:
        archive.unlink(missing_ok=True)


def install_from(src: KnownSource, target: Path, opts: W.FetchOptions, report: Callable) -> None:
    """Install ``src.model``'s missing files from one known source (the caller holds the folder lock)."""
    model = src.model
    wanted = set(_missing(target, model))
    if src.kind == "mirror":
        sources = W.plan_sources(src.spec["url"], opts.timeout, model)
    elif src.kind == "files":
        sources = [W.Source(url, name, model=model if name == W.VGG_FILE else None)
                   for name, url in src.spec["files"].items() if name in W.MODELS[model]]
    elif src.kind == "yandex-disk":
        sources = [_yandex(src, name, link, opts) for name, link in src.spec["files"].items() if name in wanted]
    elif src.kind == "zip":
        _install_archive(src.spec["url"], target, model, opts, src.spec.get("members"), report)
        return
    else:  # github-release
        sources, zips = _github_assets(src, opts)
        if not {s.name for s in sources} >= wanted and zips:
            for url in zips:
                _install_archive(url, target, model, opts, None, report)
                if not _missing(target, model):
                    return
    W.install_sources([s for s in sources if s.name is None or s.name in wanted], target, opts, model, report)


@dataclass
class ModelOutcome:
    model: str
    usable: bool
    already: bool = False
    source: str | None = None                     # the source that completed it
    failures: list = field(default_factory=list)  # (source name, one-line reason)


def install_known(target: Path, models: list[str] | None = None, opts: W.FetchOptions | None = None,
                  report: Callable[[W.InstallResult], None] | None = None,
                  say: Callable[[str], None] | None = None) -> list[ModelOutcome]:
    """For each model (default: all) whose files are not all usable, try its known sources in order."""
    opts = opts or W.FetchOptions()
    say = say or (lambda text: None)
    target = W.prepare_target(target)
    outcomes = []
    with W._InstallLock(target):
        for model in (models or list(W.MODELS)):
            W.check_model(model)
            if not _missing(target, model):
                outcomes.append(ModelOutcome(model, True, already=True))
                continue
            outcome = ModelOutcome(model, False)
            sources = known_sources(model)
            for i, src in enumerate(sources, 1):
                say(f"[{model}] trying source {i} of {len(sources)}: {src.name}")
                try:
                    install_from(src, target, opts, report or (lambda r: None))
                except WeightsError as exc:
                    outcome.failures.append((src.name, str(exc)))
                    say(f"[{model}] source {i} failed: {exc}")
                    continue
                left = _missing(target, model)
                if not left:
                    outcome.usable, outcome.source = True, src.name
                    break
                outcome.failures.append((src.name, f"still missing {', '.join(left)}"))
                say(f"[{model}] source {i} did not provide {', '.join(left)}")
            outcomes.append(outcome)
    return outcomes
