import pytest


@pytest.fixture(scope="session")
def stylizer(synthetic_weights):
    from sanet import Stylizer
    return Stylizer(synthetic_weights, device="cpu")


@pytest.fixture(scope="session")
def oracle(synthetic_weights):
    from oracle import Oracle
    from sanet.checkpoints import load_checkpoints
    return Oracle(load_checkpoints(synthetic_weights))
