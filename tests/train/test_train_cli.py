"""`sanet train` as a user runs it (a real subprocess, real files): a run, a SIGKILL + --resume that equals the
uninterrupted run bit for bit, checkpoints that load in Stylizer and in a literal reference of the public layouts,
the log, the previews, the report, and one clear line for every bad input with earlier checkpoints intact."""
from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch


from train_helpers import FAST, ITERATIONS, env, sanet, weights_args


def tensors_equal(a: Path, b: Path) -> None:
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), (a.name, k)


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------- a run

def test_run_folder_log_previews_and_warnings(runs):
    run, r = runs["sanet"]
    names = {p.name for p in run.iterdir()}
    assert {"decoder_iter_2.pth", "transformer_iter_2.pth", "decoder_iter_4.pth", "transformer_iter_4.pth",
            "training_state.pt", "run.json", "data.json", "log.jsonl", "previews"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [rec["iteration"] for rec in log] == [1, 2, 3, 4]
    for rec in log:
        assert set(rec) == {"iteration", "lr", "loss", "content", "style", "identity_pixel", "identity_feature"}
        w = {"content": 1, "style": 3, "identity_pixel": 50, "identity_feature": 1}
        assert rec["loss"] == pytest.approx(sum(w[k] * rec[k] for k in w), rel=1e-5)
        assert rec["lr"] == pytest.approx(1e-4 / (1 + 5e-5 * (rec["iteration"] - 1)))
    from PIL import Image
    for it in (0, 2, 4):
        img = Image.open(run / "previews" / f"preview_iter_{it}.png")
        assert img.size == (3 * 32 + 2 * 4, 4 * 32 + 3 * 4)   # 4 pairs of 32 px: content | style | result
    # unreadable files: one warning each, a count, never a crash
    assert r.stderr.count("notes.png: unreadable image, skipped") == 1
    assert "content: 8 image(s)" in r.stderr and "(1 unreadable, skipped)" in r.stderr
    # progress: iteration, losses, speed and ETA
    assert "4/4 [" in r.stderr and "ETA" in r.stderr and ("it/s" in r.stderr or "s/it" in r.stderr)
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["name"] == "run_sanet" and run_json["batch"] == 1 and run_json["iterations"] == 4
    adaattn_run, _ = runs["adaattn"]
    names = {p.name for p in adaattn_run.iterdir()}
    assert {f"{i}_net_{r}.pth" for i in (2, 4, 5) for r in ("transformer", "decoder", "adaattn_3")} <= names
    for role in ("transformer", "decoder", "adaattn_3"):
        tensors_equal(adaattn_run / f"latest_net_{role}.pth", adaattn_run / f"5_net_{role}.pth")
    rec = [json.loads(line) for line in (adaattn_run / "log.jsonl").read_text().splitlines()]
    assert set(rec[0]) == {"iteration", "lr", "loss", "global", "local"}      # content weight 0: not computed
    assert [x["lr"] for x in rec] == pytest.approx([2e-4, 2e-4, 2e-4 * 0.3, 2e-4 * 0.09, 2e-4 * 0.027])


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_and_writes_fp32_public_checkpoints(runs, data, adaattn_weights, precision):
    """--precision bf16 / fp16 (autocast; fp16 with loss scaling) on CPU: the same batches give the fp32 run's first
    losses to the precision's accuracy, the weights move, and the checkpoints are fp32 in the public layout."""
    ref, _ = runs["sanet"]
    out = data / f"run_{precision}"
    r = sanet("train", *weights_args("sanet", adaattn_weights), "--content", "content", "--style", "style", "--out",
              out, "--iterations", 2, "--save-every", 1, "--preview-every", 0, "--precision", precision, *FAST,
              cwd=data)
    assert r.returncode == 0, r.stderr
    assert f"({precision})" in r.stderr
    first = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    want = json.loads((ref / "log.jsonl").read_text().splitlines()[0])
    for k in ("loss", "content", "style", "identity_pixel", "identity_feature"):
        assert math.isfinite(first[k]) and first[k] == pytest.approx(want[k], rel=0.05), (k, first[k], want[k])
    for name in ("decoder_iter_2.pth", "transformer_iter_2.pth"):
        got, fp32 = torch.load(out / name, weights_only=True), torch.load(ref / name, weights_only=True)
        assert got.keys() == fp32.keys()
        assert all(got[k].dtype == torch.float32 and got[k].shape == fp32[k].shape for k in got)
    # a step is applied, or (fp16: the gradients overflowed at the loss scale) marked as skipped, and said
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    one, two = (torch.load(out / f"decoder_iter_{i}.pth", weights_only=True) for i in (1, 2))
    assert any(not torch.equal(one[k], two[k]) for k in one) != bool(log[1].get("skipped"))
    skipped = sum(1 for rec in log if rec.get("skipped"))
    assert (f"fp16: {skipped} of 2 steps were skipped" in r.stderr) == (skipped > 0)
    assert precision == "fp16" or skipped == 0


@pytest.mark.parametrize("model", ["sanet", "adaattn"])
def test_sigkill_then_resume_equals_the_uninterrupted_run(runs, data, adaattn_weights, model):
    ref, _ = runs[model]
    n = ITERATIONS[model]
    out = data / f"killed_{model}"
    args = ["train", *weights_args(model, adaattn_weights), "--content", "content", "--style", "style",
            "--out", out, "--iterations", n, "--save-every", 2, "--preview-every", 0, *FAST]
    proc = subprocess.Popen([sys.executable, "-m", "sanet.cli", *map(str, args)], cwd=data, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = {"sanet": "decoder_iter_2.pth", "adaattn": "2_net_decoder.pth"}[model]
    deadline = time.monotonic() + 600
    while not ((out / first).exists() and (out / "training_state.pt").exists()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL          # killed mid-run, not finished
    assert len((out / "log.jsonl").read_text().splitlines()) < n
    r = sanet("train", "--resume", "--out", out, cwd=data)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "at iteration 2" in r.stderr
    # the same losses, iteration by iteration, bit for bit (JSON floats are exact)
    assert (out / "log.jsonl").read_text() == (ref / "log.jsonl").read_text()
    from sanet.train.checkpoint import checkpoint_names
    for it in (2, n):
        for name in checkpoint_names(model, it).values():
            tensors_equal(out / name, ref / name)
    sa = torch.load(out / "training_state.pt", weights_only=True)
    sb = torch.load(ref / "training_state.pt", weights_only=True)
    assert sa["iteration"] == sb["iteration"] == n
    for k, v in sa["optimizer"]["state"].items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(v[key], sb["optimizer"]["state"][k][key])
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------- the checkpoints

# The public layouts written out literally (facts: sanet-reference.md, scsa-adaattn.md §2), not from our modules.
SANET_DECODER = {i: (o, c) for i, (o, c) in zip((1, 5, 8, 11, 14, 18, 21, 25, 28),
                                                ((256, 512), (256, 256), (256, 256), (256, 256), (128, 256),
                                                 (128, 128), (64, 128), (64, 64), (3, 64)))}
ADAATTN_DECODER2 = {i: (o, c) for i, (o, c) in zip((1, 4, 7, 10, 14, 17, 21, 24),
                                                   ((256, 512), (256, 256), (256, 256), (128, 256), (128, 128),
                                                    (64, 128), (64, 64), (3, 64)))}


def literal_layout(model: str) -> dict[str, dict[str, tuple]]:
    if model == "sanet":
        dec = {}
        for i, (o, c) in SANET_DECODER.items():
            dec[f"{i}.weight"], dec[f"{i}.bias"] = (o, c, 3, 3), (o,)
        tr = {"merge_conv.weight": (512, 512, 3, 3), "merge_conv.bias": (512,)}
        for lvl in ("sanet4_1", "sanet5_1"):
            for conv in ("f", "g", "h", "out_conv"):
                tr[f"{lvl}.{conv}.weight"], tr[f"{lvl}.{conv}.bias"] = (512, 512, 1, 1), (512,)
        return {"decoder": dec, "transformer": tr}
    dec = {"decoder_layer_1.1.weight": (256, 512, 3, 3), "decoder_layer_1.1.bias": (256,)}
    for i, (o, c) in ADAATTN_DECODER2.items():
        dec[f"decoder_layer_2.{i}.weight"], dec[f"decoder_layer_2.{i}.bias"] = (o, c, 3, 3), (o,)
    tr = {"merge_conv.weight": (512, 512, 3, 3), "merge_conv.bias": (512,)}
    for lvl, k in (("attn_adain_4_1", 960), ("attn_adain_5_1", 1472)):
        for conv, ch in (("f", k), ("g", k), ("h", 512)):
            tr[f"{lvl}.{conv}.weight"], tr[f"{lvl}.{conv}.bias"] = (ch, ch, 1, 1), (ch,)
    a3 = {}
    for conv, ch in (("f", 448), ("g", 448), ("h", 256)):
        a3[f"{conv}.weight"], a3[f"{conv}.bias"] = (ch, ch, 1, 1), (ch,)
    return {"decoder": dec, "transformer": tr, "adaattn_3": a3}


INSTALLED = {"sanet": {"decoder": "decoder_iter_500000.pth", "transformer": "transformer_iter_500000.pth"},
             "adaattn": {"transformer": "latest_net_transformer.pth", "decoder": "latest_net_decoder.pth",
                         "adaattn_3": "latest_net_adaattn_3.pth"}}


@pytest.mark.parametrize("model", ["sanet", "adaattn"])
def test_checkpoints_are_the_public_layout_and_stylize_like_the_literal_reference(runs, adaattn_weights, tmp_path,
                                                                                 model):
    from sanet import Stylizer
    from sanet.train.checkpoint import checkpoint_names
    run, _ = runs[model]
    n = ITERATIONS[model]
    layout = literal_layout(model)
    if model == "sanet":   # the facts' parameter counts: decoder 3.51 M, transformer 4.46 M
        assert sum(np.prod(s) for s in layout["decoder"].values()) == 3_505_219
        assert sum(np.prod(s) for s in layout["transformer"].values()) == 4_461_056
    folder = tmp_path / "weights"
    folder.mkdir()
    os.link(adaattn_weights / "vgg_normalised.pth", folder / "vgg_normalised.pth")
    states = {}
    for role, name in checkpoint_names(model, n).items():
        state = torch.load(run / name, weights_only=True)       # a plain state dict of tensors
        assert {k: tuple(v.shape) for k, v in state.items()} == layout[role], (name, role)
        assert all(v.dtype == torch.float32 for v in state.values())
        shutil.copyfile(run / name, folder / INSTALLED[model][role])
        states[INSTALLED[model][role]] = state
    states["vgg_normalised.pth"] = {k: v for k, v in torch.load(folder / "vgg_normalised.pth", weights_only=True)
                                    .items() if int(k.split(".")[0]) < 44}
    gen = torch.Generator().manual_seed(5)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=gen), size=(48, 64), mode="bilinear")
    style = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=gen), size=(64, 64), mode="bilinear")
    if model == "sanet":
        from oracle import Oracle
        ref = Oracle(states).stylize(content, style)
    else:
        from oracle_adaattn import AdaAttnOracle
        ref = AdaAttnOracle(states).stylize(content, style)
    ref = ref[0].permute(1, 2, 0).numpy()
    out = Stylizer(folder, device="cpu", model=model).stylize_raw(
        content[0].permute(1, 2, 0).numpy(), [style[0].permute(1, 2, 0).numpy()])
    assert out.shape == ref.shape
    assert float(np.abs(out - ref).max() / np.abs(ref).max()) <= 1e-3


# ---------------------------------------------------------------------------------- bad input: one line, nothing lost

def one_error_line(r) -> str:
    errors = [line for line in r.stderr.splitlines() if line.startswith("sanet: error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return errors[0]


@pytest.mark.parametrize("content,style,needle", [
    ("missing", "style", "--content missing: no such folder"),
    ("a_file.txt", "style", "--content a_file.txt: not a folder"),
    ("content", "empty", "--style empty: no images found"),
    ("content", "junk", "--style junk: none of its 2 image file(s) can be read"),
])
def test_bad_data_folders_give_one_line(data, adaattn_weights, content, style, needle):
    r = sanet("train", *weights_args("sanet", adaattn_weights), "--content", content, "--style", style,
              "--out", "never", *FAST, cwd=data)
    assert needle in one_error_line(r)
    assert not (data / "never" / "run.json").exists()
    if style == "junk":   # each unreadable file had its warning line first
        assert "a.jpg: unreadable image, skipped" in r.stderr and "b.png: unreadable image, skipped" in r.stderr


def test_wrong_vgg_gives_one_line(data, adaattn_weights):
    r = sanet("train", "--vgg", adaattn_weights / "decoder_iter_500000.pth", "--content", "content", "--style",
              "style", "--out", "never", *FAST, cwd=data)
    line = one_error_line(r)
    assert "decoder_iter_500000.pth" in line and "key" in line
    (data / "cut_vgg.pth").write_bytes((adaattn_weights / "vgg_normalised.pth").read_bytes()[:100_000])
    line = one_error_line(sanet("train", "--vgg", "cut_vgg.pth", "--content", "content", "--style", "style",
                                "--out", "never", *FAST, cwd=data))
    assert "cut_vgg.pth" in line and "truncated or corrupt" in line


def test_bad_resumes_leave_the_run_intact(runs, data, adaattn_weights, tmp_path):
    run, _ = runs["sanet"]
    before = snapshot(run)
    cases = [
        (["--resume", "--out", run, "--iterations", 6, "--vgg", adaattn_weights / "latest_net_decoder.pth"],
         "latest_net_decoder.pth"),
        (["--resume", "--out", run, "--batch", 2], "batch = 1, not 2"),
        (["--resume", "--out", run], "already reached iteration 4 of 4"),
        (["--content", "content", "--style", "style", "--out", run, *FAST], "already holds a training run"),
        (["--resume", "--out", "content"], "not a training run"),
    ]
    for args, needle in cases:
        assert needle in one_error_line(sanet("train", *args, cwd=data))
    # the data folder of a run disappears
    moved = shutil.copytree(run, tmp_path / "copy")
    (tmp_path / "style_copy").mkdir()
    shutil.copytree(data / "style", tmp_path / "style_copy" / "style")
    info = json.loads((moved / "data.json").read_text())
    info["style"]["root"] = str(tmp_path / "style_copy" / "gone")
    (moved / "data.json").write_text(json.dumps(info))
    copy_before = snapshot(moved)
    assert "style folder" in one_error_line(sanet("train", "--resume", "--out", moved, "--iterations", 6, cwd=data))
    assert snapshot(moved) == copy_before
    assert snapshot(run) == before


def _param_bytes(model: str) -> int:
    from sanet.models import get_model
    return sum(p.numel() * 4 for m in get_model(model).build().values() for p in m.parameters())


def test_full_disk_gives_one_line_and_keeps_the_earlier_checkpoint(data, adaattn_weights, tmp_path):
    """A real full disk: the run folder on a tmpfs (in a user + mount namespace) sized for one checkpoint of
    network files + Adam state (≈ 3 × the parameters) but not two."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"], capture_output=True).returncode != 0:
        pytest.skip("no user+mount namespaces here (see test_full_disk_simulated for the in-process variant)")
    disk = tmp_path / "disk"
    keep = tmp_path / "kept"
    disk.mkdir()
    size_kib = (3 * _param_bytes("sanet") + _param_bytes("sanet") // 2) // 1024
    cmd = [sys.executable, "-m", "sanet.cli", "train", *map(str, weights_args("sanet", adaattn_weights)),
           "--content", "content", "--style", "style", "--out", str(disk / "run"), "--iterations", "2",
           "--save-every", "1", "--preview-every", "0", *FAST]
    script = (f"mount -t tmpfs -o size={size_kib}k tmpfs {disk} || exit 99\n"
              f"{shlex.join(cmd)}\nrc=$?\ncp -a {disk}/run {keep}\nexit $rc\n")
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], cwd=data, env=env(),
                       capture_output=True, text=True, timeout=600)
    line = one_error_line(r)
    assert "no space left on device" in line and "iteration 2" in line
    assert "the checkpoint of iteration 1" in line and "intact" in line and "--resume" in line
    names = {p.name for p in keep.iterdir()}
    assert {"decoder_iter_1.pth", "transformer_iter_1.pth", "training_state.pt"} <= names
    assert not {"decoder_iter_2.pth", "transformer_iter_2.pth"} & names
    assert not [n for n in names if n.endswith(".tmp")]
    from sanet.checkpoints import read_state_dict, validate_state_dict
    validate_state_dict("decoder_iter_500000.pth", read_state_dict(keep / "decoder_iter_1.pth"))
    validate_state_dict("transformer_iter_500000.pth", read_state_dict(keep / "transformer_iter_1.pth"))
    assert torch.load(keep / "training_state.pt", weights_only=True)["iteration"] == 1


def test_full_disk_simulated(tmp_path, monkeypatch):
    """The same guarantees where no tmpfs can be mounted: the second save's writes fail with ENOSPC (monkeypatched
    in this test only) — the first checkpoint stays, the failed one leaves nothing behind."""
    import errno
    from sanet.models import get_model
    from sanet.train import checkpoint as ck
    nets = get_model("sanet").build()
    names = ck.save_checkpoint(tmp_path, "sanet", 1, nets, {"format": ck.STATE_FORMAT, "iteration": 1}, None)
    before = snapshot(tmp_path)
    real = torch.save
    calls = []

    def save_then_fail(obj, f):
        calls.append(1)
        if len(calls) == 2:   # the decoder goes through, the transformer hits the full disk
            real(obj, f)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, f)
    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(ck.SaveFailed) as exc:
        ck.save_checkpoint(tmp_path, "sanet", 2, nets, {"format": ck.STATE_FORMAT, "iteration": 2}, 1)
    line = str(exc.value)
    assert "\n" not in line and "no space left on device while writing transformer_iter_2.pth" in line
    assert "the checkpoint of iteration 1 (decoder_iter_1.pth, transformer_iter_1.pth) is intact" in line
    assert snapshot(tmp_path) == before and names == ["decoder_iter_1.pth", "transformer_iter_1.pth"]


# ---------------------------------------------------------------------------------- report, help

def test_report_draws_or_says_matplotlib_is_missing(runs, data):
    run, _ = runs["sanet"]
    probe = ("import sys; sys.modules['matplotlib'] = None\n"
             "from sanet.cli import main\nsys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", probe, "train", "--report", str(run)], cwd=data, env=env(),
                       capture_output=True, text=True, timeout=300)
    line = one_error_line(r)
    assert "needs matplotlib" in line and "pip install matplotlib" in line and "log.jsonl" in line
    assert "4 iterations logged" in r.stdout and "identity_feature" in r.stdout
    assert "--report nowhere: no such folder" in one_error_line(sanet("train", "--report", "nowhere", cwd=data))
    assert "not a training run" in one_error_line(sanet("train", "--report", "content", cwd=data))
    pytest.importorskip("matplotlib")
    r = sanet("train", "--report", run, cwd=data)
    assert r.returncode == 0, r.stderr
    from PIL import Image
    img = Image.open(run / "losses.png")
    assert img.size[0] > 400 and img.size[1] > 300


def test_help_and_argument_errors_never_load_torch(data):
    probe = ("import sys\nfrom sanet.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
             "except SystemExit as exc:\n    code = exc.code\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code, file=sys.stderr)")
    for args, code in ((["train", "--help"], 0), (["train", "--out", "x"], 2),
                       (["train", "--content", "missing", "--style", "style", "--out", "x"], 2),
                       (["train", "--model", "adaattn", "--style-weight", "2", "--content", "content",
                         "--style", "style", "--out", "x"], 2)):
        r = subprocess.run([sys.executable, "-c", probe, *args], cwd=data, env=env(), capture_output=True,
                           text=True, timeout=120)
        assert r.stderr.strip().splitlines()[-1] == f"NO-TORCH {code}", r.stderr
    r = sanet("train", "--help", cwd=data)
    text = " ".join(r.stdout.split())
    assert "(default 50, as the released code; the paper's text says 1)" in text
    assert "(default 1, as the released code; the paper's text says 50)" in text


def test_report_into_a_closed_pipe_exits_quietly(tmp_path):
    """`sanet train --report RUN | head`: the reader has gone before sanet writes — no BrokenPipe traceback, no
    "Exception ignored" at exit; a real pipe whose read end is closed, then a real shell pipeline into head."""
    from sanet.train import checkpoint as ck
    run = tmp_path / "run"
    run.mkdir()
    (run / ck.RUN_FILE).write_text(json.dumps({"format": ck.RUN_FORMAT, "model": "sanet"}))
    (run / ck.LOG_FILE).write_text("".join(json.dumps({"iteration": i, "loss": 10.0 / i, "content": 1.0 / i,
                                                       "style": 2.0 / i}) + "\n" for i in range(1, 400)))
    r_fd, w_fd = os.pipe()
    os.close(r_fd)                                   # nobody will read: every write is EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "sanet.cli", "train", "--report", str(run)], env=env(),
                           stdout=w_fd, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(w_fd)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and "Exception ignored" not in p.stderr
    py = shlex.quote(sys.executable)
    p = subprocess.run(f"{py} -m sanet.cli train --report {shlex.quote(str(run))} | head -n 1", shell=True,
                       env=env(), capture_output=True, text=True, timeout=300)
    assert p.stdout.startswith(f"{run}: 399 iterations logged (last: 399)")
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and "Exception ignored" not in p.stderr
