"""How results and choices are named in every editor: one definition, so GIMP and Krita read the same.

    result_name(["Starry Night"], model="SANet")                         → "Style: Starry Night (SANet)"
    result_name(["a", "b"], model="AdaAttN", alpha=0.8, preview=True)    → "Style: a + b (AdaAttN, α 0.80, preview)"
    model_choices(["sanet"])  → [("sanet", "sampled", "SANet"), ("adaattn", "sampled", "AdaAttN (not installed)"), …]
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


def style_list(labels) -> str:
    labels = [str(s) for s in labels if str(s)] or ["style"]
    if len(labels) <= MAX_NAMED_STYLES:
        return " + ".join(labels)
    return " + ".join(labels[:MAX_NAMED_STYLES]) + " + …"


def result_name(style_labels, *, model: str = "SANet", alpha: float = 1.0, preserve_color: bool = False,
                preview: bool = False, semantic: bool = False) -> str:
    """The name of a result layer: its style(s), then the model and what differs from a plain full run."""
    extra = [model] if model else []
    if alpha < 1.0:
        extra.append(f"α {alpha:.2f}")
    if preserve_color:
        extra.append("colours kept")
    if semantic:
        extra.append("semantic")
    if preview:
        extra.append("preview")
    return f"Style: {style_list(style_labels)}" + (f" ({', '.join(extra)})" if extra else "")
