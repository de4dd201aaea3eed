"""sanet: arbitrary style transfer — SANet (Park & Lee, CVPR 2019), AdaAttN (Liu et al., ICCV 2021), SCSA label maps
(CVPR 2025) — with runtime controls, any image size, tiles with exact global statistics.

    from sanet import Stylizer, Style, load_image, save_image
    st = Stylizer(device="auto")                 # weights: --weights / $SANET_WEIGHTS / user data dir
    out = st.stylize(load_image("photo.png"), [Style(load_image("starry.jpg"))], alpha=0.8)
    out = st.stylize(photo, [Style(starry)], model="adaattn")

Layout: models/ (the papers: data + pure functions), functional.py (shared math), vgg.py (the shared encoder),
runtime/ (Stylizer, tiles, controls, cache, planner, out-of-memory chain), labels.py (SCSA label maps),
checkpoints.py / weights.py (files), images.py (pixels).

The names below are imported on first use, so `import sanet` (and `sanet --help`, `sanet --version`,
`sanet weights sources`) does not load torch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Stylizer": "runtime", "Style": "runtime", "StyleFeatures": "runtime", "DEFAULT_STYLE_MAX_SIDE": "runtime",
    "PREVIEW_LONG_SIDE": "runtime", "MODELS": "models",
    "SanetError": "errors", "WeightsError": "errors", "DeviceError": "errors", "InputError": "errors",
    "Cancelled": "errors", "OutOfMemory": "errors",
    "load_image": "images", "save_image": "images",
}
__all__ = ["Stylizer", "Style", "StyleFeatures", "DEFAULT_STYLE_MAX_SIDE", "PREVIEW_LONG_SIDE", "MODELS",
           "SanetError", "WeightsError", "DeviceError", "InputError", "Cancelled", "OutOfMemory",
           "load_image", "save_image", "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sanet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
