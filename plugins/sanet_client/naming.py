"""How results and choices are named in every editor: one definition, so GIMP and Krita read the same.

    result_name(["Starry Night"], model="SANet")                         → "Style: Starry Night (SANet)"
    result_name(["a", "b"], model="AdaAttN", alpha=0.8, preview=True)    → "Style: a + b (AdaAttN, α 0.80, preview)"
    model_choices(["sanet"])  → [("sanet", "sampled", "SANet"), ("adaattn", "sampled", "AdaAttN (not installed)"), …]
    result_name(["a"], precision="bf16")                                → "Style: a (SANet, fast)"
    quality_choices(None)     → [("exact", "Exact", True), ("fast", "Fast", False)]
    model_choices(["sanet", "sanet:ink"])  → […, ("sanet:ink", "sampled", "SANet · ink")]    (a fine-tuned variant)
"""
from __future__ import annotations

from . import protocol as P

MAX_NAMED_STYLES = 3
NOT_INSTALLED = " (not installed)"

# The editors' model choice: one entry per (model, style_keys). AdaAttN with every style key (full attention) is a
# quality option of AdaAttN, so it is an entry of its own; SANet has no key subsampling, so it has one entry.
MODEL_CHOICES = tuple((name, P.DEFAULT_STYLE_KEYS, short) for name, short in P.MODELS.items()) + (
    ("adaattn", "all", f"{P.MODELS['adaattn']} full attention"),)
MODEL_TOOLTIP = ("The method. SANet (CVPR 2019) copies the style's strokes and patterns by attention; AdaAttN (ICCV "
                 "2021) matches each point's colour and contrast to the style's similar parts, keeping the layer's "
                 "content clearer. Full attention looks at every point of a large style instead of a sample (finer, "
                 "slower). Each needs its weights in sanetd (`sanet weights install --model NAME`).")


def model_choices(installed=None) -> list:
    """(model, style_keys, text) of every entry; with ``installed`` (hello's models: sanet_client.protocol.
    hello_models, or their names), an entry whose model sanetd lacks says so, and every installed variant MODEL:NAME
    (a fine-tuned model) follows with its display name ("SANet · my-style"; AdaAttN's also with full attention)."""
    out = [(m, k, text + NOT_INSTALLED if installed is not None and m not in _names(installed) else text)
           for m, k, text in MODEL_CHOICES]
    for entry in installed or ():
        name = entry.get("name") if isinstance(entry, dict) else entry
        base, variant = P.split_model(str(name))
        if variant is None or P.model_problem(name):
            continue
        display = str(entry.get("display") or "") if isinstance(entry, dict) else ""
        display = display or P.model_display(name)
        for m, k, text in MODEL_CHOICES:
            if m == base:
                out.append((name, k, text.replace(P.MODELS[base], display, 1)))
    return out


def _names(installed) -> list:
    return [e.get("name") if isinstance(e, dict) else e for e in installed]


def model_choice(model, style_keys) -> tuple:
    """The entry (model, style_keys) these values select: SANet and its variants ignore style keys; unknown values
    raise ValueError."""
    model = str(model or P.DEFAULT_MODEL).strip()
    base, variant = P.split_model(model)
    model = base.lower() if variant is None else f"{base.lower()}{P.VARIANT_SEPARATOR}{variant}"
    keys = str(style_keys or P.DEFAULT_STYLE_KEYS).strip().lower()
    if P.model_problem(model) or keys not in P.STYLE_KEYS:
        raise ValueError(f"unknown model {model!r} / style keys {keys!r}")
    return (model, P.DEFAULT_STYLE_KEYS if base.lower() == "sanet" else keys)


# The editors' Quality choice (protocol.QUALITIES): exact = the request's precision "auto" (the result in fp32), fast
# = the daemon's fast precision (hello capabilities "fast_precision": bf16 on a CPU with AVX-512-BF16 / AMX-BF16,
# fp16 on a GPU). The quality cost is measured and tested (docs/benchmarks.md, tests/engine/test_cpu_precision.py).
QUALITY_TEXTS = {"exact": "Exact", "fast": "Fast"}
QUALITY_TOOLTIP = ("Exact computes the result in full precision (fp32). Fast computes it in the device's fast "
                   "precision: the result differs slightly from Exact (the previews already use it where the "
                   "device has it).")
FAST_SUFFIX = "fast"        # what a result name says when it was computed in a fast precision


def quality_choices(fast_precision=None, known: bool = True) -> list:
    """(quality, text, enabled) of every entry: Fast is enabled only when sanetd has a fast precision (hello
    capabilities "fast_precision"); ``known`` False (no hello yet): both are offered."""
    return [(q, QUALITY_TEXTS[q], q != "fast" or bool(fast_precision) or not known) for q in P.QUALITIES]


def quality_note(fast_precision=None, known: bool = True) -> str:
    """One short sentence under the Quality choice: what Fast means on this sanetd, or why it is not offered."""
    if not known:
        return "Fast: a lower precision where sanetd's device has one (known once sanetd runs)."
    if not fast_precision:
        return ("Fast is not offered: sanetd's device has no faster precision (a CPU needs AVX-512-BF16 or "
                "AMX-BF16), so results are always exact.")
    if fast_precision == "bf16":
        return ("Fast: bf16 on the CPU's bf16 units; differs from Exact by about 1/255 on average (PSNR ≥ 38 dB, "
                "measured), faster on CPUs with AMX.")
    return f"Fast: {fast_precision} on the GPU; differs slightly from Exact."


def quality_choice(quality) -> str:
    """A Quality value ('' / None = exact); unknown values raise ValueError."""
    q = str(quality or P.QUALITIES[0]).strip().lower()
    if q not in P.QUALITIES:
        raise ValueError(f"unknown quality {quality!r}")
    return q


def is_fast(precision) -> bool:
    """Whether a result's info "precision" is a fast (reduced) precision, not the exact fp32 (or fp64)."""
    return precision in P.PRECISIONS and precision not in (P.DEFAULT_PRECISION, "fp32")


def style_list(labels) -> str:
    labels = [str(s) for s in labels if str(s)] or ["style"]
    if len(labels) <= MAX_NAMED_STYLES:
        return " + ".join(labels)
    return " + ".join(labels[:MAX_NAMED_STYLES]) + " + …"


def result_name(style_labels, *, model: str = "SANet", alpha: float = 1.0, preserve_color: bool = False,
                preview: bool = False, semantic: bool = False, precision: str | None = None) -> str:
    """The name of a result layer: its style(s), then the model and what differs from a plain full run
    (``precision``: the result's info "precision"; a fast one adds "fast")."""
    extra = [model] if model else []
    if alpha < 1.0:
        extra.append(f"α {alpha:.2f}")
    if preserve_color:
        extra.append("colours kept")
    if semantic:
        extra.append("semantic")
    if is_fast(precision) and not preview:
        extra.append(FAST_SUFFIX)
    if preview:
        extra.append("preview")
    return f"Style: {style_list(style_labels)}" + (f" ({', '.join(extra)})" if extra else "")
