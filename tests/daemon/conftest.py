"""Fixtures of the daemon tests: one real sanetd per test module, and a client of it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# daemon_kit sits next to this file; make it importable under --import-mode=importlib too
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from sanet_client import Client
from sanetd_process import running_sanetd


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, synthetic_weights):
    """One sanetd for a whole test module (start-up costs a few seconds)."""
    with running_sanetd(tmp_path_factory.mktemp("sanetd"), synthetic_weights) as d:
        yield d


@pytest.fixture
def client(daemon):
    c = Client(connection_file=daemon.connection_file, timeout=20.0)
    yield c
    c.close()
