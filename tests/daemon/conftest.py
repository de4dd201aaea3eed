"""Fixtures of the daemon tests: one real sanetd per test module, and a client of it."""
from __future__ import annotations

import pytest

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
