"""sanet_client runs where GIMP's and Krita's Python runs: stdlib + pyzmq + msgpack, nothing else."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sanet_client import Client, DaemonNotRunning, ProtocolMismatch
from sanet_client.discovery import connection_file_path, runtime_dir
from sanetd_process import PYTHONPATH, running_sanetd

# Runs the client in a fresh interpreter in which numpy, torch, PIL and platformdirs cannot be imported.
BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('numpy', 'torch', 'PIL', 'platformdirs', 'sanet', 'sanetd', 'cv2'):
            raise ImportError('blocked in the editor-Python test: ' + name)
        return None
sys.meta_path.insert(0, Block())
import sanet_client
from sanet_client import Client, Layer, Mask, StylePixels
w, h = 32, 24
layer = Layer(w, h, 'rgba8', bytes(range(256)) * (w * h * 4 // 256))
style = StylePixels(32, 32, 'rgba8', bytes(reversed(range(256))) * 16)
with Client(timeout=30) as c:
    assert c.hello()['protocol'] == 1
    r = c.stylize(layer, [style], selection=Mask(8, 8, 'u8', b'\\xff' * 64, x=4, y=4))
    assert (r.width, r.height, r.format, len(r.data)) == (w, h, 'rgba8', w * h * 4)
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch', 'PIL', 'platformdirs'))
print('OK', loaded)
"""


def test_client_needs_only_stdlib_pyzmq_msgpack(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights) as d:
        p = subprocess.run([sys.executable, "-c", BLOCKED], env=d.env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stderr[-3000:]
        assert p.stdout.strip() == "OK []"


def test_client_sources_are_python310_and_import_nothing_heavy():
    import ast
    root = Path(PYTHONPATH[2]) / "sanet_client"
    for f in root.glob("*.py"):
        tree = ast.parse(f.read_text(), feature_version=(3, 10))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for n in names:
                top = n.split(".")[0]
                if f.name in ("cli.py", "imagefiles.py") and top in ("numpy", "cv2", "tifffile", "PIL"):
                    continue   # the file CLI reads and writes images; the editor path never imports these two
                if f.name == "protocol.py" and top in ("zstandard", "compression"):
                    continue   # the optional zstd codec (PyPI zstandard, or Python 3.14's compression.zstd), imported
                    # inside try/except ImportError: without it pixels travel with zlib (stdlib)
                assert top in sys.stdlib_module_names or top in ("zmq", "msgpack", "__future__"), f"{f.name}: {n}"


def test_discovery_order(monkeypatch, tmp_path):
    monkeypatch.setenv("SANETD_RUNTIME_DIR", str(tmp_path / "rt"))
    monkeypatch.delenv("SANETD_CONNECTION_FILE", raising=False)
    assert runtime_dir() == tmp_path / "rt" and connection_file_path() == tmp_path / "rt" / "sanetd.json"
    monkeypatch.setenv("SANETD_CONNECTION_FILE", str(tmp_path / "x.json"))
    assert connection_file_path() == tmp_path / "x.json"
    monkeypatch.delenv("SANETD_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert runtime_dir() == tmp_path / "xdg" / "sanet-style"


def test_daemon_not_running_says_how_to_start_it(tmp_path):
    with pytest.raises(DaemonNotRunning, match="start it with `sanetd`"):
        Client(connection_file=tmp_path / "none.json").hello()


def test_stale_connection_file_is_recognised_quickly(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    f = tmp_path / "sanetd.json"
    f.write_text(json.dumps({"protocol": 1, "endpoint": f"ipc://{tmp_path}/gone.sock", "key": "00" * 32,
                             "pid": dead.pid}))
    t0 = time.monotonic()
    with pytest.raises(DaemonNotRunning, match="left over from process"):
        Client(connection_file=f, timeout=1, retries=2).hello()
    assert time.monotonic() - t0 < 5


def test_silent_endpoint_times_out_with_a_hint(tmp_path):
    f = tmp_path / "sanetd.json"
    f.write_text(json.dumps({"protocol": 1, "endpoint": f"ipc://{tmp_path}/nobody.sock", "key": "00" * 32,
                             "pid": os.getpid()}))
    with pytest.raises(DaemonNotRunning, match="did not answer hello .* within 0.3 s \\(2 tries\\)"):
        Client(connection_file=f, timeout=0.3, retries=2).hello()


def test_unreadable_and_future_connection_files(tmp_path):
    f = tmp_path / "sanetd.json"
    f.write_text("{not json")
    with pytest.raises(DaemonNotRunning, match="unreadable"):
        Client(connection_file=f).hello()
    f.write_text(json.dumps({"protocol": 9, "endpoint": "ipc:///x", "key": "00"}))
    with pytest.raises(ProtocolMismatch, match="protocol version 9"):
        Client(connection_file=f).hello()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG runtime dirs are a Linux convention")
def test_runtime_dir_agrees_with_platformdirs(monkeypatch, tmp_path):
    import warnings
    import platformdirs
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.delenv("SANETD_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert runtime_dir() == Path(platformdirs.user_runtime_dir("sanet-style"))
