"""`sanet-client stylize --model adaattn --style-keys all` writes what `sanet stylize` writes with the same options;
a model the daemon cannot run is one line with exit code 2; a daemon older than the "models" feature is never sent
a model it would silently ignore."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import zmq

import sanet
from sanet_client import Client, Layer, ProtocolMismatch, StylePixels
from sanet_client import protocol as P
from sanetd_process import PYTHONPATH, running_sanetd

ROOT = Path(__file__).resolve().parents[2]


def run(module, env, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("client_models")
    rng = np.random.default_rng(11)
    sanet.save_image(d / "in.png", rng.integers(0, 256, (40, 56, 4), dtype=np.uint8))
    low = rng.random((35, 35, 3), dtype=np.float32)      # a smooth 280² style: relu3_1 keys are subsampled
    big = np.kron(low, np.ones((8, 8, 1), np.float32))
    sanet.save_image(d / "big.png", (big * 65535).astype(np.uint16))
    return d


def test_client_with_model_writes_what_sanet_writes(files, tmp_path, adaattn_weights, synthetic_weights):
    env_sanet = dict(os.environ, PYTHONPATH=os.pathsep.join(PYTHONPATH))
    with running_sanetd(tmp_path, adaattn_weights) as d:
        for keys in ("sampled", "all"):
            args = ["--style", files / "big.png", "--model", "adaattn", "--style-keys", keys, "--alpha", "0.8"]
            p = run("sanet_client.cli", d.env, "stylize", files / "in.png", *args, "-o", tmp_path / f"client_{keys}.png")
            assert p.returncode == 0, p.stderr
            assert json.loads(p.stdout)["model"] == "adaattn"
            q = run("sanet.cli", env_sanet, "stylize", files / "in.png", *args, "--weights", adaattn_weights,
                    "-o", tmp_path / f"sanet_{keys}.png")
            assert q.returncode == 0, q.stderr
            np.testing.assert_array_equal(sanet.load_image(tmp_path / f"client_{keys}.png"),
                                          sanet.load_image(tmp_path / f"sanet_{keys}.png"))
        assert not np.array_equal(sanet.load_image(tmp_path / "client_all.png"),
                                  sanet.load_image(tmp_path / "client_sampled.png"))
        p = run("sanet_client.cli", d.env, "stylize", files / "in.png", "--style", files / "big.png", "--model",
                "adain", "-o", tmp_path / "x.png")
        assert p.returncode == 2 and "argument --model: unknown model 'adain': expected one of sanet, adaattn" in p.stderr
    with running_sanetd(tmp_path / "sanet_only", synthetic_weights) as d:
        p = run("sanet_client.cli", d.env, "stylize", files / "in.png", "--style", files / "big.png", "--model",
                "adaattn", "-o", tmp_path / "x.png")
        assert p.returncode == 2 and "Traceback" not in p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sanet-client: error: model 'adaattn' (AdaAttN) is not "
                                                       "installed: latest_net_transformer.pth")
        assert not (tmp_path / "x.png").exists()


class OlderDaemon(threading.Thread):
    """A sanetd of the version before the "models" feature, as far as a client can tell: a ROUTER that answers
    hello with that version's features and records every stylize it gets (answering it with an error)."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.key = bytes.fromhex(P.new_key())
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.bind(f"ipc://{folder}/old.sock")
        self.connection_file = folder / "old.json"
        self.connection_file.write_text(json.dumps({"protocol": 1, "signature_scheme": "hmac-sha256",
                                                    "endpoint": f"ipc://{folder}/old.sock", "transport": "ipc",
                                                    "key": self.key.hex(), "pid": os.getpid()}))
        self.auth = P.Authenticator(self.key, 64, 1 << 16)
        self.stylize_requests: list[dict] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            ident, *frames = self.sock.recv_multipart()
            header, _ = self.auth.open(frames)
            if header["type"] == "hello":
                reply = P.envelope("hello.reply", reply_to=header["msg_id"], protocol=1, protocols=[1],
                                   features=["scsa", "raw"], model={"name": "SANet (Park & Lee, CVPR 2019)",
                                                                    "loaded": True, "weights": "/w"})
            elif header["type"] == "stylize":
                self.stylize_requests.append(header)
                reply = P.envelope("error", reply_to=header["msg_id"], job_id=header["job_id"], code="internal",
                                   message="recorded")
            else:
                reply = P.envelope("pong", reply_to=header["msg_id"])
            self.sock.send_multipart([ident, *P.build_message(self.key, reply)])

    def close(self):
        self.stop.set()
        self.join(5)
        self.sock.close(0)
        self.ctx.term()


def test_a_daemon_without_the_models_feature_is_never_asked_for_adaattn(tmp_path):
    old = OlderDaemon(tmp_path)
    old.start()
    layer = Layer(8, 8, "rgba8", bytes(256))
    style = StylePixels(8, 8, "rgba8", bytes(256))
    try:
        with Client(connection_file=old.connection_file, timeout=5) as c:
            assert P.hello_models(c.hello()) == [{"name": "sanet", "title": "SANet (Park & Lee, CVPR 2019)",
                                                  "loaded": True, "base": "sanet", "display": "SANet"}]
            for kwargs in (dict(model="sanet:ink"),):    # a variant needs the feature too
                with pytest.raises(ProtocolMismatch, match="does not support the choice of model"):
                    c.stylize(layer, [style], **kwargs)
            for kwargs in (dict(model="adaattn"), dict(style_keys="all")):
                with pytest.raises(ProtocolMismatch, match="does not support the choice of model"):
                    c.stylize(layer, [style], **kwargs)
            assert old.stylize_requests == []
            # SANet with the released behaviour is what that daemon does anyway: sent as asked
            with pytest.raises(Exception, match="recorded"):
                c.stylize(layer, [style], model="sanet", style_keys="sampled")
            assert old.stylize_requests[0]["model"] == "sanet"
    finally:
        old.close()
