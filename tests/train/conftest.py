import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """The training tests run tiny tensors: one intra-op thread. On a loaded 2-core machine two OpenMP threads spin
    and run a 32-px training step ~7× slower (measured: 3.6 s vs 0.54 s); the subprocesses get OMP_NUM_THREADS=1."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
