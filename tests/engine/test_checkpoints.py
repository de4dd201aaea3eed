"""Checkpoint loading: legacy pickles with weights_only=True, refusal of code in pickles, and errors that name the
file and the mismatch."""
from __future__ import annotations

import os
import zipfile

import pytest
import torch

from sanet.checkpoints import (CHECKPOINT_FILES, DECODER_FILE, TRANSFORMER_FILE, VGG_FILE, expected_layout,
                               load_checkpoints, read_state_dict, validate_state_dict)
from sanet.errors import WeightsError
from sanet.vgg import build_vgg_full


class _RunsCode:
    """Pickles to a call of os.mkdir: loading it without weights_only would create `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_legacy_format_loads_with_weights_only(synthetic_weights):
    for name in CHECKPOINT_FILES:
        path = synthetic_weights / name
        assert not zipfile.is_zipfile(path), f"{name} should be a legacy (non-zip) pickle like the public files"
        state = read_state_dict(path)
        validate_state_dict(name, state, path)
        assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
    # the VGG file goes on to relu5_4; loading keeps only what inference runs
    full = read_state_dict(synthetic_weights / VGG_FILE)
    assert set(full) == set(build_vgg_full().state_dict())
    loaded = load_checkpoints(synthetic_weights)
    assert set(loaded[VGG_FILE]) == set(expected_layout()[VGG_FILE]) and len(loaded[VGG_FILE]) < len(full)
    assert torch.equal(loaded[DECODER_FILE]["1.weight"], read_state_dict(synthetic_weights / DECODER_FILE)["1.weight"])


def test_zip_format_also_loads(synthetic_weights, tmp_path):
    state = read_state_dict(synthetic_weights / TRANSFORMER_FILE)
    torch.save(state, tmp_path / TRANSFORMER_FILE)  # the current (zip) format
    assert zipfile.is_zipfile(tmp_path / TRANSFORMER_FILE)
    validate_state_dict(TRANSFORMER_FILE, read_state_dict(tmp_path / TRANSFORMER_FILE))


@pytest.mark.parametrize("legacy", [True, False])
def test_code_in_a_pickle_is_refused_and_not_run(tmp_path, legacy):
    marker = tmp_path / "code_ran"
    path = tmp_path / DECODER_FILE
    torch.save({"1.weight": torch.zeros(1), "payload": _RunsCode(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(WeightsError) as exc:
        read_state_dict(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really is dangerous: an unsafe load runs the code
    assert marker.is_dir()


def test_unreadable_files_name_the_file(synthetic_weights, tmp_path):
    with pytest.raises(WeightsError, match=f"^{tmp_path / VGG_FILE}: checkpoint file is missing"):
        read_state_dict(tmp_path / VGG_FILE)
    (tmp_path / VGG_FILE).write_bytes(b"")
    with pytest.raises(WeightsError, match=f"^{tmp_path / VGG_FILE}: checkpoint file is empty"):
        read_state_dict(tmp_path / VGG_FILE)
    data = (synthetic_weights / DECODER_FILE).read_bytes()
    for cut in (100, len(data) // 2, len(data) - 10):
        (tmp_path / DECODER_FILE).write_bytes(data[:cut])
        with pytest.raises(WeightsError, match=f"^{tmp_path / DECODER_FILE}: not a readable checkpoint"):
            read_state_dict(tmp_path / DECODER_FILE)
    torch.save([torch.zeros(2)], tmp_path / TRANSFORMER_FILE, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsError, match="expected a state dict of tensors, found list"):
        read_state_dict(tmp_path / TRANSFORMER_FILE)


def test_layout_mismatches_name_the_key(synthetic_weights):
    dec = read_state_dict(synthetic_weights / DECODER_FILE)
    bad = dict(dec)
    del bad["5.bias"]
    with pytest.raises(WeightsError, match=r"^dec\.pth: missing key\(s\) 5\.bias \(expected the decoder"):
        validate_state_dict(DECODER_FILE, bad, "dec.pth")
    bad = dict(dec, **{"99.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"unexpected key\(s\) 99\.weight"):
        validate_state_dict(DECODER_FILE, bad, "dec.pth")
    bad = dict(dec, **{"1.weight": torch.zeros(256, 512, 1, 1)})
    with pytest.raises(WeightsError, match=r"key '1\.weight' has shape \[256, 512, 1, 1\], expected \[256, 512, 3, 3\]"):
        validate_state_dict(DECODER_FILE, bad, "dec.pth")
    bad = dict(dec, **{"1.bias": torch.zeros(256, dtype=torch.int64)})
    with pytest.raises(WeightsError, match=r"key '1\.bias' has dtype torch\.int64"):
        validate_state_dict(DECODER_FILE, bad, "dec.pth")
    # the transformer's keys in the decoder's file: names the expected layout
    with pytest.raises(WeightsError, match="expected the decoder_iter_500000.pth layout"):
        validate_state_dict(DECODER_FILE, read_state_dict(synthetic_weights / TRANSFORMER_FILE), "x")


def test_load_checkpoints_names_the_bad_file(synthetic_weights, tmp_path):
    for n in CHECKPOINT_FILES:
        (tmp_path / n).write_bytes((synthetic_weights / n).read_bytes())
    tr = read_state_dict(tmp_path / TRANSFORMER_FILE)
    tr["sanet5_1.g.weight"] = tr["sanet5_1.g.weight"][:256]
    torch.save(tr, tmp_path / TRANSFORMER_FILE, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsError) as exc:
        load_checkpoints(tmp_path)
    assert str(exc.value) == (f"{tmp_path / TRANSFORMER_FILE}: key 'sanet5_1.g.weight' has shape "
                              f"[256, 512, 1, 1], expected [512, 512, 1, 1]")
