"""The models the runtime serves, by name. Each is data + pure functions on the interface of models/base.py."""
from __future__ import annotations

from .. import variants
from ..errors import InputError
from .adaattn import MODEL as ADAATTN
from .base import Context, Costs, Model
from .sanet import MODEL as SANET

MODELS: dict[str, Model] = {m.name: m for m in (SANET, ADAATTN)}
DEFAULT_MODEL = SANET.name


_VARIANTS: dict[str, Model] = {}


def get_model(name: "str | Model | None") -> Model:
    """A model by name (None: the default, SANet), or a variant as MODEL:NAME (sanet.variants: its files are looked
    for when it loads); one clear error for an unknown name."""
    if isinstance(name, Model):
        return name
    key = DEFAULT_MODEL if name is None else str(name).strip()
    base, variant = variants.split(key)
    base = base.lower()
    if base not in MODELS:
        raise InputError(f"unknown model '{name}': expected one of {', '.join(MODELS)}"
                         f" (or a variant MODEL{variants.SEPARATOR}NAME)")
    if variant is None:
        return MODELS[base]
    full = variants.join(base, variant)
    if full not in _VARIANTS:
        _VARIANTS[full] = MODELS[base].variant(variant)
    return _VARIANTS[full]


__all__ = ["MODELS", "DEFAULT_MODEL", "get_model", "Model", "Context", "Costs", "SANET", "ADAATTN"]
