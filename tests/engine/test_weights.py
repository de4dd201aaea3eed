"""Weights manager: installs from a real HTTP server on 127.0.0.1 (with Range support and deliberate connection
cuts), from local files and folders; manifests, git blob ids, atomic install, status, the CLI as a subprocess."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from sanet import weights as W
from sanet.checkpoints import CHECKPOINT_FILES, DECODER_FILE, TRANSFORMER_FILE, VGG_FILE
from sanet.errors import WeightsError

ROOT = Path(__file__).resolve().parents[2]
QUIET = dict(progress=False)


# ------------------------------------------------------------------------------------------- HTTP server

class _RangeHandler(BaseHTTPRequestHandler):
    """Serves files from server.root; honours `Range: bytes=N-`; can cut a response after K body bytes."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        srv = self.server
        rng = self.headers.get("Range")
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        with srv.lock:
            srv.requests.append((path, rng))
        file = srv.root / path
        if not path or not file.is_file():
            self.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        start, status = 0, 200
        if rng and srv.ranges:
            start = int(rng.split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with srv.lock:
            cut = srv.cuts.pop(0) if srv.cuts else None
        sent = body[:cut] if cut is not None else body
        self.wfile.write(sent)
        self.wfile.flush()
        with srv.lock:
            srv.bytes_served[path] = srv.bytes_served.get(path, 0) + len(sent)
        if cut is not None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (root, server) with server.url, .requests, .bytes_served,
    .cuts (bytes to send before cutting, one per response), .ranges (False: ignore Range like a dumb server)."""
    root = tmp_path / "www"
    root.mkdir()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    srv.daemon_threads = True
    srv.root, srv.requests, srv.bytes_served, srv.cuts, srv.ranges = root, [], {}, [], True
    srv.lock = threading.Lock()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield root, srv
    srv.shutdown()
    srv.server_close()


def _publish(synthetic_weights: Path, root: Path, names=CHECKPOINT_FILES) -> None:
    for n in names:
        shutil.copyfile(synthetic_weights / n, root / n)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in CHECKPOINT_FILES)


# ------------------------------------------------------------------------------------------- digests

def test_git_blob_id_equals_git_hash_object(tmp_path):
    samples = {"empty": b"", "hello": b"hello\n", "big": os.urandom(3 * (1 << 20) + 17)}  # crosses chunk size
    for name, data in samples.items():
        p = tmp_path / name
        p.write_bytes(data)
        want = subprocess.run(["git", "hash-object", str(p)], capture_output=True, text=True, check=True).stdout
        assert W.git_blob_id(p) == want.strip(), name
    assert W.git_blob_id(tmp_path / "hello") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert W.file_digests(tmp_path / "big").sha256 == hashlib.sha256(samples["big"]).hexdigest()


def test_known_blob_ids_are_the_circulated_copies():
    assert W.KNOWN_BLOB_IDS == {
        "038871959e1f98924d30db8676629737d526761e": DECODER_FILE,
        "2456574f8e2697a1fcadd6dd6cc99b3a0c9bf588": TRANSFORMER_FILE,
        "8e2f8b2efaa09cf8e96ba338e62f6b260a995857": VGG_FILE,
        "18a783877329319e5a640ae20f7b98c64e5f5572": VGG_FILE,
    }


def test_a_known_copy_is_recognised_by_blob_id(synthetic_weights, tmp_path, monkeypatch):
    # The real circulated files cannot be fetched here: register the synthetic decoder's id as "circulated".
    blob = W.git_blob_id(synthetic_weights / DECODER_FILE)
    monkeypatch.setitem(W.KNOWN_BLOB_IDS, blob, DECODER_FILE)
    shutil.copyfile(synthetic_weights / DECODER_FILE, tmp_path / "renamed_download.bin")
    dest = tmp_path / "dest"
    [r] = W.install(str(tmp_path / "renamed_download.bin"), dest, W.FetchOptions(**QUIET))
    assert r.name == DECODER_FILE and (dest / DECODER_FILE).is_file()
    assert r.verification == f"known circulated copy (git blob id {blob})"
    st = W.file_status(dest, DECODER_FILE)
    assert st.state == "known" and blob in st.detail and st.usable
    # the circulated decoder under the transformer's name is named as such
    shutil.copyfile(synthetic_weights / DECODER_FILE, dest / TRANSFORMER_FILE)
    st = W.file_status(dest, TRANSFORMER_FILE)
    assert st.state == "corrupt" and f"circulated {DECODER_FILE}" in st.detail


# ------------------------------------------------------------------------------------------- manifests

def test_sha256sums_and_manifest_json_parse(synthetic_weights):
    sums = W.make_manifest(synthetic_weights, "SHA256SUMS")
    entries = W.parse_manifest(sums, "SHA256SUMS", "label")
    assert set(entries) == set(CHECKPOINT_FILES)
    assert entries[VGG_FILE].sha256 == _sha(synthetic_weights / VGG_FILE)
    star = W.parse_sha256sums(f"# comment\n\n{'a' * 64} *sub/{DECODER_FILE}\n{'b' * 64}  other.txt\n", "x")
    assert list(star) == [DECODER_FILE] and star[DECODER_FILE].location == f"sub/{DECODER_FILE}"
    doc = json.loads(W.make_manifest(synthetic_weights, "json"))
    assert doc["format"] == W.MANIFEST_FORMAT
    assert doc["files"][DECODER_FILE]["size"] == (synthetic_weights / DECODER_FILE).stat().st_size
    entries = W.parse_manifest(json.dumps(doc), "manifest.json", "m")
    assert entries[TRANSFORMER_FILE].size == doc["files"][TRANSFORMER_FILE]["size"]


@pytest.mark.parametrize("text,fname,expect", [
    ("nonsense line\n", "SHA256SUMS", "line 1"),
    (f"{'a' * 64}  unrelated.bin\n", "SHA256SUMS", "lists none of"),
    ("{not json", "manifest.json", "not valid JSON"),
    (json.dumps({"files": {DECODER_FILE: {"sha256": "xyz"}}}), "manifest.json", f"files.{DECODER_FILE}.sha256"),
    (json.dumps({"files": {DECODER_FILE: {"sha256": "a" * 64, "size": -1}}}), "manifest.json", ".size"),
    (json.dumps({"format": "v9", "files": {}}), "manifest.json", "field 'format'"),
])
def test_bad_manifest_names_the_problem(text, fname, expect):
    with pytest.raises(WeightsError, match="^m: ") as exc:
        W.parse_manifest(text, fname, "m")
    assert expect in str(exc.value)


# ------------------------------------------------------------------------------------------- install over HTTP

def test_install_from_folder_url_without_manifest(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root)
    dest = tmp_path / "dest"
    results = W.install(srv.url, dest, W.FetchOptions(**QUIET))
    assert [r.name for r in results] == list(CHECKPOINT_FILES)
    for r in results:
        assert r.verification.startswith("unverified (not a known circulated copy)")
        assert _sha(dest / r.name) == _sha(synthetic_weights / r.name) == r.digests.sha256
    assert _leftovers(dest) == []
    assert [s.state for s in W.weights_status(dest)] == ["valid"] * 3
    assert [p for p, _ in srv.requests[:2]] == ["SHA256SUMS", "manifest.json"]  # looked for a manifest first


@pytest.mark.parametrize("kind", ["SHA256SUMS", "manifest.json"])
def test_install_verifies_manifest(synthetic_weights, http_root, tmp_path, kind):
    root, srv = http_root
    (root / "w").mkdir()
    _publish(synthetic_weights, root / "w")
    (root / "w" / kind).write_text(W.make_manifest(synthetic_weights, "SHA256SUMS" if kind == "SHA256SUMS" else "json"))
    dest = tmp_path / "dest"
    for src in (srv.url + "w/", srv.url + "w/" + kind):  # the folder URL and the manifest URL
        shutil.rmtree(dest, ignore_errors=True)
        results = W.install(src, dest, W.FetchOptions(**QUIET))
        assert sorted(r.name for r in results) == sorted(CHECKPOINT_FILES)
        assert all(r.verification.startswith("verified against") for r in results)
    # same command again: files already match the manifest, nothing is downloaded
    served = dict(srv.bytes_served)
    results = W.install(srv.url + "w/" + kind, dest, W.FetchOptions(**QUIET))
    assert all(r.skipped for r in results)
    assert sum(srv.bytes_served.values()) - sum(served.values()) == (root / "w" / kind).stat().st_size


def test_checksum_mismatch_installs_nothing_and_keeps_the_old_file(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root, [DECODER_FILE])
    bad = "0" * 64
    (root / "SHA256SUMS").write_text(f"{bad}  {DECODER_FILE}\n")
    dest = tmp_path / "dest"
    with pytest.raises(WeightsError) as exc:
        W.install(srv.url + "SHA256SUMS", dest, W.FetchOptions(**QUIET))
    msg = str(exc.value)
    assert DECODER_FILE in msg and "sha256 mismatch" in msg and bad in msg and "nothing installed" in msg
    assert list(dest.iterdir()) == []  # no final file, no .part
    # an existing file under the final name is left exactly as it was
    (dest / DECODER_FILE).write_bytes(b"previous install")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        W.install(srv.url + "SHA256SUMS", dest, W.FetchOptions(**QUIET))
    assert (dest / DECODER_FILE).read_bytes() == b"previous install" and _leftovers(dest) == []


def test_resume_after_cut_connection_uses_range(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root, [DECODER_FILE])
    size = (root / DECODER_FILE).stat().st_size
    srv.cuts = [size // 3]
    dest = tmp_path / "dest"
    log = io.StringIO()
    [r] = W.install(srv.url + DECODER_FILE, dest, W.FetchOptions(stream=log))
    assert r.name == DECODER_FILE and _sha(dest / DECODER_FILE) == _sha(root / DECODER_FILE)
    assert srv.requests == [(DECODER_FILE, None), (DECODER_FILE, f"bytes={size // 3}-")]
    assert srv.bytes_served[DECODER_FILE] == size  # nothing was fetched twice
    assert "resuming at byte" in log.getvalue() and "100.0%" in log.getvalue()
    assert _leftovers(dest) == []


def test_resume_across_runs_from_part_file(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root, [TRANSFORMER_FILE])
    size = (root / TRANSFORMER_FILE).stat().st_size
    srv.cuts = [size // 2]
    dest = tmp_path / "dest"
    with pytest.raises(W.DownloadInterrupted) as exc:
        W.install(srv.url + TRANSFORMER_FILE, dest, W.FetchOptions(retries=0, **QUIET))
    assert "run the same command again to resume" in str(exc.value)
    part = dest / (TRANSFORMER_FILE + ".part")
    assert part.stat().st_size == size // 2 and not (dest / TRANSFORMER_FILE).exists()
    assert W.file_status(dest, TRANSFORMER_FILE).partial == size // 2
    W.install(srv.url + TRANSFORMER_FILE, dest, W.FetchOptions(**QUIET))
    assert srv.requests[-1] == (TRANSFORMER_FILE, f"bytes={size // 2}-")
    assert srv.bytes_served[TRANSFORMER_FILE] == size
    assert _sha(dest / TRANSFORMER_FILE) == _sha(root / TRANSFORMER_FILE) and not part.exists()


def test_complete_part_file_and_server_without_range(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root, [DECODER_FILE])
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copyfile(root / DECODER_FILE, dest / (DECODER_FILE + ".part"))  # finished, but never moved in
    W.install(srv.url + DECODER_FILE, dest, W.FetchOptions(**QUIET))
    assert srv.bytes_served.get(DECODER_FILE, 0) == 0 and (dest / DECODER_FILE).is_file()
    # a server that ignores Range: the partial file is discarded and the whole file fetched
    srv.ranges = False
    (dest / DECODER_FILE).unlink()
    (dest / (DECODER_FILE + ".part")).write_bytes((root / DECODER_FILE).read_bytes()[:1000])
    W.install(srv.url + DECODER_FILE, dest, W.FetchOptions(**QUIET))
    assert _sha(dest / DECODER_FILE) == _sha(root / DECODER_FILE) and _leftovers(dest) == []


@pytest.mark.parametrize("manifest", [True, False])
def test_resumed_bytes_of_an_older_copy_are_replaced(synthetic_weights, http_root, tmp_path, manifest):
    root, srv = http_root
    _publish(synthetic_weights, root, [DECODER_FILE])
    if manifest:
        (root / "SHA256SUMS").write_text(W.make_manifest(root))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / (DECODER_FILE + ".part")).write_bytes(b"\0" * 5000)  # stale bytes from some other file
    log = io.StringIO()
    [r] = W.install(srv.url + ("" if manifest else DECODER_FILE), dest, W.FetchOptions(stream=log))
    assert "downloading the whole file again" in log.getvalue()
    assert r.verification.startswith("verified against" if manifest else "unverified")
    assert _sha(dest / DECODER_FILE) == _sha(root / DECODER_FILE) and _leftovers(dest) == []


def test_one_install_at_a_time_per_folder(synthetic_weights, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    dest = tmp_path / "dest"
    dest.mkdir()
    fd = os.open(dest, os.O_RDONLY)  # what a concurrent install holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(WeightsError, match="another `sanet weights install` is running"):
            W.install(str(synthetic_weights / DECODER_FILE), dest, W.FetchOptions(**QUIET))
    finally:
        os.close(fd)
    W.install(str(synthetic_weights / DECODER_FILE), dest, W.FetchOptions(**QUIET))
    assert (dest / DECODER_FILE).is_file()


@pytest.mark.parametrize("what", ["404", "refused"])
def test_network_errors_are_one_line(http_root, tmp_path, what):
    _, srv = http_root
    if what == "404":
        url, expect = srv.url + DECODER_FILE, "HTTP 404"
    else:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        url, expect = f"http://127.0.0.1:{port}/{DECODER_FILE}", "Connection refused"
    with pytest.raises(WeightsError) as exc:
        W.install(url, tmp_path / "dest", W.FetchOptions(**QUIET))
    assert str(exc.value).startswith(url) and expect in str(exc.value) and "\n" not in str(exc.value)
    assert list((tmp_path / "dest").iterdir()) == []


def test_folder_url_missing_one_file_names_it(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root, [VGG_FILE, DECODER_FILE])
    with pytest.raises(WeightsError, match=f"{TRANSFORMER_FILE}: HTTP 404"):
        W.install(srv.url, tmp_path / "dest", W.FetchOptions(**QUIET))
    assert _leftovers(tmp_path / "dest") == []


# ------------------------------------------------------------------------------------------- local sources

def test_install_from_local_folder_and_file(synthetic_weights, tmp_path):
    dest = tmp_path / "dest"
    results = W.install(str(synthetic_weights), dest, W.FetchOptions(**QUIET))
    assert [r.name for r in results] == list(CHECKPOINT_FILES) and _leftovers(dest) == []
    assert all(_sha(dest / n) == _sha(synthetic_weights / n) for n in CHECKPOINT_FILES)
    # one file under another name: identified by its layout
    other = tmp_path / "dest2"
    shutil.copyfile(synthetic_weights / TRANSFORMER_FILE, tmp_path / "sanet_transformer.pth")
    [r] = W.install(str(tmp_path / "sanet_transformer.pth"), other, W.FetchOptions(**QUIET))
    assert r.name == TRANSFORMER_FILE and _leftovers(other) == []
    # installing the folder onto itself only checks it
    again = W.install(str(dest), dest, W.FetchOptions(**QUIET))
    assert len(again) == 3 and _leftovers(dest) == []


def test_install_rejects_bad_local_files(synthetic_weights, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = (synthetic_weights / DECODER_FILE).read_bytes()
    (src / DECODER_FILE).write_bytes(data[: len(data) // 2])
    dest = tmp_path / "dest"
    with pytest.raises(WeightsError) as exc:
        W.install(str(src / DECODER_FILE), dest, W.FetchOptions(**QUIET))
    assert str(exc.value).startswith(str(src / DECODER_FILE)) and "truncated or corrupt" in str(exc.value)
    assert list(dest.iterdir()) == []
    (tmp_path / "notes.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="notes.pth"):
        W.install(str(tmp_path / "notes.pth"), dest, W.FetchOptions(**QUIET))
    with pytest.raises(WeightsError, match="no such file or folder"):
        W.install(str(tmp_path / "nowhere"), dest, W.FetchOptions(**QUIET))
    assert list(dest.iterdir()) == []


# ------------------------------------------------------------------------------------------- status

def _broken_copies(synthetic_weights: Path, folder: Path) -> dict[str, str]:
    """vgg truncated, decoder with a renamed key, transformer with a wrong shape; returns name → expected words."""
    folder.mkdir()
    data = (synthetic_weights / VGG_FILE).read_bytes()
    (folder / VGG_FILE).write_bytes(data[: len(data) - 4096])
    dec = torch.load(synthetic_weights / DECODER_FILE, weights_only=True)
    dec["1.weight_renamed"] = dec.pop("1.weight")
    torch.save(dec, folder / DECODER_FILE, _use_new_zipfile_serialization=False)
    tr = torch.load(synthetic_weights / TRANSFORMER_FILE, weights_only=True)
    tr["merge_conv.weight"] = torch.zeros(512, 512, 1, 1)
    torch.save(tr, folder / TRANSFORMER_FILE, _use_new_zipfile_serialization=False)
    return {VGG_FILE: "truncated or corrupt",
            DECODER_FILE: "missing key(s) 1.weight",
            TRANSFORMER_FILE: "key 'merge_conv.weight' has shape [512, 512, 1, 1], expected [512, 512, 3, 3]"}


def test_status_names_file_and_mismatch(synthetic_weights, tmp_path):
    missing = W.weights_status(tmp_path / "empty")
    assert [s.state for s in missing] == ["missing"] * 3 and not any(s.usable for s in missing)
    broken = tmp_path / "broken"
    expect = _broken_copies(synthetic_weights, broken)
    for s in W.weights_status(broken):
        assert s.state == "corrupt" and not s.usable, s
        assert s.detail.startswith(str(broken / s.name)) and expect[s.name] in s.detail, s.detail
        assert s.size == (broken / s.name).stat().st_size and s.sha256 == _sha(broken / s.name)


# ------------------------------------------------------------------------------------------- CLI (subprocess)

def _cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SANET_WEIGHTS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "sanet.cli", "weights", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_cli_install_and_status(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root)
    (root / "SHA256SUMS").write_text(W.make_manifest(root))
    dest = tmp_path / "dest"
    r = _cli("install", srv.url, "--weights", str(dest))
    assert r.returncode == 0, r.stderr
    assert "100.0%" in r.stderr and r.stdout.count("verified against") == 3
    r = _cli("status", env_extra={"SANET_WEIGHTS": str(dest)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("valid layout, unknown copy") == 3 and "$SANET_WEIGHTS" in r.stdout
    for n in CHECKPOINT_FILES:
        assert f"sha256 {_sha(dest / n)}" in r.stdout
    r = _cli("status", "--json", "--weights", str(dest))
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["usable"] and doc["checked"] == ["sanet"]
    assert [f["state"] for f in doc["models"]["sanet"]["files"]] == ["valid"] * 3
    assert [f["state"] for f in doc["models"]["adaattn"]["files"]] == ["valid"] + ["missing"] * 3


def test_cli_status_on_broken_files(synthetic_weights, tmp_path):
    broken = tmp_path / "broken"
    expect = _broken_copies(synthetic_weights, broken)
    r = _cli("status", "--weights", str(broken))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    for name, words in expect.items():
        assert f"{name}: CORRUPT: {broken / name}" in r.stdout and words in r.stdout
    (broken / DECODER_FILE).unlink()
    assert f"{DECODER_FILE}: MISSING" in _cli("status", "--weights", str(broken)).stdout
    # installing one good file succeeds (exit 0) and says what is still not usable
    r = _cli("install", str(synthetic_weights / DECODER_FILE), "--no-progress", "--weights", str(broken))
    assert r.returncode == 0 and f"{DECODER_FILE}: installed" in r.stdout, r.stderr
    assert f"still not usable in {broken}: {VGG_FILE}, {TRANSFORMER_FILE}" in r.stderr


def test_cli_errors_are_one_line_exit_2(synthetic_weights, http_root, tmp_path):
    root, srv = http_root
    _publish(synthetic_weights, root, [DECODER_FILE])
    (root / "SHA256SUMS").write_text(f"{'1' * 64}  {DECODER_FILE}\n")
    dest = tmp_path / "dest"
    for src, words in [(srv.url + "missing/" + DECODER_FILE, "HTTP 404"),
                       (srv.url + "SHA256SUMS", "sha256 mismatch"),
                       (str(tmp_path / "nowhere"), "no such file or folder")]:
        r = _cli("install", src, "--no-progress", "--weights", str(dest))
        errors = [line for line in r.stderr.splitlines() if line.startswith("sanet:")]
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(errors) == 1 and errors[0].startswith("sanet: error: ") and words in errors[0], r.stderr
    assert not (dest / DECODER_FILE).exists()
