"""The models the runtime serves, by name. Each is data + pure functions on the interface of models/base.py."""
from __future__ import annotations

from ..errors import InputError
from .adaattn import MODEL as ADAATTN
from .base import Context, Costs, Model
from .sanet import MODEL as SANET

MODELS: dict[str, Model] = {m.name: m for m in (SANET, ADAATTN)}
DEFAULT_MODEL = SANET.name


def get_model(name: "str | Model | None") -> Model:
    """A model by name (None: the default, SANet); one clear error for an unknown name."""
    if isinstance(name, Model):
        return name
    key = DEFAULT_MODEL if name is None else str(name).strip().lower()
    if key not in MODELS:
        raise InputError(f"unknown model '{name}': expected one of {', '.join(MODELS)}")
    return MODELS[key]


__all__ = ["MODELS", "DEFAULT_MODEL", "get_model", "Model", "Context", "Costs", "SANET", "ADAATTN"]
