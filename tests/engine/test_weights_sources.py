"""Getting the weights without knowing where they are: the known sources (sanet/weights_sources.json) tried in order
against real HTTP servers on 127.0.0.1 — a mirror layout, a redirect, a web page instead of the file (with and
without a Google-Drive-style download form), a 404, a cut connection, a GitHub release API, a Yandex.Disk API —
each failure one clear line and nothing half-installed; AdaAttN's release zip and nested layout installed flat;
`sanet weights status` for both models; and the commands that must never load torch."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from sanet import weights as W
from sanet import weights_sources as S
from sanet.errors import WeightsError

ROOT = Path(__file__).resolve().parents[2]
SANET = W.MODELS["sanet"]
ADAATTN_OWN = tuple(n for n in W.MODELS["adaattn"] if n != W.VGG_FILE)
QUIET = dict(progress=False, retries=1)


# ------------------------------------------------------------------------------------------- synthetic AdaAttN

@pytest.fixture(scope="module")
def adaattn_files(tmp_path_factory, synthetic_weights) -> Path:
    """AdaAttN's three own files in the release's keys and shapes (random values), plus the SANet vgg."""
    d = tmp_path_factory.mktemp("adaattn")
    gen = torch.Generator().manual_seed(5)
    for name, layout in W.expected_layouts().items():
        if name in ADAATTN_OWN:
            torch.save({k: torch.randn(shape, generator=gen) * 0.01 for k, shape in layout.items()}, d / name)
    shutil.copyfile(synthetic_weights / W.VGG_FILE, d / W.VGG_FILE)
    return d


def release_zip(folder: Path, dest: Path, vgg: Path | None = None) -> Path:
    """AdaAttN_model.zip as published: checkpoints/vgg_normalised.pth + checkpoints/AdaAttN/latest_net_*.pth."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        zf.write(vgg or folder / W.VGG_FILE, f"checkpoints/{W.VGG_FILE}")
        for n in ADAATTN_OWN:
            zf.write(folder / n, f"checkpoints/AdaAttN/{n}")
    return dest


# ------------------------------------------------------------------------------------------- the servers

class _Handler(BaseHTTPRequestHandler):
    """/<file> from root (Range, cuts), /redirect/<path> (302), /drive/uc?id=F (an interstitial whose form leads to
    /drive/download), /html/<x> (a sign-in page), /api/github (a release), /api/yandex?public_key=L (a download
    link), anything else 404."""

    def do_GET(self):  # noqa: N802
        srv = self.server
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path).lstrip("/")
        query = dict(urllib.parse.parse_qsl(parts.query))
        with srv.lock:
            srv.requests.append(self.path)
        if path.startswith("redirect/"):
            self._redirect("/" + path[len("redirect/"):])
        elif path == "drive/uc":
            page = (f'<!DOCTYPE html><html><body><p>Google Drive can\'t scan this file for viruses.</p>'
                    f'<form id="download-form" action="/drive/download" method="get">'
                    f'<input type="submit" value="Download anyway"/>'
                    f'<input type="hidden" name="id" value="{query.get("id", "")}">'
                    f'<input type="hidden" name="export" value="download">'
                    f'<input type="hidden" name="confirm" value="t"></form></body></html>')
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif path == "drive/download" and query.get("confirm") == "t":
            self._file(query.get("id", ""))
        elif path.startswith("html/"):
            self._send(200, b"<!doctype html><html><head><title>Sign in</title></head><body>Sign in</body></html>",
                       "text/html")
        elif path == "api/github":
            assets = [{"name": n, "size": (srv.root / n).stat().st_size,
                       "browser_download_url": f"{srv.url}redirect/{n}"} for n in srv.github_assets]
            self._send(200, json.dumps({"tag_name": "v1", "assets": assets}).encode(), "application/json")
        elif path == "api/yandex":
            name = srv.yandex.get(query.get("public_key", ""))
            if name is None:
                self.send_error(404, "Not Found")
            else:
                self._send(200, json.dumps({"href": f"{srv.url}{name}", "method": "GET"}).encode(), "application/json")
        else:
            self._file(path)

    def _redirect(self, to):
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, code, body, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self, path):
        srv = self.server
        file = srv.root / path
        if not path or not file.is_file():
            self.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        rng = self.headers.get("Range")
        start, status = 0, 200
        if rng:
            start = int(rng.split("=", 1)[1].split("-", 1)[0])
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with srv.lock:
            cut = srv.cuts.get(path)
        sent = body[:cut] if cut is not None else body
        self.wfile.write(sent)
        self.wfile.flush()
        if cut is not None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.root, srv.requests, srv.cuts, srv.lock = root, [], {}, threading.Lock()
    srv.github_assets, srv.yandex = [], {}
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def catalogue(tmp_path: Path, sanet=(), adaattn=()) -> Path:
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"format": W.CATALOGUE_FORMAT, "models": {
        "sanet": {"sources": list(sanet)}, "adaattn": {"sources": list(adaattn)}}}))
    return path


def cli(*args, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    env.pop("SANET_WEIGHTS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "sanet.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=300)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in W.ALL_FILES)


# ------------------------------------------------------------------------------------------- the packaged list

def test_packaged_sources_name_the_public_releases():
    srcs = S.known_sources()
    by_model = {m: [s for s in srcs if s.model == m] for m in W.MODELS}
    assert [s.kind for s in by_model["sanet"]] == ["github-release", "yandex-disk"]
    assert "GlebSBrykin/SANET" in by_model["sanet"][0].spec["url"]
    assert set(by_model["sanet"][1].spec["files"]) == set(SANET)
    [ada] = by_model["adaattn"]
    assert ada.kind == "zip" and "1XvpD1eI4JeCBIaW5uwMT6ojF_qlzM_lo" in ada.spec["url"]
    assert ada.spec["members"]["latest_net_decoder.pth"] == "checkpoints/AdaAttN/latest_net_decoder.pth"
    assert all(s.contains and s.verify for s in srcs)          # what each holds and how it is verified
    from sanet.checkpoints import CHECKPOINT_FILES, expected_layout, model_files
    from sanet.models import MODELS as ENGINE_MODELS
    assert SANET == CHECKPOINT_FILES                             # the engine reads the names listed here
    # the catalogue's file lists (read without torch) are the engine models' own, in load order
    assert list(W.MODELS) == list(ENGINE_MODELS)
    assert all(W.MODELS[m] == model_files(m) for m in ENGINE_MODELS)
    assert W.MODELS["adaattn"] == (W.VGG_FILE, "latest_net_transformer.pth", "latest_net_decoder.pth",
                                   "latest_net_adaattn_3.pth")
    assert set(W.ALL_FILES) == set(expected_layout())           # one key/shape table: sanet.checkpoints'


def test_a_bad_sources_file_names_the_field(tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": W.CATALOGUE_FORMAT, "models": {"sanet": {"sources": [{"kind": "ftp"}]}}}))
    monkeypatch.setenv(S.ENV_SOURCES, str(bad))
    with pytest.raises(WeightsError, match=r"models.sanet.sources\[0\].kind: expected one of mirror"):
        S.known_sources()
    bad.write_text(json.dumps({"format": W.CATALOGUE_FORMAT, "models": {"sanet": {"sources": [{"kind": "zip"}]}}}))
    with pytest.raises(WeightsError, match=r"sources\[0\].url: missing"):
        S.known_sources()


# ------------------------------------------------------------------------------------------- trying in order

def test_sources_tried_in_order_each_failure_one_line(synthetic_weights, server, tmp_path):
    """An HTML page, a 404, a connection cut on every try, then a mirror behind a redirect: the first three each
    say why in one line, the mirror installs all three files, and nothing is left half-installed."""
    www = server.root
    (www / "mirror").mkdir()
    for n in SANET:
        shutil.copyfile(synthetic_weights / n, www / "mirror" / n)
    (www / "mirror" / "SHA256SUMS").write_text(W.make_manifest(www / "mirror"))
    shutil.copyfile(synthetic_weights / SANET[1], www / "cut.pth")
    server.cuts["cut.pth"] = 5000       # every response of this file stops after 5000 bytes
    src = catalogue(tmp_path, sanet=[
        {"name": "a sign-in page", "kind": "files", "files": {SANET[1]: server.url + "html/decoder"}},
        {"name": "a gone mirror", "kind": "mirror", "url": server.url + "gone/"},
        {"name": "a flaky host", "kind": "files", "files": {SANET[1]: server.url + "cut.pth"}},
        {"name": "the mirror", "kind": "mirror", "url": server.url + "redirect/mirror/"},
    ])
    dest = tmp_path / "dest"
    r = cli("weights", "install", "--model", "sanet", "--retries", "1", "--no-progress", "--weights", dest,
            env_extra={S.ENV_SOURCES: str(src)})
    assert r.returncode == 0, r.stderr
    failed = [ln for ln in r.stderr.splitlines() if "failed:" in ln]
    assert len(failed) == 3, r.stderr
    assert "web page (HTML) instead of" in failed[0] and "sanet weights install --from FILE" in failed[0]
    assert "HTTP 404" in failed[1] and "gone/" in failed[1]
    assert "download interrupted" in failed[2] and "kept in" in failed[2]
    assert "sanet: installed from the mirror" in r.stdout and r.stdout.count("verified against") == 3
    for n in SANET:
        assert (dest / n).read_bytes() == (synthetic_weights / n).read_bytes()
    # the cut download's .part (from "the flaky host") was superseded by the mirror's verified file
    assert leftovers(dest) in ([], [SANET[1] + W.PART_SUFFIX])
    assert any(p.startswith("/redirect/mirror/") for p in server.requests)
    r = cli("weights", "install", "--model", "sanet", "--weights", dest, env_extra={S.ENV_SOURCES: str(src)})
    assert r.returncode == 0 and "sanet: all files already usable" in r.stdout


def test_when_every_source_fails_it_says_which_files_go_where(server, tmp_path):
    src = catalogue(tmp_path, sanet=[{"name": "gone", "kind": "mirror", "url": server.url + "gone/"}])
    dest = tmp_path / "dest"
    r = cli("weights", "install", "--model", "sanet", "--weights", dest, env_extra={S.ENV_SOURCES: str(src)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "sanet: error: no known source could provide SANet" in r.stderr
    for n in SANET:
        assert str(dest / n) in r.stderr                           # exactly which names, in which folder
    assert "sanet weights install --from PATH" in r.stderr
    assert list(dest.iterdir()) == []                              # nothing half-installed


def test_without_arguments_each_model_is_reported_and_a_usable_sanet_is_success(synthetic_weights, server, tmp_path):
    """Offline for AdaAttN (its only source is gone), SANet from a mirror: exit 0, one line per model (installed /
    failed with the reason and the retry command); again with SANet already there: "already usable", exit 0; the
    model named with --model, or nothing usable at all, is exit 2."""
    (server.root / "mirror").mkdir()
    for n in SANET:
        shutil.copyfile(synthetic_weights / n, server.root / "mirror" / n)
    src = catalogue(tmp_path, sanet=[{"name": "the mirror", "kind": "mirror", "url": server.url + "mirror/"}],
                    adaattn=[{"name": "the authors' drive", "kind": "zip", "url": server.url + "gone/AdaAttN.zip"}])
    env = {S.ENV_SOURCES: str(src)}
    dest = tmp_path / "dest"
    r = cli("weights", "install", "--no-progress", "--retries", "1", "--weights", dest, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = r.stdout.splitlines()
    assert "sanet: installed from the mirror" in out
    [ada] = [ln for ln in out if ln.startswith("adaattn: ")]
    assert ada.startswith("adaattn: failed (1 source(s) tried; the last said: ") and "HTTP 404" in ada
    assert ada.endswith("retry with `sanet weights install --model adaattn`")
    assert (f"sanet: {W.MODEL_TITLES['sanet']} usable in {dest}; {W.MODEL_TITLES['adaattn']} could not be installed"
            in r.stderr
            and "`sanet weights install --model adaattn`" in r.stderr)
    assert str(dest / "latest_net_decoder.pth") in r.stderr                       # where to put it by hand
    assert sorted(p.name for p in dest.iterdir()) == sorted(SANET)                 # nothing of AdaAttN half there
    r = cli("weights", "install", "--no-progress", "--retries", "1", "--weights", dest, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert f"sanet: all files already usable in {dest}" in r.stdout.splitlines()
    assert any(ln.startswith("adaattn: failed") for ln in r.stdout.splitlines())
    # the user named the model: its failure is the command's
    r = cli("weights", "install", "--model", "adaattn", "--retries", "1", "--weights", dest, env_extra=env)
    assert r.returncode == 2 and "sanet: error: no known source could provide AdaAttN" in r.stderr
    # nothing usable results: exit 2, every model's line still there
    empty = tmp_path / "empty"
    gone = catalogue(tmp_path, sanet=[{"name": "gone", "kind": "mirror", "url": server.url + "gone/"}],
                     adaattn=[{"name": "gone too", "kind": "zip", "url": server.url + "gone/AdaAttN.zip"}])
    r = cli("weights", "install", "--retries", "1", "--weights", empty, env_extra={S.ENV_SOURCES: str(gone)})
    assert r.returncode == 2, r.stderr
    assert [ln.split(":")[0] for ln in r.stdout.splitlines()] == ["sanet", "adaattn"]
    assert "no known source could provide SANet" in r.stderr and "no known source could provide AdaAttN" in r.stderr


def test_drive_interstitial_is_followed_and_the_release_zip_installs_flat(adaattn_files, synthetic_weights,
                                                                          server, tmp_path):
    release_zip(adaattn_files, server.root / "AdaAttN_model")       # served as /drive/download?id=AdaAttN_model
    src = catalogue(tmp_path, adaattn=[{"name": "drive", "kind": "zip",
                                        "url": server.url + "drive/uc?export=download&id=AdaAttN_model",
                                        "members": {n: f"checkpoints/AdaAttN/{n}" for n in ADAATTN_OWN}}])
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copyfile(synthetic_weights / W.VGG_FILE, dest / W.VGG_FILE)    # SANet's vgg is there already
    r = cli("weights", "install", "--model", "adaattn", "--no-progress", "--weights", dest,
            env_extra={S.ENV_SOURCES: str(src)})
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(W.MODELS["adaattn"])   # flat, no zip left behind
    for n in ADAATTN_OWN:
        assert (dest / n).read_bytes() == (adaattn_files / n).read_bytes()
        assert f"{n}: installed" in r.stdout and "unverified" in r.stdout
    assert any("/drive/download?" in p and "confirm=t" in p for p in server.requests)
    r = cli("weights", "status", "--weights", dest)
    assert r.returncode == 0, r.stdout
    assert "SANet (Park & Lee, CVPR 2019) [sanet]: not installed" in r.stdout   # only the shared vgg is there
    assert "AdaAttN (Liu et al., ICCV 2021) [adaattn]: usable" in r.stdout
    assert f"{W.VGG_FILE}: ok (shared with sanet, above)" in r.stdout


def test_a_page_without_a_download_form_is_one_line_and_nothing_is_written(server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(W.HtmlInsteadOfFile) as exc:
        W.install(server.url + "html/AdaAttN_model.zip", dest, W.FetchOptions(**QUIET))
    assert "\n" not in str(exc.value) and "instead of" in str(exc.value)
    assert list(dest.iterdir()) == []


def test_github_release_assets_behind_redirects(synthetic_weights, server, tmp_path):
    for n in SANET:
        shutil.copyfile(synthetic_weights / n, server.root / n)
    (server.root / "README.txt").write_text("an asset that is not a checkpoint")
    server.github_assets = list(SANET) + ["README.txt"]
    src = catalogue(tmp_path, sanet=[{"name": "release", "kind": "github-release", "url": server.url + "api/github"}])
    dest = tmp_path / "dest"
    [outcome] = _with_sources(src, lambda: S.install_known(dest, ["sanet"], W.FetchOptions(**QUIET)))
    assert outcome.usable and outcome.source == "release" and leftovers(dest) == []
    assert all(f"/redirect/{n}" in server.requests for n in SANET)


def test_github_release_with_a_zip_asset(synthetic_weights, server, tmp_path):
    with zipfile.ZipFile(server.root / "SANET-weights.zip", "w") as zf:
        for n in SANET:
            zf.write(synthetic_weights / n, f"SANET/models/{n}")
    server.github_assets = ["SANET-weights.zip"]
    src = catalogue(tmp_path, sanet=[{"name": "release", "kind": "github-release", "url": server.url + "api/github"}])
    dest = tmp_path / "dest"
    [outcome] = _with_sources(src, lambda: S.install_known(dest, ["sanet"], W.FetchOptions(**QUIET)))
    assert outcome.usable and sorted(p.name for p in dest.iterdir()) == sorted(SANET)


def test_yandex_disk_public_links(synthetic_weights, server, tmp_path):
    for i, n in enumerate(SANET):
        shutil.copyfile(synthetic_weights / n, server.root / n)
        server.yandex[f"https://yadi.sk/d/key{i}"] = n
    src = catalogue(tmp_path, sanet=[{"name": "yandex", "kind": "yandex-disk",
                                      "api": server.url + "api/yandex?public_key={public_key}",
                                      "files": {n: f"https://yadi.sk/d/key{i}" for i, n in enumerate(SANET)}}])
    dest = tmp_path / "dest"
    [outcome] = _with_sources(src, lambda: S.install_known(dest, ["sanet"], W.FetchOptions(**QUIET)))
    assert outcome.usable and leftovers(dest) == []


def _with_sources(path, fn):
    old = os.environ.get(S.ENV_SOURCES)
    os.environ[S.ENV_SOURCES] = str(path)
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop(S.ENV_SOURCES, None)
        else:
            os.environ[S.ENV_SOURCES] = old


# ------------------------------------------------------------------------------------------- --from and layouts

def test_from_zip_nested_folder_and_the_old_positional_form(adaattn_files, synthetic_weights, tmp_path):
    z = release_zip(adaattn_files, tmp_path / "AdaAttN_model.zip")
    dest = tmp_path / "a"
    r = cli("weights", "install", "--from", z, "--no-progress", "--weights", dest)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(W.MODELS["adaattn"])
    # the unzipped release (checkpoints/ + checkpoints/AdaAttN/), positional SRC as before
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(z) as zf:
        zf.extractall(unzipped)
    dest = tmp_path / "b"
    r = cli("weights", "install", unzipped, "--no-progress", "--weights", dest)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(W.MODELS["adaattn"])
    # a zip without the expected members: one line, nothing installed
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    dest = tmp_path / "c"
    r = cli("weights", "install", "--from", tmp_path / "empty.zip", "--weights", dest)
    assert r.returncode == 2 and "holds none of" in r.stderr and "Traceback" not in r.stderr
    assert not dest.exists() or list(dest.iterdir()) == []


def test_a_different_vgg_in_the_release_is_kept_apart_and_verifiable(adaattn_files, synthetic_weights, tmp_path):
    other_vgg = tmp_path / "other_vgg.pth"
    state = torch.load(synthetic_weights / W.VGG_FILE, weights_only=True)
    torch.save({k: v + 0.001 for k, v in state.items()}, other_vgg)
    z = release_zip(adaattn_files, tmp_path / "AdaAttN_model.zip", vgg=other_vgg)
    dest = tmp_path / "dest"
    W.install(str(synthetic_weights), dest, W.FetchOptions(**QUIET))
    before = (dest / W.VGG_FILE).read_bytes()
    results = W.install(str(z), dest, W.FetchOptions(**QUIET))
    [vgg] = [r for r in results if W.ALT_VGG_FILE == r.name]
    assert "kept as vgg_normalised.adaattn.pth" in vgg.verification and "every model uses" in vgg.verification
    assert (dest / W.VGG_FILE).read_bytes() == before                     # the one the engine reads is unchanged
    assert (dest / W.ALT_VGG_FILE).read_bytes() == other_vgg.read_bytes()
    alt = W.alt_vgg_status(dest)
    assert alt.usable and "kept apart" in alt.detail
    # the identical copy is not duplicated
    dest2 = tmp_path / "dest2"
    W.install(str(synthetic_weights), dest2, W.FetchOptions(**QUIET))
    W.install(str(release_zip(adaattn_files, tmp_path / "same.zip")), dest2, W.FetchOptions(**QUIET))
    assert not (dest2 / W.ALT_VGG_FILE).exists()


def test_mixed_files_are_named(adaattn_files, synthetic_weights, tmp_path):
    """An AdaAttN decoder under the SANet decoder's name: keys named, nothing installed."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(adaattn_files / "latest_net_decoder.pth", src / SANET[1])
    with pytest.raises(WeightsError) as exc:
        W.install(str(src / SANET[1]), tmp_path / "dest", W.FetchOptions(**QUIET))
    assert str(src / SANET[1]) in str(exc.value) and "key" in str(exc.value)
    assert list((tmp_path / "dest").iterdir()) == []


# ------------------------------------------------------------------------------------------- fast commands

PROBE = """
import sys
from sanet.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", code, file=sys.stderr)
"""


@pytest.mark.parametrize("args,code", [
    (["--help"], 0), (["--version"], 0), (["weights", "sources"], 0), (["weights", "--help"], 0),
    (["stylize"], 2), (["stylize", "x.png", "--style", "s.png", "-o", "out.png", "--alpha", "7"], 2),
    (["stylize", "missing.png", "--style", "s.png", "-o", "out.png"], 2),
    (["stylize", "c.png", "--style", "s.png", "-o", "out.gif"], 2),
    (["stylize", "c.png", "--style", "s.png", "-o", "no/such/folder/out.png"], 2),
    (["stylize", "c.png", "--style", "s.png", "--selection", "small.png", "-o", "out.png"], 2),
    (["weights", "install", "--model", "nope"], 2),
])
def test_help_version_sources_and_bad_input_never_load_torch(tmp_path, args, code):
    import numpy as np
    from sanet.images import save_image
    save_image(tmp_path / "c.png", np.zeros((20, 30, 3), np.uint8))
    save_image(tmp_path / "s.png", np.zeros((20, 20, 3), np.uint8))
    save_image(tmp_path / "small.png", np.zeros((5, 5), np.uint8))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=120)
    assert p.stderr.strip().splitlines()[-1] == f"NO-TORCH {code}", p.stderr


def test_status_lists_both_models_and_says_where_to_put_files(synthetic_weights, tmp_path):
    dest = tmp_path / "w"
    W.install(str(synthetic_weights), dest, W.FetchOptions(**QUIET))
    (dest / "latest_net_decoder.pth").write_bytes(b"truncated")     # a half-installed AdaAttN counts
    r = cli("weights", "status", "--weights", dest)
    assert r.returncode == 1, r.stdout
    assert "[sanet]: usable" in r.stdout and "[adaattn]: NOT USABLE" in r.stdout
    assert "latest_net_decoder.pth: CORRUPT" in r.stdout and "latest_net_transformer.pth: MISSING" in r.stdout
    assert str(dest / "latest_net_adaattn_3.pth") in r.stdout
    r = cli("weights", "status", "--model", "sanet", "--weights", dest)
    assert r.returncode == 0 and "[adaattn]" not in r.stdout
