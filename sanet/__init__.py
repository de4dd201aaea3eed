"""sanet: SANet arbitrary style transfer (Park & Lee, CVPR 2019) with runtime controls.

    from sanet import Stylizer, Style, load_image, save_image
    st = Stylizer(device="auto")                 # weights: --weights / $SANET_WEIGHTS / user data dir
    out = st.stylize(load_image("photo.png"), [Style(load_image("starry.jpg"))], alpha=0.8)

The names below are imported on first use, so `import sanet` (and `sanet --help`, `sanet --version`,
`sanet weights sources`) does not load torch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Stylizer": "engine", "Style": "engine", "StyleFeatures": "engine", "DEFAULT_STYLE_MAX_SIDE": "engine",
    "PREVIEW_LONG_SIDE": "engine",
    "SanetError": "errors", "WeightsError": "errors", "DeviceError": "errors", "InputError": "errors",
    "Cancelled": "errors",
    "load_image": "images", "save_image": "images",
}
__all__ = ["Stylizer", "Style", "StyleFeatures", "DEFAULT_STYLE_MAX_SIDE", "PREVIEW_LONG_SIDE",
           "SanetError", "WeightsError", "DeviceError", "InputError", "Cancelled",
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
