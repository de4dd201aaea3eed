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


@pytest.fixture(scope="session")
def data(tmp_path_factory, adaattn_weights):
    """Content (7 images of 64–128 px, nested, PNG and JPEG, plus an unreadable and a truncated file) and style
    (4 images) folders, and bad folders: empty, only unreadable files, a file instead of a folder."""
    from train_helpers import write_images
    d = tmp_path_factory.mktemp("train_data")
    write_images(d / "content", 7, seed=1)
    write_images(d / "style", 4, seed=2)
    (d / "content" / "notes.png").write_bytes(b"this is not a picture")           # unreadable: skipped at the scan
    good = (d / "content" / "img00.png").read_bytes()
    (d / "content" / "nested" / "cut.png").write_bytes(good[: len(good) // 2])   # header fine, pixels cut off
    (d / "empty").mkdir()
    (d / "junk").mkdir()
    (d / "junk" / "a.jpg").write_bytes(b"\xff\xd8 nope")
    (d / "junk" / "b.png").write_bytes(b"")
    (d / "a_file.txt").write_text("not a folder")
    return d


@pytest.fixture(scope="session")
def runs(data, adaattn_weights):
    """One uninterrupted run per model (previews every 2 iterations: they must not disturb the training)."""
    from train_helpers import FAST, ITERATIONS, sanet, weights_args
    out = {}
    for model, n in ITERATIONS.items():
        r = sanet("train", *weights_args(model, adaattn_weights), "--content", "content", "--style", "style",
                  "--out", f"run_{model}", "--iterations", n, "--save-every", 2, "--preview-every", 2, *FAST,
                  cwd=data)
        assert r.returncode == 0, r.stderr
        out[model] = (data / f"run_{model}", r)
    return out
