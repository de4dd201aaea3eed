"""The runtime's own machinery, model-agnostic: the out-of-memory chain, the style cache, per-call options.

Out of memory cannot be produced on demand here (no GPU; the CPU allocator rarely fails): the tests wrap a model
function (the decoder) so that its first calls raise torch.OutOfMemoryError, exactly what CUDA's allocator raises.
The chain's one device question, sanet.runtime.oom.is_gpu, is replaced where a test needs the GPU branch (lower
precision); nothing else in the engine is told it runs on a GPU, so the fp16 fallback really runs (on the CPU).
"""
import numpy as np
import pytest
import torch

from engine_helpers import smooth_image
from sanet import DeviceError, InputError, OutOfMemory, Style, Stylizer
from sanet.models import SANET
from sanet.runtime import oom

C, S = smooth_image(64, 64, seed=71), smooth_image(48, 48, seed=72)


@pytest.fixture(scope="module")
def st(synthetic_weights):
    return Stylizer(synthetic_weights, device="cpu")


def fail_first(monkeypatch, model, n, error=None):
    """model.decode raises `error` (CUDA's OOM by default) on its first n calls; returns the call log (dtypes)."""
    real = model.decode
    calls = []

    def decode(nets, inputs):
        calls.append(next(iter(inputs.values())).dtype)
        if n is None or len(calls) <= n:
            raise error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB (injected)")
        return real(nets, inputs)

    monkeypatch.setattr(model, "decode", decode)
    return calls


def test_gpu_chain_walks_plans_then_runs_in_fp16_and_says_so(st, monkeypatch):
    ref = st.stylize_raw(C, [S])
    st.encode_style(smooth_image(40, 40, seed=73))          # something else in the cache: the chain frees it
    monkeypatch.setattr(oom, "is_gpu", lambda device: True)
    calls = fail_first(monkeypatch, SANET, 2)               # 64×64: the whole image, then once more after freeing
    out = st.stylize_raw(C, [S])
    assert calls == [torch.float32, torch.float32, torch.float16]
    assert st.last_info["precision"] == "fp16"
    assert st.last_info["degraded"] == ["retried after freeing GPU memory",
                                        "ran in fp16 instead of fp32 to fit in GPU memory"]
    assert all(key[-1] == str(torch.float16) for key in st.style_cache._items)   # freed, then only fp16 encodings
    assert np.abs(out - ref).max() / (ref.max() - ref.min()) < 0.05              # fp16 is close, not equal
    monkeypatch.undo()
    again = st.stylize_raw(C, [S])                          # the next call is fp32 again, bit for bit
    assert st.last_info["precision"] == "fp32" and "degraded" not in st.last_info
    assert np.array_equal(again, ref)


def test_smaller_plans_come_first_and_keep_precision(st, monkeypatch):
    c = smooth_image(192, 256, seed=74)
    ref = st.stylize_raw(c, [S])
    monkeypatch.setattr(oom, "is_gpu", lambda device: True)
    calls = fail_first(monkeypatch, SANET, 1)
    out = st.stylize_raw(c, [S])
    assert st.last_plan.tiled and st.last_info["precision"] == "fp32"
    assert st.last_info["degraded"] == ["retried after freeing GPU memory"]
    assert set(calls) == {torch.float32}
    assert np.abs(out - ref).max() / (ref.max() - ref.min()) <= 1e-4


def test_cpu_chain_ends_in_one_clear_error_and_the_stylizer_still_works(st, monkeypatch):
    monkeypatch.setattr(oom, "cpu_bf16", lambda: False)    # a CPU without bf16 hardware: no lower precision
    calls = fail_first(monkeypatch, SANET, None, RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB"))
    st.encode_style(S)
    with pytest.raises(OutOfMemory) as exc:
        st.stylize(C, [S])
    assert isinstance(exc.value, DeviceError)
    msg = str(exc.value)
    assert msg.startswith("out of memory on cpu even with whole image") and "preview" in msg and "\n" not in msg
    assert calls == [torch.float32, torch.float32]          # no lower precision on a CPU
    assert len(st.style_cache) == 0                        # the chain freed the cache
    monkeypatch.undo()
    assert st.stylize(C, [S]).shape == C.shape


def test_cpu_with_bf16_walks_plans_then_runs_in_bf16_and_says_so(st, monkeypatch):
    """On a CPU with bf16 hardware the chain's precision step is bf16 (the model's split: SANet decodes in bf16)."""
    ref = st.stylize_raw(C, [S])
    monkeypatch.setattr(oom, "cpu_bf16", lambda: True)
    calls = fail_first(monkeypatch, SANET, 2, RuntimeError("DefaultCPUAllocator: can't allocate memory: 4 GB"))
    out = st.stylize_raw(C, [S])       # (bf16 runs on any x86 CPU, emulated without the hardware: slow, not wrong)
    assert calls == [torch.float32, torch.float32, torch.bfloat16]
    assert st.last_info["precision"] == "bf16"
    assert st.last_info["degraded"] == ["retried after freeing memory", "ran in bf16 instead of fp32 to fit in memory"]
    assert np.abs(out - ref).max() / (ref.max() - ref.min()) < 0.5                # a stylization, not garbage
    monkeypatch.undo()
    assert np.array_equal(st.stylize_raw(C, [S]), ref) and st.last_info["precision"] == "fp32"


def test_host_allocation_failure_is_reported_as_such(st, monkeypatch):
    fail_first(monkeypatch, SANET, 1, MemoryError())
    st.stylize_raw(C, [S])
    assert st.last_info["degraded"] == ["retried after freeing memory"]


def test_style_cache_is_bounded_in_bytes_and_freeable(synthetic_weights):
    probe = Stylizer(synthetic_weights, device="cpu")
    one = probe.style_cache.nbytes if probe.encode_style(S) else 0
    assert one > 0
    st = Stylizer(synthetic_weights, device="cpu", style_cache_size=10, style_cache_bytes=int(2.5 * one))
    for seed in range(4):
        st.encode_style(smooth_image(48, 48, seed=80 + seed))
    assert len(st.style_cache) == 2 and st.style_cache.nbytes <= 2.5 * one
    st.clear_cache()
    assert len(st.style_cache) == 0 and st.style_cache.nbytes == 0


def test_per_call_options_are_validated(st):
    with pytest.raises(DeviceError, match="precision 'fp16' is for GPUs"):
        st.stylize(C, [S], precision="fp16")
    with pytest.raises(InputError, match="unknown model 'wct'"):
        st.stylize(C, [S], model="wct")
    with pytest.raises(InputError, match="style_keys 'some'"):
        st.stylize(C, [S], style_keys="some")
    with pytest.raises(InputError, match="style_keys"):
        st.encode_style(S, style_keys="none")


def test_features_of_one_model_are_refused_by_another(st, adaattn_weights):
    both = Stylizer(adaattn_weights, device="cpu")
    feats = both.encode_style(S, model="adaattn")
    assert feats.model == "adaattn"
    with pytest.raises(InputError, match="encoded for model 'adaattn', not 'sanet'"):
        both.stylize(C, [Style(feats)])


def test_running_out_while_encoding_the_styles_is_in_the_chain_too(st, monkeypatch):
    real = SANET.style_memory
    calls = []

    def style_memory(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(*a, **k)

    monkeypatch.setattr(SANET, "style_memory", style_memory)
    st.clear_cache()
    out = st.stylize_raw(C, [smooth_image(56, 40, seed=75)])
    assert out.shape == (64, 64, 3) and st.last_info["degraded"] == ["retried after freeing GPU memory"]
