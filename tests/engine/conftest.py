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


@pytest.fixture(scope="session")
def ada(adaattn_weights):
    """A Stylizer whose default model is AdaAttN (SANet's files are in the same folder)."""
    from sanet import Stylizer
    return Stylizer(adaattn_weights, device="cpu", model="adaattn")


@pytest.fixture(scope="session")
def ada_oracle(adaattn_weights):
    """The literal released AdaAttN forward (tests/oracle_adaattn.py) evaluated in float64: the exact value of the
    released equations. (In fp32 the released std = sqrt(A·v² − mean²) cancels catastrophically where attention is
    peaked, so the fp32 oracle is itself ~2e-4 of the output range off its own exact value.)"""
    from oracle_adaattn import AdaAttnOracle
    from sanet.checkpoints import load_checkpoints
    o = AdaAttnOracle(load_checkpoints(adaattn_weights, "adaattn"))
    for m in (o.encoder, o.transformer, o.decoder, o.adaattn_3):
        m.double()
    return o
