"""Fast tests (no GIMP) of the GIMP plug-in's pure-Python helpers: formats, masks, settings, the job runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "sanet-style"
sys.path.insert(0, str(PLUGIN))

import sanet_gimp_pixels as px  # noqa: E402
import sanet_gimp_settings as st  # noqa: E402
from sanet_gimp_job import Job, PluginError  # noqa: E402


# ----------------------------------------------------------------------------------------------- pixels

@pytest.mark.parametrize("nick, layer, babl, mask", [
    ("u8-non-linear", "rgba8", "R'G'B'A u8", "u8"),
    ("u8-linear", "rgba8", "R'G'B'A u8", "u8"),
    ("u8-perceptual", "rgba8", "R'G'B'A u8", "u8"),
    ("u16-linear", "rgba16", "R'G'B'A u16", "f32"),
    ("u16-non-linear", "rgba16", "R'G'B'A u16", "f32"),
    ("u32-linear", "rgbaf32", "R'G'B'A float", "f32"),
    ("half-non-linear", "rgbaf32", "R'G'B'A float", "f32"),
    ("float-linear", "rgbaf32", "R'G'B'A float", "f32"),
    ("double-perceptual", "rgbaf32", "R'G'B'A float", "f32"),
])
def test_formats_follow_the_image_precision(nick, layer, babl, mask):
    f = px.formats_for_precision(nick)
    assert (f.layer, f.babl_layer, f.mask) == (layer, babl, mask)
    assert f.babl_mask == ("Y u8" if mask == "u8" else "Y float")


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="'indexed-foo'"):
        px.formats_for_precision("indexed-foo")


def test_little_endian_conversion(monkeypatch):
    data = np.arange(12, dtype="<u2").tobytes()
    assert px.to_little_endian(data, 2) == data  # this host is little-endian: no change
    monkeypatch.setattr(px.sys, "byteorder", "big")
    swapped = px.to_little_endian(data, 2)
    assert np.array_equal(np.frombuffer(swapped, ">u2"), np.arange(12))
    assert px.from_little_endian(swapped, 2) == data
    f = np.linspace(0, 1, 5, dtype="<f4").tobytes()
    assert px.from_little_endian(px.to_little_endian(f, 4), 4) == f
    assert px.to_little_endian(b"\x01\x02", 1) == b"\x01\x02"


def test_footprint_matches_nonzero_of_a_u32_mask():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 2**32, 5000, dtype=np.uint32)
    m[rng.random(5000) < 0.5] = 0
    m[:4] = [1, 256, 65536, 1 << 24]  # a non-zero byte in each position
    got = np.frombuffer(px.footprint_u8(m.astype("<u4").tobytes()), np.uint8)
    assert np.array_equal(got, np.where(m != 0, 255, 0))
    assert px.footprint_u8(b"") == b""
    with pytest.raises(ValueError, match="multiple of 4"):
        px.footprint_u8(b"\x00" * 5)


def test_footprint_is_fast_enough_for_big_layers():
    data = np.zeros(4000 * 3000, "<u4")
    data[::7] = 5
    t0 = time.perf_counter()
    out = px.footprint_u8(data.tobytes())
    assert len(out) == data.size and out[0] == 255 and out[1] == 0
    assert time.perf_counter() - t0 < 10  # C-level byte ops, not a per-pixel loop (typically ~0.3 s)


def test_mask_is_empty_for_u8_and_f32():
    assert px.mask_is_empty(bytes(10))
    assert px.mask_is_empty(np.zeros(7, np.float32).tobytes())
    assert not px.mask_is_empty(np.array([0, 0, 1e-30], np.float32).tobytes())
    assert not px.mask_is_empty(b"\x00\x00\x01")


def test_check_size_names_the_buffer():
    px.check_size("layer 'a'", 2, 3, "rgba16", bytes(2 * 3 * 8))
    with pytest.raises(ValueError, match=r"layer 'a': got 47 bytes, a 2x3 rgba16 buffer needs 48"):
        px.check_size("layer 'a'", 2, 3, "rgba16", bytes(47))


# ----------------------------------------------------------------------------------------------- settings

def test_styles_are_gathered_in_a_fixed_order_with_weights():
    s = st.build_settings(style_file="/a/starry night.png", style_files=["/b/x,y.jpg", "/c/wave.tif"],
                          style_layer=(42, "Brush strokes"), library_styles="lib1, lib2",
                          style_weights="1, 2, 0, 0.5, 3, 1", alpha=0.4, library_names={"lib1": "Monet"})
    assert [(x.kind, x.value, x.label, x.weight) for x in s.styles] == [
        ("file", "/a/starry night.png", "starry night", 1.0), ("file", "/b/x,y.jpg", "x,y", 2.0),
        ("file", "/c/wave.tif", "wave", 0.0), ("layer", 42, "Brush strokes", 0.5),
        ("library", "lib1", "Monet", 3.0), ("library", "lib2", "lib2", 1.0)]
    assert s.alpha == 0.4


def test_styles_order_and_equal_default_weights():
    s = st.build_settings(style_file="/a/one.png", style_files="/b/two.png\n/c/three.png\n",
                          style_layer=(7, "L"), library_styles="id-1;id_2")
    assert [x.kind for x in s.styles] == ["file", "file", "file", "layer", "library", "library"]
    assert [x.label for x in s.styles] == ["one", "two", "three", "L", "id-1", "id_2"]
    assert all(x.weight == 1.0 for x in s.styles)
    assert s.alpha == 1.0 and s.only_in_selection and s.style_max_side is None and s.connection_file is None


def test_weights_by_position():
    s = st.build_settings(style_file="/a.png", library_styles="x", style_weights="0.25;3")
    assert [x.weight for x in s.styles] == [0.25, 3.0]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "no style given"),
    ({"style_file": "/a.png", "style_weights": "1, 2"}, "style-weights: 2 weight"),
    ({"style_file": "/a.png", "style_weights": "heavy"}, r"style-weights: item 1 \('heavy'\) is not a number"),
    ({"style_file": "/a.png", "style_weights": "-1"}, "must be a finite number >= 0"),
    ({"style_file": "/a.png", "style_weights": "0"}, "at least one weight"),
    ({"style_file": "/a.png", "alpha": 1.5}, "alpha: 1.5 is outside 0..1"),
    ({"style_file": "/a.png", "alpha": "much"}, "alpha: 'much' is not a number"),
    ({"library_styles": "bad id!"}, "library-styles: 'bad id!' is not a style id"),
    ({"style_files": [f"/s{i}.png" for i in range(9)]}, "9 styles given; at most 8"),
    ({"style_file": "/a.png", "style_max_side": -3}, "style-max-side: -3"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(st.SettingsError, match=message):
        st.build_settings(**kwargs)


def test_result_layer_name_comes_from_the_shared_naming():
    from sanet_client.naming import result_name
    one = st.build_settings(style_file="/x/Starry Night.jpg")
    assert st.result_layer_name(one, result_name) == "Style: Starry Night (SANet)"
    mix = st.build_settings(style_file="/a.png", style_files=["/b.png", "/c.png", "/d.png"], style_weights="1,1,1,0",
                            alpha=0.5, preserve_color=True, preview=True)
    assert st.result_layer_name(mix, result_name) == "Style: a + b + c (SANet, α 0.50, colours kept, preview)"
    many = st.build_settings(style_files=[f"/s{i}.png" for i in range(5)])
    assert st.result_layer_name(many, result_name) == "Style: s0 + s1 + s2 + … (SANet)"


def test_library_styles_are_named_after_the_daemon_library():
    from sanet_client.naming import result_name
    s = st.build_settings(style_file="/a.png", library_styles="0123abcd, ffff0000")
    named = st.with_library_names(s, {"0123abcd": "Monet", "other": "x"})
    assert [x.label for x in named.styles] == ["a", "Monet", "ffff0000"]
    assert st.result_layer_name(named, result_name) == "Style: a + Monet + ffff0000 (SANet)"
    assert [x.weight for x in named.styles] == [x.weight for x in s.styles]


def test_last_values_round_trip_and_survive_bad_files(tmp_path):
    path = str(tmp_path / "sub" / "last.json")
    values = {"style-file": "/a.png", "style-files": ["/b.png"], "style-layer": 12, "library-styles": "x",
              "style-weights": "1,2", "alpha": 1, "preserve-colors": True, "preview": False,
              "only-in-selection": True, "style-max-side": 512, "connection-file": "", "unknown": 3}
    st.save_last_values(path, values)
    loaded = st.load_last_values(path)
    assert loaded == {k: v for k, v in values.items() if k != "unknown"} | {"alpha": 1.0}
    assert isinstance(loaded["alpha"], float)
    # wrong types are dropped one by one, broken files give no values at all
    Path(path).write_text(json.dumps({"alpha": "x", "preview": 1, "style-layer": True, "style-files": [3],
                                      "style-weights": "2"}))
    assert st.load_last_values(path) == {"style-weights": "2"}
    Path(path).write_text("{not json")
    assert st.load_last_values(path) == {}
    assert st.load_last_values(str(tmp_path / "missing.json")) == {}


# ----------------------------------------------------------------------------------------------- job runner

def test_job_forwards_progress_on_the_calling_thread_and_returns_the_result():
    seen, pumped = [], []
    main = threading.get_ident()

    def submit(on_progress, cancel_event):
        for f in (0.25, 0.5, 1.0):
            on_progress(f, "work")
            time.sleep(0.02)
        return "result"

    result = Job(submit).run(on_progress=lambda f, s: seen.append((f, s, threading.get_ident())),
                             pump=lambda: pumped.append(1), poll_s=0.01)
    assert result == "result"
    assert [(f, s) for f, s, _ in seen] == [(0.25, "work"), (0.5, "work"), (1.0, "work")]
    assert all(t == main for _, _, t in seen) and pumped


def test_job_reraises_the_worker_error():
    def submit(on_progress, cancel_event):
        raise RuntimeError("daemon said no")
    with pytest.raises(RuntimeError, match="daemon said no"):
        Job(submit).run()


def test_job_cancel_reaches_the_worker():
    def submit(on_progress, cancel_event):
        assert cancel_event.wait(5), "cancel never arrived"
        raise KeyboardInterrupt("cancelled")  # any error the client raises on cancel is passed through
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        Job(submit).run(is_cancelled=lambda: time.monotonic() - t0 > 0.1, poll_s=0.01)


def test_job_never_hangs_when_the_worker_ignores_cancel():
    release = threading.Event()

    def submit(on_progress, cancel_event):
        release.wait(30)  # a stuck worker
    t0 = time.monotonic()
    with pytest.raises(PluginError, match="cancelled"):
        Job(submit).run(is_cancelled=lambda: True, poll_s=0.01, cancel_grace_s=0.3)
    assert time.monotonic() - t0 < 5
    release.set()


def test_missing_client_library_gives_an_actionable_message(tmp_path):
    """The plug-in folder alone (no sanet_client beside it, none on the path): a message, not a traceback."""
    lone = tmp_path / "plug-ins" / "sanet-style"
    lone.mkdir(parents=True)
    for name in ("sanet_gimp_job.py",):
        (lone / name).write_bytes((PLUGIN / name).read_bytes())
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import sanet_gimp_job as j\n"
            "try:\n    j.import_client()\nexcept j.PluginError as e:\n    print('MSG', e)\n")
    # -S as well as -I: an editable install of this project puts sanet_client on site-packages' path
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(lone)], capture_output=True, text=True,
                         timeout=60)
    assert "MSG Style Transfer cannot find its client library 'sanet_client'" in out.stdout, out.stderr
    assert "installer" in out.stdout
    # the installer's layout: <plug-in>/vendor/sanet_client
    vendor = lone / "vendor" / "sanet_client"
    vendor.mkdir(parents=True)
    (vendor / "__init__.py").write_text("WHERE = 'vendor'\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import sanet_gimp_job as j\n"
            "print('WHERE', j.import_client().WHERE)\n")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(lone)], capture_output=True, text=True, timeout=60)
    assert "WHERE vendor" in out.stdout, out.stderr


# ----------------------------------------------------------------------------------------------- with sanetd

def test_job_with_a_real_daemon_progress_and_cancel(tmp_path, synthetic_weights):
    """The plug-in's job runner around the real client and a real sanetd (what GIMP runs, minus GIMP)."""
    from sanet_client import Client, JobCancelled, Layer, StylePixels
    from sanetd_process import running_sanetd

    rng = np.random.default_rng(3)
    layer = Layer(64, 48, "rgba8", rng.integers(0, 255, (48, 64, 4), dtype=np.uint8).tobytes())
    style = StylePixels(32, 32, "rgba8", rng.integers(0, 255, (32, 32, 4), dtype=np.uint8).tobytes())
    with running_sanetd(tmp_path, synthetic_weights) as d:
        def submit(on_progress, cancel_event):
            with Client(d.connection_file, timeout=10, retries=2) as c:
                return c.stylize(layer, [style], on_progress=on_progress, cancel_event=cancel_event)

        progress = []
        result = Job(submit).run(on_progress=lambda f, s: progress.append(f), poll_s=0.01)
        assert (result.width, result.height, result.format) == (64, 48, "rgba8")
        assert progress and progress == sorted(progress) and 0.0 <= progress[0] and progress[-1] <= 1.0

        big = Layer(512, 512, "rgba8", rng.integers(0, 255, (512, 512, 4), dtype=np.uint8).tobytes())

        def submit_big(on_progress, cancel_event):
            with Client(d.connection_file, timeout=10, retries=2) as c:
                return c.stylize(big, [style], on_progress=on_progress, cancel_event=cancel_event)
        t0 = time.monotonic()
        with pytest.raises(JobCancelled):
            Job(submit_big).run(is_cancelled=lambda: True, poll_s=0.01)
        assert time.monotonic() - t0 < 30


# ----------------------------------------------------------------------------------------------- start sanetd

import sanet_gimp_daemon as dm  # noqa: E402
from sanet_client import launch  # noqa: E402  (what the plug-in's Start uses: one search, shared with Krita)


def test_data_dir_matches_platformdirs_layout():
    assert launch.data_dir({}, "/h", "linux") == "/h/.local/share/sanet-style"
    assert launch.data_dir({"XDG_DATA_HOME": "/x"}, "/h", "linux") == "/x/sanet-style"
    assert launch.data_dir({}, "/h", "darwin") == "/h/Library/Application Support/sanet-style"
    assert launch.data_dir({"LOCALAPPDATA": "C:/L"}, "C:/h", "win32").replace("\\", "/") == \
        "C:/L/sanet-style/sanet-style"


def test_sanetd_is_found_in_the_installer_venv_first(tmp_path, monkeypatch):
    home = tmp_path / "home"
    data = home / ".local" / "share" / "sanet-style"
    custom = tmp_path / "custom-venv" / "bin"
    custom.mkdir(parents=True)
    on_path = tmp_path / "path-bin"
    on_path.mkdir()
    for d in (custom, on_path):
        (d / "sanetd").write_text("#!/bin/sh\n")
        (d / "sanetd").chmod(0o755)
    env = {"PATH": str(on_path)}
    # no manifest: the default venv (absent) then PATH
    assert launch.sanetd_candidates(env, str(home), "linux") == [str(data / "venv" / "bin" / "sanetd"),
                                                                  str(on_path / "sanetd")]
    assert launch.find_sanetd(env, str(home), "linux") == str(on_path / "sanetd")
    data.mkdir(parents=True)
    (data / "install-manifest.json").write_text(json.dumps({"venv": {"path": str(custom.parent)}}))
    assert launch.find_sanetd(env, str(home), "linux") == str(custom / "sanetd")
    # the plug-in's own entry point follows the environment GIMP gives it
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    assert dm.find_sanetd() == str(custom / "sanetd")
    (data / "install-manifest.json").write_text("{broken")
    assert launch.find_sanetd(env, str(home), "linux") == str(on_path / "sanetd")
    assert launch.find_sanetd({"PATH": ""}, str(home), "linux") is None


def test_start_sanetd_detached_and_wait_until_it_answers(tmp_path, synthetic_weights):
    """A real sanetd started the way the plug-in does it (detached, GIMP's PYTHONPATH dropped)."""
    import signal
    from sanet_client import Client
    from sanetd_process import PYTHONPATH, sanetd_env

    runtime = tmp_path / "run"
    env = sanetd_env(runtime, tmp_path / "state")
    env["PYTHONPATH"] = "/gimp/python/only"  # must not leak into sanetd
    wrapper = tmp_path / "sanetd"
    wrapper.write_text("#!/bin/sh\n"
                       f"export PYTHONPATH='{os.pathsep.join(PYTHONPATH)}'\n"
                       f"exec '{sys.executable}' -m sanetd --device cpu --weights '{synthetic_weights}' "
                       f"--log-level info \"$@\"\n")
    wrapper.chmod(0o755)
    proc = dm.start_sanetd(str(wrapper), env=env)
    conn = runtime / "sanetd.json"
    try:
        def hello():
            with Client(conn, timeout=1.0, retries=1) as c:
                return c.hello()
        assert dm.wait_until_answering(hello, proc, timeout=90)
        assert os.getsid(proc.pid) == proc.pid  # its own session: closing GIMP does not take it down
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0
    assert not conn.exists()


def test_wait_gives_up_when_the_process_exits_or_on_cancel():
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()

    def never():
        raise ConnectionError("not yet")
    t0 = time.monotonic()
    assert not dm.wait_until_answering(never, dead, timeout=30, poll_s=0.01)
    cancel = threading.Event()
    cancel.set()
    assert not dm.wait_until_answering(never, None, timeout=30, cancel_event=cancel)
    assert time.monotonic() - t0 < 5
