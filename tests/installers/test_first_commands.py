"""The README's first screen: its two commands, what CI runs, and what a second set-up run does."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = "\n".join(README.splitlines()[:25])


def first_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", FIRST_SCREEN, re.S)
    assert block, "README's first screen lost its command block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_first_screen_has_the_two_commands():
    demo, tests = first_commands()
    assert demo == "bash installers/dev_setup.sh --demo"
    assert tests == "bash installers/dev_setup.sh --editors && .venv/bin/python -m pytest"
    assert "(a)" in FIRST_SCREEN and "(b)" in FIRST_SCREEN


def test_ci_runs_exactly_the_test_command_and_keeps_the_no_tests_guard():
    ci = (ROOT / ".ci" / "run").read_text()
    _, tests = first_commands()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert tests in commands
    assert '"$rc" -eq 5' in ci and "exit 1" in ci


def test_no_readme_speaks_of_this_build_machine():
    for readme in [ROOT / "README.md", *ROOT.glob("*/README.md"), *ROOT.glob("plugins/*/README.md")]:
        assert "build machine" not in readme.read_text(), readme


def test_readme_sections_for_each_editor_and_the_daemon():
    heads = re.findall(r"^## (.+)$", README, re.M)
    assert heads[0] == "Two commands"
    assert any(h.startswith("GIMP 3: Filters → Style Transfer") for h in heads)
    assert any(h.startswith("Krita 5") and "docker" in h and "Tools → Scripts" in h for h in heads)
    assert "sanetd, the daemon" in heads


def test_a_second_dev_setup_run_only_checks():
    """Run it twice: the second run must install nothing (the first may, if this venv was made another way)."""
    for _ in range(2):
        p = subprocess.run(["bash", "installers/dev_setup.sh"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr
    assert "up to date (nothing installed)" in p.stderr and "installing" not in p.stderr, p.stderr


def test_dev_setup_refuses_unknown_options():
    p = subprocess.run(["bash", "installers/dev_setup.sh", "--wat"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "unknown option --wat" in p.stderr
