"""Autostart files for the three OSes, rendered from installers/templates and parsed back."""
import plistlib
import shutil
import subprocess

import pytest

from installers.autostart import render, systemd_quote


def test_systemd_unit_runs_the_venv_daemon_and_restarts_on_failure():
    unit = render("linux", "/home/ann/.local/share/sanet-style/venv/bin/sanetd")
    lines = unit.splitlines()
    assert "ExecStart=/home/ann/.local/share/sanet-style/venv/bin/sanetd" in lines
    assert "Restart=on-failure" in lines
    assert "WantedBy=default.target" in lines


def test_systemd_quoting_of_spaces_and_percent():
    assert systemd_quote("/opt/my venv/bin/sanetd") == '"/opt/my venv/bin/sanetd"'
    assert systemd_quote("/opt/100%/sanetd") == "/opt/100%%/sanetd"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_unit_with_a_space_in_the_path_verifies(tmp_path):
    venv_bin = tmp_path / "my venv" / "bin"
    venv_bin.mkdir(parents=True)
    daemon = venv_bin / "sanetd"
    daemon.write_text("#!/bin/sh\nexit 0\n")
    daemon.chmod(0o755)
    unit = tmp_path / "sanetd.service"
    unit.write_text(render("linux", str(daemon)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_launchd_agent_parses_and_keeps_the_daemon_alive_only_after_failures():
    xml = render("darwin", "/Users/ann/Library/Application Support/sanet-style/venv/bin/sanetd",
                 "/Users/ann/Library/Logs/sanet-style/sanetd.log")
    plist = plistlib.loads(xml.encode())
    assert plist["Label"] == "org.sanet-style.sanetd"
    assert plist["ProgramArguments"] == ["/Users/ann/Library/Application Support/sanet-style/venv/bin/sanetd"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"].endswith("sanetd.log")


def test_launchd_escapes_xml_characters():
    plist = plistlib.loads(render("darwin", "/Users/a&b/<v>/bin/sanetd", "/tmp/l.log").encode())
    assert plist["ProgramArguments"] == ["/Users/a&b/<v>/bin/sanetd"]


def test_windows_startup_entry_starts_pythonw_without_a_console():
    cmd = render("windows", r"C:\Users\Ann Lee\AppData\Local\sanet-style\sanet-style\venv\Scripts\sanetd.exe")
    assert "\r\n" in cmd and "\n" not in cmd.replace("\r\n", "")
    assert r'start "" "C:\Users\Ann Lee\AppData\Local\sanet-style\sanet-style\venv\Scripts\pythonw.exe" -m sanetd' \
        in cmd
    with pytest.raises(ValueError, match="cannot write a Startup entry"):
        render("windows", r"C:\100%\venv\Scripts\sanetd.exe")
