"""The real installer, run as a process, into a temporary HOME that has GIMP 3 (native, Flatpak, Snap) and Krita
profile folders: files and modes, vendored wheels importable by a clean interpreter, the systemd unit verified,
re-run, dry run and uninstall.

Fast on purpose: `--torch existing` links this venv's torch, so the project's dependencies are already satisfied
and nothing big is downloaded; wheels come from ~/.cache/sanet-style/wheels once downloaded.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from install_kit import ROOT, WHEEL_CACHE, _env, run_installer, snapshot

KRITARC_BEFORE = "[General]\nfirstRun=false\n\n[python]\nenable_comics_project_management_tools=true\n"

pytestmark = pytest.mark.timeout(600)


GIMP_PROFILES = {
    "native": ".config/GIMP/3.0",
    "flatpak": ".var/app/org.gimp.GIMP/config/GIMP/3.0",
    "snap": "snap/gimp/current/.config/GIMP/3.0",
}


SOURCES: dict = {}


def _sources() -> dict:
    files = list((ROOT / "plugins/gimp/sanet-style").glob("*.py")) + list((ROOT / "plugins/sanet_client").glob("*.py"))
    return {str(f.relative_to(ROOT)): f.read_bytes() for f in files + [ROOT / "plugins/krita/sanet_style.desktop"]}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, synthetic_weights):
    home = tmp_path_factory.mktemp("home")
    for rel in GIMP_PROFILES.values():
        (home / rel).mkdir(parents=True)
    (home / ".local" / "share" / "krita").mkdir(parents=True)
    (home / ".config" / "kritarc").write_text(KRITARC_BEFORE)
    before = snapshot(home)
    SOURCES.update(_sources())      # the checkout as installed (others may edit it while the tests run)
    # With its dependencies (all satisfied through the linked torch environment): pip must resolve nothing new.
    proc = run_installer(home, "--torch", "existing", "--autostart", "--no-service-manager",
                         "--wheel-cache", str(WHEEL_CACHE), "--weights-from", str(synthetic_weights))
    return home, before, proc.stdout


def _manifest(home: Path) -> dict:
    return json.loads((home / ".local/share/sanet-style/install-manifest.json").read_text())


def _python(version: str) -> str | None:
    """An interpreter of that version that is not the editor's, for loading the vendored wheels."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    hits = sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / f"{version}.*" / "bin" / f"python{version}")))
    return hits[-1] if hits else shutil.which(f"python{version}")


def test_every_action_is_logged_on_one_line(installed):
    _, _, out = installed
    for needle in ("create the daemon's venv", "install sanet-style", "install GIMP 3 plug-in",
                   "install GIMP 3 (flatpak) plug-in", "install GIMP 3 (snap) plug-in", "install Krita plug-in",
                   "write Krita setting [python] enable_sanet_style=true", "write autostart entry",
                   "write Flatpak permission xdg-run/sanet-style for org.gimp.GIMP",
                   "install the weights"):
        assert needle in out, needle


@pytest.mark.parametrize("variant", list(GIMP_PROFILES))
def test_gimp_plugin_in_place_with_executable_main(installed, variant):
    home, _, _ = installed
    dest = home / GIMP_PROFILES[variant] / "plug-ins" / "sanet-style"
    for rel, data in SOURCES.items():
        if rel.startswith("plugins/gimp/"):
            assert (dest / Path(rel).name).read_bytes() == data, rel
    main = dest / "sanet-style.py"
    assert main.stat().st_mode & 0o111 == 0o111
    for p in dest.rglob("*"):               # code that GIMP executes must not be writable by others
        assert not p.stat().st_mode & 0o022, (p, oct(p.stat().st_mode))
    # GIMP: sanet_client beside the plug-in's modules (its folder is on sys.path), wheels in vendor/
    for rel, data in SOURCES.items():
        if rel.startswith("plugins/sanet_client/"):
            assert (dest / "sanet_client" / Path(rel).name).read_bytes() == data, rel
    assert not (dest / "vendor" / "sanet_client").exists()
    assert (dest / "vendor" / "zmq" / "__init__.py").is_file()
    assert (dest / "vendor" / "msgpack" / "__init__.py").is_file()


IMPORT_CHECK = """
import os, sys
plugin = sys.argv[1]
vendor = os.path.join(plugin, "vendor")
sys.path[:0] = [vendor, plugin]      # what the plug-in does: vendor/ first, then its own folder
import sanet_client, zmq, msgpack
assert sanet_client.__file__.startswith(plugin), sanet_client.__file__
for mod in (zmq, msgpack):
    assert mod.__file__.startswith(vendor), (mod.__name__, mod.__file__)
ctx = zmq.Context()
a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
a.bind("inproc://check"); b.connect("inproc://check")
a.send(msgpack.packb({"ok": [1, 2]}))
assert msgpack.unpackb(b.recv()) == {"ok": [1, 2]}
a.close(); b.close(); ctx.term()
print(zmq.pyzmq_version(), zmq.zmq_version(), msgpack.version)
"""


def _system_python_version() -> str:
    out = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True)
    return out.stdout.strip() or f"{sys.version_info[0]}.{sys.version_info[1]}"


# native: the probed system python3; Flatpak and Snap: no runtime to look into here, so the version is a
# default and the vendor folder must serve every CPython from 3.10 to 3.13.
VENDOR_CASES = [("native", _system_python_version())] + \
    [(v, f"3.{m}") for v in ("flatpak", "snap") for m in (10, 11, 12, 13)]


@pytest.mark.parametrize("variant,pyver", VENDOR_CASES)
def test_vendored_client_imports_in_a_clean_interpreter(installed, variant, pyver):
    home, _, _ = installed
    dest = home / GIMP_PROFILES[variant] / "plug-ins" / "sanet-style"
    python = _python(pyver)
    if python is None:
        pytest.skip(f"no Python {pyver} here to load the {variant} wheels")
    # -I -S: no site-packages at all, only the plug-in's vendor folder, like an editor Python without pyzmq.
    bare = subprocess.run([python, "-I", "-S", "-c", "import zmq"], capture_output=True, text=True)
    assert bare.returncode != 0
    proc = subprocess.run([python, "-I", "-S", "-c", IMPORT_CHECK, str(dest)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_native_gimp_vendor_wins_over_an_older_system_pyzmq(installed):
    # GIMP on Linux runs the system python3; with only the vendor folder added it must load our copies even
    # where the distribution ships older ones (Debian bookworm: pyzmq 24, msgpack 1.0.3).
    home, _, _ = installed
    system = "/usr/bin/python3"
    if not os.path.exists(system):
        pytest.skip("no /usr/bin/python3")
    plugin = home / GIMP_PROFILES["native"] / "plug-ins" / "sanet-style"
    proc = subprocess.run([system, "-I", "-c", IMPORT_CHECK, str(plugin)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


LOADER_CHECK = (
    "import sys; sys.path.insert(0, sys.argv[1]); import sanet_gimp_job; m = sanet_gimp_job.import_client();"
    " import zmq; assert m.__file__.startswith(sys.argv[1]), m.__file__; print(zmq.__file__)")


def test_gimp_plugin_loads_its_client_from_the_install(installed):
    # The plug-in's own loader in the installed folder, as GIMP on Linux runs it (system python3, no PYTHONPATH).
    home, _, _ = installed
    dest = home / GIMP_PROFILES["native"] / "plug-ins" / "sanet-style"
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no /usr/bin/python3")
    proc = subprocess.run(["/usr/bin/python3", "-I", "-c", LOADER_CHECK, str(dest)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_gimp_plugin_loader_uses_the_vendored_wheels(installed):
    home, _, _ = installed
    dest = home / GIMP_PROFILES["native"] / "plug-ins" / "sanet-style"
    # -I -S: an editor Python without pyzmq; zmq must come from the plug-in's vendor/ folder.
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", LOADER_CHECK, str(dest)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(dest / "vendor"))


def test_flatpak_gimp_may_reach_the_daemon_runtime_dir(installed):
    home, _, _ = installed
    overrides = (home / ".local/share/flatpak/overrides/org.gimp.GIMP").read_text()
    assert "[Context]" in overrides and "filesystems=xdg-run/sanet-style;" in overrides.splitlines()


def test_krita_plugin_enabled_and_finds_its_client(installed):
    home, _, _ = installed
    pykrita = home / ".local/share/krita/pykrita"
    assert (pykrita / "sanet_style.desktop").read_bytes() == SOURCES["plugins/krita/sanet_style.desktop"]
    assert (pykrita / "sanet_style" / "__init__.py").is_file()
    rc = (home / ".config" / "kritarc").read_text()
    assert rc.startswith(KRITARC_BEFORE.rstrip("\n")) or "enable_comics_project_management_tools=true" in rc
    assert "[General]\nfirstRun=false" in rc
    assert rc.count("enable_sanet_style=true") == 1
    # The plug-in's own loader, in an interpreter that has nothing but pykrita on sys.path (no krita module).
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from sanet_style import clientlib; m = clientlib.load();"
            " import zmq; assert m.__file__.startswith(sys.argv[2]), m.__file__;"
            " assert zmq.__file__.startswith(sys.argv[2]), zmq.__file__")
    vendor = pykrita / "sanet_style" / "vendor"
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(pykrita), str(vendor)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_systemd_unit_points_at_the_venv_daemon(installed):
    home, _, _ = installed
    unit = home / ".config/systemd/user/sanetd.service"
    lines = unit.read_text().splitlines()
    exec_start = next(line.split("=", 1)[1] for line in lines if line.startswith("ExecStart="))
    assert exec_start == str(home / ".local/share/sanet-style/venv/bin/sanetd")
    assert os.access(exec_start, os.X_OK)
    assert "Restart=on-failure" in lines
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_venv_uses_the_existing_torch_and_has_the_project(installed):
    home, _, _ = installed
    venv = home / ".local/share/sanet-style/venv"
    import importlib.metadata
    want = importlib.metadata.version("torch")
    code = ("import importlib.metadata as m, sanetd, sanet_client, sanet; "
            "print(m.version('torch'), m.version('sanet-style'))")
    proc = subprocess.run([str(venv / "bin/python"), "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [want, "0.1.0"]
    assert (venv / "sanet-constraints.txt").read_text().splitlines()[-1] == f"torch=={want}"
    own = {p.name.split("-")[0].lower() for p in venv.glob("lib/python*/site-packages/*.dist-info")}
    assert not own & {"torch", "numpy", "pyzmq", "msgpack"}, own      # nothing big was copied in
    # the project's own sanetd entry point, from the venv
    assert os.access(venv / "bin" / "sanetd", os.X_OK)


HELLO = """
import json, os, sys
plugin = sys.argv[1]
sys.path[:0] = [os.path.join(plugin, "vendor"), plugin]
from sanet_client import Client
c = Client(timeout=30)
print(json.dumps(c.hello()))
c.close()
"""


def test_the_unit_command_serves_the_installed_gimp_client(installed, tmp_path):
    # What systemd would run (the unit's ExecStart, no extra settings), answering the client the installer put
    # in GIMP's plug-in folder, run by the system python3 a native GIMP uses.
    home, _, _ = installed
    unit = (home / ".config/systemd/user/sanetd.service").read_text().splitlines()
    exec_start = next(line.split("=", 1)[1] for line in unit if line.startswith("ExecStart="))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = _env(home)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    log = tmp_path / "sanetd.log"
    with open(log, "wb") as fh:
        daemon = subprocess.Popen([exec_start], env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        conn = runtime / "sanet-style" / "sanetd.json"
        end = time.monotonic() + 120
        while not conn.exists() and daemon.poll() is None and time.monotonic() < end:
            time.sleep(0.2)
        assert conn.exists(), f"sanetd wrote no connection file (exit {daemon.poll()}):\n{log.read_text()[-3000:]}"
        plugin = home / GIMP_PROFILES["native"] / "plug-ins" / "sanet-style"
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        proc = subprocess.run([python, "-I", "-c", HELLO, str(plugin)], env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr + log.read_text()[-3000:]
        hello = json.loads(proc.stdout.strip().splitlines()[-1])
        assert hello["daemon"] == "sanetd" and hello["device"] == "cpu"
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
    assert daemon.returncode == 0, log.read_text()[-3000:]
    assert not conn.exists()


def test_weights_installed_into_the_data_dir(installed, synthetic_weights):
    home, _, _ = installed
    weights = home / ".local/share/sanet-style/weights"
    for f in synthetic_weights.iterdir():
        assert (weights / f.name).read_bytes() == f.read_bytes()


def test_rerun_upgrades_in_place(installed):
    home, _, _ = installed
    dest = home / GIMP_PROFILES["native"] / "plug-ins" / "sanet-style"
    (dest / "stale-file-from-an-old-version.py").write_text("x = 1\n")
    proc = run_installer(home, "--torch", "existing", "--no-deps", "--autostart", "--no-service-manager",
                         "--wheel-cache", str(WHEEL_CACHE))
    assert "reusing the venv" in proc.stdout
    assert not (dest / "stale-file-from-an-old-version.py").exists()
    assert (dest / "sanet-style.py").stat().st_mode & 0o111 == 0o111
    assert not list(dest.parent.glob("*.sanet-*"))          # no staging leftovers
    assert (home / ".config/kritarc").read_text().count("enable_sanet_style") == 1
    manifest = _manifest(home)
    assert len(manifest["paths"]) == len(set(manifest["paths"]))
    assert manifest["weights"].endswith("weights")           # remembered from the first run


def test_dry_run_changes_nothing(installed):
    home, _, _ = installed
    before = snapshot(home)
    proc = run_installer(home, "--dry-run", "--torch", "existing", "--autostart", "--wheel-cache",
                         str(WHEEL_CACHE))
    assert snapshot(home) == before
    assert "[dry-run] install sanet-style" in proc.stdout
    proc = run_installer(home, "--dry-run", "--uninstall")
    assert snapshot(home) == before
    assert "[dry-run] remove the daemon's venv" in proc.stdout


def test_uninstall_leaves_nothing_behind(installed):
    home, before, _ = installed
    proc = run_installer(home, "--uninstall")
    assert "remove kritarc" not in proc.stdout                # it existed before: restored, not deleted
    # What remains is only what sanetd wrote itself when it ran (its log), kept until --purge.
    left = {p for p in set(snapshot(home)) - set(before)}
    assert all(p.startswith(".local/state") for p in left), sorted(left)
    assert {k: v for k, v in snapshot(home).items() if k in before} == before
    if left:
        assert "--uninstall --purge removes them" in proc.stdout
    again = run_installer(home, "--uninstall", "--purge")
    assert "nothing to uninstall" in again.stdout
    after = snapshot(home)
    # ~/.local/state itself is the shared XDG folder platformdirs made for sanetd's log; it is not ours to delete
    if ".local/state" not in before and ".local/state" in after:
        assert not any((home / ".local/state").iterdir())
        del after[".local/state"]
    assert after == before
