"""How results are named in every editor: one definition, so GIMP and Krita layers read the same.

    result_name(["Starry Night"], model="SANet")                         → "Style: Starry Night (SANet)"
    result_name(["a", "b"], model="AdaAttN", alpha=0.8, preview=True)    → "Style: a + b (AdaAttN, α 0.80, preview)"
"""
from __future__ import annotations

MAX_NAMED_STYLES = 3


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
